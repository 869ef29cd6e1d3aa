"""The gradients at the integer limits: strides and dilations of 2³¹ − 1 … 2⁶⁴ + 3 make valid calls
when the input has one element along that axis (SAME, ``O ∈ [1, s]``) or the kernel one tap. The
tap-wise kernel forms only the real products, so such calls cost what their small outputs cost.
Small-integer data: every sum is exact, compared bit for bit with the loop reference."""
from __future__ import annotations

import time

import numpy as np
import pytest

from conv3dt import impl
from tests.unit.loop_reference import loop_conv3d_transpose_grads
from tests.unit.test_impl_limits import LIMITS, small_ints


def check(value, filter, output_shape, strides, dilations, padding):
    g = small_ints(output_shape, 5)
    start = time.perf_counter()
    dvalue, dfilter = impl.conv3d_transpose_grads(value, filter, output_shape, g, strides,
                                                  padding, dilations=dilations)
    took = time.perf_counter() - start
    (dv, _), (df, _) = loop_conv3d_transpose_grads(value, filter, output_shape, g, strides[1:4],
                                                   dilations[1:4], padding)
    np.testing.assert_array_equal(dvalue, dv.astype(np.float32))
    np.testing.assert_array_equal(dfilter, df.astype(np.float32))
    assert took < 5.0, f"{took:.1f} s"
    return dvalue, dfilter


@pytest.mark.parametrize("limit", LIMITS, ids=hex)
@pytest.mark.parametrize("axis", (0, 1, 2))
def test_stride_at_the_limit_with_one_input_element(limit, axis):
    strides = [1, 2, 1, 2, 1]
    strides[1 + axis] = limit
    in_spatial = [2, 2, 2]
    in_spatial[axis] = 1
    value = small_ints((2, *in_spatial, 3), 1)
    filter = small_ints((3, 2, 3, 4, 3), 2)
    for out_along in (1, 3):
        out = [2, *[out_along if a == axis else in_spatial[a] * strides[1 + a]
                    for a in range(3)], 4]
        check(value, filter, out, strides, [1, 1, 1, 1, 1], "SAME")


@pytest.mark.parametrize("limit", LIMITS, ids=hex)
@pytest.mark.parametrize("kernel", (1, 3))
def test_dilation_at_the_limit(limit, kernel):
    value = small_ints((1, 1, 2, 2, 3), 3)
    filter = small_ints((kernel, 2, 1, 4, 3), 4)
    dilations = [1, limit, 1, 1, 1]
    dvalue, dfilter = check(value, filter, [1, 5, 2, 2, 4], [1, 5, 1, 1, 1], dilations, "SAME")
    if kernel == 3:   # only the middle tap reaches the output across a pad of about the limit
        assert not np.any(dfilter[[0, 2]])
