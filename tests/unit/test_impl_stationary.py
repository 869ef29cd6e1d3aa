"""The input-stationary formulation (``impl.stationary``) and the cost model that picks it
(``impl.cost``): forced on, it agrees with the loop reference on disjoint and overlapping
geometries, chunked or not, serial or on two workers, keeps the accumulation dtype, and stays
within twice the output's bytes; the model takes it where the phase GEMMs are narrow and leaves
stride-1 3x3x3 to the phase path. No timings are asserted."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from conv3dt import impl
from conv3dt.impl import cost, stationary, threads
from conv3dt.impl import kernel as kernel_module
from conv3dt.impl.kernel import transposed_conv_ndhwc

from tests.unit.loop_reference import loop_conv3d_transpose

GEOMETRIES = {
    # value shape, filter shape, output spatial, strides, dilations, padding
    "k2s2 disjoint": ((2, 3, 4, 3, 5), (2, 2, 2, 3, 5), (6, 8, 6), (2, 2, 2), (1, 1, 1), "SAME"),
    "k3s2 overlapping": ((2, 4, 3, 3, 4), (3, 3, 3, 2, 4), (8, 6, 6), (2, 2, 2), (1, 1, 1), "SAME"),
    "k3s1 valid": ((1, 4, 4, 3, 3), (3, 3, 3, 2, 3), (6, 6, 5), (1, 1, 1), (1, 1, 1), "VALID"),
    "mixed dilated": ((2, 4, 5, 3, 2), (3, 2, 2, 3, 2), (7, 11, 6), (2, 2, 1), (1, 2, 3), "SAME"),
    "cropped taps": ((1, 2, 2, 2, 3), (5, 5, 1, 2, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), "SAME"),
}


def pads_for(value_shape, filter_shape, out_spatial, strides, dilations, padding):
    if padding == "VALID":
        return (0, 0, 0)
    return tuple(max(0, (value_shape[1 + a] - 1) * strides[a] + (filter_shape[a] - 1) * dilations[a]
                     + 1 - out_spatial[a]) // 2 for a in range(3))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("budget", ["whole", "one slab"])
@pytest.mark.parametrize("name", GEOMETRIES)
def test_stationary_matches_the_loops(name, budget, workers, monkeypatch):
    value_shape, filter_shape, out_spatial, strides, dilations, padding = GEOMETRIES[name]
    rng = np.random.default_rng(7)
    value = rng.standard_normal(value_shape)
    filter = rng.standard_normal(filter_shape)
    out_shape = (value_shape[0], *out_spatial, filter_shape[3])
    pads = pads_for(value_shape, filter_shape, out_spatial, strides, dilations, padding)
    size = 1 << 30 if budget == "whole" else 1
    ran = []
    real = threads.run
    monkeypatch.setattr(threads, "run", lambda items, n: (ran.append(len(items)), real(items, n)))
    result = stationary.input_stationary(value, filter, out_shape, strides, dilations, pads,
                                         workers, size)
    if budget == "one slab":   # one input depth per slab: slabs overlapping in depth (a race on
        # the output's adds if run concurrently) must stay in one item per sample, in order
        depth_disjoint = stationary.stationary_plan(value_shape[1:4], out_spatial,
                                                    filter_shape[:3], strides, dilations, pads)[2]
        assert ran == [value_shape[0] * value_shape[1] if depth_disjoint else value_shape[0]]
    y_star, _ = loop_conv3d_transpose(value, filter, out_shape, strides, dilations, padding)
    np.testing.assert_allclose(result, y_star, rtol=1e-12, atol=1e-12)


def test_disjoint_and_depth_disjoint_are_what_the_geometry_says():
    # K = s = 2: every output is reached once; K = 3, s = 2: taps 0 and 2 of an axis collide
    assert stationary.stationary_plan((3, 3, 3), (6, 6, 6), (2, 2, 2), (2, 2, 2), (1, 1, 1),
                                      (0, 0, 0))[1:] == (True, True)
    assert stationary.stationary_plan((3, 3, 3), (6, 6, 6), (3, 3, 3), (2, 2, 2), (1, 1, 1),
                                      (0, 0, 0))[1:] == (False, False)
    assert stationary.stationary_plan((3, 3, 3), (6, 6, 6), (2, 3, 3), (2, 2, 2), (1, 1, 1),
                                      (0, 0, 0))[1:] == (False, True)


@pytest.mark.parametrize("accum", [np.float32, np.float64, np.longdouble])
def test_forced_stationary_keeps_the_accumulation_dtype(accum, monkeypatch):
    monkeypatch.setattr(kernel_module, "FORMULATION", "stationary")
    value = np.ones((1, 2, 2, 2, 3), np.float16)
    out = transposed_conv_ndhwc(value, np.ones((3, 3, 3, 2, 3), np.float16), (4, 4, 4),
                                (2, 2, 2), (1, 1, 1), (1, 1, 1), accum)
    assert out.dtype == np.dtype(accum) and out.shape == (1, 4, 4, 4, 2)
    assert out.max() == 3 * 8    # Cin = 3 times the 2x2x2 taps reaching an interior output


def test_the_model_takes_stationary_for_narrow_cout_and_phase_for_stride1_3x3x3():
    def pick(batch, size, cin, cout, k, s, out):
        budget = max(int(batch * out ** 3 * cout * 4 * 0.75) - k ** 3 * cin * cout * 4, 65536)
        return cost.choose(batch, (size,) * 3, cin, (out,) * 3, cout, (k,) * 3, (s,) * 3,
                           (1, 1, 1), ((k - s) // 2,) * 3 if s == 1 else (0, 0, 0), 4, 1, budget)
    assert pick(2, 8, 128, 4, 3, 2, 16) == "stationary"   # measured 0.50x the phase time
    assert pick(1, 8, 256, 8, 2, 2, 16) == "stationary"   # measured 0.68x
    assert pick(2, 16, 32, 32, 3, 1, 16) == "phase"       # measured 1.29x (phase faster)
    assert pick(1, 32, 16, 8, 3, 1, 32) == "phase"        # measured 2.0x


def test_memory_of_a_call_the_model_sends_to_stationary_stays_within_twice_the_output():
    rng = np.random.default_rng(1)
    value = rng.standard_normal((2, 8, 8, 8, 128), dtype=np.float32)
    filter = rng.standard_normal((3, 3, 3, 4, 128), dtype=np.float32)
    args = (value, filter, [2, 16, 16, 16, 4], 2, "SAME")
    seen = []
    real = stationary.input_stationary

    def spy(*a):
        seen.append(1)
        return real(*a)

    stationary.input_stationary = spy
    try:
        impl.conv3d_transpose(*args)
        tracemalloc.start()
        tracemalloc.reset_peak()
        result = impl.conv3d_transpose(*args)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        stationary.input_stationary = real
    assert seen and peak <= 2 * result.nbytes
