"""``conv3dt.bench_ceiling``: the GEMMs each formulation is bounded by, and the bounds' summary.
No timing is asserted: a counting timer stands in for the clock."""
from __future__ import annotations

import math

import numpy as np

from conv3dt.bench_ceiling import Ceiling, Gemm, ceiling, formulation_gemms, gemm_seconds
from conv3dt.bench_impl import make_case, summarise

RNG = np.random.default_rng(0)


def case(batch, size, cin, cout, kernel, stride, dilation=1, padding="SAME"):
    return make_case(("t", batch, size, cin, cout, kernel, stride, dilation, padding), RNG)


def test_unet_up_k2s2_is_eight_one_tap_phases_and_one_eight_tap_product():
    gemms = formulation_gemms(case(2, 4, 3, 5, 2, 2))
    assert gemms["phase"] == [Gemm(2 * 4 ** 3, 3, 5)] * 8       # each phase: 4³ outputs, 1 tap
    assert gemms["stationary"] == [Gemm(2 * 4 ** 3, 3, 8 * 5)]


def test_stride_one_same_is_one_phase_of_every_tap():
    gemms = formulation_gemms(case(1, 6, 4, 2, 3, 1))
    assert gemms["phase"] == [Gemm(6 ** 3, 27 * 4, 2)]
    assert gemms["stationary"] == [Gemm(6 ** 3, 4, 27 * 2)]


def test_phase_products_cover_every_output_once_and_count_the_reaching_taps():
    # k3 s2 SAME: per axis the two phases hold 1 and 2 taps; outputs 2·size per axis
    kwargs = case(1, 4, 2, 3, 3, 2)
    phase = formulation_gemms(kwargs)["phase"]
    assert sum(g.m for g in phase) == 8 ** 3
    assert sorted(g.k for g in phase) == sorted(2 * a * b * c for a in (1, 2) for b in (1, 2)
                                                for c in (1, 2))
    assert {g.n for g in phase} == {3}


def test_gemm_seconds_takes_the_faster_way_and_runs_the_products():
    seen = []

    def timer(f):
        f()
        seen.append(f)
        return 2.0 if len(seen) == 1 else 1.0
    assert gemm_seconds([Gemm(8, 4, 3)], timer) == 1.0 and len(seen) == 2
    assert gemm_seconds([], timer) == math.inf


def test_ceiling_is_against_tf_time_and_names_the_faster_formulation():
    kwargs = case(1, 4, 2, 2, 2, 2)
    times = iter([4.0, 4.0, 1.0, 3.0])      # phase: threaded, workers; stationary: both

    bound = ceiling(kwargs, flops=2e9, sgemm_gflops=100.0, t_tf=0.5,
                    time_per_call=lambda f: next(times))
    assert bound == Ceiling(floor=2e9 / 100e9 / 0.5, gemm=2.0, formulation="stationary")


def test_summary_reports_the_median_and_worst_of_each_bound_over_the_realistic_rows():
    rows = [dict(label=f"r{i}", ratio=1.0, flops=i + 1, roof=0.5, memory=1.0, t_impl=1.0,
                 t_tf=1.0, busy=None, ceiling=Ceiling(f, g, "phase"))
            for i, (f, g) in enumerate([(0.2, 0.4), (0.6, 0.9), (0.4, 0.5)])]
    rows.append(dict(label="tiny", ratio=0.1, flops=0, roof=0.0, memory=50.0, t_impl=1e-5,
                     t_tf=1e-4, busy=None, ceiling=Ceiling(9.0, 9.0, "phase")))
    s = summarise(rows)
    assert s["floor"] == (0.4, 0.6) and s["gemm"] == (0.5, 0.9)     # the tiny row left out
