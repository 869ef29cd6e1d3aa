"""The linearity identities ``linearity-value`` and ``linearity-filter``.

With ``a = 2``, ``b = −1/2`` (powers of two: the scalings are exact) and
``x3 = dtype(a·x1 + b·x2)``, the rounding residual ``r = x3 − (a·x1 + b·x2)`` obeys
``|r| ≤ (u + 2u_64)(|a||x1| + |b||x2|) + η`` (one float64 rounding, one to the dtype), so per
element::

    |T(x3) − (a·T(x1) + b·T(x2))| ≤ B*3 + |a|·B*1 + |b|·B*2
                                   + (u + 2u_64)(|a|·A1 + |b|·A2) + η·n·max|w|
                                   + u_r·|a·T(x1) + b·T(x2)| + 2η_r      (evaluating the sum)

and symmetrically in the filter (``η·n·max|x|``).
"""
from __future__ import annotations

import numpy as np

from conv3dt.fuzz.bound import UNIT_ROUNDOFF, gamma, smallest_subnormal, unit_roundoff_of
from conv3dt.fuzz.truth import normalized, truth_of
from conv3dt.fuzz.metamorphic.common import (U64, Verdict, accept_reject_gate, all_finite, bound_exact,
                                    identity_finding, inlined, judgeable, other_array, ref_type,
                                    values_fit)
from conv3dt.oracle.case import Case

LIN_A, LIN_B = 2.0, -0.5


def _lin_variants(case: Case, which: str) -> list[Case]:
    spec = case.value if which == "value" else case.filter
    x1 = spec.materialize()
    x2 = other_array(spec).materialize()
    with np.errstate(all="ignore"):
        x3 = (LIN_A * x1.astype(np.float64) + LIN_B * x2.astype(np.float64)).astype(x1.dtype)
    key = "value" if which == "value" else "filt"
    c2 = inlined(case, **{key: x2})
    c3 = inlined(case, **{key: x3})
    return [case, c2, c3]


def linearity_value_variants(case: Case) -> list[Case]:
    """[T(x1, w), T(x2, w), T(a·x1 + b·x2, w)] with the combination rounded to the dtype."""
    return _lin_variants(case, "value")


def linearity_filter_variants(case: Case) -> list[Case]:
    return _lin_variants(case, "filter")


def _lin_judge(which: str, case: Case, cases: list[Case], outs: list, target: str,
               strict: bool) -> Verdict:
    identity = f"linearity-{which}"
    stop = accept_reject_gate(identity, case, cases, outs, target)
    if stop is not None:
        return stop
    truths = [truth_of(c) for c in cases]
    calls = [normalized(c) for c in cases]
    if not all(judgeable(t, strict) for t in truths) or not values_fit(truths[0], outs):
        return Verdict(identity)
    if not all_finite(*(c.value for c in calls), *(c.filter for c in calls),
                   *(o.value for o in outs)):
        return Verdict(identity)
    dt = case.dtype
    ref = ref_type(dt)
    u_r = unit_roundoff_of(ref)
    y1, y2, y3 = (o.value.astype(ref) for o in outs)
    b1, b2, b3 = (bound_exact(t, strict) for t in truths)
    g = gamma(max(truths[0].n_terms, 1), u_r)
    a1, a2 = (np.abs(t.magnitude) / (1.0 - g) for t in truths[:2])
    other = calls[0].filter if which == "value" else calls[0].value
    eta, eta_r = smallest_subnormal(dt) / 2.0, (float(np.finfo(ref).smallest_subnormal) / 2.0)
    with np.errstate(all="ignore"):
        expect = LIN_A * y1 + LIN_B * y2
        diff = np.abs(y3 - expect).astype(np.float64)
        resid = ((UNIT_ROUNDOFF[dt] + 2 * U64) * (abs(LIN_A) * a1 + abs(LIN_B) * a2)
                 + eta * truths[0].n_terms * float(np.max(np.abs(other).astype(np.float64),
                                                          initial=0.0)))
        tol = (b3 + abs(LIN_A) * b1 + abs(LIN_B) * b2 + resid
               + u_r * np.abs(expect).astype(np.float64) + 2 * eta_r) * (1 + 8 * U64)
        ratio = np.where(diff == 0, 0.0, diff / tol)
    v = Verdict(identity, judged=True, ratio=float(ratio.max(initial=0.0)))
    bad = diff > tol
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        v.findings.append(identity_finding(
            identity, case, target, cases,
            f"'max |r2 - ({LIN_A!r}*r0 + {LIN_B!r}*r1)| =', np.max(np.abs(r2 - ({LIN_A!r}*r0 "
            f"+ {LIN_B!r}*r1)), initial=0.0)",
            f"T({which}: a*x1 + b*x2) = a*T(x1) + b*T(x2) (a={LIN_A}, b={LIN_B}) within "
            f"{tol[idx]:.3g} at {list(idx)}",
            f"{int(bad.sum())} of {bad.size} elements beyond the bound; at {list(idx)}: "
            f"{float(y3[idx])!r} vs {float(expect[idx])!r}",
            float(ratio[bad].max()), index=list(idx), violations=int(bad.sum())))
    return v


def linearity_value_judge(case, cases, outs, target, strict=False) -> Verdict:
    return _lin_judge("value", case, cases, outs, target, strict)


def linearity_filter_judge(case, cases, outs, target, strict=False) -> Verdict:
    return _lin_judge("filter", case, cases, outs, target, strict)

