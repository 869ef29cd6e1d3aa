"""Both gradients of ``conv3d_transpose``: the NumPy reference for its backward pass.

For ``y = conv3d_transpose(value, filter, output_shape, strides, padding, data_format, dilations)``
and an upstream gradient ``g`` of ``y``'s shape, ``conv3d_transpose_grads`` returns
``(dvalue, dfilter) = (∂⟨g, y⟩/∂value, ∂⟨g, y⟩/∂filter)``. Per spatial axis (stride ``s``,
dilation ``d``, leading pad ``P`` = the forward's ``pad_before``; ``i``, ``k``, ``o`` are triples
and the conditions hold on every axis), the forward is
``y[n, o, co] = Σ_{i, k, ci : o = i·s + k·d − P} value[n, i, ci] · filter[k, co, ci]``, so::

    dvalue[n, i, ci]   = Σ_{k, co}  g[n, i·s + k·d − P, co] · filter[k, co, ci]    (a conv3d of g)
    dfilter[k, co, ci] = Σ_{n, i}   value[n, i, ci] · g[n, i·s + k·d − P, co]

where only terms with ``0 ≤ i·s + k·d − P < O`` on every axis exist (the others fall outside the
output and are dropped, not multiplied by zero). ``dvalue`` is the forward ``conv3d`` of ``g`` with
the same filter array, strides, dilations and padding (``impl.forward``'s convention: the
transposed op's ``[K, Cout, Cin]`` filter is conv3d's ``[K, Cin, Cout]``); ``dfilter`` is what TF
calls ``Conv3DBackpropFilterV2`` of ``value`` and ``g``.

Products per element (what an error bound needs): ``Cout · KD·KH·KW`` for ``dvalue``,
``N · ID·IH·IW`` (batch × input positions) for ``dfilter``. With unit roundoff ``u`` of the dtype,
``u_acc`` of the accumulation and ``A`` the same sum over absolute values, any summation order gives
``|ĝ − g*| ≤ u·|g*| + (1 + u)·γ_n(u_acc)·A`` (``γ_n = n·u/(1 − n·u)``; products of two half
values are exact in float32) plus gradual-underflow terms. ``dfilter``'s ``n`` grows with the batch
and the volume, which is what makes it the numerically delicate one: in half precision only the
float32 accumulation keeps ``γ_n`` finite at realistic sizes.

Policy (the forward's, ``impl/README.md``): the same argument forms, conventions and validation
(``impl.args.normalize_call``; ``grad_output`` must have ``output_shape`` in ``data_format`` order
and, if it carries a dtype, the call's dtype); float16/bfloat16/float32 accumulate in float32,
float64 in float64, each result is rounded once to the input dtype. ``dvalue`` is in ``value``'s
layout, ``dfilter`` is ``[KD, KH, KW, Cout, Cin]``. NCDHW is computed as NDHWC on transposed views.

Method (the forward kernel's tap-wise machinery, ``impl.kernel.tap_ranges``): for every tap ``k``
that reaches the output, the inputs it connects form one box ``i ∈ [lo, hi)`` per axis and their
targets ``o = i·s + k·d − P`` a strided box of the output; both are basic-slicing (strided) views,
no padding and no index arrays. Then ``dvalue[:, box_i] += g[:, box_o] @ filter[k]`` and
``dfilter[k] = g[:, box_o]ᵀ @ value[:, box_i]``: one GEMM per tap and gradient, a Python loop over
taps only. Only real products are formed, so a non-finite entry reaches exactly the elements the
definition says (a zero-padded im2col would turn ``0·inf`` into nan elsewhere), and strides or
dilations of 2⁶³ cost nothing. Working memory beyond the inputs and the two results (all in the
accumulation dtype): one box of ``g`` plus one box of ``dvalue`` (dvalue pass), or one box of
``value`` plus one of ``g`` (dfilter pass) — at most twice the largest operand.
Floating-point exceptions are reported as NumPy's arithmetic reports them (``np.errstate``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from conv3dt.impl.args import SUPPORTED_DTYPES, NormalizedCall, _fail, normalize_call
from conv3dt.impl.kernel import tap_ranges
from conv3dt.impl.transpose import accum_dtype_for

__all__ = ["conv3d_transpose_grads", "transposed_conv_grads_ndhwc", "check_grad_output"]

_PLAIN = (list, tuple, int, float)


def check_grad_output(grad_output: Any, call: NormalizedCall) -> np.ndarray:
    """``grad_output`` as an array of the call's dtype and output shape, or one clear error.

    An array-like that carries a dtype must carry the call's; plain Python data (lists, tuples,
    scalars of ints/floats) takes it, as the forward's rule for an untyped operand.
    """
    if grad_output is None:
        raise _fail(ValueError, "grad_output", None,
                    f"an array of the output's shape {call.output_shape} ({call.data_format})")
    if isinstance(grad_output, np.ndarray) and grad_output.dtype == call.dtype:
        g = grad_output
    elif isinstance(grad_output, _PLAIN):
        g = np.asarray(grad_output)
        if g.dtype.kind not in ("i", "f"):
            raise _fail(TypeError, "grad_output element type", g.dtype.name, "real numbers")
        g = g.astype(call.dtype)
    else:
        g = np.asarray(grad_output)
        if g.dtype != call.dtype:
            supported = g.dtype in SUPPORTED_DTYPES
            raise _fail(TypeError, "grad_output.dtype", g.dtype.name,
                        f"the dtype of value and filter ({call.dtype.name})"
                        + ("; cast one explicitly" if supported else ""))
    if g.shape != call.output_shape:
        raise _fail(ValueError, "grad_output.shape", g.shape,
                    f"the output shape {call.output_shape} ({call.data_format})")
    return g


def transposed_conv_grads_ndhwc(value: np.ndarray, filter: np.ndarray, grad_output: np.ndarray,
                                strides: tuple, dilations: tuple, pad_before: tuple,
                                accum_dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(dvalue, dfilter)`` of the transposed conv, NDHWC, accumulated and returned in
    ``accum_dtype`` (float32, float64 or numpy.longdouble; no validation, no final rounding).

    ``value``: ``(N, ID, IH, IW, Cin)``; ``filter``: ``(KD, KH, KW, Cout, Cin)``;
    ``grad_output``: ``(N, OD, OH, OW, Cout)``; ``strides``, ``dilations``, ``pad_before``:
    3-tuples of ints. Callers validate (``normalize_call``, ``check_grad_output``).
    """
    accum = np.dtype(accum_dtype)
    value = np.asarray(value, accum)
    filter = np.asarray(filter, accum)
    g = np.asarray(grad_output, accum)
    cin, cout = value.shape[4], filter.shape[3]
    dvalue = np.zeros(value.shape, accum)
    dfilter = np.zeros(filter.shape, accum)
    plan = tap_ranges(tuple(value.shape[1:4]), tuple(g.shape[1:4]), tuple(filter.shape[:3]),
                      tuple(strides), tuple(dilations), tuple(pad_before))
    # Each tap's box: rows = N · box volume, the same for its value box and its g box.
    boxes = [(tap, in_index, out_index, math.prod(value[in_index].shape[:4]))
             for tap, in_index, out_index in plan]
    boxes = [box for box in boxes if box[3]]
    if not boxes or cin == 0 or cout == 0:
        return dvalue, dfilter
    # dvalue: one scratch for every tap's product, so no two products are alive at once.
    scratch = np.empty(max(box[3] for box in boxes) * cin, accum)
    for tap, in_index, out_index, rows in boxes:
        g_box = g[out_index]
        product = scratch[:rows * cin].reshape(rows, cin)
        np.matmul(g_box.reshape(rows, cout), filter[tap], out=product)
        dvalue[in_index] += product.reshape(*g_box.shape[:4], cin)
    del scratch
    # dfilter: (Cout, rows) @ (rows, Cin) per tap; the GEMM's inner length is N · box volume.
    for tap, in_index, out_index, rows in boxes:
        np.matmul(g[out_index].reshape(rows, cout).T, value[in_index].reshape(rows, cin),
                  out=dfilter[tap])
    return dvalue, dfilter


