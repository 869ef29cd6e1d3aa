"""The adjoint identity: ⟨conv3d(y, w), x⟩ = ⟨y, T(x, w)⟩.

``T`` is the target, ``y`` a seeded normal array of the output shape, ``conv3d = impl.conv3d``,
and both inner products are evaluated in the reference precision ``u_r`` (float64;
np.longdouble for float64 Cases). With ``m`` outputs, ``M`` inputs and ``n' = Cout·ΠK`` terms
per conv3d output::

      |L − R| ≤ Σ_j |y_j|·B*_j                       (the target's error, weighted by |y|)
              + γ_m(u_r)·Σ_j |y_j|·|T_j|             (evaluating R = ⟨y, T⟩)
              + γ_{n'+M+1}(u_r)·Σ_j |y_j|·A_j        (evaluating L)

(``Σ_i |x_i|·(|y|⊛|w|)_i = ⟨|y|, A⟩`` bounds the terms of L), every sum of non-negative terms
divided by ``1 − γ_{m+1}(2^-53)`` (they are summed in float64).
"""
from __future__ import annotations

import math

import numpy as np

from conv3dt.fuzz.bound import gamma, unit_roundoff_of
from conv3dt.fuzz.truth import normalized, truth_of
from conv3dt.fuzz.metamorphic.common import (U64, Verdict, accept_reject_gate, all_finite, bound_exact,
                                    identity_finding, judgeable, ref_type)
from conv3dt.oracle.case import Case


def adjoint_variants(case: Case) -> list[Case]:
    return [case]


def adjoint_probe(case: Case) -> np.ndarray:
    """The seeded ``y`` of the output shape (float64; seed from the Case id)."""
    rng = np.random.default_rng(int(case.case_id, 16) % 2**32)
    return rng.standard_normal(tuple(case.output_shape))


def adjoint_sides(case: Case, result: np.ndarray, strict: bool = False):
    """(L, R, tolerance) of the adjoint identity for a target's ``result`` (see module doc),
    or None when it cannot be judged (non-finite data, conv3d shape disagreement)."""
    from conv3dt.impl import conv3d

    truth = truth_of(case)
    call = normalized(case)
    if not (judgeable(truth, strict) and all_finite(call.value, call.filter, result)):
        return None
    ref = ref_type(case.dtype)
    u_r = unit_roundoff_of(ref)
    y = adjoint_probe(case).astype(ref)
    x, w = call.value.astype(ref), call.filter.astype(ref)
    with np.errstate(all="ignore"):
        c = conv3d(y, w, strides=list(call.strides), padding=call.padding,
                   data_format=call.data_format, dilations=list(call.dilations))
        if c.shape != x.shape:
            return None
        t = np.asarray(result).astype(ref)
        lhs = np.sum(c * x, dtype=ref)
        rhs = np.sum(y * t, dtype=ref)
        m, big_m = y.size, x.size
        n_prime = int(call.filter.shape[3] * math.prod(call.filter.shape[:3]))
        ay = np.abs(y).astype(np.float64)
        g_ref = gamma(max(truth.n_terms, 1), u_r)
        a_exact = np.abs(truth.magnitude) / (1.0 - g_ref)
        terms = (np.sum(ay * bound_exact(truth, strict))
                 + gamma(m, u_r) * np.sum(ay * np.abs(t).astype(np.float64))
                 + gamma(n_prime + big_m + 1, u_r) * np.sum(ay * a_exact))
        tol = float(terms) / (1.0 - gamma(m + 1, U64))
    return float(lhs), float(rhs), float(abs(lhs - rhs)), tol


def adjoint_judge(case: Case, cases: list[Case], outs: list, target: str,
                  strict: bool = False) -> Verdict:
    stop = accept_reject_gate("adjoint", case, cases, outs, target)
    if stop is not None:
        return stop
    sides = adjoint_sides(case, outs[0].value, strict) if outs[0].value.size else None
    if sides is None or tuple(outs[0].value.shape) != tuple(case.output_shape):
        return Verdict("adjoint")
    lhs, rhs, diff, tol = sides
    ratio = 0.0 if diff == 0 else diff / tol
    v = Verdict("adjoint", judged=True, ratio=ratio)
    if diff > tol * (1 + 4 * U64):
        call = normalized(case)
        seed = int(case.case_id, 16) % 2**32
        lines = ["from conv3dt import impl",
                 f"y = np.random.default_rng({seed}).standard_normal({tuple(case.output_shape)!r})",
                 f"lhs = np.sum(impl.conv3d(y, filter_.astype(np.float64), "
                 f"strides={list(call.strides)!r}, padding={case.padding!r}, "
                 f"data_format={case.data_format!r}, dilations={list(call.dilations)!r}) "
                 f"* value.astype(np.float64))"]
        v.findings.append(identity_finding(
            "adjoint", case, target, cases,
            "'<conv3d(y,w),x> =', lhs, '<y,T(x,w)> =', np.sum(y * r0)",
            f"|<conv3d(y,w),x> - <y,T(x,w)>| <= {tol:.6g}",
            f"<conv3d(y,w),x> = {lhs!r}, <y,T(x,w)> = {rhs!r}, diff {diff:.6g}",
            ratio, extra=lines, lhs=lhs, rhs=rhs, tolerance=tol))
    return v

