"""The invalid families as declared (``fuzz.invalid.InvalidFamily``, OpInfo's ``ErrorInput``):
every near-miss a family draws is rejected by impl with the class and message the family
declares — so each rule has its own origin, and a family that silently stops breaking its rule
(or breaks another one) fails here, not as a quiet hole in the gate."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from conv3dt import impl
from conv3dt.fuzz.invalid import (BY_NAME, FAMILIES, FAMILY_NAMES, INT_LIMITS, family_examples,
                          family_named, invalid_cases)


def impl_rejection(case):
    args, kwargs = case.call_args(tensor=lambda value, dtype: np.asarray(value, dtype))
    try:
        y = impl.conv3d_transpose(*args, **kwargs)
    except Exception as exc:   # noqa: BLE001 - the class is what is checked
        return exc
    pytest.fail(f"impl accepted {case.label}: {case.summary() if hasattr(case, 'summary') else case}"
                f" -> {np.shape(y)}")


def assert_declared_rejection(case):
    fam = BY_NAME[case.label.split(":", 1)[1]]
    exc = impl_rejection(case)
    assert isinstance(exc, fam.impl_raises), (fam.name, type(exc).__name__, str(exc))
    assert re.search(fam.impl_says, str(exc), re.S), (fam.name, fam.impl_says, str(exc))


@pytest.mark.parametrize("case", family_examples(), ids=lambda case: case.label)
def test_each_familys_deterministic_example_is_its_declared_rejection(case):
    assert_declared_rejection(case)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_drawn_near_miss_is_its_declared_rejection(name):
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=invalid_cases(families=(name,)))
    def check(case):
        assert case.label == f"invalid:{name}"
        assert_declared_rejection(case)
    check()


def test_families_are_declared_once_with_distinct_names_and_doc_promises():
    assert len(set(FAMILY_NAMES)) == len(FAMILIES)
    assert {f.name for f in FAMILIES if f.promise} == {"channel-in", "channel-out", "padding-value"}
    assert all(f.promise in (None, "ValueError") for f in FAMILIES)
    with pytest.raises(ValueError, match="unknown invalid family 'channel-inn'"):
        family_named("channel-inn")


def test_the_limits_families_reach_every_limit_and_every_wrong_length():
    """Coverage of the limits by construction, not by luck: every INT_LIMITS value is drawn by
    output-shape-int-limits and strides/dilations-int-limits for some pick, and
    output-shape-length makes 0-D, 2-D and every 1-D length but 4, 5, 6. output_shape entries
    also take the right value plus 2³² (the int32 wrap)."""
    from conv3dt.fuzz.invalid import _base, near_miss

    g, base = _base((0, 0, 4, 0, 1, 2, 0, 0, 7, 0))
    seen = {name: set() for name in ("output-shape-int-limits", "strides-int-limits",
                                     "dilations-int-limits")}
    for name, values in seen.items():
        for pick in range(2**12):
            c = near_miss(BY_NAME[name], pick, g, base)
            seq = c.output_shape if name.startswith("output") else (
                c.strides if name.startswith("strides") else c.dilations)
            values.update(v if v in INT_LIMITS else "wraps" for v in seq if abs(v) > 2**31 - 2)
        assert values == set(INT_LIMITS) | ({"wraps"} if name.startswith("output") else set()), name
    shapes = {np.ndim(c.output_shape) if np.ndim(c.output_shape) != 1 else
              (1, len(c.output_shape))
              for c in (near_miss(BY_NAME["output-shape-length"], p, g, base) for p in range(64))}
    assert shapes == {0, 2, (1, 0), (1, 1), (1, 2), (1, 3), (1, 7)}