def conv3d_transpose_grads(value: Any = None, filter: Any = None, output_shape: Any = None,
                           grad_output: Any = None, strides: Any = None, padding: Any = "SAME",
                           data_format: Any = "NDHWC", name: Any = None, input: Any = None,
                           filters: Any = None, dilations: Any = None
                           ) -> tuple[np.ndarray, np.ndarray]:
    """``(∂⟨g, y⟩/∂value, ∂⟨g, y⟩/∂filter)`` for ``y = conv3d_transpose(value, filter, ...)`` and
    ``g = grad_output`` (see the module docstring for the math and the error bound).

    The forward's signature with ``grad_output`` inserted after ``output_shape`` (a positional
    forward call ``conv3d_transpose(v, w, shape, s, "SAME")`` becomes
    ``conv3d_transpose_grads(v, w, shape, g, s, "SAME")``); every argument form and check of the
    forward applies, then ``grad_output``'s (``check_grad_output``). Raises TypeError/ValueError
    before any arithmetic. Returns ``dvalue`` (value's shape and layout, C-contiguous) and
    ``dfilter`` (``[KD, KH, KW, Cout, Cin]``), both of the call's dtype.
    """
    call = normalize_call(value=value, filter=filter, output_shape=output_shape, strides=strides,
                          padding=padding, data_format=data_format, input=input, filters=filters,
                          dilations=dilations)
    g = check_grad_output(grad_output, call)
    ncdhw = call.data_format == "NCDHW"
    source = call.value.transpose(0, 2, 3, 4, 1) if ncdhw else call.value
    g = g.transpose(0, 2, 3, 4, 1) if ncdhw else g
    dvalue, dfilter = transposed_conv_grads_ndhwc(source, call.filter, g, call.strides,
                                                  call.dilations, call.pad_before,
                                                  accum_dtype_for(call.dtype))
    if ncdhw:
        dvalue = np.ascontiguousarray(dvalue.transpose(0, 4, 1, 2, 3))
    return dvalue.astype(call.dtype, copy=False), dfilter.astype(call.dtype, copy=False)
