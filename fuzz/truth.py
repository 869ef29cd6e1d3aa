"""The truth for a valid Case: reference result, magnitude and the per-element error bound.

For the dtype-rounded inputs ``v`` (value, NDHWC) and ``w`` (filter) the reference is
``y_ref = v ⊛ w`` summed by ``impl.kernel.transposed_conv_ndhwc`` in float64 (u_ref = 2^-53) for
float16/bfloat16/float32 inputs — whose products are then exact, and whose sums cannot overflow —
and in ``np.longdouble`` for float64 inputs of at most ``LONGDOUBLE_MAX_WORK`` products.
Larger float64 Cases (the realistic tier's) are summed in float64 too: long double has no BLAS
(~0.5 s for 10⁸ products here, against ~10 ms), and the bound stays rigorous because it carries
the reference's own error ``e_ref = γ_n(u_ref)·A`` (``fuzz.bound``); with ``u_ref`` equal to the
target's ``u`` that term equals the target's own accumulation allowance, so such a bound is about
twice as wide as with long double. The magnitude is ``A = |v|⊛|w|`` over the *finite*
inputs (non-finite entries set to 0), and the bound is ``fuzz.bound.error_bound`` with
``n = Cin · ΠK``. Nothing below depends on the map being the forward: it holds for any bilinear
map whose elements are sums of at most ``n`` products (``bilinear_truth``), and a gradient Case's
truth is the same construction for its gradient (``gradient_truth``).

Flush-to-zero allowance (``Truth.bound``; ``Truth.bound_strict`` omits it, for paths that
must not flush, such as ``impl``), per product:

- DAZ on inputs replaces a subnormal input by 0, losing exactly the products it takes part in:
  ``F_daz = (|v|·[v subnormal]) ⊛ |w| + |v| ⊛ (|w|·[w subnormal])`` (computed only when a
  subnormal input exists);
- FTZ on results flushes a subnormal product or partial sum; each of the ≤ n products and
  ≤ n additions loses less than ``t`` (the dtype's smallest normal) and at most the element's
  own magnitude ``A``: ``F_ftz = 2n · min(t, A)``.

For float16/bfloat16 ``bound_accum32`` is the same bound with float32 accumulation
(``fuzz.bound``: the ``accumulation-precision`` finding). ``F = F_daz + F_ftz + (n + 1)·η`` (gradual underflow, ``fuzz.bound.underflow_term``, always). Elements where ``A·(1 + γ_n(u)) ≥`` the dtype's largest finite value may
overflow in an intermediate of a dtype-precision path: there a non-finite result is allowed
(``overflow`` mask), a finite one must still meet the bound. Elements that a non-finite input
reaches (``reached`` mask, found exactly by the transposed convolution of the non-finite
indicators with all-ones partners) must be non-finite: their sums contain a product with an
infinite or nan factor (``±inf·w`` is ±inf or, for ``w = 0``, nan), and a sum holding an inf or a
nan is never finite. The reference sums only the finite inputs, so it does not say *which*
non-finite value (nan, +inf or -inf): that is not judged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from conv3dt.fuzz.bound import (LARGEST_FINITE, SMALLEST_NORMAL, UNIT_ROUNDOFF, WIDE_ACCUMULATION,
                        error_bound, gamma, underflow_term, unit_roundoff_of)
from conv3dt.oracle.case import Case


@dataclass(frozen=True)
class Truth:
    dtype: str
    shape: tuple[int, ...]
    y_ref: np.ndarray        # float64 view of the reference (layout order)
    magnitude: np.ndarray    # A over finite inputs
    bound: np.ndarray        # per-element bound on |y − y_ref|, flush-to-zero allowed
    bound_strict: np.ndarray  # the same without the flush-to-zero allowance (gradual underflow)
    overflow: np.ndarray     # bool: intermediate overflow possible → non-finite allowed
    reached: np.ndarray | None  # bool: a non-finite input reaches it → must be non-finite
    n_terms: int
    exact_value: np.ndarray  # y_ref rounded once to the dtype (the exact answer for exact Cases)
    bound_accum32: np.ndarray | None = None  # float16/bfloat16: the narrower bound of float32 accumulation


LONGDOUBLE_MAX_WORK = 2_000_000   # products of a float64 Case summed in long double (≈ 10 ms)


def products(call) -> int:
    """Products the transposed convolution forms: N·ΠI·Cin·Cout·ΠK (an ``impl.NormalizedCall``)."""
    return int(math.prod(call.value.shape) * math.prod(call.filter.shape[:4]))


def _ndhwc(a: np.ndarray, layout: str) -> np.ndarray:
    return a.transpose(0, 2, 3, 4, 1) if layout == "NCDHW" else a


def _layout(a: np.ndarray, layout: str) -> np.ndarray:
    return a.transpose(0, 4, 1, 2, 3) if layout == "NCDHW" else a


def normalized(case: Case, arrays=None):
    """``impl.normalize_call`` on the Case's arguments (raises for invalid Cases)."""
    from conv3dt.impl import normalize_call

    args, kwargs = case.call_args(tensor=lambda values, dt: np.asarray(values, dtype=dt),
                                  arrays=arrays)
    kwargs.pop("name", None)
    return normalize_call(*args, **kwargs)


