"""``fuzz.gradients`` and the gradient parts of ``fuzz.truth`` / ``fuzz.covering``: exact
gradient Cases are exact (so ``grad_exact`` may demand bit equality), the rigorous bound holds
for impl's backward (so ``grad_differential`` judges nothing red on the reference) and not for
the broken backwards of broken_grad_targets.py, the
coverage floor alone hits every required gradient cell, and the gradient cells are unreachable
exactly when no gradient target runs.

Cases are decoded from the strategies' own integer tuples by a fixed-seed RNG, as
``fuzz.covering`` builds its floor (deterministic, no Hypothesis engine in the loop)."""
from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from conv3dt.fuzz import strategies as S
from conv3dt.fuzz.coverage import REQUIRED, cells_of
from conv3dt.fuzz.covering import _random_tuple, floor_for, unreachable
from conv3dt.fuzz.grad_invalid import GRAD_FAMILY_NAMES
from conv3dt.fuzz.gradients import GRADIENT_CELLS, exact_g_limit, gradient_cases
from conv3dt.fuzz.judge import judge_value
from conv3dt.fuzz.truth import truth_of
from conv3dt.impl import conv3d_transpose_grads
from conv3dt.oracle.capabilities import FULL, Capabilities
from conv3dt.oracle.outcome import Outcome

SEED = 13
GRADIENT_REQUIRED = {c for c in REQUIRED if c.startswith("grad-") and c not in ("grad-value", "grad-filter")}


def _forward_cases(kind: str, count: int, seed: int = SEED) -> list:
    """``count`` forward Cases decoded as the strategies decode a draw: ``exact`` (small
    integers, ``S._exact_from``) or ``valid`` (bulk floats and special values, ``S._valid_from``),
    every dtype, layout and padding, dilations and argument forms on, zero sizes too."""
    r = random.Random(seed)
    args = (FULL.dtypes, FULL.layouts, FULL.paddings, FULL.zero_size)
    out = []
    for _ in range(count):
        t = _random_tuple(r, FULL)
        out.append(S._exact_from(t, *args, FULL.dilations, FULL.argument_forms) if kind == "exact"
                   else S._valid_from(t, *args, None, FULL.dilations, FULL.argument_forms))
    return out


def _judge(case, result, target):
    return judge_value(case, Outcome.of_value(result), truth_of(case), target, "grad_differential",
                       strict=target == "impl-grad")


def _impl_grad(case, dtype=None):
    """impl's gradient for a gradient Case, its operands cast to ``dtype`` (default: as is)."""
    args, kwargs = case.call_args(tensor=lambda v, d: np.asarray(v, dtype=d))
    g = case.grad_array()
    if dtype is not None:
        args = [np.asarray(a, dtype) for a in args]
        kwargs = {k: (np.asarray(v, dtype) if k in ("value", "input", "filter", "filters") else v)
                  for k, v in kwargs.items()}
        g = np.asarray(g, dtype)
    with np.errstate(all="ignore"):    # special values overflow on purpose
        pair = conv3d_transpose_grads(*args, grad_output=g, **kwargs)
    return pair[0 if case.grad_wrt == "value" else 1]


def _abs_grad(case):
    """The same gradient over |value|, |filter|, |g| in float64: every partial sum of the real
    one is at most this in magnitude."""
    args, kwargs = case.call_args(tensor=lambda v, d: np.asarray(v, dtype=d))
    absolute = lambda a: np.abs(np.asarray(a, np.float64))   # noqa: E731
    args = [absolute(a) for a in args]
    kwargs = {k: (absolute(v) if k in ("value", "input", "filter", "filters") else v)
              for k, v in kwargs.items()}
    return conv3d_transpose_grads(*args, grad_output=absolute(case.grad_array()), **kwargs)[
        0 if case.grad_wrt == "value" else 1]


