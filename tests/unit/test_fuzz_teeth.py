"""Meta-tests: the fuzz properties must catch every deliberately broken target, and find
nothing against impl. Each run is a real Hypothesis search (the same strategies and
``fuzz.properties`` checks as tests/conformance) through the ``module:function`` target."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, HealthCheck

from conv3dt.fuzz.invalid import invalid_cases
from conv3dt.fuzz.ledger import Ledger
from conv3dt.fuzz.profiles import PHASES
from conv3dt.fuzz.failures import FindingError, findings_in
from conv3dt.fuzz.properties import Context, check_invalid, check_valid
from conv3dt.fuzz.session import Recorder
from conv3dt.fuzz.strategies import exact_cases, valid_cases
from conv3dt.oracle.pool import TargetPool

MOD = "tests.unit.broken_targets"
CFG = dict(max_examples=300, deadline=None, database=None, derandomize=True, phases=PHASES,
           suppress_health_check=list(HealthCheck))

# broken target -> (property, strategy, finding kinds that count as caught)
CASES = {
    "wrong_pad_split": ("exact", exact_cases(), {"exactness"}),
    "flipped_kernel": ("exact", exact_cases(), {"exactness"}),
    "lost_dilation": ("differential", valid_cases(), {"value-mismatch", "shape"}),
    "precision_loss": ("differential", valid_cases(dtypes=("float32", "float64")), {"value-mismatch"}),
    "skipped_channel_validation": ("invalid", invalid_cases(families=("channel-in",)), {"accept-reject"}),
    "wrong_channel_order": ("exact", exact_cases(), {"exactness"}),
    "ignores_batch": ("differential", valid_cases(), {"value-mismatch"}),
    "wrong_dtype": ("differential", valid_cases(), {"dtype"}),
}


def _search(target: str, prop: str, strategy) -> list:
    pool = TargetPool(f"{MOD}:{target}")
    impl_pool = TargetPool("impl")
    ctx = Context({f"{MOD}:{target}": pool}, Recorder(None), Ledger([]), impl_pool)
    check = check_invalid if prop == "invalid" else check_valid

    @settings(**CFG)
    @given(case=strategy)
    def run(case):
        check(case, ctx, prop)

    try:
        run()
    except (FindingError, BaseExceptionGroup) as exc:   # several distinct failures: a group
        return findings_in(exc)
    finally:
        pool.close()
        impl_pool.close()
    return []


@pytest.mark.parametrize("target", sorted(CASES))
def test_broken_target_is_caught(target):
    prop, strategy, kinds = CASES[target]
    findings = _search(target, prop, strategy)
    assert findings, f"{target}: the {prop} property found nothing"
    assert {f.kind for f in findings} & kinds, (target, [f.kind for f in findings])


@pytest.mark.parametrize("prop,strategy", [("differential", valid_cases()),
                                           ("exact", exact_cases()),
                                           ("invalid", invalid_cases())])
def test_correct_target_yields_nothing(prop, strategy):
    assert _search("correct", prop, strategy) == []
