"""``reports.verdict``: the one exit ladder of the gate and of merged shards, rung by rung."""
from __future__ import annotations

import pytest

from conv3dt.reports.verdict import (EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_INFRA, EXIT_OK,
                                     ExitFacts, exit_for)

EVERYTHING = dict(stopped=(143, "interrupted (SIGTERM)"), cut_short="cut short by --max-time",
                  infra="2 test error(s)", gaps=("dtype=float16",), unexplained="pytest failed")


@pytest.mark.parametrize("new", [0, 3])
def test_a_stop_outranks_everything(new):
    assert exit_for(ExitFacts(new=new, **EVERYTHING)) == (143, "interrupted (SIGTERM)")


def test_cut_short_is_findings_with_new_ones_else_incomplete():
    facts = {**EVERYTHING, "stopped": None}
    assert exit_for(ExitFacts(new=2, **facts)) == (
        EXIT_FINDINGS, "2 new finding(s); cut short by --max-time")
    assert exit_for(ExitFacts(new=0, unjudged=": not everything was judged", **facts)) == (
        EXIT_INCOMPLETE, "cut short by --max-time with nothing new: not everything was judged")


def test_infrastructure_then_gaps_then_unexplained_fail_only_without_new_findings():
    facts = {**EVERYTHING, "stopped": None, "cut_short": None}
    assert exit_for(ExitFacts(new=0, **facts)) == (EXIT_INFRA, "2 test error(s)")
    facts["infra"] = None
    assert exit_for(ExitFacts(new=0, gaps_in="coverage tripwire on the merged shards",
                              gaps_note=" (see docs)", **facts)) == (
        EXIT_INFRA, "coverage tripwire on the merged shards: 1 required cell(s) never hit: "
                    "dtype=float16 (see docs)")
    facts["gaps"] = ()
    assert exit_for(ExitFacts(new=0, **facts)) == (EXIT_INFRA, "pytest failed")
    assert exit_for(ExitFacts(new=4, **facts)) == (EXIT_FINDINGS, "4 new finding(s)")


def test_nothing_wrong_is_zero():
    assert exit_for(ExitFacts(new=0)) == (EXIT_OK, "only known deviations")