# ---------------------------------------------------------------------------- exactness
def test_exact_gradient_cases_are_exact():
    """Every gradient Case marked exact: g holds small integers, every partial sum of the
    gradient it asks for is an integer of magnitude at most 2^p (the dtype's significand bits),
    and so impl's result in the dtype equals the float64 result rounded once — bit for bit.
    Most exact forward Cases must stay exact (else ``grad_exact`` would test little)."""
    forward = _forward_cases("exact", 120)
    cases = gradient_cases(forward)
    exact = [c for c in cases if c.exact]
    assert len(exact) >= 0.75 * len(cases), (len(exact), len(cases))
    assert {c.grad_wrt for c in exact} == {"value", "filter"}
    assert {c.dtype for c in exact} == set(S.DTYPES)
    for case in exact:
        assert case.grad_output.recipe == "integers"
        assert exact_g_limit(case.forward()) == dict(case.grad_output.params)["high"]
        assert float(np.max(_abs_grad(case), initial=0.0)) <= 2.0 ** S.MANTISSA_BITS[case.dtype], case
        truth = _impl_grad(case, np.float64)
        assert np.array_equal(truth, np.round(truth)), case          # integers
        got = _impl_grad(case)
        want = truth.astype(got.dtype)
        assert got.dtype.name == case.dtype and got.shape == want.shape
        assert np.array_equal(got.astype(np.float64), want.astype(np.float64)), case
        assert np.array_equal(truth_of(case).exact_value.astype(np.float64),
                              want.astype(np.float64)), case


def test_a_forward_case_too_long_for_exact_gradients_is_judged_by_the_bound():
    """Exact forward Cases whose dfilter sums (N·ΠI products) cannot stay under 2^p with
    g = ±1 yield non-exact gradient Cases: never a false exactness demand."""
    too_long = [c for c in _forward_cases("exact", 300) if exact_g_limit(c) is None]
    assert too_long                    # the draw reaches the case (1 of these 300)
    for case in too_long:
        assert case.exact and not any(g.exact for g in gradient_cases([case]))


# ---------------------------------------------------------------------------- truth
def test_impl_grad_is_within_the_gradient_truth_bound():
    """The rigorous bound (``fuzz.truth.gradient_truth``, strict: no flush-to-zero allowance)
    holds for impl's backward on bulk-float gradient Cases of every dtype and layout, special
    values included: the judge finds nothing and the headroom is at most 1."""
    cases = gradient_cases(_forward_cases("valid", 60, seed=SEED + 1))
    judged, worst = 0, 0.0
    for case in cases:
        findings, head = _judge(case, _impl_grad(case), "impl-grad")
        assert findings == [], [f.observed for f in findings]
        if head is not None:
            judged += 1
            worst = max(worst, head)
    assert judged >= len(cases) // 2 and worst <= 1.0, (judged, worst)


@pytest.mark.parametrize("name", ["dfilter_flipped_taps", "dvalue_missing_stride_phase",
                                  "dfilter_float16_accumulation", "dvalue_flipped_filter",
                                  "dfilter_ignores_dilation"])
def test_the_same_judging_has_teeth(name):
    """The same Cases and judge, in-process, on the broken backwards of broken_grad_targets.py
    (the gate-level meta-tests are test_gate_gradients.py): each is found on some Case."""
    from tests.unit import broken_grad_targets

    backward = getattr(broken_grad_targets, name)
    found = set()
    for case in gradient_cases(_forward_cases("valid", 60, seed=SEED + 1)):
        args, kwargs = case.call_args(tensor=lambda v, d: np.asarray(v, dtype=d))
        with np.errstate(all="ignore"):
            pair = backward(*args, grad_output=case.grad_array(), **kwargs)
        findings, _ = _judge(case, pair[0 if case.grad_wrt == "value" else 1],
                             f"grad:tests.unit.broken_grad_targets:{name}")
        found |= {f.kind for f in findings}
    assert found & {"value-mismatch", "accumulation-precision"}, (name, found)