def truth_of(case: Case, arrays=None) -> Truth:
    """Reference, magnitude and bound for a valid Case (see the module docstring); for a
    gradient Case, of the gradient it asks for (``gradient_truth``)."""
    from conv3dt.impl.kernel import transposed_conv_ndhwc

    if case.is_gradient:
        return gradient_truth(case, arrays)
    call = normalized(case, arrays)
    ref = _reference_dtype(case.dtype, call)
    spatial = tuple(call.output_spatial)
    conv = lambda a, b: transposed_conv_ndhwc(a, b, spatial, call.strides, call.dilations,  # noqa: E731
                                              call.pad_before, ref)
    n = int(call.filter.shape[4] * math.prod(call.filter.shape[:3]))
    return bilinear_truth(case.dtype, conv, _ndhwc(call.value, call.data_format).astype(ref),
                          call.filter.astype(ref), n, ref,
                          lambda a: _layout(a, call.data_format), call.dtype)


def _reference_dtype(dtype: str, call):
    return np.longdouble if dtype == "float64" and products(call) <= LONGDOUBLE_MAX_WORK else np.float64


def gradient_truth(case: Case, arrays=None) -> Truth:
    """The truth of a gradient Case: the same construction as the forward's with the bilinear
    map of the gradient it asks for (``impl.gradients.transposed_conv_grads_ndhwc``):

    - ``grad-value``: ``dvalue = B(g, w)``, a conv3d of ``g``; ``n = Cout · ΠK`` products per
      element; result in value's layout;
    - ``grad-filter``: ``dfilter = B(v, g)``; ``n = N · ΠI`` products per element (batch × input
      positions: the long sums); result ``[KD, KH, KW, Cout, Cin]``.

    Magnitudes, flush-to-zero terms, the reach of non-finite inputs and the overflow mask are
    those of ``bilinear_truth``, with ``g`` in the role of the other operand."""
    from conv3dt.impl.gradients import check_grad_output, transposed_conv_grads_ndhwc

    call = normalized(case.forward(), arrays)
    g = check_grad_output(case.grad_array(), call)
    ref = _reference_dtype(case.dtype, call)
    layout = call.data_format
    v, w, g = _ndhwc(call.value, layout).astype(ref), call.filter.astype(ref), _ndhwc(g, layout).astype(ref)
    grads = lambda v_, w_, g_, want: transposed_conv_grads_ndhwc(  # noqa: E731
        v_, w_, g_, call.strides, call.dilations, call.pad_before, ref, want=want)
    if case.grad_wrt == "value":
        conv = lambda a, b: grads(np.zeros(v.shape, ref), b, a, "value")[0]  # noqa: E731
        n = int(w.shape[3] * math.prod(w.shape[:3]))
        return bilinear_truth(case.dtype, conv, g, w, n, ref, lambda a: _layout(a, layout), call.dtype)
    conv = lambda a, b: grads(a, np.zeros(w.shape, ref), b, "filter")[1]  # noqa: E731
    n = int(v.shape[0] * math.prod(v.shape[1:4]))
    return bilinear_truth(case.dtype, conv, v, g, n, ref, lambda a: a, call.dtype)


