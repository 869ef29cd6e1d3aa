"""fuzz.strategies / fuzz.invalid: every valid draw is a Case impl accepts, within the size
budget; exact Cases are exact; every invalid family is rejected by impl and labelled."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from conv3dt import impl
from conv3dt.fuzz.invalid import FAMILY_NAMES, family_of, invalid_cases
from conv3dt.fuzz.strategies import (OUT_BUDGET, WORK_BUDGET, exact_cases, geometries, output_range,
                             rare_cell_cases, valid_cases)
from conv3dt.fuzz.truth import truth_of
from conv3dt.impl.args import windowed_size

CFG = settings(deadline=None, database=None, derandomize=True,
               suppress_health_check=list(HealthCheck))


def call(case):
    args, kwargs = case.call_args(tensor=lambda v, d: np.asarray(v, d))
    return impl.conv3d_transpose(*args, **kwargs)


def sizes(case):
    nd = case.data_format == "NDHWC"
    v, f = case.value.shape, case.filter.shape
    n, cin = v[0], (v[4] if nd else v[1])
    spatial_in = v[1:4] if nd else v[2:5]
    outputs = math.prod(case.output_shape)
    work = n * math.prod(spatial_in) * f[3] * cin * math.prod(f[:3])
    return outputs, work


@settings(CFG, max_examples=150)
@given(case=valid_cases())
def test_every_valid_draw_is_accepted_by_impl_within_budget(case):
    assert case.label == "valid" and not case.exact
    out = call(case)
    assert list(out.shape) == list(case.output_shape)
    assert out.dtype == case.value.materialize().dtype
    outputs, work = sizes(case)
    assert outputs <= OUT_BUDGET and work <= WORK_BUDGET


@settings(CFG, max_examples=80)
@given(case=exact_cases())
def test_exact_draws_are_exact_in_their_dtype(case):
    assert case.exact
    t = truth_of(case)
    np.testing.assert_array_equal(t.y_ref, t.exact_value.astype(np.float64))  # no rounding
    np.testing.assert_array_equal(call(case), t.exact_value)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_invalid_family_is_rejected_by_impl_and_labelled(family):
    seen = []

    @settings(CFG, max_examples=12)
    @given(case=invalid_cases(families=(family,)))
    def run(case):
        assert case.label == f"invalid:{family}" and family_of(case) == family
        with pytest.raises((ValueError, TypeError)):
            call(case)
        seen.append(case)
    run()
    assert seen


@settings(CFG, max_examples=100)
@given(g=geometries(zero_dims=False))
def test_geometry_budget_and_sizes(g):
    assert g.outputs() <= OUT_BUDGET and g.work() <= WORK_BUDGET
    assert g.n >= 1 and g.cin >= 1 and g.cout >= 1


def test_output_range_is_exactly_the_accepted_set():
    for padding in ("SAME", "VALID"):
        for i in range(0, 4):
            for k in range(1, 5):
                for s in range(1, 4):
                    for d in range(1, 3):
                        eff = (k - 1) * d + 1
                        lo, hi = output_range(i, k, s, d, padding)
                        accepted = [o for o in range(0, 25)
                                    if windowed_size(o, eff, s, padding) == i]
                        if padding == "VALID" and i == 0:
                            # trunc maps eff - s - 1 (and below, down to eff - 2s + 1) to 0 too
                            assert [o for o in accepted if o >= lo] == list(range(lo, hi + 1))
                        else:
                            assert accepted == list(range(lo, hi + 1)), (padding, i, k, s, d)


def _zero_dims(case):
    nd = case.data_format == "NDHWC"
    v, f = case.value.shape, case.filter.shape
    dims = {"N": v[0], "Cin": v[4] if nd else v[1], "Cout": f[3],
            "spatial": min(v[1:4] if nd else v[2:5])}
    return {k for k, n in dims.items() if n == 0}


def test_every_zero_size_is_covered_and_accepted_by_impl():
    """Random draws make zero sizes rare on purpose; rare_cell_cases supplies each of them."""
    seen = set()
    for case in rare_cell_cases():
        out = call(case)  # an empty sum: zero-size or all zeros
        assert list(out.shape) == list(case.output_shape) and not np.any(out)
        seen |= _zero_dims(case)
    assert seen == {"N", "Cin", "Cout", "spatial"}

    @settings(CFG, max_examples=300)
    @given(case=valid_cases())
    def run(case):
        if _zero_dims(case):  # also VALID slack outputs: all zeros
            out = call(case)
            assert list(out.shape) == list(case.output_shape) and not np.any(out)
            seen.add("drawn")
    run()
    assert "drawn" in seen
