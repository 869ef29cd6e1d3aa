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
one is a strided window view (the ``numpy.lib.stride_tricks.as_strided`` trick, done with the
``np.ndarray(shape, dtype, buffer, offset, strides)`` constructor that ``as_strided`` wraps, to skip
its few microseconds of Python overhead) reshaped to a matrix ``(positions, taps*Cin)`` times the
phase filter matrix ``(taps*Cin, Cout)``: one GEMM.

Memory: the work is split into chunks over (batch, output depth, output height) so that the
zero-padded input slab, its im2col copy and the GEMM result of one chunk stay under 3/4 of the
output's bytes minus the filter matrix's bytes (or 64 KiB, whichever is larger; at least one output
row of one sample). When a phase needs no padding its windows read the input in place, and with one
tap per axis the GEMM then reads the input without any copy.

Speed: everything that depends only on the geometry (phases, filter slices, chunk list, window
shapes and byte strides) is computed once per geometry and cached (``functools.lru_cache`` over
plain ints), so a call costs a few NumPy operations per chunk.

Tap-wise path: the phase GEMMs multiply the zero padding around the input by every tap of the
phase. That is harmless for finite filters, but ``0 * inf`` and ``0 * nan`` are nan, which would
leak a non-finite tap into outputs it never reaches. So when the filter holds a non-finite entry —
and when the phase filter copy alone would take most of the memory budget (a filter about as large
as the output) — the kernel sums the definition tap by tap instead: for every tap ``k`` the inputs
``i`` whose target ``o = i*s + k*d - P`` lies in ``[0, O)`` form one box, and
``out[n, o(i), :] += value[n, i, :] @ filter[k].T``. Only real ``(i, k)`` products are formed; no
copy of the filter is made and the temporary is at most one input box times ``Cout``.

Floating-point exceptions (overflow, ``inf - inf``, ``0 * inf``) are reported the way NumPy's own
arithmetic reports them, on every path: per ``np.errstate`` (by default a ``RuntimeWarning``).

Accumulation happens in ``accum_dtype`` (float32, float64 or numpy.longdouble; longdouble has no BLAS
and is slow but exact enough for a high-precision truth). The result is returned in ``accum_dtype``.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from conv3dt.impl import cost, stationary, threads

__all__ = ["transposed_conv_ndhwc", "axis_phases", "tap_ranges"]


