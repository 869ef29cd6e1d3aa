"""Adjoint identity <conv3d(y, w), x> == <y, conv3d_transpose(x, w)> in float64 (same w array:
conv3d_transpose's [K, Cout, Cin] is conv3d's [K, Cin, Cout] seen from the other side)."""

from __future__ import annotations

import numpy as np
import pytest

import impl
from tests.unit.loop_reference import fresh_plan_caches  # noqa: F401  (autouse fixture)


def _random_geometry(rng):
    padding = ("SAME", "VALID")[rng.integers(2)]
    kernels, strides, dilations, sizes = [], [], [], []
    for _ in range(3):
        kernel, stride, dilation = (int(v) for v in rng.integers(1, [4, 4, 3]))
        effective = (kernel - 1) * dilation + 1
        size = int(rng.integers(effective if padding == "VALID" else 1, effective + 5))
        kernels.append(kernel)
        strides.append(stride)
        dilations.append(dilation)
        sizes.append(size)
    return padding, kernels, strides, dilations, sizes


@pytest.mark.parametrize("data_format", ["NDHWC", "NCDHW"])
@pytest.mark.parametrize("seed", range(12))
def test_conv3d_transpose_is_the_adjoint_of_conv3d(seed, data_format):
    rng = np.random.default_rng([seed, len(data_format)])
    padding, kernels, strides, dilations, sizes = _random_geometry(rng)
    batch, cin, cout = (int(v) for v in rng.integers(1, 4, 3))
    forward_filter = rng.standard_normal((*kernels, cin, cout))  # tf.nn.conv3d: [K.., Cin, Cout]
    if data_format == "NDHWC":
        y = rng.standard_normal((batch, *sizes, cin))
    else:
        y = rng.standard_normal((batch, cin, *sizes))
    forward = impl.conv3d(y, forward_filter, strides, padding, data_format, dilations)
    x = rng.standard_normal(forward.shape)
    transposed = impl.conv3d_transpose(x, forward_filter, y.shape, strides,
                                       padding, data_format, dilations=dilations)
    left, right = np.vdot(forward, x), np.vdot(y, transposed)
    scale = np.vdot(np.abs(forward), np.abs(x)) + np.vdot(np.abs(y), np.abs(transposed))
    assert abs(left - right) <= 1e-12 * scale


def test_conv3d_forward_integer_golden():
    # 1-D along W: x = [1, 2, 3, 4], w = [1, 10], stride 2, VALID -> [1 + 20, 3 + 40].
    x = np.array([1.0, 2, 3, 4]).reshape(1, 1, 1, 4, 1)
    w = np.array([1.0, 10]).reshape(1, 1, 2, 1, 1)
    out = impl.conv3d(x, w, [1, 1, 1, 2, 1], "VALID")
    np.testing.assert_array_equal(out.ravel(), [21, 43])
    # SAME, stride 1, dilation 2 (eff 3, pad 1 before): [0*1+2*10, 1*1+3*10, 2+40, 3+0, 4 + 0]
    same = impl.conv3d(x, w, 1, "SAME", dilations=[1, 1, 2])
    np.testing.assert_array_equal(same.ravel(), [20, 31, 42, 3])


@pytest.mark.parametrize("bad", [dict(padding="same"), dict(data_format="NHWC"),
                                 dict(filters=np.ones((2, 2, 2, 3, 1)))])
def test_conv3d_rejects_invalid_arguments(bad):
    kwargs = dict(input=np.ones((1, 4, 4, 4, 2)), filters=np.ones((2, 2, 2, 2, 1)), strides=1,
                  padding="SAME")
    kwargs.update(bad)
    with pytest.raises(ValueError):
        impl.conv3d(**kwargs)
