"""Continuous fuzzing of the conformance properties on HypoFuzz (extra ``conv3dt[hypofuzz]``).

HypoFuzz (``hypothesis fuzz``) runs Hypothesis tests as coverage-guided fuzz targets in many
processes, each test adaptively scheduled, and keeps everything in the settings' example
database. ``fuzz/conformance/hypofuzz_targets.py`` exposes the conformance properties
themselves — ``differential``, ``exact``, ``invalid``, ``metamorphic`` and their gradient
counterparts (``grad_*``, fuzz/conformance/test_gradients.py), the very functions a gate
runs, with the same ``ctx`` fixture (targets, ledger, recorder) — as pytest tests for it to
collect; ``conv3dt continuous`` launches it (``conv3dt.continuous``).

How its results reach Findings, records and reports: HypoFuzz saves each failure (shrunk) under
the test's Hypothesis database key, and ``share_key`` gives a gate's property the key HypoFuzz
gives the same function (Hypothesis's ``function_digest`` of the property plus the pytest node
id HypoFuzz adds, ``hypofuzz_targets.py::test_<property>``, with ``--rootdir`` the conformance
directory). A gate or campaign with the same shared store (``--example-db``) replays those
failures in its reuse phase, judges them, and records them as its own Findings (report.json,
junit, html) and corpus entries (``<report dir>/session/corpus``). The realistic tier is not a
fuzz target: its search is built per dtype at run time (``fuzz.realistic.tier_search``).
"""
from __future__ import annotations

from typing import Callable

TARGETS_FILE = "hypofuzz_targets.py"
PROPERTIES = ("differential", "exact", "invalid", "metamorphic",
              "grad_differential", "grad_exact", "grad_invalid", "grad_metamorphic")


def nodeid(prop: str) -> str:
    """The pytest node id HypoFuzz gives property ``prop`` (rootdir: the conformance dir)."""
    return f"{TARGETS_FILE}::test_{prop}"


def share_key(prop: str) -> Callable:
    """Decorator of a property (a ``@given`` test): its example-database key becomes the one
    HypoFuzz uses for it (module docstring), so each replays what the other saved. The key is
    set as the test's database key (what ``hypothesis.find`` sets too), not by changing the
    function's digest, which also seeds a derandomized run; and only when a shared store is
    named (``$CONV3DT_EXAMPLE_DB``), the one way HypoFuzz's results reach a gate: a run
    without one keeps Hypothesis's own keys (none under ``--hypothesis-seed``) as before."""
    if prop not in PROPERTIES:
        raise ValueError(f"{prop!r} is not a fuzz target: one of {PROPERTIES}")

    def apply(test):
        import os

        from hypothesis.internal.reflection import function_digest

        from conv3dt.fuzz.exampledb import URL_VAR

        if not os.environ.get(URL_VAR):
            return test

        inner = test.hypothesis.inner_test
        inner._hypothesis_internal_add_digest = nodeid(prop).encode()
        try:
            test._hypothesis_internal_database_key = function_digest(inner)
        finally:
            del inner._hypothesis_internal_add_digest
        return test
    return apply