# ---------------------------------------------------------------------------- coverage
def _ctx(*names: str, capabilities: dict | None = None) -> SimpleNamespace:
    """A Context as ``floor_for`` reads it: pools whose spec says whether they are gradient
    targets, and the targets' declarations."""
    from conv3dt.oracle.targets import resolve

    return SimpleNamespace(pools={n: SimpleNamespace(spec=resolve(n)) for n in names},
                           capabilities=capabilities or {})


def test_the_gradient_floor_hits_every_gradient_cell():
    """For a gradient-only session the floor of ``grad_differential`` is gradient Cases only,
    deterministic, and its cells alone cover every ``GRADIENT_CELLS`` cell; a forward-only
    session has no gradient floor, and the forward floor ignores gradient targets."""
    ctx = _ctx("impl-grad", "grad:tests.unit.broken_grad_targets:faithful")
    floor = floor_for(ctx, "grad_differential")
    assert floor and all(c.is_gradient for c in floor)
    assert [c.case_id for c in floor_for(ctx, "grad_differential")] == [c.case_id for c in floor]
    hit = {cell for case in floor for cell in cells_of(case)}
    assert set(GRADIENT_CELLS) <= hit, sorted(set(GRADIENT_CELLS) - hit)
    assert floor_for(ctx, "differential") == []
    assert floor_for(_ctx("impl"), "grad_differential") == []
    assert all(not c.is_gradient for c in floor_for(_ctx("impl", "impl-grad"), "differential"))


def test_a_gradient_declaration_narrows_the_gradient_floor():
    """A backward declared float32/NDHWC only: its floor stays inside the declaration and hits
    every gradient cell the declaration admits."""
    name = "grad:tests.unit.broken_grad_targets:faithful"
    caps = Capabilities.from_mapping({"dtypes": ["float32"], "layouts": ["NDHWC"]}, "test")
    floor = floor_for(_ctx(name, capabilities={name: caps}), "grad_differential")
    assert floor and all(caps.admits(c) is None for c in floor)
    hit = {cell for case in floor for cell in cells_of(case)}
    reachable = set(GRADIENT_CELLS) - unreachable([FULL], [caps])
    assert reachable <= hit, sorted(reachable - hit)
    assert not any("dtype=float64" in c or "layout=NCDHW" in c for c in reachable)


def test_gradient_cells_are_unreachable_without_a_gradient_target():
    assert GRADIENT_REQUIRED == set(GRADIENT_CELLS) | {"grad-invalid"} | {
        f"grad-invalid:{f}" for f in GRAD_FAMILY_NAMES}
    assert unreachable([FULL]) >= GRADIENT_REQUIRED
    assert unreachable([FULL], []) >= GRADIENT_REQUIRED
    assert not unreachable([FULL], [FULL]) & GRADIENT_REQUIRED
    # the forward cells do not depend on the gradient declarations
    forward_only = unreachable([FULL]) - GRADIENT_REQUIRED
    assert unreachable([FULL], [FULL]) == forward_only


@pytest.mark.parametrize("declared, out_of_reach", [
    ({"dtypes": ["float32"]}, {"dtype=float64", "dtype=float16", "dtype=bfloat16"}),
    ({"layouts": ["NCDHW"]}, {"layout=NDHWC"}),
    ({"paddings": ["VALID"]}, {"padding=SAME", "SAME-negative-pad"}),
    ({"dilations": False}, {"dilation>1"}),
])
def test_a_gradient_declaration_makes_exactly_its_cells_unreachable(declared, out_of_reach):
    caps = Capabilities.from_mapping(declared, "test")
    got = {c for c in unreachable([FULL], [caps]) if c in GRADIENT_REQUIRED}
    want = {f"{op}×{cell}" for op in ("grad-value", "grad-filter") for cell in out_of_reach}
    assert got == want & set(GRADIENT_CELLS)
