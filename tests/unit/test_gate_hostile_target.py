"""Meta-test: the gate survives the kernel it exists to catch and reports every bug of it.

``tests.unit.hostile_targets:vendor_kernel`` aborts, segfaults, hangs and is wrong (values and
dtype) on common input classes.

- The differential property as the ci gate runs it (its examples, ``every_failure`` rounds)
  reports each of the five defects as its own failure, once, shrunk to a small Case.
- A short ci-profile gate run ends by itself with exit 1, a complete record with the time
  limits, and nothing from the invalid property (the kernel validates correctly). The full ci
  gate against this target is measured, not asserted: fuzz/README.md."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given

from conv3dt.fuzz.failures import FindingError, every_failure, findings_in
from conv3dt.fuzz.ledger import Ledger
from conv3dt.fuzz.profiles import examples_for, settings_for
from conv3dt.fuzz.properties import Context, check_valid_batch
from conv3dt.fuzz.session import Recorder
from conv3dt.fuzz.strategies import valid_batches
from conv3dt.oracle.pool import TargetPool
from conv3dt.reports.record import load

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests.unit.hostile_targets:vendor_kernel"


@pytest.fixture(scope="module")
def differential_failures() -> list[FindingError]:
    """The ci differential property against the target, in-process, every failure it raises."""
    pool, impl_pool = TargetPool(TARGET), TargetPool("impl")
    ctx = Context({TARGET: pool}, Recorder(None), Ledger([]), impl_pool)

    @settings_for("differential")
    @given(cases=valid_batches())
    def differential(cases):
        check_valid_batch(cases, ctx, "differential")

    try:
        every_failure(differential, ctx.budget)
    except (FindingError, BaseExceptionGroup) as exc:
        return list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else [exc]
    finally:
        pool.close()
        impl_pool.close()
    return []


@pytest.mark.slow
def test_every_defect_is_its_own_failure_shrunk_to_a_small_case(differential_failures) -> None:
    assert examples_for("differential", "ci") == 150
    keys = sorted(type(e).key for e in differential_failures)
    assert [(k.kind, k.what.split(":")[0]) for k in keys] == [
        ("crash", "SIGABRT"), ("crash", "SIGSEGV"), ("dtype", ""), ("timeout", "timeout"),
        ("value-mismatch", "")], keys
    for err in differential_failures:
        assert all(type(err).key.property == "differential" for _ in err.findings)
        case = err.findings[0].case
        assert math.prod(case["value"]["shape"]) <= 64, case          # shrunk, not a random Case
    by_kind = {(type(e).key.kind, type(e).key.what[:7]): e.findings[0].case for e in differential_failures}
    abort = by_kind[("crash", "SIGABRT")]
    assert abort["value"]["dtype"] == "bfloat16" and abort["value"]["shape"][0] == 2
    hang = by_kind[("timeout", "timeout")]
    assert (hang["value"]["dtype"], hang["data_format"], hang["padding"]) == ("float16", "NCDHW", "VALID")
    assert len(findings_in(BaseExceptionGroup("all", differential_failures))) >= 5


@pytest.fixture(scope="module")
def hostile_record(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("hostile")
    res = subprocess.run([sys.executable, "-m", "conv3dt", "gate", "--target", TARGET,
                          "--profile", "ci", "--examples", "40", "--workers", "1",
                          "--report-dir", str(out / "r")], cwd=out, capture_output=True, text=True,
                         timeout=1200, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    return load(out / "r" / "report.json")


@pytest.mark.slow
def test_a_short_gate_ends_by_itself_with_exit_1_and_distinct_findings(hostile_record) -> None:
    new = [f for f in hostile_record["findings"] if f["status"] == "new"]
    signatures = [f["details"]["signature"] for f in new]
    assert new and len(signatures) == len(set(signatures)), "a distinct failure was reported twice"
    assert all(f["details"]["failure"]["hits"] >= 1 for f in new)


@pytest.mark.slow
def test_the_correctly_validated_calls_find_nothing_and_the_limits_are_recorded(hostile_record) -> None:
    assert not [f for f in hostile_record["findings"] if f["property"].startswith("invalid")]
    (limits,) = hostile_record["run"]["time_limits"][TARGET]
    assert limits["adaptive"] and limits["timeouts"] >= 1 and limits["ceiling_s"] == 30.0
    assert hostile_record["partial"] is False
