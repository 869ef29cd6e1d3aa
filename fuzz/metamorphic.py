"""Metamorphic identities on any target: no trust in a second implementation, only in the bound.

Each identity relates the target's results on a few *variants* of one Case. A variant is a
Case too (arrays inlined when they are derived), so a Finding's reproducer shows every call.
Every identity is two pure steps — ``variants(case)`` and ``judge(case, variants, outcomes,
target)`` — so that a property can run the variants of all identities in one batch per target;
``check(name, case, run, target)`` does both with ``run(list[Case]) -> list[Outcome]``.

Tolerances are rigorous, never an rtol. ``B`` below is ``fuzz.truth``'s per-element bound on
``|y − y_ref|`` (``bound_strict`` for ``impl``), and ``B* = B + e_ref`` the bound on
``|y − y*|`` against the *exact* result ``y*`` (``e_ref = γ_n(u_ref)·A_ref/(1 − γ_n(u_ref))``,
the reference's own error). ``u`` is a dtype's unit roundoff, ``η`` half its smallest subnormal.

- ``determinism``: the same Case twice gives the same bits (nan equal to nan).
- ``power-of-two``: value·2^k gives result·2^k exactly when every nonzero product is normal
  (min|v|·min|w| ≥ 2·smallest normal; ≥ smallest normal·2^p on paths that may flush
  subnormals, so that no partial sum is subnormal), every result is an exact 0 (A = 0) or certainly normal
  (|y_ref| − e_ref ≥ smallest normal: rounding into the subnormal range does not commute with
  2^k) and nothing overflows (value·2^k finite and A·2^k < largest finite / 2).
- ``adjoint``: ⟨conv3d(y, w), x⟩ = ⟨y, T(x, w)⟩ with ``T`` the target, ``y`` a seeded normal
  array of the output shape, ``conv3d = impl.conv3d`` and both inner products evaluated in the
  reference precision ``u_r`` (float64; np.longdouble for float64 Cases). With ``m`` outputs,
  ``M`` inputs and ``n' = Cout·ΠK`` terms per conv3d output::

      |L − R| ≤ Σ_j |y_j|·B*_j                       (the target's error, weighted by |y|)
              + γ_m(u_r)·Σ_j |y_j|·|T_j|             (evaluating R = ⟨y, T⟩)
              + γ_{n'+M+1}(u_r)·Σ_j |y_j|·A_j        (evaluating L: Σ_i |x_i|(|y|⊛|w|)_i = ⟨|y|, A⟩)

  every sum of non-negative terms divided by ``1 − γ_{m+1}(2^-53)`` (they are summed in float64).
- ``layout``: the NCDHW result transposed equals the NDHWC result. Both are judged against the
  same ``y_ref``, so ``|T_NDHWC − T_NCDHWᵀ| ≤ 2·B`` — bit identity is not required: TF may run a
  different kernel per layout (XLA transposes to its own layout; reduction orders can differ).
  Whether the results are bit-identical is *measured* (``Verdict.bit_identical``).
- ``linearity-value`` / ``linearity-filter``: with ``a = 2``, ``b = −1/2`` (powers of two: the
  scalings are exact) and ``x3 = dtype(a·x1 + b·x2)``, the rounding residual
  ``r = x3 − (a·x1 + b·x2)`` obeys ``|r| ≤ (u + 2u_64)(|a||x1| + |b||x2|) + η`` (one float64
  rounding, one to the dtype), so per element::

      |T(x3) − (a·T(x1) + b·T(x2))| ≤ B*3 + |a|·B*1 + |b|·B*2
                                     + (u + 2u_64)(|a|·A1 + |b|·A2) + η·n·max|w|
                                     + u_r·|a·T(x1) + b·T(x2)| + 2η_r      (evaluating the sum)

  and symmetrically in the filter (``η·n·max|x|``).
- ``batch-split``: ``T(concat(x1, x2)) = concat(T(x1), T(x2))`` along N; both sides are judged
  against the same ``y_ref`` (batch elements are independent), so ``|·| ≤ 2·B``. Bit identity
  is measured, not required (a kernel may tile by batch).

Only judged when every variant returns a finite result where the truth is finite and cannot
overflow, and all inputs are finite: non-finite handling is the differential property's
concern. If *every* variant is rejected nothing is judged (accept/reject is the differential
property's concern too); if only *some* are, an ``accept-reject`` Finding names the rejected
variant, so that the ledger's rules (e.g. ``cpu-ncdhw-unsupported``) decide whether it is known.
A crash or timeout is always a Finding.

Measured on TF 2.21 CPU (ci profile, 40 Cases × 9 default targets, ``stats["metamorphic"]``):
no adjoint, linearity, layout or power-of-two violation on any path. Batch-split is bit-identical
on XLA (31 of 32) and impl (all) but not on the stock kernel (12 of 32) nor oneDNN (21 of 32):
all within 2·B. Layout: XLA bit-identical (32 of 32); oneDNN computes NCDHW for float32 only
(6 of 16 bit-identical); the other CPU paths reject NCDHW (ledger ``cpu-ncdhw-unsupported``).
Batch-split found the stock kernel's N ≥ 2 nan from an unreached infinite filter tap (ledger
``stock-batched-unreached-inf-tap-nan``, ``onednn-fallback-batched-unreached-inf-tap-nan``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from fuzz.bound import (LARGEST_FINITE, SMALLEST_NORMAL, UNIT_ROUNDOFF, gamma,
                        smallest_subnormal, unit_roundoff_of)
from fuzz.findings import Finding
from fuzz.judge import _process_failure, kernels_of, make_finding, repro
from fuzz.truth import Truth, normalized, truth_of
from oracle.arrays import ArraySpec
from oracle.case import Case, spatial_triple

SCALE_EXP = 3
LIN_A, LIN_B = 2.0, -0.5
U64 = 2.0**-53
IDENTITIES = ("determinism", "power-of-two", "adjoint", "layout", "linearity-value",
              "linearity-filter", "batch-split")


@dataclass
class Verdict:
    """What one identity found for one target on one Case."""
    identity: str
    findings: list[Finding] = field(default_factory=list)
    judged: bool = False              # every variant returned values and the identity was checked
    bit_identical: bool | None = None  # for layout / batch-split / determinism: the two sides' bits
    ratio: float | None = None        # max |lhs − rhs| / tolerance (≤ 1 holds)


# ----------------------------------------------------------------------------- helpers
def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return a.shape == b.shape and bool(np.all((a64 == b64) | (np.isnan(a64) & np.isnan(b64))))


def _finite(*arrays) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(a, dtype=np.float64)))) for a in arrays)


def _ref_type(dtype: str):
    return np.longdouble if dtype == "float64" else np.float64


def _bound(truth: Truth, strict: bool) -> np.ndarray:
    return truth.bound_strict if strict else truth.bound


def _bound_exact(truth: Truth, strict: bool) -> np.ndarray:
    """B* = B + e_ref: a bound on |y − y*| against the exact result."""
    g = gamma(max(truth.n_terms, 1), unit_roundoff_of(_ref_type(truth.dtype)))
    return _bound(truth, strict) + g * np.abs(truth.magnitude) / (1.0 - g)


def _judgeable(truth: Truth, strict: bool) -> bool:
    return (_finite(truth.y_ref, _bound(truth, strict)) and not bool(np.any(truth.overflow)))


def _inline(case: Case, value: np.ndarray | None = None, filt: np.ndarray | None = None,
            **changes) -> Case:
    if value is not None:
        changes["value"] = ArraySpec.inline(value)
    if filt is not None:
        changes["filter"] = ArraySpec.inline(filt)
    return replace(case, label="valid", exact=False, **changes)


def _other(spec: ArraySpec) -> ArraySpec:
    """A second array of the same dtype/shape and kind: the next seed, or seeded normals."""
    if spec.recipe in ("normal", "uniform", "integers", "special"):
        return replace(spec, seed=((spec.seed or 0) + 1) % 2**32)
    return ArraySpec(spec.dtype, spec.shape, "normal", 1, (("scale", 1.0),))


def _seq_for_layout(arg, form: str, to_layout: str):
    """strides/dilations in the other layout: only the length-5 forms change order."""
    if form in ("list", "tuple") and isinstance(arg, list) and len(arg) == 5:
        return [arg[0], arg[4], arg[1], arg[2], arg[3]] if to_layout == "NCDHW" else \
            [arg[0], arg[2], arg[3], arg[4], arg[1]]
    return arg


def with_layout(case: Case, layout: str) -> Case:
    """The same call in ``layout`` (value transposed and inlined, output_shape reordered)."""
    if case.data_format == layout:
        return case
    v = case.value.materialize()
    os_ = list(case.output_shape)
    if layout == "NCDHW":
        v, os_ = v.transpose(0, 4, 1, 2, 3), [os_[0], os_[4], *os_[1:4]]
    else:
        v, os_ = v.transpose(0, 2, 3, 4, 1), [os_[0], *os_[2:5], os_[1]]
    return _inline(case, np.ascontiguousarray(v), output_shape=os_, data_format=layout,
                   strides=_seq_for_layout(case.strides, case.strides_form, layout),
                   dilations=_seq_for_layout(case.dilations, case.dilations_form, layout))


def _to_ndhwc(a: np.ndarray, layout: str) -> np.ndarray:
    return a.transpose(0, 2, 3, 4, 1) if layout == "NCDHW" else a


def _pair_repro(target: str, cases: list[Case], relation: str, extra=()) -> str:
    """One script running every variant (results r0, r1, ...) and printing the relation."""
    lines: list[str] = []
    for i, c in enumerate(cases):
        body = repro(c, target).rstrip("\n").split("\n")
        call = body[-1][len("print("):-1]
        if i == 0:
            lines += body[:-3]
        lines += [f"# call {i}", *body[-3:-1], f"r{i} = np.asarray({call}, dtype=np.float64)"]
    lines += [*extra, f"print({relation})", ""]
    return "\n".join(lines)


def _finding(identity: str, case: Case, target: str, cases: list[Case], relation: str,
             expected: str, observed: str, ratio: float | None = None, extra=(),
             **details) -> Finding:
    f = make_finding("metamorphic", case, target, f"metamorphic-{identity}", expected, observed,
                     headroom=ratio, identity=identity, **details)
    return replace(f, repro=_pair_repro(target, cases, relation, extra))


def _gate(identity: str, case: Case, cases: list[Case], outs: list, target: str) -> Verdict | None:
    """The accept/reject part shared by every identity: a Verdict when judging must stop."""
    prop = f"metamorphic-{identity}"
    failures = [f for c, o in zip(cases, outs) for f in _process_failure(c, o, target, prop)]
    if failures:
        return Verdict(identity, failures)
    raised = [(c, o) for c, o in zip(cases, outs) if o.kind == "raised"]
    if len(raised) == len(cases):
        return Verdict(identity)
    if raised:
        return Verdict(identity, [make_finding(
            "accept-reject", c, target, prop, "a result (another variant of the identity "
            "returned one)", o.describe(), out=o, identity=identity, error_class=o.error_class,
            message=(o.message or "")[:1500]) for c, o in raised])
    return None


def _values_fit(truth: Truth, outs) -> bool:
    return all(tuple(o.value.shape) == truth.shape for o in outs)


# ----------------------------------------------------------------------------- determinism, 2^k
def scaled(case: Case, k: int = SCALE_EXP) -> Case | None:
    """The Case with value·2^k (inline), or None when the scaling could leave the normal range."""
    v = case.value.materialize()
    if not np.all(np.isfinite(v.astype(np.float64))) or v.size > 4096:
        return None
    with np.errstate(over="ignore"):
        s = (v.astype(np.float64) * 2.0**k).astype(v.dtype)
    if not np.all(np.isfinite(s.astype(np.float64))):  # an input itself overflows
        return None
    return replace(case, value=ArraySpec.inline(s), label="valid")


def check_metamorphic(case: Case, run, target: str) -> list:
    """Determinism and power-of-two Findings for ``target``; ``run(list[Case]) -> list[Outcome]``."""
    return [f for v in run_checks(case, run, target, ("determinism", "power-of-two"))
            for f in v.findings]


# ----------------------------------------------------------------------------- adjoint
def adjoint_variants(case: Case) -> list[Case]:
    return [case]


def adjoint_probe(case: Case) -> np.ndarray:
    """The seeded ``y`` of the output shape (float64; seed from the Case id)."""
    rng = np.random.default_rng(int(case.case_id, 16) % 2**32)
    return rng.standard_normal(tuple(case.output_shape))


def adjoint_sides(case: Case, result: np.ndarray, strict: bool = False):
    """(L, R, tolerance) of the adjoint identity for a target's ``result`` (see module doc),
    or None when it cannot be judged (non-finite data, conv3d shape disagreement)."""
    from impl import conv3d

    truth = truth_of(case)
    call = normalized(case)
    if not (_judgeable(truth, strict) and _finite(call.value, call.filter, result)):
        return None
    ref = _ref_type(case.dtype)
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
        terms = (np.sum(ay * _bound_exact(truth, strict))
                 + gamma(m, u_r) * np.sum(ay * np.abs(t).astype(np.float64))
                 + gamma(n_prime + big_m + 1, u_r) * np.sum(ay * a_exact))
        tol = float(terms) / (1.0 - gamma(m + 1, U64))
    return float(lhs), float(rhs), float(abs(lhs - rhs)), tol


def adjoint_judge(case: Case, cases: list[Case], outs: list, target: str,
                  strict: bool = False) -> Verdict:
    stop = _gate("adjoint", case, cases, outs, target)
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
        lines = ["import impl",
                 f"y = np.random.default_rng({seed}).standard_normal({tuple(case.output_shape)!r})",
                 f"lhs = np.sum(impl.conv3d(y, filter_.astype(np.float64), "
                 f"strides={list(call.strides)!r}, padding={case.padding!r}, "
                 f"data_format={case.data_format!r}, dilations={list(call.dilations)!r}) "
                 f"* value.astype(np.float64))"]
        v.findings.append(_finding(
            "adjoint", case, target, cases, "'<conv3d(y,w),x> =', lhs, '<y,T(x,w)> =', np.sum(y * r0)",
            f"|<conv3d(y,w),x> - <y,T(x,w)>| <= {tol:.6g}",
            f"<conv3d(y,w),x> = {lhs!r}, <y,T(x,w)> = {rhs!r}, diff {diff:.6g}",
            ratio, extra=lines, lhs=lhs, rhs=rhs, tolerance=tol))
    return v


# ----------------------------------------------------------------------------- layout
def layout_variants(case: Case) -> list[Case]:
    """[the NDHWC form, the NCDHW form] of the Case (one of them is the Case itself)."""
    return [with_layout(case, "NDHWC"), with_layout(case, "NCDHW")]


def _pair_judge(identity: str, case: Case, cases: list[Case], lhs: np.ndarray, rhs: np.ndarray,
                truth: Truth, layout: str, target: str, strict: bool, relation: str,
                what: str) -> Verdict:
    """|lhs − rhs| ≤ 2·B elementwise: both sides are results for the same y_ref. ``lhs`` and
    ``rhs`` are NDHWC; ``truth`` is in ``layout``."""
    bound = _to_ndhwc(_bound(truth, strict), layout)
    over = _to_ndhwc(truth.overflow, layout)
    a, b = lhs.astype(np.float64), rhs.astype(np.float64)
    v = Verdict(identity, bit_identical=_same(a, b))
    if not np.all(np.isfinite(bound)) or over.any():
        return v
    with np.errstate(all="ignore"):
        both_nan = np.isnan(a) & np.isnan(b)
        same_inf = np.isinf(a) & (a == b)
        err = np.where(np.isfinite(a) & np.isfinite(b), np.abs(a - b), np.inf)
        tol = 2.0 * bound
        ok = both_nan | same_inf | (err <= tol)
        ratio = np.where(err == 0, 0.0, err / tol)
    v.judged = True
    finite = np.isfinite(ratio)
    v.ratio = float(ratio[finite].max()) if finite.any() else 0.0
    if not ok.all():
        bad = ~ok
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        v.findings.append(_finding(
            identity, case, target, cases, relation,
            f"{what}: |lhs - rhs| <= 2*bound; at NDHWC {list(idx)}: bound={bound[idx]:.3g}",
            f"{int(bad.sum())} of {bad.size} elements differ beyond 2*bound; at {list(idx)}: "
            # float(): repr of a NumPy scalar is np.float64(nan) under NumPy 2 but nan under
            # NumPy 1 (TF < 2.18 needs it); the text must not depend on it (ledger regexes).
            f"{float(a[idx])!r} vs {float(b[idx])!r}", float(np.nanmax(np.where(bad, ratio, 0.0))),
            index=list(idx), violations=int(bad.sum())))
    return v


def layout_judge(case: Case, cases: list[Case], outs: list, target: str,
                 strict: bool = False) -> Verdict:
    stop = _gate("layout", case, cases, outs, target)
    if stop is not None:
        return stop
    nd, nc = outs
    if tuple(nd.value.shape) != tuple(cases[0].output_shape) or \
            tuple(nc.value.shape) != tuple(cases[1].output_shape):
        return Verdict("layout")  # a shape error is the differential property's Finding
    truth = truth_of(cases[0])
    return _pair_judge("layout", case, cases, nd.value, _to_ndhwc(nc.value, "NCDHW"), truth,
                       "NDHWC", target, strict, "'max |r0 - r1^T| =', np.nanmax(np.abs(r0 - "
                       "r1.transpose(0, 2, 3, 4, 1)), initial=0.0)", "NDHWC = NCDHW transposed")


# ----------------------------------------------------------------------------- batch split
def batch_variants(case: Case) -> list[Case]:
    """[full, first part, second part]: N ≥ 2 splits at N//2; N == 1 first appends a second
    sample (the next seed). Empty when N == 0."""
    v = case.value.materialize()
    if v.shape[0] == 0:
        return []
    full = case
    if v.shape[0] == 1:
        v = np.concatenate([v, _other(case.value).materialize()], axis=0)
        full = _inline(case, v, output_shape=[2, *case.output_shape[1:]])
    k = v.shape[0] // 2
    parts = [_inline(full, np.ascontiguousarray(p), output_shape=[p.shape[0], *full.output_shape[1:]])
             for p in (v[:k], v[k:])]
    return [full, *parts]


def batch_judge(case: Case, cases: list[Case], outs: list, target: str,
                strict: bool = False) -> Verdict:
    stop = _gate("batch-split", case, cases, outs, target)
    if stop is not None:
        return stop
    if any(tuple(o.value.shape) != tuple(c.output_shape) for c, o in zip(cases, outs)):
        return Verdict("batch-split")
    truth = truth_of(cases[0])
    joined = np.concatenate([outs[1].value, outs[2].value], axis=0)
    lay = cases[0].data_format
    return _pair_judge("batch-split", case, cases, _to_ndhwc(outs[0].value, lay),
                       _to_ndhwc(joined, lay), truth, lay, target, strict,
                       "'max |r0 - concat(r1, r2)| =', np.nanmax(np.abs(r0 - np.concatenate("
                       "[r1, r2], axis=0)), initial=0.0)", "T(concat) = concat(T)")


# ----------------------------------------------------------------------------- linearity
def _lin_variants(case: Case, which: str) -> list[Case]:
    spec = case.value if which == "value" else case.filter
    x1 = spec.materialize()
    x2 = _other(spec).materialize()
    with np.errstate(all="ignore"):
        x3 = (LIN_A * x1.astype(np.float64) + LIN_B * x2.astype(np.float64)).astype(x1.dtype)
    key = "value" if which == "value" else "filt"
    c2 = _inline(case, **{key: x2})
    c3 = _inline(case, **{key: x3})
    return [case, c2, c3]


def linearity_value_variants(case: Case) -> list[Case]:
    """[T(x1, w), T(x2, w), T(a·x1 + b·x2, w)] with the combination rounded to the dtype."""
    return _lin_variants(case, "value")


def linearity_filter_variants(case: Case) -> list[Case]:
    return _lin_variants(case, "filter")


def _lin_judge(which: str, case: Case, cases: list[Case], outs: list, target: str,
               strict: bool) -> Verdict:
    identity = f"linearity-{which}"
    stop = _gate(identity, case, cases, outs, target)
    if stop is not None:
        return stop
    truths = [truth_of(c) for c in cases]
    calls = [normalized(c) for c in cases]
    if not all(_judgeable(t, strict) for t in truths) or not _values_fit(truths[0], outs):
        return Verdict(identity)
    if not _finite(*(c.value for c in calls), *(c.filter for c in calls),
                   *(o.value for o in outs)):
        return Verdict(identity)
    dt = case.dtype
    ref = _ref_type(dt)
    u_r = unit_roundoff_of(ref)
    y1, y2, y3 = (o.value.astype(ref) for o in outs)
    b1, b2, b3 = (_bound_exact(t, strict) for t in truths)
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
        v.findings.append(_finding(
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


# ----------------------------------------------------------------------------- determinism, 2^k (two-phase)
def determinism_variants(case: Case) -> list[Case]:
    return [case, case]


def determinism_judge(case, cases, outs, target, strict=False) -> Verdict:
    stop = _gate("determinism", case, cases, outs, target)
    if stop is not None:
        return stop
    same = _same(outs[0].value, outs[1].value)
    v = Verdict("determinism", judged=True, bit_identical=same)
    if not same:
        v.findings.append(_finding("determinism", case, target, cases,
                                   "'identical:', np.array_equal(r0, r1, equal_nan=True)",
                                   "the same bits on a repeated call", "results differ"))
    return v


def power_of_two_variants(case: Case) -> list[Case]:
    s = scaled(case)
    return [] if s is None else [case, s]


def power_of_two_judge(case, cases, outs, target, strict=False) -> Verdict:
    stop = _gate("power-of-two", case, cases, outs, target)
    if stop is not None:
        return stop
    base, o = outs
    if base.value.size == 0 or base.value.shape != o.value.shape:
        return Verdict("power-of-two")
    dt = case.dtype
    truth = truth_of(case)
    v, w = (np.abs(a.materialize().astype(np.float64)) for a in (case.value, case.filter))
    vmin, wmin = (float(np.min(x[x > 0], initial=np.inf)) for x in (v, w))
    g = gamma(max(truth.n_terms, 1), unit_roundoff_of(_ref_type(dt)))
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
    ok = _same(o.value.astype(np.float64), base.value.astype(np.float64) * 2.0**SCALE_EXP)
    verdict = Verdict("power-of-two", judged=True, bit_identical=ok)
    if not ok:
        verdict.findings.append(_finding(
            "power-of-two", case, target, cases,
            f"'exact:', np.array_equal(r1, r0 * 2.0**{SCALE_EXP}, equal_nan=True)",
            f"result of value*2^{SCALE_EXP} == result*2^{SCALE_EXP}", "not exactly scaled"))
    return verdict


# ----------------------------------------------------------------------------- registry
CHECKS = {
    "determinism": (determinism_variants, determinism_judge),
    "power-of-two": (power_of_two_variants, power_of_two_judge),
    "adjoint": (adjoint_variants, adjoint_judge),
    "layout": (layout_variants, layout_judge),
    "linearity-value": (linearity_value_variants, linearity_value_judge),
    "linearity-filter": (linearity_filter_variants, linearity_filter_judge),
    "batch-split": (batch_variants, batch_judge),
}


def check(identity: str, case: Case, run, target: str, strict: bool | None = None) -> Verdict:
    """Run the variants of ``identity`` through ``run`` and judge them. ``strict`` (default:
    ``target == "impl"``) judges with the bound that allows no flush-to-zero."""
    variants, judge = CHECKS[identity]
    cases = variants(case)
    if not cases:
        return Verdict(identity)
    outs = run(cases)
    return _name_kernels(judge(case, cases, outs, target, target == "impl" if strict is None
                               else strict), outs)


def _name_kernels(verdict: Verdict, outs: list) -> Verdict:
    """Findings that compare several calls name every kernel that ran them."""
    kernels = kernels_of(*outs)
    verdict.findings[:] = [f if f.kernels else replace(f, kernels=kernels) for f in verdict.findings]
    return verdict


@dataclass
class Plan:
    """The variants of several identities as one deduplicated batch (per target: one call)."""
    case: Case
    batch: list[Case]
    index: dict[str, list[int]]   # identity -> positions in ``batch`` of its variants

    def judge(self, outs: list, target: str, strict: bool | None = None) -> list[Verdict]:
        strict = target == "impl" if strict is None else strict
        return [_name_kernels(CHECKS[name][1](self.case, [self.batch[i] for i in idx],
                                              [outs[i] for i in idx], target, strict),
                              [outs[i] for i in idx]) for name, idx in self.index.items()]


def plan(case: Case, identities=tuple(CHECKS)) -> Plan:
    """Variants of every identity, equal Cases shared between identities (not within one:
    determinism's repeated call stays two calls)."""
    batch: list[Case] = []
    where: dict[str, list[int]] = {}
    index: dict[str, list[int]] = {}
    for name in identities:
        seen: dict[str, int] = {}
        idx = []
        for c in CHECKS[name][0](case):
            cid = c.case_id
            k = seen.get(cid, 0)
            seen[cid] = k + 1
            slots = where.setdefault(cid, [])
            if k == len(slots):
                slots.append(len(batch))
                batch.append(c)
            idx.append(slots[k])
        if idx:
            index[name] = idx
    return Plan(case, batch, index)


def run_checks(case: Case, run, target: str, identities=tuple(CHECKS),
               strict: bool | None = None) -> list[Verdict]:
    """Every identity on ``target`` with one ``run`` call."""
    p = plan(case, identities)
    return p.judge(run(p.batch) if p.batch else [], target, strict)


# ----------------------------------------------------------------------------- strategy
def undilated(case: Case) -> Case:
    """The Case with every dilation 1 (in the same argument form) and each output size moved to
    the nearest one the contract accepts without dilation (``fuzz.strategies.output_range``)."""
    from fuzz.strategies import output_range

    first = 1 if case.data_format == "NDHWC" else 2
    strides = spatial_triple(case.strides, case.data_format)
    out = list(case.output_shape)
    for a in range(3):
        lo, hi = output_range(case.value.shape[first + a], case.filter.shape[a], strides[a], 1,
                              case.padding)
        out[first + a] = min(max(out[first + a], lo), hi)
    dil = case.dilations
    dil = 1 if isinstance(dil, int) else ([1] * len(dil) if isinstance(dil, list) else dil)
    return case.with_(dilations=dil, output_shape=out)


def metamorphic_cases():
    """Valid NDHWC Cases for the identities (the layout identity derives NCDHW), without zero
    sizes. Three of four have dilation 1 (``undilated``), and ``value=`` replaces ``input=``, so
    that the TF CPU paths (which reject dilation > 1 and v1's ``input=`` alone — both in the
    ledger) compute most examples instead of rejecting every variant."""
    from hypothesis import strategies as st

    from fuzz.strategies import valid_cases

    @st.composite
    def cases(draw):
        c = draw(valid_cases(zero_dims=False, layouts=("NDHWC",)))
        if draw(st.integers(0, 3)):
            c = undilated(c)
        return c.with_(value_arg="value") if c.value_arg == "input" else c
    return cases()
