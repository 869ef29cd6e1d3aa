"""Exact small-integer goldens: bit-identical results, zero tolerance (checks indexing)."""

from __future__ import annotations

import numpy as np
import pytest

from conv3dt import impl
from tests.unit.loop_reference import DTYPES, fresh_plan_caches  # noqa: F401  (autouse)


def _interior_count(index, size):
    return 1 if 0 < index < size - 1 else 0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("cin", [1, 3])
def test_all_ones_stride1_same_3x3x3_is_27_18_12_8_times_cin(dtype, cin):
    # TF's conv3d_transpose_test closed form: an output index on the border of an axis sees 2
    # of that axis's 3 taps, an interior one all 3; so 8, 12, 18 or 27 taps, times Cin.
    d, h, w, cout = 4, 5, 3, 2
    value = np.ones((2, d, h, w, cin), dtype)
    filter = np.ones((3, 3, 3, cout, cin), dtype)
    result = impl.conv3d_transpose(value, filter, [2, d, h, w, cout], [1, 1, 1, 1, 1], "SAME")
    per_interior = {0: 8, 1: 12, 2: 18, 3: 27}
    expected = np.empty((2, d, h, w, cout), np.float64)
    for i in range(d):
        for j in range(h):
            for k in range(w):
                interior = _interior_count(i, d) + _interior_count(j, h) + _interior_count(k, w)
                expected[:, i, j, k, :] = per_interior[interior] * cin
    assert result.dtype == dtype
    np.testing.assert_array_equal(result.astype(np.float64), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_all_ones_stride2_same_2x2x2_tiles_each_input_once(dtype):
    # kernel == stride: every output position is reached by exactly one (input, tap) pair.
    value = np.ones((1, 2, 3, 2, 4), dtype)
    filter = np.ones((2, 2, 2, 3, 4), dtype)
    result = impl.conv3d_transpose(value, filter, [1, 4, 6, 4, 3], 2, "SAME")
    np.testing.assert_array_equal(result.astype(np.float64), np.full((1, 4, 6, 4, 3), 4.0))


def test_stride2_same_3x3x3_one_dimensional_profile():
    # D=H=W axis: input 2 -> output 4 with K=3, s=2: total pad = (2-1)*2+3-4 = 1, before 0.
    # Output o collects taps k with o = 2*i + k: o=0:{k0}, o=1:{k1}, o=2:{k2 (i0), k0 (i1)},
    # o=3:{k1}. Per-axis tap counts (1, 1, 2, 1); the 3-D count is their product.
    value = np.ones((1, 2, 2, 2, 1), np.float32)
    filter = np.ones((3, 3, 3, 1, 1), np.float32)
    result = impl.conv3d_transpose(value, filter, [1, 4, 4, 4, 1], 2, "SAME")
    profile = np.array([1.0, 1.0, 2.0, 1.0])
    expected = profile[:, None, None] * profile[None, :, None] * profile[None, None, :]
    np.testing.assert_array_equal(result[0, ..., 0], expected)


def test_stride2_valid_integer_weights_exact_placement():
    # 1-D along W (D=H=1): value [1, 2], filter taps [1, 10, 100], s=2, VALID, O = 5 + slack 1.
    # o = 2*i + k: y = [1, 10, 100 + 2, 20, 200, 0] (position 5 is reached by no tap).
    value = np.array([1.0, 2.0], np.float64).reshape(1, 1, 1, 2, 1)
    filter = np.array([1.0, 10.0, 100.0], np.float64).reshape(1, 1, 3, 1, 1)
    result = impl.conv3d_transpose(value, filter, [1, 1, 1, 6, 1], [1, 1, 2], "VALID")
    np.testing.assert_array_equal(result.ravel(), [1, 10, 102, 20, 200, 0])


def test_stride3_same_odd_padding_goes_after():
    # W axis: I=2, K=4, s=3, O=5: total pad = (2-1)*3+4-5 = 2 -> before 1, after 1;
    # O=4: total 3 -> before 1, after 2. y[o] = sum over o + 1 = 3*i + k.
    value = np.array([1.0, 2.0], np.float32).reshape(1, 1, 1, 2, 1)
    filter = np.array([1.0, 10.0, 100.0, 1000.0], np.float32).reshape(1, 1, 4, 1, 1)
    five = impl.conv3d_transpose(value, filter, [1, 1, 1, 5, 1], [1, 1, 3], "SAME")
    np.testing.assert_array_equal(five.ravel(), [10, 100, 1002, 20, 200])
    four = impl.conv3d_transpose(value, filter, [1, 1, 1, 4, 1], [1, 1, 3], "SAME")
    np.testing.assert_array_equal(four.ravel(), [10, 100, 1002, 20])


def test_dilation2_stride2_integer_profile():
    # W axis: I=2, K=2, d=2 (eff 3), s=2, SAME, O=4: pad total (1*2+3-4)=1 -> before 0.
    # o = 2*i + 2*k: i0k0 -> 0, i0k1 -> 2, i1k0 -> 2, i1k1 -> 4 (outside). y = [1, 0, 20+2, 0].
    value = np.array([1.0, 2.0], np.float64).reshape(1, 1, 1, 2, 1)
    filter = np.array([1.0, 10.0], np.float64).reshape(1, 1, 2, 1, 1)
    result = impl.conv3d_transpose(value, filter, [1, 1, 1, 4, 1], [1, 1, 2], "SAME",
                                   dilations=[1, 1, 2])
    np.testing.assert_array_equal(result.ravel(), [1, 0, 12, 0])


def test_channels_mix_with_filter_cout_cin_order():
    # filter[..., co, ci]: y[co] = sum_ci value[ci] * filter[co, ci] for a 1x1x1 kernel.
    value = np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 1, 1, 1, 3)
    filter = np.array([[1.0, 0.0, 0.0], [0.0, 10.0, 0.0], [1.0, 1.0, 100.0], [0, 0, 0]],
                      np.float32).reshape(1, 1, 1, 4, 3)
    result = impl.conv3d_transpose(value, filter, [1, 1, 1, 1, 4], 1)
    np.testing.assert_array_equal(result.ravel(), [1, 20, 303, 0])
    ncdhw = impl.conv3d_transpose(value.reshape(1, 3, 1, 1, 1), filter, [1, 4, 1, 1, 1], 1,
                                  data_format="NCDHW")
    np.testing.assert_array_equal(ncdhw.ravel(), [1, 20, 303, 0])


