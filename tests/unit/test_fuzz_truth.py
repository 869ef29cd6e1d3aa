"""fuzz.truth + fuzz.bound: the bound holds for impl on random Cases, is not vacuous (3×bound
is a violation, a precision-losing kernel is caught), has its underflow term, and the float64
reference is wider than float64."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from conv3dt import impl
from conv3dt.fuzz.bound import error_bound, gamma, smallest_subnormal, underflow_term
from conv3dt.fuzz.judge import judge_value
from conv3dt.fuzz.strategies import valid_cases
from conv3dt.fuzz.truth import normalized, truth_of
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome


def run_impl(case):
    args, kwargs = case.call_args(tensor=lambda v, d: np.asarray(v, d))
    return impl.conv3d_transpose(*args, **kwargs)


def base(dtype="float32", value=None, filt=None):
    v = value if value is not None else ArraySpec(dtype, (2, 2, 3, 2, 3), "normal", 5, (("scale", 64.0),))
    f = filt if filt is not None else ArraySpec(dtype, (3, 2, 3, 2, 3), "normal", 6, (("scale", 1.0),))
    return Case(value=v, filter=f, output_shape=[2, 4, 3, 4, 2], strides=[2, 1, 2], padding="SAME")


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(case=valid_cases())
def test_bound_holds_for_impl_on_random_cases(case):
    t = truth_of(case)
    y = run_impl(case).astype(np.float64)
    judged = np.isfinite(y) & np.isfinite(t.y_ref) & np.isfinite(t.bound_strict)
    with np.errstate(invalid="ignore"):
        assert np.all(np.abs(y - t.y_ref)[judged] <= t.bound_strict[judged])
    assert np.all(t.bound >= t.bound_strict)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_bound_is_not_vacuous(dtype):
    case = base(dtype)
    t = truth_of(case)
    u = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}[dtype]
    # tight to the formula: no more than u|y| + 2γ_n(u)·A + F (F tiny here: normal values)
    assert np.all(t.bound <= u * np.abs(t.y_ref) + 2.2 * gamma(t.n_terms, u) * t.magnitude
                  + 2 * t.n_terms * 2.0**-14 * (dtype == "float16") + 1e-300)
    # a result 3 bounds away is a violation
    y = (t.y_ref + 3 * t.bound)
    if dtype != "float64":
        y = y.astype(t.exact_value.dtype)
    findings, _ = judge_value(case, Outcome.of_value(y), t, "tf-eager", "differential")
    assert [f.kind for f in findings] == ["value-mismatch"]


def test_precision_loss_is_outside_the_bound():
    case = base("float32")
    c = normalized(case)
    lossy = impl.conv3d_transpose(value=c.value.astype(np.float16).astype(np.float32),
                                  filter=c.filter.astype(np.float16).astype(np.float32),
                                  output_shape=list(c.output_shape), strides=[2, 1, 2], padding="SAME")
    findings, _ = judge_value(case, Outcome.of_value(lossy), truth_of(case), "tf-eager", "d", strict=True)
    assert findings and findings[0].kind == "value-mismatch"


def test_underflow_term_and_zero_inputs():
    n = 18
    assert underflow_term("float32", n) == (n + 1) * smallest_subnormal("float32") / 2
    assert smallest_subnormal("float16") == 2.0**-24 and smallest_subnormal("bfloat16") == 2.0**-133
    case = base("float32", value=ArraySpec.inline(np.zeros((2, 2, 3, 2, 3), np.float32)))
    t = truth_of(case)
    assert np.all(t.y_ref == 0)
    np.testing.assert_array_equal(t.bound_strict, underflow_term("float32", t.n_terms))


def test_gradual_underflow_result_within_strict_bound_and_flush_needs_the_allowance():
    v = np.full((2, 2, 3, 2, 3), 2.0**-75, np.float32)
    f = np.full((3, 2, 3, 2, 3), 2.0**-60, np.float32)          # products 2^-135: subnormal
    case = base(value=ArraySpec.inline(v), filt=ArraySpec.inline(f))
    t = truth_of(case)
    exact = run_impl(case)                                       # impl: float64 accumulation
    assert judge_value(case, Outcome.of_value(exact), t, "impl", "d", strict=True)[0] == []
    flushed = np.zeros_like(exact)
    assert judge_value(case, Outcome.of_value(flushed), t, "tf-eager", "d")[0] == []
    assert judge_value(case, Outcome.of_value(flushed), t, "tf-eager", "d", strict=True)[0]


def test_error_bound_formula():
    b = error_bound("float32", np.array([2.0]), np.array([3.0]), 4, 2.0**-53, 0.5)
    g_ref = gamma(4, 2.0**-53)
    a = 3.0 / (1 - g_ref)
    assert b[0] == pytest.approx(2.0**-24 * (2.0 + g_ref * a) + gamma(4, 2.0**-24) * a + g_ref * a + 0.5)
    assert gamma(2**24, 2.0**-24) == math.inf


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="no extended long double here")
def test_float64_reference_is_wider_than_float64():
    # one output element sums 1e16·1 + 1·1 + (−1e16)·1: float64 loses the 1, the reference not
    v = np.zeros((1, 1, 1, 1, 3))
    v[0, 0, 0, 0] = [1e16, 1.0, -1e16]
    case = Case(value=ArraySpec.inline(v), filter=ArraySpec.inline(np.ones((1, 1, 1, 1, 3))),
                output_shape=[1, 1, 1, 1, 1], strides=[1, 1, 1], padding="SAME")
    assert truth_of(case).y_ref.ravel()[0] == 1.0
