"""The cost model that picks impl's formulation per geometry (``choose``).

Each formulation is charged, in seconds on one core,

    t = sum over its GEMMs  2·M·K·N / (PEAK · N/(N + N_HALF) · K/(K + K_HALF))
                                                                     (narrow/shallow GEMMs: slower)
      + bytes it moves outside the GEMMs / BANDWIDTH                 (im2col, slabs, stores, adds)
      + numpy operations it issues · OP_SECONDS                      (per-call Python/NumPy cost)

* **phase** (``impl.kernel``, output-stationary): per phase a GEMM ``(M_p, T_p·Cin) x (T_p·Cin,
  Cout)``; moves the zero-extended slab (written and read), the im2col copy of the window when
  the phase has more than one tap (written and read), the result (written, then read and stored
  into a strided view of the output: 3×); ~4 operations per chunk.
* **stationary** (``impl.stationary``, input-stationary + col2im): one GEMM ``(N·ΠI, Cin) x (Cin,
  T·Cout)``; moves ``R`` (written, read) and the output it lands in (a store where outputs are
  reached once: +1×, an add otherwise: +2×); ~``T + 3`` operations per slab.

Constants, measured on the 2-core AMD EPYC (Zen 4, AVX-512) this was written on, OpenBLAS 0.3.31
(SkylakeX kernels), one thread, with other processes on both cores: N_HALF from ``(4096, K) x
(K, N)`` products (N = 8 runs at ~half the rate of N >= 64), K_HALF likewise for the shallow
``K = Cin`` of the stationary GEMM; PEAK, BANDWIDTH, SCATTER_BANDWIDTH and OP_SECONDS by least
squares (relative error) on both formulations timed side by side on 10 of the 12 benchmark
shapes (``conv3dt bench impl``'s, one worker). Only their ratios decide. The fit leaves the
stationary path ~2x off on two small shapes, hence MARGIN: measured there, stationary was
0.93–2.6x the phase time, so the model keeps every one of the 12 on the phase path; it takes
stationary where the phase GEMMs are narrow (small Cout, many input channels).
"""
from __future__ import annotations

import functools

PEAK = 83e9
N_HALF = 8.0
K_HALF = 32.0
BANDWIDTH = 87e9             # the phase path's copies (contiguous GEMM operands, strided stores)
SCATTER_BANDWIDTH = 21e9     # the stationary path's R and its strided adds into the output
OP_SECONDS = 2.2e-6
MARGIN = 0.85                # stationary only when modelled at most this fraction of phase

__all__ = ["choose", "phase_seconds", "stationary_seconds"]


def _gemm(m, k, n):
    return 2.0 * m * k * n / (PEAK * n / (n + N_HALF) * k / (k + K_HALF))


def phase_seconds(phases, cout, itemsize):
    """Modelled time of the phase GEMMs from the cached plan (``kernel._geometry_plan``)."""
    seconds = 0.0
    for _, _, chunks in phases:
        for slab_spec, _, shape, _, _, result_shape, width in chunks:
            rows = shape[0] * shape[1] * shape[2] * shape[3]
            moved = 3 * rows * cout
            if slab_spec is not None:
                length = slab_spec[0]
                moved += 2 * length[0] * length[1] * length[2] * length[3] * length[4]
            if width > shape[7]:      # more than one tap: the window is copied (im2col)
                moved += 2 * rows * width
            seconds += _gemm(rows, width, cout) + moved * itemsize / BANDWIDTH + 4 * OP_SECONDS
    return seconds


def stationary_seconds(batch, in_spatial, cin, cout, n_taps, disjoint, slabs, itemsize):
    """Modelled time of one ``(N·ΠI, Cin) x (Cin, T·Cout)`` GEMM and its scatter."""
    rows = batch * in_spatial[0] * in_spatial[1] * in_spatial[2]
    r = rows * n_taps * cout
    moved = r * (3 if disjoint else 4)
    return (_gemm(rows, cin, n_taps * cout) + moved * itemsize / SCATTER_BANDWIDTH
            + slabs * (n_taps + 3) * OP_SECONDS)


@functools.lru_cache(maxsize=1024)
def choose(batch, in_spatial, cin, out_spatial, cout, kernel, strides, dilations, pad_before,
           itemsize, workers, budget):
    """``"phase"`` or ``"stationary"``: the cheaper by the model (ties: phase). Stationary is only
    a candidate when one ``(sample, input depth)`` slab of ``R`` fits in ``budget / workers``."""
    from conv3dt.impl import kernel as kernel_module
    from conv3dt.impl import stationary

    phases = kernel_module._geometry_plan(batch, in_spatial, cin, out_spatial, cout, kernel,
                                          strides, dilations, pad_before, itemsize, workers)
    taps, disjoint, _ = stationary.stationary_plan(in_spatial, out_spatial, kernel, strides,
                                                   dilations, pad_before)
    per_slab = stationary.slab_bytes(in_spatial, cout, len(taps), itemsize)
    if not taps or per_slab * workers > budget:
        return "phase"
    depth = stationary.slab_depth(in_spatial[0], budget, workers, per_slab)
    slabs = batch * -(-in_spatial[0] // depth)
    st = stationary_seconds(batch, in_spatial, cin, cout, len(taps), disjoint, slabs, itemsize)
    return "stationary" if st <= MARGIN * phase_seconds(phases, cout, itemsize) else "phase"
