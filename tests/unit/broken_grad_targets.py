"""Deliberately broken backwards of conv3d_transpose, each ``impl.conv3d_transpose_grads`` with one
planted defect, plus a faithful control.

They are ``grad:module:function`` targets (``grad:tests.unit.broken_grad_targets:NAME``): the
worker calls them with ``conv3d_transpose_grads``'s signature (the forward's v1 arguments as
recorded plus ``grad_output=``) and keeps ``[0]`` or ``[1]`` of the returned ``(dvalue, dfilter)``
by the Case's ``grad_wrt`` (``oracle.worker.call_gradient``). Every one first runs the faithful
backward, so it validates (and rejects invalid calls) exactly as impl does: only the values of
valid calls are wrong, and only where the defect's code path is reached; except
``takes_any_grad_output``, whose defect is that it validates ``grad_output`` not at all. The meta-tests
(test_gate_gradients.py) require the ci gate to fail on each and to pass on ``faithful``.
"""
from __future__ import annotations

import inspect
import os
import sys

import numpy as np

from conv3dt.impl import conv3d_transpose_grads
from conv3dt.impl.args import normalize_call
from conv3dt.impl.gradients import check_grad_output, transposed_conv_grads_ndhwc
from conv3dt.impl.kernel import tap_ranges
from conv3dt.impl.transpose import accum_dtype_for

_SIGNATURE = inspect.signature(conv3d_transpose_grads)
HALF = ("float16", "bfloat16")


