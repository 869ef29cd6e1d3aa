"""Gradient Cases: the op's backward pass as Cases the gradient targets run.

A forward Case ``y = conv3d_transpose(value, filter, ...)`` gives two gradient Cases
(``oracle.case.Case.gradient_of``), ``∂⟨g, y⟩/∂value`` and ``∂⟨g, y⟩/∂filter``, sharing one
upstream gradient ``g`` (``grad_output``: y's shape, layout and dtype). ``g``'s recipe is derived
from the forward Case's own draws (``grad_output_for``), so a gradient Case shrinks with the
forward Case it comes from and every strategy here is a ``map`` of a forward strategy:

- bulk-float Cases (``gradient_batches``): ``g`` is a bulk-float recipe of another value kind
  (normal, uniform, or special values mixed in) and seed than the value's;
- exact Cases (``exact_gradient_batches``): ``g`` holds integers in ``[-m, m]`` with ``m`` the
  largest of 3, 2, 1 such that both gradients' partial sums are integers of at most ``2^p``
  (``p`` significand bits): ``n_v · m · max|filter| ≤ 2^p`` for dvalue (``n_v = Cout · ΠK``
  products per element) and ``n_f · max|value| · m ≤ 2^p`` for dfilter (``n_f = N · ΠI``). Where
  no ``m ≥ 1`` fits, the Case is judged by the bound instead (``exact=False``);
- invalid Cases (``invalid_gradient_cases``): the forward's near-misses with a small ``g``. Every
  forward rule applies to the backward unchanged (TF and impl check the forward call first). And
  the backward's own rule, a valid call with a ``g`` of the wrong shape or dtype
  (``fuzz.grad_invalid``).

Coverage (``gradient_cells``): per gradient (``grad-value`` / ``grad-filter``), the dtype,
layout, padding, dilation > 1, stride > kernel and exact cells of its forward Case, prefixed by
the gradient, and ``grad-value×SAME-negative-pad`` (a stride exceeding the dilated kernel by 2 or
more under SAME: where TF's Eigen Conv3D mis-pads, docs/gradients.md). Required
(``GRADIENT_CELLS``) only when a gradient target runs.
"""
from __future__ import annotations

import math

from hypothesis import strategies as st

from conv3dt.fuzz import strategies as S
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case, spatial_dims, spatial_triple

GRADIENTS = ("value", "filter")
OPERATIONS = tuple(f"grad-{w}" for w in GRADIENTS)
#: the cells every gradient run must hit (``fuzz.coverage``): see the module docstring
GRADIENT_CELLS = tuple(f"{op}×{cell}" for op in OPERATIONS for cell in (
    [f"dtype={d}" for d in S.DTYPES] + [f"layout={l}" for l in S.LAYOUTS]
    + [f"padding={p}" for p in S.PADDINGS] + ["dilation>1", "stride>kernel", "exact"])) \
    + ("grad-value×SAME-negative-pad",)
GRAD_BATCH = 4                 # forward Cases per example: 2 × 4 gradient Cases of 2 structures
_SMALL_G = [1, 1, 1, 1, 1]     # g's shape where an invalid Case has no usable output_shape


def _layout_shape(case: Case) -> list[int] | None:
    shape = case.output_shape
    if isinstance(shape, list) and len(shape) == 5 and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        return shape
    return None


def _max_abs(spec: ArraySpec | None) -> int | None:
    """The largest magnitude of a small-integer recipe (``integers`` / ``ones``), else None."""
    if spec is None:
        return None
    if spec.recipe == "ones":
        return 1
    if spec.recipe == "integers":
        params = dict(spec.params)
        return max(abs(int(params["low"])), abs(int(params["high"])))
    return None


def exact_g_limit(case: Case) -> int | None:
    """The largest ``m`` ∈ {3, 2, 1} keeping both gradients' partial sums exact (module
    docstring), or None when the Case's operands are not small integers or no ``m`` fits."""
    mv, mw = _max_abs(case.value), _max_abs(case.filter)
    if mv is None or mw is None:
        return None
    vs, fs = case.value.shape, case.filter.shape
    n_value = fs[3] * math.prod(fs[:3])
    n_filter = vs[0] * math.prod(spatial_dims(vs, case.data_format))
    cap = 2 ** S.MANTISSA_BITS[case.dtype]
    for m in (3, 2, 1):
        if max(n_value, 1) * m * mw <= cap and max(n_filter, 1) * mv * m <= cap:
            return m
    return None


