"""Exact small-integer goldens of both gradients: bit-identical, zero tolerance (indexing, the
stride phases, the odd SAME pad, dilation and the channel order). Every partial sum is an
integer well inside each dtype's exact range, so any correct summation order gives them exactly.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from conv3dt import impl
from tests.unit.loop_reference import DTYPES, fresh_plan_caches  # noqa: F401  (autouse)


def grads(value, filter, output_shape, g, strides, padding, dtype=np.float64, **kwargs):
    """impl's gradients of integer data cast to ``dtype``, returned as float64 arrays."""
    dvalue, dfilter = impl.conv3d_transpose_grads(
        np.asarray(value, dtype), np.asarray(filter, dtype), output_shape,
        np.asarray(g, dtype), strides, padding, **kwargs)
    assert dvalue.dtype == dfilter.dtype == np.dtype(dtype)
    return dvalue.astype(np.float64), dfilter.astype(np.float64)


def along_w(values):
    """A 1-D profile as a 5-D array along W (N = D = H = C = 1)."""
    return np.array(values, np.float64).reshape(1, 1, 1, -1, 1)


def along_w_filter(values):
    return np.array(values, np.float64).reshape(1, 1, -1, 1, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_all_ones_stride1_same_3x3x3_closed_forms(dtype):
    # TF's testGradient geometry. dvalue: an input on the border of an axis reaches 2 of that
    # axis's 3 taps, an interior one 3: 8/12/18/27 taps, times Cout. dfilter[k]: tap k = 0 and 2
    # pair I - 1 inputs with outputs along an axis, tap 1 all I; the product over axes, times N.
    n, d, h, w, cin, cout = 2, 4, 5, 3, 3, 2
    dvalue, dfilter = grads(np.ones((n, d, h, w, cin)), np.ones((3, 3, 3, cout, cin)),
                            [n, d, h, w, cout], np.ones((n, d, h, w, cout)), 1, "SAME", dtype)
    def reach(size):
        return np.array([2 if i in (0, size - 1) else 3 for i in range(size)], np.float64)
    taps = reach(d)[:, None, None] * reach(h)[None, :, None] * reach(w)[None, None, :]
    np.testing.assert_array_equal(dvalue, np.broadcast_to(cout * taps[None, ..., None],
                                                          dvalue.shape))
    def pairs(size):
        return np.array([size - 1, size, size - 1], np.float64)
    per_tap = pairs(d)[:, None, None] * pairs(h)[None, :, None] * pairs(w)[None, None, :]
    np.testing.assert_array_equal(dfilter, np.broadcast_to(n * per_tap[..., None, None],
                                                           dfilter.shape))


# bfloat16 (integers exact up to 256) is left out of the decimal profiles below: 321, 543 and
# 3210 are not bfloat16 numbers. The closed forms above and the random integers cover it.
PROFILE_DTYPES = [d for d in DTYPES if d.name != "bfloat16"]


@pytest.mark.parametrize("dtype", PROFILE_DTYPES, ids=lambda d: d.name)
def test_stride2_valid_slack_profile(dtype):
    # o = 2i + k, I = 2, K = 3, O = 6 (VALID slack: output 5 feeds nothing).
    # dvalue[i] = sum_k g[2i + k] f[k]: [1 + 20 + 300, 3 + 40 + 500];
    # dfilter[k] = sum_i v[i] g[2i + k]: [1 + 6, 2 + 8, 3 + 10].
    v, f = along_w([1, 2]), along_w_filter([1, 10, 100])
    for last in (6, -50):   # the slack element must not matter
        dvalue, dfilter = grads(v, f, [1, 1, 1, 6, 1], along_w([1, 2, 3, 4, 5, last]),
                                [1, 1, 2], "VALID", dtype)
        np.testing.assert_array_equal(dvalue.ravel(), [321, 543])
        np.testing.assert_array_equal(dfilter.ravel(), [7, 10, 13])


@pytest.mark.parametrize("dtype", PROFILE_DTYPES, ids=lambda d: d.name)
def test_stride3_same_odd_padding_goes_after(dtype):
    # I = 2, K = 4, s = 3, O = 5: total pad 2, before 1; o = 3i + k - 1.
    # i = 0 reaches o = 0, 1, 2 through k = 1, 2, 3; i = 1 reaches o = 2, 3, 4 through k = 0, 1, 2.
    dvalue, dfilter = grads(along_w([1, 2]), along_w_filter([1, 10, 100, 1000]), [1, 1, 1, 5, 1],
                            along_w([1, 2, 3, 4, 5]), [1, 1, 3], "SAME", dtype)
    np.testing.assert_array_equal(dvalue.ravel(), [10 + 200 + 3000, 3 + 40 + 500])
    np.testing.assert_array_equal(dfilter.ravel(), [2 * 3, 1 * 1 + 2 * 4, 1 * 2 + 2 * 5, 1 * 3])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_dilation2_stride2_profile(dtype):
    # I = 2, K = 2, d = 2, s = 2, SAME, O = 4, P = 0: o = 2i + 2k; (i, k) = (1, 1) -> 4 is dropped.
    dvalue, dfilter = grads(along_w([1, 2]), along_w_filter([1, 10]), [1, 1, 1, 4, 1],
                            along_w([1, 2, 3, 4]), [1, 1, 2], "SAME", dtype, dilations=[1, 1, 2])
    np.testing.assert_array_equal(dvalue.ravel(), [1 * 1 + 3 * 10, 3 * 1])
    np.testing.assert_array_equal(dfilter.ravel(), [1 * 1 + 2 * 3, 1 * 3])


@pytest.mark.parametrize("data_format", ["NDHWC", "NCDHW"])
def test_channels_follow_the_cout_cin_filter_order(data_format):
    # 1x1x1 kernel: dvalue[ci] = sum_co g[co] f[co, ci]; dfilter[co, ci] = g[co] v[ci].
    v = np.array([1.0, 2.0, 3.0])
    f = np.array([[1.0, 0, 0], [0, 10, 0], [1, 1, 100], [0, 0, 0]])
    g = np.array([1.0, 2, 3, 4])
    def shaped(x):
        return x.reshape(1, 1, 1, 1, -1) if data_format == "NDHWC" else x.reshape(1, -1, 1, 1, 1)
    out = [1, 1, 1, 1, 4] if data_format == "NDHWC" else [1, 4, 1, 1, 1]
    dvalue, dfilter = grads(shaped(v), f.reshape(1, 1, 1, 4, 3), out, shaped(g), 1, "SAME",
                            data_format=data_format)
    np.testing.assert_array_equal(dvalue.ravel(), [1 + 3, 20 + 3, 300])
    np.testing.assert_array_equal(dfilter.reshape(4, 3), np.outer(g, v))


def integer_gradients(value, filter, g, strides, dilations, pads):
    """Both gradients of integer data by int64 loops over (n, i, k) (independent of impl)."""
    dvalue, dfilter = np.zeros_like(value), np.zeros_like(filter)
    out = g.shape[1:4]
    for i in np.ndindex(*value.shape[1:4]):
        for k in np.ndindex(*filter.shape[:3]):
            o = tuple(i[a] * strides[a] + k[a] * dilations[a] - pads[a] for a in range(3))
            if all(0 <= o[a] < out[a] for a in range(3)):
                dvalue[:, i[0], i[1], i[2], :] += g[:, o[0], o[1], o[2], :] @ filter[k]
                dfilter[k] += g[:, o[0], o[1], o[2], :].T @ value[:, i[0], i[1], i[2], :]
    return dvalue, dfilter


@pytest.mark.parametrize("seed", range(4))
def test_random_small_integers_are_exact_in_every_dtype(seed):
    # |entries| <= 2: every dvalue sum is at most 4 * Cout * taps = 4 * 3 * 12 = 144 and every
    # dfilter sum at most 4 * N * positions = 4 * 2 * 18 = 144, exact even in bfloat16 (256).
    rng = np.random.default_rng(seed)
    value = rng.integers(-2, 3, (2, 3, 2, 3, 2))
    filter = rng.integers(-2, 3, (2, 3, 2, 3, 2))
    strides, dilations, output = (2, 1, 3), (1, 2, 1), (6, 2, 8)
    # SAME pads: D: (3-1)*2+2-6 = 0; H: (2-1)*1+5-2 = 4 -> 2; W: (3-1)*3+2-8 = 0.
    g = rng.integers(-2, 3, (2, *output, 3))
    expected = integer_gradients(value, filter, g, strides, dilations, (0, 2, 0))
    assert np.any(expected[0]) and np.any(expected[1])
    for dtype, fmt in itertools.product(DTYPES, ("NDHWC", "NCDHW")):
        if fmt == "NDHWC":
            got = grads(value, filter, [2, *output, 3], g, strides, "SAME", dtype,
                        dilations=dilations)
        else:
            got = grads(np.moveaxis(value, 4, 1), filter, [2, 3, *output], np.moveaxis(g, 4, 1),
                        strides, "SAME", dtype, data_format="NCDHW", dilations=dilations)
            got = (np.moveaxis(got[0], 1, 4), got[1])
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


@pytest.mark.parametrize("dtype, positions, rounded", [
    (np.float16, (13, 13, 13), 2196),    # 2197 ones: float32 sum 2197, rounded once (tie to even)
    (DTYPES[1], (7, 37, 1), 260),         # bfloat16, 259 ones: 259 -> 260 (tie to even)
], ids=["float16", "bfloat16"])
def test_long_dfilter_sum_accumulates_in_float32_and_rounds_once(dtype, positions, rounded):
    # dfilter of a 1x1x1 kernel sums N * positions products: here all ones. Accumulated in the
    # half dtype itself the sum would stop growing at 2048 (float16) or 256 (bfloat16), where
    # adding 1 rounds back; impl's float32 accumulation reaches the exact count.
    value = np.ones((1, *positions, 1), dtype)
    dvalue, dfilter = grads(value, np.ones((1, 1, 1, 1, 1)), [1, *positions, 1],
                            np.ones((1, *positions, 1)), 1, "VALID", dtype)
    assert dfilter.ravel().tolist() == [rounded]
    assert np.all(dvalue == 1)
