"""Input-stationary transposed convolution: one GEMM for every tap, then a col2im scatter.

The math (per spatial axis stride ``s``, dilation ``d``, leading pad ``P``; ``k`` a tap triple)::

    R[n, i, k, co] = sum_ci value[n, i, ci] * filter[k, co, ci]          (one GEMM)
    out[n, i*s + k*d - P, co] += R[n, i, k, co]   for every (i, k) with a target in [0, O)

The GEMM is ``(rows, Cin) x (Cin, T*Cout)`` with ``T`` the taps that reach any output: each input
row is multiplied by every tap at once (a wide GEMM even where ``Cout`` is small, where the phase
GEMMs of ``impl.kernel`` have only ``Cout`` columns). The scatter is one strided add per tap: for
tap ``k`` the inputs whose target lies in ``[0, O)`` form a box (``kernel._tap_range``) and their
targets a strided box of the output. When every output is reached by at most one ``(i, k)`` pair
(every axis has ``K*d <= s``-like geometry: one tap per phase, e.g. U-Net's ``K = s = 2``) the adds
are plain stores.

Memory: ``R`` is computed for a chunk of input rows at a time — whole ``(sample, input depth)``
slabs — sized so that the chunks of all workers together stay within ``budget`` bytes; the filter
matrix ``(Cin, T*Cout)`` is one copy of the filter. Work items: with one tap per depth phase the
depth slabs write disjoint outputs and are independent items; otherwise a sample's slabs overlap
in the output and each sample is one item (its slabs in order).

Exactness: each output is the sum of its ``(i, k)`` contributions, every one a dot product over
``Cin`` rounded once by the GEMM and then added in tap order; the error stays within the bound
``gamma_n * (|value| (*) |filter|)`` with ``n = T*Cin`` like any summation order. Non-finite
filters never come here (``kernel`` routes them to the tap-wise sum).
"""
from __future__ import annotations

import functools

import numpy as np

from conv3dt.impl import threads

__all__ = ["input_stationary", "slab_depth", "stationary_plan"]


def _plan(in_spatial, out_spatial, kernel, strides, dilations, pad_before, kernel_module):
    """``(taps, per_axis_tap_offsets, disjoint, depth_disjoint)``: the taps ``(kd, kh, kw)`` that
    reach an output, and whether every output is reached by one ``(i, k)`` at most (in all axes;
    in depth alone)."""
    per_axis = []
    for a in range(3):
        ks = [k for k in range(kernel[a])
              if kernel_module._tap_range(in_spatial[a], out_spatial[a],
                                          k * dilations[a] - pad_before[a], strides[a]) is not None]
        per_axis.append(ks)
    taps = tuple((kd, kh, kw) for kd in per_axis[0] for kh in per_axis[1] for kw in per_axis[2])
    # two taps of an axis hit the same output iff their offsets k*d agree modulo s
    one_per_phase = [len({k * dilations[a] % strides[a] for k in per_axis[a]}) == len(per_axis[a])
                     for a in range(3)]
    return taps, all(one_per_phase), one_per_phase[0]


@functools.lru_cache(maxsize=512)
def stationary_plan(in_spatial, out_spatial, kernel, strides, dilations, pad_before):
    """Cached ``_plan`` (plain-int arguments)."""
    from conv3dt.impl import kernel as kernel_module

    return _plan(in_spatial, out_spatial, kernel, strides, dilations, pad_before, kernel_module)


def slab_bytes(in_spatial, cout, n_taps, itemsize):
    """Bytes of ``R`` for one ``(sample, input depth)`` slab."""
    return in_spatial[1] * in_spatial[2] * n_taps * cout * itemsize


def slab_depth(in_depth, budget, workers, per_slab):
    """Input depths per chunk of ``R``: as many ``(sample, input depth)`` slabs as fit in each
    worker's share of ``budget``, at least one, at most the whole depth."""
    return max(1, min(in_depth, budget // max(workers, 1) // max(per_slab, 1)))


def input_stationary(value, filter, out_shape, strides, dilations, pad_before, workers, budget):
    """``out`` (``accum`` dtype of ``value``) by one GEMM per chunk of input slabs and a scatter."""
    from conv3dt.impl.kernel import _tap_range

    batch, in_d, in_h, in_w, cin = value.shape
    cout = filter.shape[3]
    taps, disjoint, depth_disjoint = stationary_plan(value.shape[1:4], tuple(out_shape[1:4]),
                                                     filter.shape[:3], strides, dilations,
                                                     pad_before)
    out = np.zeros(out_shape, value.dtype)
    if not taps:
        return out
    # (Cin, T*Cout): column block t is filter[taps[t]].T
    flat = [(kd * filter.shape[1] + kh) * filter.shape[2] + kw for kd, kh, kw in taps]
    wmat = np.ascontiguousarray(filter.reshape(-1, cout, cin)[flat].transpose(2, 0, 1)
                                .reshape(cin, len(taps) * cout))
    per_slab = slab_bytes(value.shape[1:4], cout, len(taps), value.dtype.itemsize)
    depth = slab_depth(in_d, budget, workers, per_slab)
    # per axis, per tap index: (input slice, output slice) for the H and W axes (whole input)
    hw = [{k: _tap_range(value.shape[2 + a], out_shape[2 + a],
                         k * dilations[1 + a] - pad_before[1 + a], strides[1 + a])
           for k in {t[1 + a] for t in taps}} for a in range(2)]

    def slab(n, d0, d1):
        rows = value[n, d0:d1].reshape(-1, cin)
        r = (rows @ wmat).reshape(d1 - d0, in_h, in_w, len(taps), cout)
        for t, (kd, kh, kw) in enumerate(taps):
            rd = _tap_range(d1 - d0, out_shape[1], (d0 * strides[0]) + kd * dilations[0]
                            - pad_before[0], strides[0])
            if rd is None:
                continue
            (ih, oh), (iw, ow) = hw[0][kh], hw[1][kw]
            src = r[rd[0], ih, iw, t]
            if disjoint:
                out[n, rd[1], oh, ow] = src
            else:
                out[n, rd[1], oh, ow] += src

    slabs = [(n, d0, min(d0 + depth, in_d)) for n in range(batch) for d0 in range(0, in_d, depth)]
    if depth_disjoint:
        items = [functools.partial(slab, *s) for s in slabs]
    else:   # a sample's slabs overlap in the output: one item per sample, slabs in order
        items = [functools.partial(_in_order, slab, [s for s in slabs if s[0] == n])
                 for n in range(batch)]
    threads.run(items, workers)
    return out


def _in_order(function, argument_tuples):
    for arguments in argument_tuples:
        function(*arguments)
