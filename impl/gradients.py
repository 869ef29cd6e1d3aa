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
dilations of 2⁶³ cost nothing. Boxes are split along batch and depth into chunks whose copies
(converted to the accumulation dtype chunk by chunk) take at most half the largest operand's bytes
in that dtype, or 64 KiB; with the accumulators (dvalue's is rounded and freed before the dfilter
pass) the working memory beyond the inputs and the two results is at most about 1.5× the largest
operand in the accumulation dtype (measured: ``tests/unit/test_impl_grad_memory.py``).
Floating-point exceptions are reported as NumPy's arithmetic reports them (``np.errstate``).
"""

from __future__ import annotations

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


_MIN_BUDGET = 64 * 1024  # bytes of box copies per chunk at least (as the forward kernel's)
_BUDGET_FRACTION = 0.5  # of the largest operand's bytes (accumulation dtype) per chunk at most


def _chunked_boxes(plan: tuple, batch: int, budget_rows: int) -> list:
    """Each tap's ``(tap, in_index, out_index, rows)``, split along batch and then depth so that a
    chunk has at most ``budget_rows`` rows (or one depth row of one sample)."""
    chunks = []
    for tap, in_index, out_index in plan:
        (_, in_d, in_h, in_w), (_, out_d, out_h, out_w) = in_index, out_index
        depth, plane = in_d.stop - in_d.start, (in_h.stop - in_h.start) * (in_w.stop - in_w.start)
        if batch * depth * plane <= budget_rows:
            pieces = [(slice(None), 0, depth)]
        elif depth * plane <= budget_rows:
            group = budget_rows // (depth * plane)
            pieces = [(slice(n, n + group), 0, depth) for n in range(0, batch, group)]
        else:
            rows = max(budget_rows // plane, 1)
            pieces = [(slice(n, n + 1), a, min(a + rows, depth))
                      for n in range(batch) for a in range(0, depth, rows)]
        step = out_d.step
        for samples, a, b in pieces:
            count = len(range(batch)[samples]) * (b - a) * plane
            if count:
                chunks.append((tap, (samples, slice(in_d.start + a, in_d.start + b), in_h, in_w),
                               (samples, slice(out_d.start + a * step,
                                               out_d.start + (b - 1) * step + 1, step),
                                out_h, out_w), count))
    return chunks


def transposed_conv_grads_ndhwc(value: np.ndarray, filter: np.ndarray, grad_output: np.ndarray,
                                strides: tuple, dilations: tuple, pad_before: tuple,
                                accum_dtype: Any, result_dtype: Any = None, want: str = "both"
                                ) -> tuple[np.ndarray, np.ndarray]:
    """``(dvalue, dfilter)`` of the transposed conv, NDHWC, accumulated in ``accum_dtype``
    (float32, float64 or numpy.longdouble) and returned in ``result_dtype`` (default: the
    accumulation dtype; each result rounded once). No validation.

    ``value``: ``(N, ID, IH, IW, Cin)``; ``filter``: ``(KD, KH, KW, Cout, Cin)``;
    ``grad_output``: ``(N, OD, OH, OW, Cout)``; ``strides``, ``dilations``, ``pad_before``:
    3-tuples of ints (a negative pad shifts the windows the other way). Callers validate
    (``normalize_call``, ``check_grad_output``). Operands are converted to ``accum_dtype`` chunk
    by chunk, so a half-precision call never holds a float32 copy of a whole operand; a tap's box
    is split along batch and depth so that one chunk's copies stay under half the largest
    operand's bytes in ``accum_dtype`` (or 64 KiB). ``want`` ``"value"`` or ``"filter"`` computes
    that gradient only (the other is returned as zeros).
    """
    if want not in ("both", "value", "filter"):
        raise ValueError(f"want must be 'both', 'value' or 'filter', got {want!r}")
    accum = np.dtype(accum_dtype)
    result = accum if result_dtype is None else np.dtype(result_dtype)
    value, filter, g = np.asarray(value), np.asarray(filter), np.asarray(grad_output)
    batch, cin, cout = value.shape[0], value.shape[4], filter.shape[3]
    dvalue = np.zeros(value.shape, accum)
    dfilter = np.zeros(filter.shape, accum)
    plan = tap_ranges(tuple(value.shape[1:4]), tuple(g.shape[1:4]), tuple(filter.shape[:3]),
                      tuple(strides), tuple(dilations), tuple(pad_before))
    largest = max(value.size, filter.size, g.size) * accum.itemsize
    budget = max(int(largest * _BUDGET_FRACTION), _MIN_BUDGET)
    budget_rows = max(budget // (max(cin + cout, 1) * accum.itemsize), 1)
    chunks = _chunked_boxes(plan, batch, budget_rows) if cin and cout else []
    if chunks and want != "filter":
        # dvalue[:, box_i] += g[:, box_o] @ filter[k]; one scratch for every chunk's product.
        scratch = np.empty(max(chunk[3] for chunk in chunks) * cin, accum)
        for tap, in_index, out_index, rows in chunks:
            g_box = np.ascontiguousarray(g[out_index], accum)
            product = scratch[:rows * cin].reshape(rows, cin)
            np.matmul(g_box.reshape(rows, cout), np.asarray(filter[tap], accum), out=product)
            dvalue[in_index] += product.reshape(*g_box.shape[:4], cin)
        del scratch, g_box, product
    dvalue = dvalue.astype(result, copy=False)   # rounded before the dfilter pass (frees the sums)
    for tap, in_index, out_index, rows in (chunks if want != "value" else ()):
        # dfilter[k] += g[:, box_o]^T @ value[:, box_i]: (Cout, rows) @ (rows, Cin)
        g_box = np.ascontiguousarray(g[out_index], accum).reshape(rows, cout)
        v_box = np.ascontiguousarray(value[in_index], accum).reshape(rows, cin)
        dfilter[tap] += g_box.T @ v_box
    return dvalue, dfilter.astype(result, copy=False)


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
                                                  accum_dtype_for(call.dtype), call.dtype)
    if ncdhw:
        dvalue = np.ascontiguousarray(dvalue.transpose(0, 4, 1, 2, 3))
    return dvalue, dfilter
