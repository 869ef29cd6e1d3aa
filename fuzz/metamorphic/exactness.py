"""Bit-exact identities.

- ``determinism``: the same Case twice gives the same bits (nan equal to nan).
- ``power-of-two``: value·2^k gives result·2^k exactly (for a gradient Case: g·2^k gives the
  gradient·2^k, both gradients being linear in g; ``operands`` names the two factors of every
  product: (value, filter), (g, filter) for dvalue, (value, g) for dfilter) when
  - every nonzero product is normal (min|v|·min|w| ≥ 2·smallest normal; ≥ smallest normal·2^p
    on paths that may flush subnormals, so that no partial sum is subnormal),
  - every result is an exact 0 (A = 0) or certainly normal (|y_ref| − e_ref ≥ smallest normal:
    rounding into the subnormal range does not commute with 2^k),
  - and nothing overflows (value·2^k finite and A·2^k < largest finite / 2).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from conv3dt.fuzz.bound import LARGEST_FINITE, SMALLEST_NORMAL, gamma, unit_roundoff_of
from conv3dt.fuzz.truth import truth_of
from conv3dt.fuzz.metamorphic.common import (Verdict, accept_reject_gate, identity_finding, ref_type,
                                    same_bits)
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case

SCALE_EXP = 3


def determinism_variants(case: Case) -> list[Case]:
    return [case, case]


def determinism_judge(case, cases, outs, target, strict=False) -> Verdict:
    stop = accept_reject_gate("determinism", case, cases, outs, target)
    if stop is not None:
        return stop
    same = same_bits(outs[0].value, outs[1].value)
    v = Verdict("determinism", judged=True, bit_identical=same)
    if not same:
        v.findings.append(identity_finding("determinism", case, target, cases,
                                   "'identical:', np.array_equal(r0, r1, equal_nan=True)",
                                   "the same bits on a repeated call", "results differ"))
    return v


def power_of_two_variants(case: Case) -> list[Case]:
    s = scaled(case)
    return [] if s is None else [case, s]


def power_of_two_judge(case, cases, outs, target, strict=False) -> Verdict:
    stop = accept_reject_gate("power-of-two", case, cases, outs, target)
    if stop is not None:
        return stop
    base, o = outs
    if base.value.size == 0 or base.value.shape != o.value.shape:
        return Verdict("power-of-two")
    dt = case.dtype
    truth = truth_of(case)
    v, w = (np.abs(a.materialize().astype(np.float64)) for a in operands(case))
    vmin, wmin = (float(np.min(x[x > 0], initial=np.inf)) for x in (v, w))
    g = gamma(max(truth.n_terms, 1), unit_roundoff_of(ref_type(dt)))
    e_ref = g * truth.magnitude / (1.0 - g)
    # the final rounding to the dtype commutes with 2^k only for normal results: every element
    # must be an exact 0 (no nonzero product) or certainly normal (|y*| >= smallest normal)
    normal = (truth.magnitude == 0) | (np.abs(truth.y_ref) - e_ref >= SMALLEST_NORMAL[dt])
    # gradual underflow (strict): subnormal partial sums of normal products are exact, so
    # normal products suffice; a path that may flush needs every partial sum 0 or normal:
    # products >= t·2^p (p significand bits) make every partial sum a multiple of 2t.
    p_bits = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}[dt]
    least = SMALLEST_NORMAL[dt] * (2.0 if strict else 2.0**p_bits)
    if not (bool(np.all(np.isfinite(truth.y_ref))) and vmin * wmin >= least
            and bool(np.all(normal))
            and float(np.max(truth.magnitude, initial=0.0)) * 2.0**SCALE_EXP
            < LARGEST_FINITE[dt] / 2):
        return Verdict("power-of-two")
    ok = same_bits(o.value.astype(np.float64), base.value.astype(np.float64) * 2.0**SCALE_EXP)
    verdict = Verdict("power-of-two", judged=True, bit_identical=ok)
    if not ok:
        verdict.findings.append(identity_finding(
            "power-of-two", case, target, cases,
            f"'exact:', np.array_equal(r1, r0 * 2.0**{SCALE_EXP}, equal_nan=True)",
            f"result of value*2^{SCALE_EXP} == result*2^{SCALE_EXP}", "not exactly scaled"))
    return verdict



# ----------------------------------------------------------------------------- determinism, 2^k
def operands(case: Case) -> tuple[ArraySpec, ArraySpec]:
    """The two factors of every product the Case's result sums (the scaled one first)."""
    if case.grad_wrt == "value":
        return case.grad_output, case.filter
    if case.grad_wrt == "filter":
        return case.grad_output, case.value
    return case.value, case.filter


def scaled(case: Case, k: int = SCALE_EXP) -> Case | None:
    """The Case with value·2^k (a gradient Case: g·2^k), inline, or None when the scaling could
    leave the normal range."""
    v = operands(case)[0].materialize()
    if not np.all(np.isfinite(v.astype(np.float64))) or v.size > 4096:
        return None
    with np.errstate(over="ignore"):
        s = (v.astype(np.float64) * 2.0**k).astype(v.dtype)
    if not np.all(np.isfinite(s.astype(np.float64))):  # an input itself overflows
        return None
    if case.is_gradient:
        return replace(case, grad_output=ArraySpec.inline(s), label="valid")
    return replace(case, value=ArraySpec.inline(s), label="valid")
