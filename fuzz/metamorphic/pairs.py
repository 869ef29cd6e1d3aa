"""Identities between two results for the same truth, judged to ``|lhs − rhs| ≤ 2·B``.

- ``layout``: the NCDHW result transposed equals the NDHWC result. Both are judged against the same
  ``y_ref``, so ``|T_NDHWC − T_NCDHWᵀ| ≤ 2·B`` — bit identity is not required: TF may run a
  different kernel per layout (XLA transposes to its own layout; reduction orders can differ).
  Whether the results are bit-identical is *measured* (``Verdict.bit_identical``).
- ``batch-split``: ``T(concat(x1, x2)) = concat(T(x1), T(x2))`` along N; both sides are judged
  against the same ``y_ref`` (batch elements are independent), so ``|·| ≤ 2·B``. Bit identity is
  measured, not required (a kernel may tile by batch).
"""
from __future__ import annotations

import numpy as np

from conv3dt.fuzz.truth import Truth, truth_of
from conv3dt.fuzz.metamorphic.common import (Verdict, accept_reject_gate, bound_of, identity_finding,
                                    inlined, other_array, same_bits)
from conv3dt.oracle.case import Case


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
    return inlined(case, np.ascontiguousarray(v), output_shape=os_, data_format=layout,
                   strides=_seq_for_layout(case.strides, case.strides_form, layout),
                   dilations=_seq_for_layout(case.dilations, case.dilations_form, layout))


def _to_ndhwc(a: np.ndarray, layout: str) -> np.ndarray:
    return a.transpose(0, 2, 3, 4, 1) if layout == "NCDHW" else a



def _pair_judge(identity: str, case: Case, cases: list[Case], lhs: np.ndarray, rhs: np.ndarray,
                truth: Truth, layout: str, target: str, strict: bool, relation: str,
                what: str) -> Verdict:
    """|lhs − rhs| ≤ 2·B elementwise: both sides are results for the same y_ref. ``lhs`` and
    ``rhs`` are NDHWC; ``truth`` is in ``layout``."""
    bound = _to_ndhwc(bound_of(truth, strict), layout)
    over = _to_ndhwc(truth.overflow, layout)
    a, b = lhs.astype(np.float64), rhs.astype(np.float64)
    v = Verdict(identity, bit_identical=same_bits(a, b))
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
        v.findings.append(identity_finding(
            identity, case, target, cases, relation,
            f"{what}: |lhs - rhs| <= 2*bound; at NDHWC {list(idx)}: bound={bound[idx]:.3g}",
            f"{int(bad.sum())} of {bad.size} elements differ beyond 2*bound; at {list(idx)}: "
            # float(): repr of a NumPy scalar is np.float64(nan) under NumPy 2 but nan under
            # NumPy 1 (TF < 2.18 needs it); the text must not depend on it (ledger regexes).
            f"{float(a[idx])!r} vs {float(b[idx])!r}", float(np.nanmax(np.where(bad, ratio, 0.0))),
            index=list(idx), violations=int(bad.sum())))
    return v



# ----------------------------------------------------------------------------- layout
def layout_variants(case: Case) -> list[Case]:
    """[the NDHWC form, the NCDHW form] of the Case (one of them is the Case itself)."""
    return [with_layout(case, "NDHWC"), with_layout(case, "NCDHW")]



def layout_judge(case: Case, cases: list[Case], outs: list, target: str,
                 strict: bool = False) -> Verdict:
    stop = accept_reject_gate("layout", case, cases, outs, target)
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
        v = np.concatenate([v, other_array(case.value).materialize()], axis=0)
        full = inlined(case, v, output_shape=[2, *case.output_shape[1:]])
    k = v.shape[0] // 2
    parts = [inlined(full, np.ascontiguousarray(p),
                     output_shape=[p.shape[0], *full.output_shape[1:]])
             for p in (v[:k], v[k:])]
    return [full, *parts]


def batch_judge(case: Case, cases: list[Case], outs: list, target: str,
                strict: bool = False) -> Verdict:
    stop = accept_reject_gate("batch-split", case, cases, outs, target)
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


