"""Meta-tests: the realistic-size tier catches every size-dependent broken target
(``broken_size_targets.py``), shrinks each to the smallest geometry that still shows the defect,
finds nothing against a correct target, and the toy tiers alone miss these defects (which is why
the tier exists). Each run is a real Hypothesis search through the ``module:function`` target."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, example, given, seed, settings

from conv3dt.fuzz.ledger import Ledger
from conv3dt.fuzz.profiles import PHASES, examples_for, register_profiles
from conv3dt.fuzz.failures import FindingError, findings_in
from conv3dt.fuzz.properties import Context, check_valid_batch
from conv3dt.fuzz.realistic import BUDGETS, boundary_cases, realistic_cases, tier_seed
from conv3dt.fuzz.session import Recorder
from conv3dt.fuzz.strategies import DTYPES, exact_batches, valid_batches
from conv3dt.oracle.case import Case
from conv3dt.oracle.pool import TargetPool
from tests.unit.broken_size_targets import BROKEN

MOD = "tests.unit.broken_size_targets"
register_profiles()
CI_EXAMPLES = examples_for("realistic", "ci")   # what the ci gate draws per dtype
CFG = dict(deadline=None, database=None, derandomize=True, phases=PHASES,
           suppress_health_check=list(HealthCheck))


def _geometry(case: Case) -> dict[str, int]:
    """The sizes a shrunk Case ends at (output layout independent)."""
    ncdhw = case.data_format == "NCDHW"
    out = case.output_shape
    spatial = out[2:5] if ncdhw else out[1:4]
    return {"N": out[0], "Cout": case.filter.shape[3], "Cin": case.filter.shape[4],
            "W": spatial[2], "outputs": math.prod(out), "K": max(case.filter.shape[:3]),
            "terms": case.filter.shape[4] * math.prod(case.filter.shape[:3])}


def _search(target: str, strategy, prop: str, max_examples: int, explicit=(),
            seed_value: int | None = None) -> list:
    """Run ``prop`` over ``strategy`` against ``target``; the shrunk unknown Findings (or [])."""
    name = target if ":" in target else f"{MOD}:{target}"
    pools = {name: TargetPool(name)}
    impl_pool = TargetPool("impl")
    ctx = Context(pools, Recorder(None), Ledger([]), impl_pool)

    @settings(max_examples=max_examples, **CFG)
    @given(case=strategy)
    def run(case):
        cases = case if isinstance(case, list) else [case]
        check_valid_batch(cases, ctx, prop)

    for case in explicit:
        run = example(case=case)(run)
    if seed_value is not None:
        run = seed(seed_value)(run)
    try:
        run()
    except (FindingError, BaseExceptionGroup) as exc:   # several distinct failures: a group
        return findings_in(exc)
    finally:
        for p in (*pools.values(), impl_pool):
            p.close()
    return []


def _realistic(target: str) -> list:
    """The ci gate's realistic tier without its explicit examples — its random draws alone, one
    search per dtype as in fuzz/conformance/test_realistic.py — until one finds something."""
    for dtype in DTYPES:
        findings = _search(target, realistic_cases(BUDGETS["ci"], dtypes=(dtype,)), "realistic",
                           CI_EXAMPLES, seed_value=tier_seed(dtype, 0))
        if findings:
            return findings
    return []


# The smallest geometry that still shows each defect, where its threshold pins one size down.
SHRINKS_TO = {"cout_block_remainder": {"Cout": 9}, "cin_block_truncation": {"Cin": 17},
              "spatial_tile_edge": {"W": 17}, "batch_partition_mixup": {"N": 5},
              "skipped_tap_large_kernel": {"K": 7}}


@pytest.mark.parametrize("target", BROKEN)
def test_realistic_tier_catches_and_shrinks(target):
    findings = _realistic(target)
    assert findings, f"{target}: the realistic tier found nothing in its random draws"
    assert {f.kind for f in findings} <= {"value-mismatch"}, [f.kind for f in findings]
    got = _geometry(Case.from_json(findings[0].case))
    for size, smallest in SHRINKS_TO.get(target, {}).items():
        assert got[size] == smallest, (target, got)
    if target == "reduced_precision_large":
        assert got["outputs"] >= 100_000, got
    if target == "accumulation_reset":
        assert got["terms"] > 1024, got


@pytest.mark.parametrize("target", BROKEN)
def test_boundary_cases_alone_catch_every_defect(target):
    """The deterministic boundary Cases (the tier's explicit examples) catch each defect, so a
    ci run's verdict does not depend on what the random draws happen to reach."""
    findings = _search(target, realistic_cases(BUDGETS["ci"]), "realistic", 1, boundary_cases())
    assert findings, target


def test_correct_target_passes_the_realistic_tier():
    assert _search("tests.unit.broken_targets:correct", realistic_cases(), "realistic",
                   CI_EXAMPLES, boundary_cases()) == []


@pytest.mark.parametrize("target", ["cout_block_remainder", "cin_block_truncation",
                                    "reduced_precision_large", "accumulation_reset"])
def test_toy_tiers_miss_the_size_defects(target):
    """Why the tier exists: the toy differential and exact tiers see none of these."""
    assert _search(target, valid_batches(), "differential", 40) == []
    assert _search(target, exact_batches(), "exact", 20) == []