def bilinear_truth(dtype: str, conv, a: np.ndarray, b: np.ndarray, n: int, ref, relayout,
                   result_dtype) -> Truth:
    """The Truth of ``y = conv(a, b)``, a bilinear map whose every element is a sum of at most
    ``n`` products ``a_i · b_j`` (the module docstring's construction), for operands already
    in the reference precision ``ref`` and the working layout; ``relayout`` turns a result of
    the working layout into the call's."""
    u_ref = unit_roundoff_of(ref)
    with np.errstate(all="ignore"):
        fin_a, fin_b = np.isfinite(a), np.isfinite(b)
        y = conv(np.where(fin_a, a, 0), np.where(fin_b, b, 0))
        # Elements a non-finite input reaches must be non-finite (marked free below): the
        # reference sums the finite inputs only, so it cannot say nan or ±inf there.
        free = None
        if not (fin_a.all() and fin_b.all()):
            free = (conv((~fin_a).astype(ref), np.ones_like(b)) +
                    conv(np.ones_like(a), (~fin_b).astype(ref))) > 0
        abs_a = np.where(fin_a, np.abs(a), 0)
        abs_b = np.where(fin_b, np.abs(b), 0)
        mag = conv(abs_a, abs_b)
        ftz_term: np.ndarray | float = underflow_term(dtype, n)
        strict_term = ftz_term
        if mag.size:
            t = SMALLEST_NORMAL[dtype]
            ftz_term = ftz_term + 2.0 * n * np.minimum(t, mag.astype(np.float64))
            sub_a, sub_b = (abs_a > 0) & (abs_a < t), (abs_b > 0) & (abs_b < t)
            if sub_a.any() or sub_b.any():
                ftz_term = ftz_term + (conv(np.where(sub_a, abs_a, 0), abs_b)
                                       + conv(abs_a, np.where(sub_b, abs_b, 0))).astype(np.float64)
        y64 = relayout(y)
        mag64 = relayout(mag).astype(np.float64)
        ftz_l = relayout(ftz_term) if isinstance(ftz_term, np.ndarray) else ftz_term
        bound = error_bound(dtype, y64.astype(np.float64), mag64, n, u_ref, ftz_l)
        strict = error_bound(dtype, y64.astype(np.float64), mag64, n, u_ref, strict_term)
        wide = (error_bound(dtype, y64.astype(np.float64), mag64, n, u_ref, ftz_l,
                            WIDE_ACCUMULATION[dtype]) if dtype in WIDE_ACCUMULATION else None)
        overflow = mag64 * (1.0 + gamma(max(n, 1), UNIT_ROUNDOFF[dtype])) >= LARGEST_FINITE[dtype]
        free_l = None
        if free is not None:
            free_l = relayout(free)
            overflow = overflow | free_l
            bound = np.where(free_l, np.inf, bound)
            strict = np.where(free_l, np.inf, strict)
            wide = None if wide is None else np.where(free_l, np.inf, wide)
        exact_value = y64.astype(result_dtype)
        # A long-double sum beyond float64's range becomes ±inf here; ``overflow`` covers it.
        return Truth(dtype, tuple(y64.shape), y64.astype(np.float64), mag64,
                     np.asarray(bound, np.float64), np.asarray(strict, np.float64), overflow, free_l, n,
                     exact_value, None if wide is None else np.asarray(wide, np.float64))