class _Call:
    """One validated backward call in NDHWC: the normalized forward call, ``g`` and the faithful
    ``(dvalue, dfilter)`` (impl's, in the call's layout)."""

    def __init__(self, args: tuple, kwargs: dict) -> None:
        self.correct = conv3d_transpose_grads(*args, **kwargs)      # validates like impl
        bound = _SIGNATURE.bind(*args, **kwargs)
        bound.apply_defaults()
        a = dict(bound.arguments)
        g = a.pop("grad_output")
        a.pop("name", None)
        self.call = normalize_call(**a)
        self.ncdhw = self.call.data_format == "NCDHW"
        g = check_grad_output(g, self.call)
        self.value = self.call.value.transpose(0, 2, 3, 4, 1) if self.ncdhw else self.call.value
        self.g = g.transpose(0, 2, 3, 4, 1) if self.ncdhw else g
        self.dtype = self.call.dtype

    def grads(self, *, value=None, filter=None, g=None, dilations=None):
        """``(dvalue, dfilter)`` by impl's NDHWC kernel with the given operands or dilations
        substituted, dvalue returned in the call's layout."""
        c = self.call
        dvalue, dfilter = transposed_conv_grads_ndhwc(
            self.value if value is None else value, c.filter if filter is None else filter,
            self.g if g is None else g, c.strides, c.dilations if dilations is None else dilations,
            c.pad_before, accum_dtype_for(c.dtype), c.dtype)
        return self.layout(dvalue), dfilter

    def layout(self, dvalue_ndhwc: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(dvalue_ndhwc.transpose(0, 4, 1, 2, 3)) if self.ncdhw \
            else dvalue_ndhwc


def faithful(*args, **kwargs):
    """The control: impl's backward through the ``grad:module:function`` route (no Finding)."""
    return conv3d_transpose_grads(*args, **kwargs)


def dfilter_flipped_taps(*args, **kwargs):
    """dfilter's taps stored in reverse order on every spatial axis (``dfilter[::-1, ::-1, ::-1]``):
    the backward of a kernel that correlates instead of convolving, or that forgets to flip the
    tap index back when writing the weight gradient. Right wherever the filter has one tap per
    axis, or the true gradient happens to be symmetric."""
    c = _Call(args, kwargs)
    dvalue, dfilter = c.correct
    return dvalue, np.ascontiguousarray(dfilter[::-1, ::-1, ::-1])


def dvalue_missing_stride_phase(*args, **kwargs):
    """dvalue computed phase by phase (the sub-pixel decomposition of a strided conv) with one
    phase lost: on the first spatial axis whose stride ``s`` exceeds 1, the upstream gradient's
    positions ``o ≡ r (mod s)`` never reach dvalue, ``r = −pad_before (mod s)`` being the phase
    of tap 0 (``o = i·s + k·d − P``: a phase is a set of taps). With every stride 1 there is one
    phase and the result is right."""
    c = _Call(args, kwargs)
    dvalue, dfilter = c.correct
    axis = next((a for a in range(3) if c.call.strides[a] > 1), None)
    if axis is None:
        return dvalue, dfilter
    s, r = c.call.strides[axis], (-c.call.pad_before[axis]) % c.call.strides[axis]
    g = c.g.copy()
    index = [slice(None)] * 5
    index[1 + axis] = slice(r, None, s)
    g[tuple(index)] = 0
    return c.grads(g=g)[0], dfilter


def dfilter_float16_accumulation(*args, **kwargs):
    """float16/bfloat16 dfilter summed sequentially in the input dtype: every product
    ``value·g`` rounded to the dtype and the ``N·ΠI`` of them added one by one in it
    (``np.add.reduce`` over the leading axis adds row after row, not pairwise). Within the
    dtype's own contract bound (which allows a dtype accumulation) but beyond the float32-
    accumulation bound impl and oneDNN keep: the ``accumulation-precision`` finding. Other
    dtypes: faithful."""
    c = _Call(args, kwargs)
    dvalue, dfilter = c.correct
    if c.dtype.name not in HALF or not dfilter.size:
        return dvalue, dfilter
    f = c.call.filter
    cout, cin = f.shape[3], f.shape[4]
    out = np.zeros(f.shape, c.dtype)
    plan = tap_ranges(tuple(c.value.shape[1:4]), tuple(c.g.shape[1:4]), tuple(f.shape[:3]),
                      tuple(c.call.strides), tuple(c.call.dilations), tuple(c.call.pad_before))
    for tap, in_index, out_index in plan:
        v = np.asarray(c.value[in_index], np.float32).reshape(-1, 1, cin)
        g = np.asarray(c.g[out_index], np.float32).reshape(-1, cout, 1)
        products = (g * v).astype(c.dtype)            # exact in float32, rounded once to half
        if products.shape[0]:
            out[tap] = np.add.reduce(products, axis=0, dtype=c.dtype)
    return dvalue, out


def dvalue_flipped_filter(*args, **kwargs):
    """dvalue as the conv3d of ``g`` with the spatially flipped filter (``filter[::-1, ::-1,
    ::-1]``): the classic slip of building the input gradient as another transposed conv.
    dfilter is right."""
    c = _Call(args, kwargs)
    dvalue, dfilter = c.correct
    flipped = np.ascontiguousarray(c.call.filter[::-1, ::-1, ::-1])
    return c.grads(filter=flipped)[0], dfilter


def dfilter_ignores_dilation(*args, **kwargs):
    """dfilter computed as if every dilation were 1 (the padding still the dilated call's), as a
    weight-gradient kernel that never read the dilations attribute. Right wherever the dilations
    are all 1; dvalue is right."""
    c = _Call(args, kwargs)
    dvalue, dfilter = c.correct
    if all(d == 1 for d in c.call.dilations):
        return dvalue, dfilter
    return dvalue, c.grads(dilations=(1, 1, 1))[1]


def crashes_on_ncdhw_dfilter(*args, **kwargs):
    """Aborts the process in its NCDHW dfilter code path (a CHECK failure, as a native kernel
    with no such path might). Both gradients are always computed, so every valid NCDHW call
    reaches it; invalid calls are rejected before (as impl rejects them), NDHWC is faithful."""
    c = _Call(args, kwargs)
    if c.ncdhw:
        sys.stderr.write("F0000 broken_grad_targets.py:1] Check failed: no NCDHW dfilter kernel\n")
        sys.stderr.flush()
        os.abort()
    return c.correct


def takes_any_grad_output(*args, **kwargs):
    """Never rejects ``grad_output``: one of another dtype is cast to the call's, one of another
    shape is fitted to the output's (``np.resize``: cropped, or repeated to fill), as a backward
    that trusts its caller's upstream gradient. Valid calls are faithful; the forward's own
    rules still reject as impl does."""
    bound = _SIGNATURE.bind(*args, **kwargs)
    bound.apply_defaults()
    a = dict(bound.arguments)
    g = a.pop("grad_output")
    a.pop("name", None)
    call = normalize_call(**a)
    if g is not None:
        g = np.resize(np.asarray(g).astype(call.dtype), call.output_shape)
    bound.arguments["grad_output"] = g
    return conv3d_transpose_grads(*bound.args, **bound.kwargs)


BROKEN = ("dfilter_flipped_taps", "dvalue_missing_stride_phase", "dfilter_float16_accumulation",
          "dvalue_flipped_filter", "dfilter_ignores_dilation", "crashes_on_ncdhw_dfilter",
          "takes_any_grad_output")