def grad_output_for(case: Case) -> tuple[ArraySpec, bool]:
    """The upstream gradient ``g`` of a forward Case (derived from its draws; module
    docstring) and whether its gradient Cases stay exact."""
    shape = tuple(_layout_shape(case) or _SMALL_G)
    # an invalid Case's dtype may be none of the float dtypes (int32, a missing value): g is then
    # float32, and the forward's own rule is what is judged
    dtype = case.dtype if case.dtype in S.DTYPES else "float32"
    seed = ((case.value.seed if case.value is not None and case.value.seed is not None else 0)
            + 2) % 2**32
    if case.exact:
        m = exact_g_limit(case)
        if m is not None:
            return ArraySpec(dtype, shape, "integers", seed, (("low", -m), ("high", m))), True
    kind = seed % S.VALUE_KINDS
    return S.spec_from(dtype, shape, kind, seed), False


def gradient_cases(cases: list[Case]) -> list[Case]:
    """Both gradient Cases of each forward Case, the value-gradients first (one call structure
    per gradient: tf.function and XLA trace each once per batch)."""
    pairs = [(case, *grad_output_for(case)) for case in cases]
    return [case.gradient_of(wrt, g).with_(exact=exact)
            for wrt in GRADIENTS for case, g, exact in pairs]


def gradient_batches(size: int = GRAD_BATCH, **domain):
    """``2 × size`` bulk-float gradient Cases of one forward call structure."""
    return S.valid_batches(size, **domain).map(gradient_cases)


def exact_gradient_batches(size: int = GRAD_BATCH, **domain):
    """``2 × size`` small-integer gradient Cases (exact where ``exact_g_limit`` allows)."""
    return S.exact_batches(size, **domain).map(gradient_cases)


def invalid_gradient_cases(**domain):
    """An invalid gradient Case: a forward near-miss (``fuzz.invalid``) asked for one of its
    gradients, or (one draw in three) a valid call whose ``g`` breaks the backward's own rule
    (``fuzz.grad_invalid``)."""
    from conv3dt.fuzz.grad_invalid import grad_output_cases
    from conv3dt.fuzz.invalid import invalid_cases

    kwargs = {k: v for k, v in domain.items() if k in ("dtypes", "layouts", "paddings")}
    forward = st.tuples(invalid_cases(**kwargs), st.sampled_from(GRADIENTS)).map(
        lambda t: t[0].gradient_of(t[1], grad_output_for(t[0])[0]))
    return st.one_of(forward, forward, grad_output_cases(**kwargs))


def gradient_cells(case: Case, forward_cells: list[str]) -> list[str]:
    """The ``GRADIENT_CELLS`` a gradient Case hits, from its forward Case's cells."""
    op = case.operation
    kept = [c for c in forward_cells if c.startswith(("dtype=", "layout=", "padding="))
            or c == "stride>kernel"]
    if any(c.startswith("dilation=") and c != "dilation=1" for c in forward_cells):
        kept.append("dilation>1")
    if case.exact:
        kept.append("exact")
    if op == "grad-value" and negative_same_pad(case):
        kept.append("SAME-negative-pad")
    return [op] + [f"{op}×{c}" for c in kept]


def negative_same_pad(case: Case) -> bool:
    """Whether a SAME Case's total pad ``(I − 1)·s + eff − O`` is −2 or less on some axis (the
    region where Eigen's Conv3D mis-pads dvalue, docs/gradients.md)."""
    shape = _layout_shape(case)
    if case.padding != "SAME" or shape is None or case.value is None or case.filter is None:
        return False
    ins, outs = spatial_dims(case.value.shape, case.data_format), spatial_dims(shape, case.data_format)
    s, d = spatial_triple(case.strides, case.data_format), spatial_triple(case.dilations, case.data_format)
    if len(s) != 3 or len(d) != 3:
        return False
    return any((i - 1) * st_ + (k - 1) * dl + 1 - o <= -2
               for i, o, k, st_, dl in zip(ins, outs, case.filter.shape[:3], s, d) if i > 0)