def _axis_phases(out_size: int, in_size: int, kernel: int, stride: int, dilation: int, pad: int):
    """Per-axis phase plan: a tuple of ``(o_first, n_out, taps, step, lo)`` per reachable phase.

    ``o_first`` is the first output index of the phase and ``n_out`` how many outputs it has (they
    are ``o_first, o_first + stride, ...``). ``taps`` lists the kernel indices in the order the
    window meets them (descending ``k``), ``step`` is the window's dilation in input elements and
    ``lo`` the input index (possibly negative) under window element 0 for phase output 0. Phases
    with no output or no tap are omitted: their outputs stay 0.

    Only the phases of the first ``min(O, s)`` outputs exist, and a tap is kept only if some output
    of its phase reads an input ``0 <= i < I`` through it (``i = m - t_k`` over the phase's ``m``):
    the kept taps are a contiguous run of the phase's progression, and the work is bounded by the
    outputs and inputs, not by ``s`` or ``(K - 1)·d`` (a stride or dilation of 2³¹ − 1 is valid).
    """
    plans = []
    for o_first in range(min(out_size, stride)):
        residue = (o_first + pad) % stride
        n_out = len(range(o_first, out_size, stride))
        m_first = (o_first + pad - residue) // stride
        m_last = m_first + n_out - 1
        taps = tuple(k for k in range(kernel - 1, -1, -1) if (k * dilation - residue) % stride == 0
                     and m_first - in_size < (k * dilation - residue) // stride <= m_last)
        if not taps:
            continue
        t_max = (taps[0] * dilation - residue) // stride
        step = dilation // math.gcd(stride, dilation) if len(taps) > 1 else 1   # one tap: no window step
        plans.append((o_first, n_out, taps, step, m_first - t_max))
    return tuple(sorted(plans, key=lambda plan: (plan[0] + pad) % stride))


# Caches over plain ints (the functions are pure); wrapped here rather than decorated so that
# mutation testing can reach the functions themselves.
axis_phases = functools.lru_cache(maxsize=4096)(_axis_phases)


_MIN_BUDGET = 64 * 1024  # bytes per chunk at least
_BUDGET_FRACTION = 0.75  # of the output's bytes per chunk at most (unless under _MIN_BUDGET)


def _work_budget(out_bytes: int, filter_bytes: int) -> int:
    """Bytes the work in flight may hold (all workers together): 3/4 of the output's bytes minus
    one copy of the filter (a phase's filter matrix, or the stationary path's), at least
    ``_MIN_BUDGET``."""
    return max(int(out_bytes * _BUDGET_FRACTION) - filter_bytes, _MIN_BUDGET)
_ITEMS_PER_WORKER = 4    # with workers, at least this many work items per worker (load balance)


def _plan_geometry(batch, in_spatial, cin, out_spatial, cout, kernel, strides, dilations,
                   pad_before, itemsize, workers=1):
    """Cached work list: per phase ``(filter_index, out_index, chunks, taps)``.

    With ``workers > 1`` chunks of that many threads are alive at once, so each gets
    ``budget / workers``, and phases are cut into at least ``_ITEMS_PER_WORKER * workers`` chunks
    in all (where the output allows) so that a worker on a busy core can take fewer of them.

    ``chunks`` holds ``(slab_spec, offset, window_shape, window_strides, dst_index, result_shape,
    width)``: ``slab_spec`` is ``None`` for an in-place window (the byte ``offset`` and strides then
    refer to the C-contiguous input) or ``(length, into, source)`` describing the zero-extended
    slab to build. Strides are in bytes of the accumulation dtype. Chunks whose windows see only
    padding are dropped (their outputs stay 0).
    """
    axis_plans = [axis_phases(out_spatial[a], in_spatial[a], kernel[a], strides[a], dilations[a],
                               pad_before[a])
                  for a in range(3)]
    out_bytes = batch * out_spatial[0] * out_spatial[1] * out_spatial[2] * cout * itemsize
    # A phase's filter matrix is a copy too (at most the whole filter): leave room for it.
    filter_bytes = kernel[0] * kernel[1] * kernel[2] * cin * cout * itemsize
    budget = _work_budget(out_bytes, filter_bytes) // workers
    plans = list(itertools.product(*axis_plans))
    pieces = -(-_ITEMS_PER_WORKER * workers // max(len(plans), 1)) if workers > 1 else 1
    phases = []
    for plan in plans:
        filter_index = tuple(_taps_slice(p[2]) for p in plan)
        out_index = (slice(None),) + tuple(slice(p[0], None, strides[a])
                                           for a, p in enumerate(plan))
        phases.append((filter_index, out_index,
                       _chunks(batch, in_spatial, cin, cout, plan, budget, itemsize, pieces)))
    return tuple(phases)


_geometry_plan = functools.lru_cache(maxsize=1024)(_plan_geometry)


def _taps_slice(taps):
    """The descending, equally spaced kernel indices ``taps`` as a slice."""
    step = taps[0] - taps[1] if len(taps) > 1 else 1
    stop = taps[-1] - step
    return slice(taps[0], stop if stop >= 0 else None, -step)


def _chunks(batch, in_spatial, cin, cout, plan, budget, itemsize, pieces=1):
    n_out = [p[1] for p in plan]
    n_taps = [len(p[2]) for p in plan]
    steps = [p[3] for p in plan]
    lo = [p[4] for p in plan]
    halo = [(n_taps[a] - 1) * steps[a] for a in range(3)]
    span_w = n_out[2] + halo[2]
    taps = n_taps[0] * n_taps[1] * n_taps[2]
    in_place = all(lo[a] >= 0 and lo[a] + n_out[a] + halo[a] <= in_spatial[a] for a in range(3))

    def cost(samples, depth, height):
        gemm = depth * height * n_out[2] * (cout + (taps * cin if taps > 1 else 0))
        slab = 0 if in_place else (depth + halo[0]) * (height + halo[1]) * span_w * cin
        return samples * (gemm + slab) * itemsize

    if pieces > 1:  # cut the phase into about ``pieces`` chunks at least
        budget = min(budget, max(cost(batch, n_out[0], n_out[1]) // pieces, 1))
    if cost(batch, n_out[0], n_out[1]) <= budget:
        pieces = [(0, batch, 0, n_out[0], 0, n_out[1])]
    else:
        depth = max((d for d in range(1, n_out[0] + 1) if cost(1, d, n_out[1]) <= budget),
                    default=0)
        if depth:
            pieces = [(n, n + 1, d0, min(d0 + depth, n_out[0]), 0, n_out[1])
                      for n in range(batch) for d0 in range(0, n_out[0], depth)]
        else:
            height = max((h for h in range(1, n_out[1] + 1) if cost(1, 1, h) <= budget),
                         default=1)
            pieces = [(n, n + 1, d, d + 1, h0, min(h0 + height, n_out[1]))
                      for n in range(batch) for d in range(n_out[0])
                      for h0 in range(0, n_out[1], height)]
    in_strides = _c_strides((batch, *in_spatial, cin), itemsize)
    chunks = []
    for n0, n1, d0, d1, h0, h1 in pieces:
        start = (n0, lo[0] + d0, lo[1] + h0, lo[2])
        if in_place:
            slab_spec = None
            offset = sum(i * st for i, st in zip(start, in_strides))
            base_strides = in_strides
        else:
            length = (n1 - n0, d1 - d0 + halo[0], h1 - h0 + halo[1], span_w, cin)
            copy = _slab_copy(start, length, (batch, *in_spatial))
            if copy is None:  # the window sees only zero padding: the output stays 0
                continue
            slab_spec = (length, *copy)
            offset = 0
            base_strides = _c_strides(length, itemsize)
        sn, sd, sh, sw, sc = base_strides
        shape = (n1 - n0, d1 - d0, h1 - h0, n_out[2], *n_taps, cin)
        window_strides = (sn, sd, sh, sw, sd * steps[0], sh * steps[1], sw * steps[2], sc)
        dst_index = (slice(n0, n1), slice(d0, d1), slice(h0, h1))
        chunks.append((slab_spec, offset, shape, window_strides, dst_index,
                       (n1 - n0, d1 - d0, h1 - h0, n_out[2], cout), taps * cin))
    return tuple(chunks)


def _slab_copy(start, length, sizes):
    """Index tuples ``(into_slab, from_value)`` filling the box ``start + [0, length)`` (over N, D,
    H, W) from the input; positions outside ``[0, size)`` stay zero. ``None`` if nothing overlaps.
    """
    into, source = [], []
    for a in range(4):
        low, high = max(start[a], 0), min(start[a] + length[a], sizes[a])
        if high <= low:
            return None
        source.append(slice(low, high))
        into.append(slice(low - start[a], high - start[a]))
    return tuple(into), tuple(source)


def _c_strides(shape, itemsize):
    strides, step = [], itemsize
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def transposed_conv_ndhwc(value, filter, output_spatial, strides, dilations, pad_before,
                          accum_dtype):
    """Transposed 3-D convolution, NDHWC in and out, accumulated and returned in ``accum_dtype``.

    ``value``: ``(N, D, H, W, Cin)``; ``filter``: ``(KD, KH, KW, Cout, Cin)``; ``output_spatial``,
    ``strides``, ``dilations``, ``pad_before``: 3-tuples of ints (D, H, W). No argument checking:
    callers validate (see ``impl.args.normalize_call``). Returns ``(N, *output_spatial, Cout)``.
    """
    accum_dtype = np.dtype(accum_dtype)
    value = np.ascontiguousarray(value, dtype=accum_dtype)
    filter = np.asarray(filter, dtype=accum_dtype)
    batch, cin = value.shape[0], value.shape[4]
    cout = filter.shape[3]
    out_shape = (batch, *output_spatial, cout)
    out_size = math.prod(out_shape)
    if out_size == 0 or value.size == 0:
        return np.zeros(out_shape, accum_dtype)
    # every input-tap product, an upper bound of the work: it picks the thread policy
    flops = 2.0 * value.size * cout * filter.shape[0] * filter.shape[1] * filter.shape[2]
    tapwise = _prefers_tapwise(filter, out_size * accum_dtype.itemsize)
    if flops < threads.SMALL_FLOPS and not tapwise:
        # a tiny call: straight to the phase GEMMs, serial, with neither the thread policy nor
        # the cost model (each costs ~1-2 µs, a third of such a call)
        return _phase_gemms(value, filter, out_shape, tuple(output_spatial), tuple(strides),
                            tuple(dilations), tuple(pad_before), 1)
    with threads.plan(flops) as workers:
        if tapwise:
            return _tapwise(value, filter, np.zeros(out_shape, accum_dtype), tuple(strides),
                            tuple(dilations), tuple(pad_before), workers)
        geometry = (tuple(output_spatial), tuple(strides), tuple(dilations), tuple(pad_before))
        budget = _work_budget(out_size * accum_dtype.itemsize, filter.nbytes)
        formulation = FORMULATION or cost.choose(batch, value.shape[1:4], cin, geometry[0], cout,
                                                 filter.shape[:3], *geometry[1:],
                                                 accum_dtype.itemsize, workers, budget)
        if formulation == "stationary":
            return stationary.input_stationary(value, filter, out_shape, *geometry[1:], workers,
                                               budget)
        return _phase_gemms(value, filter, out_shape, *geometry, workers)


FORMULATION = None   # None: impl.cost decides per geometry; "phase" / "stationary" force one


def _phase_gemms(value, filter, out_shape, output_spatial, strides, dilations, pad_before,
                 workers):
    """The phase path: every (phase, chunk) GEMM, on ``workers`` threads."""
    batch, cin, cout = value.shape[0], value.shape[4], filter.shape[3]
    geometry = (batch, value.shape[1:4], cin, output_spatial, cout, filter.shape[:3], strides,
                dilations, pad_before, value.dtype.itemsize)
    workers = _useful_workers(geometry, workers)
    phases = _geometry_plan(*geometry, workers)
    # (KD, KH, KW, Cin, Cout): a phase's taps then flatten in window order (tap-major, Cin-minor).
    filter_t = filter.transpose(0, 1, 2, 4, 3)
    if len(phases) == 1 and len(phases[0][2]) == 1 and phases[0][2][0][5] == out_shape:
        # One GEMM computes every output (e.g. stride 1 unchunked): its result is the output.
        return _chunk_gemm(value, phases[0][2][0], filter_t[phases[0][0]].reshape(-1, cout))
    out = np.zeros(out_shape, value.dtype)
    items = []
    for filter_index, out_index, chunks in phases:
        fmat = filter_t[filter_index].reshape(-1, cout)
        if workers > 1 and not fmat.flags.c_contiguous:
            fmat = np.ascontiguousarray(fmat)   # copied once per phase, not once per chunk
        dst = out[out_index]
        items += [functools.partial(_store, dst, chunk[4], value, chunk, fmat) for chunk in chunks]
    threads.run(items, workers)
    return out


_MIN_ITEM_FLOPS = 1.5e6   # a work item below this is dominated by its ~10 µs of NumPy calls


@functools.lru_cache(maxsize=1024)
def _useful_workers(geometry, workers):
    """``workers``, or 1 when the memory budget cuts the phases into items so small (under
    ``_MIN_ITEM_FLOPS`` on average) that per-item overhead and the halo each chunk's slab
    repeats outweigh a second thread (measured: N1 16³ 16->16 K3 d2, 256 one-row chunks, ran
    1.8-2.3x slower on two workers than its 64 chunks on one)."""
    if workers <= 1:
        return 1
    phases = _geometry_plan(*geometry, workers)
    chunks = [chunk for _, _, cs in phases for chunk in cs]
    flops = sum(2.0 * math.prod(c[5][:4]) * c[6] * geometry[4] for c in chunks)
    return workers if chunks and flops / len(chunks) >= _MIN_ITEM_FLOPS else 1


def _store(dst, index, value, chunk, fmat):
    dst[index] = _chunk_gemm(value, chunk, fmat)


def _chunk_gemm(value, chunk, fmat):
    """One chunk's outputs: its (zero-extended) window view as a matrix times ``fmat``."""
    slab_spec, offset, shape, window_strides, _, result_shape, width = chunk
    if slab_spec is None:
        base = value
    else:  # zero-extended copy of the input box this chunk reads
        length, into, source = slab_spec
        base = np.zeros(length, value.dtype)
        base[into] = value[source]
    window = np.ndarray(shape, value.dtype, base, offset, window_strides)
    return (window.reshape(-1, width) @ fmat).reshape(result_shape)


def _prefers_tapwise(filter, out_bytes):
    """Use the tap-wise sum for non-finite filters (exactness) and filters about as large as the
    output (memory: the phase path copies the filter)."""
    large = filter.nbytes > _MIN_BUDGET and 2 * filter.nbytes > out_bytes
    return large or not _is_finite(filter)


def _is_finite(filter):
    # count_nonzero rather than .all(): the same answer without a ufunc reduction's ~1 µs setup.
    return np.count_nonzero(np.isfinite(filter)) == filter.size


def _tap_range(in_size, out_size, offset, stride):
    """Inputs ``i`` in ``[0, in_size)`` with ``0 <= i*stride + offset < out_size``, as
    ``(input_slice, output_slice)``, or ``None`` when there are none."""
    i_lo = max(0, -(offset // stride))          # ceil(-offset / stride), at least 0
    i_hi = min(in_size, -((offset - out_size) // stride))  # ceil((out_size - offset) / stride)
    if i_hi <= i_lo:
        return None
    o_lo = i_lo * stride + offset
    return slice(i_lo, i_hi), slice(o_lo, o_lo + (i_hi - i_lo - 1) * stride + 1, stride)


def _tap_ranges(in_spatial, out_spatial, kernel, strides, dilations, pad_before):
    """Per tap ``(kd, kh, kw)`` reaching any output: ``(tap, input_index, output_index)``."""
    per_axis = []
    for a in range(3):
        axis = []
        for k in range(kernel[a]):
            r = _tap_range(in_spatial[a], out_spatial[a], k * dilations[a] - pad_before[a],
                           strides[a])
            if r is not None:
                axis.append((k, r))
        per_axis.append(axis)
    return tuple(((kd, kh, kw), (slice(None), id_, ih, iw), (slice(None), od, oh, ow))
                 for (kd, (id_, od)), (kh, (ih, oh)), (kw, (iw, ow)) in itertools.product(*per_axis))


tap_ranges = functools.lru_cache(maxsize=1024)(_tap_ranges)


def _tapwise(value, filter, out, strides, dilations, pad_before, workers=1):
    """``out[n, o, :] += value[n, i, :] @ filter[k].T`` over every tap ``k`` and its input box.

    With ``workers > 1`` the samples are split into that many groups, one item each: different
    samples write different outputs, and each group's scratch holds only its own samples."""
    batch = value.shape[0]
    groups = min(workers, batch)
    bounds = [batch * g // groups for g in range(groups + 1)]
    threads.run([functools.partial(_tapwise_samples, value[lo:hi], filter, out[lo:hi], strides,
                                   dilations, pad_before)
                 for lo, hi in zip(bounds, bounds[1:])], groups)
    return out


def _tapwise_samples(value, filter, out, strides, dilations, pad_before):
    cin, cout = value.shape[4], out.shape[4]
    plan = tap_ranges(value.shape[1:4], out.shape[1:4], filter.shape[:3], strides, dilations,
                      pad_before)
    boxes = [(tap, value[in_index], out_index) for tap, in_index, out_index in plan]
    # One scratch buffer for every tap's product, so no two products are ever alive at once.
    rows = max((box[..., 0].size for _, box, _ in boxes), default=0)
    scratch = np.empty(rows * cout, out.dtype)
    for tap, box, out_index in boxes:
        product = scratch[:box[..., 0].size * cout].reshape(-1, cout)
        np.matmul(box.reshape(-1, cin), filter[tap].T, out=product)
        out[out_index] += product.reshape(*box.shape[:4], cout)
