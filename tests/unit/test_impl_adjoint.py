"""Adjoint identity <conv3d(y, w), x> == <y, conv3d_transpose(x, w)> in float64 (same w array:
conv3d_transpose's [K, Cout, Cin] is conv3d's [K, Cin, Cout] seen from the other side)."""

from __future__ import annotations

import numpy as np
import pytest

from conv3dt import impl
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


@pytest.mark.parametrize("kwargs, message", [
    (dict(padding="same"), "padding='same' is invalid; expected exactly 'SAME' or 'VALID'"),
    (dict(data_format="NHWC"),
     "data_format='NHWC' is invalid; expected exactly 'NDHWC' or 'NCDHW'"),
    (dict(input=np.ones((1, 4, 4, 2))), "input.shape=(1, 4, 4, 2) is invalid; expected a 5-D shape"),
    (dict(filters=np.ones((2, 2, 2, 1))),
     "filters.shape=(2, 2, 2, 1) is invalid; expected a 5-D shape [KD, KH, KW, Cin, Cout]"),
    (dict(filters=np.ones((2, 2, 2, 3, 1))),
     "filters.shape=(2, 2, 2, 3, 1) is invalid; expected in_channels (entry 3) == input's "
     "channel count 2"),
    (dict(input=np.ones((1, 1, 4, 4, 2)), filters=np.ones((3, 1, 1, 2, 1)), padding="VALID"),
     "input.shape=1 is invalid; expected a spatial size >= 2 for VALID with effective kernel 3"),
])
def test_conv3d_rejects_invalid_arguments_with_exact_messages(kwargs, message):
    call = dict(input=np.ones((1, 4, 4, 4, 2)), filters=np.ones((2, 2, 2, 2, 1)), strides=1,
                padding="SAME")
    call.update(kwargs)
    with pytest.raises(ValueError) as caught:
        impl.conv3d(**call)
    assert str(caught.value) == "conv3d_transpose: " + message


@pytest.mark.parametrize("size, kernel, stride, windows", [
    (0, 3, 2, 0),  # trunc((0 - 3 + 2) / 2) = trunc(-0.5) = 0 (floor would be -1)
    (1, 5, 3, 0),  # trunc(-1 / 3) = 0
    (1, 3, 3, 0),  # 1 / 3 -> 0
    (4, 3, 3, 1),
    (7, 3, 2, 3),
])
def test_conv3d_valid_output_size_uses_truncating_division(size, kernel, stride, windows):
    x = np.ones((1, size, 1, 1, 1))
    w = np.ones((kernel, 1, 1, 1, 1))
    out = impl.conv3d(x, w, [stride, 1, 1], "VALID")
    assert out.shape == (1, windows, 1, 1, 1)
    assert np.all(out == kernel)


def test_conv3d_ncdhw_is_transposed_ndhwc():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 4, 3, 3))
    w = rng.standard_normal((2, 3, 2, 3, 2))
    ndhwc = impl.conv3d(x, w, [1, 2, 1], "SAME", dilations=[2, 1, 1])
    ncdhw = impl.conv3d(np.moveaxis(x, 4, 1), w, [1, 1, 1, 2, 1], "SAME", "NCDHW",
                        dilations=[1, 1, 2, 1, 1])
    np.testing.assert_allclose(ncdhw, np.moveaxis(ndhwc, 4, 1), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("name", ["strides", "dilations"])
def test_conv3d_names_a_bad_stride_or_dilation(name):
    kwargs = dict(input=np.ones((1, 4, 4, 4, 1)), filters=np.ones((2, 2, 2, 1, 1)), strides=1,
                  padding="SAME")
    kwargs[name] = [1, 2]
    with pytest.raises(ValueError) as caught:
        impl.conv3d(**kwargs)
    assert str(caught.value) == (f"conv3d_transpose: {name}=[1, 2] is invalid; expected an int "
                                 "or a list of length 1, 3 or 5")