@pytest.mark.parametrize("seed", range(4))
def test_random_small_integers_match_exact_integer_convolution(seed):
    # Integers with every partial sum exactly representable: bit-identical in every dtype.
    rng = np.random.default_rng(seed)
    value = rng.integers(-3, 4, (2, 3, 2, 3, 2))
    filter = rng.integers(-3, 4, (2, 3, 2, 3, 2))
    strides, output = (2, 1, 3), (6, 2, 8)
    # SAME pads: D: (3-1)*2+2-6=0; H: (2-1)*1+3-2=2 -> 1; W: (3-1)*3+2-8=0.
    pads = (0, 1, 0)
    expected = np.zeros((2, *output, 3), np.int64)
    for i, j, k in np.ndindex(3, 2, 3):
        for a, b, c in np.ndindex(2, 3, 2):
            o = (i * 2 + a - pads[0], j + b - pads[1], k * 3 + c - pads[2])
            if all(0 <= o[x] < output[x] for x in range(3)):
                expected[:, o[0], o[1], o[2], :] += value[:, i, j, k, :] @ filter[a, b, c].T
    for dtype in DTYPES:
        result = impl.conv3d_transpose(value.astype(dtype), filter.astype(dtype),
                                       [2, *output, 3], strides, "SAME")
        np.testing.assert_array_equal(result.astype(np.float64), expected)
