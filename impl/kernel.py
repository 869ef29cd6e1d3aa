"""Vectorised transposed 3-D convolution kernel (NDHWC, no validation, no rounding).

The math, per spatial axis (stride ``s``, dilation ``d``, kernel size ``K``, leading pad ``P``)::

    out[n, o, co] = sum_{i, k, ci : o = i*s + k*d - P} value[n, i, ci] * filter[k, co, ci]

with the three spatial axes combined as a product (``o``, ``i``, ``k`` are triples). Output
positions that no ``(i, k)`` reaches stay 0.

Phase decomposition (no zero-stuffing, no scatter): write ``q = o + P`` and split outputs by the
residue ``r = q mod s``. A tap ``k`` reaches phase ``r`` iff ``k*d = r (mod s)``; for such a tap put
``t_k = (k*d - r) / s`` so that, with ``q = r + s*m``, the input index is ``i = m - t_k``. The taps
of one phase form an arithmetic progression in ``k`` with step ``s/g`` (``g = gcd(s, d)``), so the
``t_k`` are equally spaced by ``d/g``: every phase is a *stride-1* correlation of the zero-extended
input with the phase's sub-kernel dilated by ``d/g``. In 3-D there are ``s_d*s_h*s_w`` phases; each
one is a strided window view (the ``numpy.lib.stride_tricks`` trick) reshaped to a matrix
``(positions, taps*Cin)`` times the phase filter matrix ``(taps*Cin, Cout)``: one GEMM.

Memory: the work is split into chunks over (batch, output depth) so that the zero-padded input slab,
its im2col copy and the GEMM result of one chunk stay under about half of the output's bytes (at
least one output depth row of one sample). When a phase needs no padding and has one tap per axis
the GEMM reads the input in place.

Accumulation happens in ``accum_dtype`` (float32, float64 or numpy.longdouble; longdouble has no BLAS
and is slow but exact enough for a high-precision truth). The result is returned in ``accum_dtype``.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

__all__ = ["transposed_conv_ndhwc", "axis_phases"]


@functools.lru_cache(maxsize=4096)
def axis_phases(in_size: int, out_size: int, kernel: int, stride: int, dilation: int, pad: int):
    """Per-axis phase plan: a tuple of ``(o_first, n_out, taps, step, lo)`` per reachable phase.

    ``o_first`` is the first output index of the phase and ``n_out`` how many outputs it has (they
    are ``o_first, o_first + stride, ...``). ``taps`` lists the kernel indices in the order the
    window meets them (descending ``k``), ``step`` is the window's dilation in input elements and
    ``lo`` the input index (possibly negative) under window element 0 for phase output 0. Phases
    with no output or no tap are omitted: their outputs stay 0.
    """
    plans = []
    for residue in range(stride):
        o_first = (residue - pad) % stride
        n_out = len(range(o_first, out_size, stride))
        taps = tuple(k for k in range(kernel - 1, -1, -1) if (k * dilation - residue) % stride == 0)
        if n_out == 0 or not taps:
            continue
        m_first = (o_first + pad - residue) // stride
        t_max = (taps[0] * dilation - residue) // stride
        step = dilation // math.gcd(stride, dilation)
        plans.append((o_first, n_out, taps, step, m_first - t_max))
    return tuple(plans)


def _strided(base: np.ndarray, offset: int, shape, strides) -> np.ndarray:
    """``as_strided`` without its Python overhead: a view of C-contiguous ``base``."""
    return np.ndarray(shape, base.dtype, base, offset, strides)


def _slab(value, start, length, n0, n1):
    """Copy of ``value[n0:n1, start[a]:start[a]+length[a] (a = D, H, W), :]`` zero-extended.

    Indices outside ``[0, size)`` read as 0. Returns a C-contiguous array.
    """
    batch = value[n0:n1]
    slab = np.zeros((batch.shape[0], *length, value.shape[4]), value.dtype)
    src, dst = [], []
    for a in range(3):
        size = value.shape[1 + a]
        lo, hi = max(start[a], 0), min(start[a] + length[a], size)
        if hi <= lo:
            return slab
        src.append(slice(lo, hi))
        dst.append(slice(lo - start[a], hi - start[a]))
    slab[:, dst[0], dst[1], dst[2]] = batch[:, src[0], src[1], src[2]]
    return slab


def _phase_filter(filter, taps, cin, cout):
    """Phase filter matrix ``(Td*Th*Tw*Cin, Cout)`` in window order (taps descending)."""
    sub = filter[np.ix_(taps[0], taps[1], taps[2])]  # (Td, Th, Tw, Cout, Cin)
    return np.ascontiguousarray(sub.transpose(0, 1, 2, 4, 3)).reshape(-1, cout)


def _run_phase(value, fmat, out, plan, budget):
    """Compute one 3-D phase into the strided output positions it owns.

    ``plan`` holds one ``axis_phases`` entry per axis extended by that axis's stride.
    """
    n_batch, cin = value.shape[0], value.shape[4]
    cout = fmat.shape[1]
    n_out = [p[1] for p in plan]
    n_taps = [len(p[2]) for p in plan]
    steps = [p[3] for p in plan]
    lo = [p[4] for p in plan]
    taps = n_taps[0] * n_taps[1] * n_taps[2]
    span = [n_out[a] + (n_taps[a] - 1) * steps[a] for a in range(3)]
    dst = out[:, plan[0][0]::plan[0][5], plan[1][0]::plan[1][5], plan[2][0]::plan[2][5]]
    in_place = all(lo[a] >= 0 and lo[a] + span[a] <= value.shape[1 + a] for a in range(3))
    # Bytes one output depth row of one sample costs: padded slab row (unless read in place),
    # im2col row (unless a single tap makes the GEMM read the input directly) and GEMM result.
    row_bytes = value.itemsize * n_out[1] * n_out[2] * (cout + (taps * cin if taps > 1 else 0))
    if not in_place:
        row_bytes += value.itemsize * span[1] * span[2] * cin
    rows = budget // row_bytes
    if rows >= n_batch * n_out[0]:
        chunks = [(0, n_batch, 0, n_out[0])]
    else:
        per = max(1, rows)
        chunks = [(n, n + 1, d0, min(d0 + per, n_out[0]))
                  for n in range(n_batch) for d0 in range(0, n_out[0], per)]
    for n0, n1, d0, d1 in chunks:
        depth = d1 - d0
        if in_place:
            slab = value
            offset = (n0 * value.strides[0] + (lo[0] + d0) * value.strides[1]
                      + lo[1] * value.strides[2] + lo[2] * value.strides[3])
        else:
            slab = _slab(value, (lo[0] + d0, lo[1], lo[2]),
                         (depth + (n_taps[0] - 1) * steps[0], span[1], span[2]), n0, n1)
            offset = 0
        sn, sd, sh, sw, sc = slab.strides
        window = _strided(slab, offset,
                          (n1 - n0, depth, n_out[1], n_out[2], *n_taps, cin),
                          (sn, sd, sh, sw, sd * steps[0], sh * steps[1], sw * steps[2], sc))
        cols = window.reshape(-1, taps * cin)
        dst[n0:n1, d0:d1] = (cols @ fmat).reshape(n1 - n0, depth, n_out[1], n_out[2], cout)


def transposed_conv_ndhwc(value, filter, output_spatial, strides, dilations, pad_before,
                          accum_dtype):
    """Transposed 3-D convolution, NDHWC in and out, accumulated and returned in ``accum_dtype``.

    ``value``: ``(N, D, H, W, Cin)``; ``filter``: ``(KD, KH, KW, Cout, Cin)``; ``output_spatial``,
    ``strides``, ``dilations``, ``pad_before``: 3-tuples of ints (D, H, W). No argument checking:
    callers validate (see ``impl.args.normalize_call``). Returns ``(N, *output_spatial, Cout)``.
    """
    accum_dtype = np.dtype(accum_dtype)
    value = np.asarray(value).astype(accum_dtype, copy=False)
    filter = np.asarray(filter).astype(accum_dtype, copy=False)
    n_batch, cin = value.shape[0], value.shape[4]
    cout = filter.shape[3]
    out = np.zeros((n_batch, *output_spatial, cout), accum_dtype)
    if out.size == 0 or cin == 0 or 0 in value.shape[1:4]:
        return out
    if not value.flags.c_contiguous:
        value = np.ascontiguousarray(value)
    axis_plans = [
        [p + (strides[a],) for p in axis_phases(value.shape[1 + a], output_spatial[a],
                                                 filter.shape[a], strides[a], dilations[a],
                                                 pad_before[a])]
        for a in range(3)]
    budget = out.nbytes // 2
    for plan in itertools.product(*axis_plans):
        fmat = _phase_filter(filter, [p[2] for p in plan], cin, cout)
        _run_phase(value, fmat, out, plan, budget)
    return out
