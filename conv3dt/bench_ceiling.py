"""How fast impl could be at best, for ``conv3dt bench impl``: two lower bounds on impl's time.

impl computes with NumPy and the BLAS only (its README). Two figures per shape bound what any
implementation built that way can reach, next to TF's time measured in the same run:

* **floor** = ``flops / SGEMM rate / t_TF``: the ratio impl/TF of an implementation running every
  input-tap product (``bench_impl.flops_of``) at the same process's 1024³ SGEMM rate (the
  practical roofline, ``bench_machine.sgemm_seconds``), with no other cost. A ratio below the
  floor is out of reach for a BLAS-bound implementation of this arithmetic.
* **gemm** = ``t_GEMMs / t_TF`` for the faster of impl's two formulations, timing *only their
  GEMMs*, each as one product over the whole call (the most favourable chunking), on
  pre-built contiguous operands, with every data movement outside the BLAS left out:

  - ``phase`` (``impl.kernel``, output-stationary): per phase a ``(N·ΠM_p, T_p·Cin) x (T_p·Cin,
    Cout)`` product (``M_p`` the phase's outputs per axis, ``T_p`` its taps), for the im2col
    windows;
  - ``stationary`` (``impl.stationary``, input-stationary): one ``(N·ΠI, Cin) x (Cin, T·Cout)``
    product, before the col2im scatter.

  Each list of products is timed both ways impl could run it on this machine, the BLAS at its
  default threads, and one BLAS thread per product with the rows split over ``impl.threads``'
  workers, and the faster counts.

``gemm`` is what the formulation costs if its copies and adds were free: where it exceeds a goal
ratio, no chunking or data-movement trick inside that formulation meets the goal.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from conv3dt import impl
from conv3dt.impl import threads
from conv3dt.impl.kernel import axis_phases
from conv3dt.impl.stationary import stationary_plan

__all__ = ["Gemm", "formulation_gemms", "gemm_seconds", "Ceiling", "ceiling"]


class Gemm(NamedTuple):
    """One product ``(m, k) x (k, n)``."""
    m: int
    k: int
    n: int

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n


def formulation_gemms(kwargs) -> dict[str, list[Gemm]]:
    """The GEMMs of each formulation (module docstring) for one call's keyword arguments."""
    call = impl.normalize_call(**kwargs)
    batch, in_spatial, cin = call.value.shape[0], call.value.shape[1:4], call.value.shape[4]
    kernel, cout = call.filter.shape[:3], call.filter.shape[3]
    geometry = (tuple(call.output_spatial), tuple(call.strides), tuple(call.dilations),
                tuple(call.pad_before))
    per_axis = [axis_phases(geometry[0][a], in_spatial[a], kernel[a], geometry[1][a],
                            geometry[2][a], geometry[3][a]) for a in range(3)]
    phase = []
    for d, h, w in ((d, h, w) for d in per_axis[0] for h in per_axis[1] for w in per_axis[2]):
        taps = len(d[2]) * len(h[2]) * len(w[2])
        phase.append(Gemm(batch * d[1] * h[1] * w[1], taps * cin, cout))
    taps, _, _ = stationary_plan(tuple(in_spatial), geometry[0], tuple(kernel), *geometry[1:])
    stationary = [Gemm(batch * math.prod(in_spatial), cin, len(taps) * cout)] if taps else []
    return {"phase": phase, "stationary": stationary}


@functools.lru_cache(maxsize=64)
def _operands(gemm: Gemm):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((gemm.m, gemm.k), dtype=np.float32),
            rng.standard_normal((gemm.k, gemm.n), dtype=np.float32),
            np.empty((gemm.m, gemm.n), np.float32))


def _row_halves(gemm: Gemm, parts: int):
    a, b, c = _operands(gemm)
    bounds = [gemm.m * p // parts for p in range(parts + 1)]
    return [functools.partial(np.matmul, a[lo:hi], b, out=c[lo:hi])
            for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


def gemm_seconds(gemms: list[Gemm], time_per_call) -> float:
    """Seconds for ``gemms`` run back to back, the faster of: the BLAS at its default threads,
    and one BLAS thread per product with each product's rows split over impl's workers.
    ``time_per_call(f)``: the caller's timer (seconds per call of ``f``)."""
    if not gemms:
        return math.inf
    for gemm in gemms:
        _operands(gemm)

    def threaded():
        for gemm in gemms:
            a, b, c = _operands(gemm)
            np.matmul(a, b, out=c)

    best = time_per_call(threaded)
    with threads.plan(math.inf) as workers:
        items = [item for gemm in gemms for item in _row_halves(gemm, workers)]
        best = min(best, time_per_call(lambda: threads.run(items, workers)))
    return best


class Ceiling(NamedTuple):
    """The two bounds of one shape (module docstring): ``floor`` and ``gemm`` as ratios to TF's
    time, and the formulation whose GEMMs were faster."""
    floor: float
    gemm: float
    formulation: str


def ceiling(kwargs, flops: float, sgemm_gflops: float, t_tf: float, time_per_call) -> Ceiling:
    """Both bounds for one call, against TF's measured ``t_tf`` seconds."""
    times = {name: gemm_seconds(gemms, time_per_call)
             for name, gemms in formulation_gemms(kwargs).items()}
    best = min(times, key=times.__getitem__)
    _operands.cache_clear()
    return Ceiling(flops / (sgemm_gflops * 1e9) / t_tf, times[best] / t_tf, best)
