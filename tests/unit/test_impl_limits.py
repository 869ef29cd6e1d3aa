"""impl at the integer limits: strides and dilations of 2³¹ − 1, 2³¹, 2⁶³ − 1, 2⁶³ and beyond make
valid calls whenever the input has one element along that axis (SAME: ``O ∈ [1, s]``; a kernel of
one tap makes any dilation harmless). Their outputs are small; impl must compute them exactly and
at once. It used to loop over every residue of the stride (hours for 2³¹ − 1), allocate the
zero-padded dilated window (96 GiB for dilation 2³¹ − 1) or hand NumPy byte strides past int64.

Each output is compared with the definition-level loop reference (exact rational sums), with
small-integer data so that float32 sums are exact too."""
from __future__ import annotations

import time

import numpy as np
import pytest

from conv3dt import impl
from tests.unit.loop_reference import loop_conv3d_transpose

LIMITS = (2**31 - 1, 2**31, 2**32 + 1, 2**63 - 1, 2**63, 2**64 + 3)


def small_ints(shape, seed):
    return np.random.default_rng(seed).integers(-3, 4, shape).astype(np.float32)


def check(value, filter, output_shape, strides, dilations, padding):
    start = time.perf_counter()
    y = impl.conv3d_transpose(value, filter, output_shape, strides=strides, dilations=dilations,
                              padding=padding)
    took = time.perf_counter() - start
    expected, _ = loop_conv3d_transpose(value, filter, output_shape, strides[1:4],
                                        dilations[1:4], padding)
    assert y.shape == tuple(output_shape)
    np.testing.assert_array_equal(y, expected.astype(np.float32))
    assert took < 5.0, f"{took:.1f} s for a {y.size}-element output"   # was hours / MemoryError
    return y


@pytest.mark.parametrize("limit", LIMITS, ids=hex)
@pytest.mark.parametrize("axis", (0, 1, 2))
def test_stride_at_the_limit_with_one_input_element(limit, axis):
    strides = [1, 2, 1, 2, 1]
    strides[1 + axis] = limit
    in_spatial = [2, 2, 2]
    in_spatial[axis] = 1
    value = small_ints((2, *in_spatial, 3), 1)
    filter = small_ints((3, 2, 3, 4, 3), 2)
    for out_along in (1, 3):                      # SAME: any O in [1, s] when I = 1
        out = [2, *[out_along if a == axis else in_spatial[a] * strides[1 + a] for a in range(3)], 4]
        check(value, filter, out, strides, [1, 1, 1, 1, 1], "SAME")


@pytest.mark.parametrize("limit", LIMITS, ids=hex)
@pytest.mark.parametrize("kernel", (1, 2, 3))
def test_dilation_at_the_limit(limit, kernel):
    """K = 1: any dilation, SAME or VALID. K = 3, SAME, I = 1: the middle tap reaches the output
    across a leading pad of about 2⁶³ elements; the outer taps land in the padding."""
    value = small_ints((1, 1, 2, 2, 3), 3)
    filter = small_ints((kernel, 2, 1, 4, 3), 4)
    dilations = [1, limit, 1, 1, 1]
    y = check(value, filter, [1, 5, 2, 2, 4], [1, 5, 1, 1, 1], dilations, "SAME")   # O ≤ s
    if kernel == 3 and np.any(filter[1]):
        assert np.any(y), "the middle tap reaches the output"
    if kernel == 1:
        check(value, filter, [1, 1, 3, 2, 4], [1, 1, 1, 1, 1], dilations, "VALID")
