"""impl.conv3d_transpose_grads against the exact loop reference under the rigorous bound.

The bound holds impl to the accumulation it documents (float32 for the half dtypes): a kernel
that summed in float16/bfloat16 would exceed it. Random Cases cover every axis the forward's do
(4 dtypes, both layouts, N = 0..3, sizes 1, empty spatial, kernel > output, stride > kernel,
dilation, odd SAME pads, VALID slack and the truncation rule).
"""

from __future__ import annotations

import numpy as np
import pytest

from conv3dt import impl
from conv3dt.impl.gradients import transposed_conv_grads_ndhwc
from tests.unit.grad_helpers import (assert_within_bound, draw_grad_case, grad_call,
                                     impl_accumulation, reference_grads)
from tests.unit.loop_reference import (  # noqa: F401  (fresh_plan_caches: autouse fixture)
    DTYPES, fresh_plan_caches, loop_conv3d_transpose_grads)


def check_case(kwargs, strides, dilations):
    dvalue, dfilter = impl.conv3d_transpose_grads(**grad_call(kwargs))
    reference = reference_grads(kwargs, strides, dilations)
    dtype = np.asarray(kwargs["value"]).dtype
    assert_within_bound(kwargs, reference, dvalue, dfilter, impl_accumulation(dtype))
    return dvalue, dfilter


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_random_cases_within_bound(seed, dtype):
    rng = np.random.default_rng([seed, DTYPES.index(dtype), 13])
    check_case(*draw_grad_case(rng, dtype=dtype))


@pytest.mark.parametrize("seed", range(6))
def test_larger_channels_batch_and_dilation_within_bound(seed):
    rng = np.random.default_rng([seed, 1013])
    check_case(*draw_grad_case(rng, dtype=np.float32, max_in=4, max_channels=5, max_batch=3,
                               max_dilation=3, allow_empty=False))


@pytest.mark.parametrize("seed", range(4))
def test_ncdhw_equals_transposed_ndhwc(seed):
    rng = np.random.default_rng([seed, 2013])
    kwargs, _, _ = draw_grad_case(rng, dtype=np.float64, data_format="NDHWC")
    dvalue, dfilter = impl.conv3d_transpose_grads(**grad_call(kwargs))
    shape = kwargs["output_shape"]
    ncdhw = dict(grad_call(kwargs), value=np.moveaxis(kwargs["value"], 4, 1),
                 grad_output=np.moveaxis(kwargs["grad_output"], 4, 1),
                 output_shape=[shape[0], shape[4], *shape[1:4]], data_format="NCDHW")
    dvalue_c, dfilter_c = impl.conv3d_transpose_grads(**ncdhw)
    np.testing.assert_array_equal(dvalue_c, np.moveaxis(dvalue, 4, 1))
    np.testing.assert_array_equal(dfilter_c, dfilter)
    assert dvalue_c.flags.c_contiguous


def test_argument_forms_agree():
    rng = np.random.default_rng(3013)
    kwargs, strides, dilations = draw_grad_case(rng, dtype=np.float32, allow_empty=False,
                                                data_format="NDHWC")
    expected = check_case(kwargs, strides, dilations)
    value, filter, g = kwargs.pop("value"), kwargs.pop("filter"), kwargs.pop("grad_output")
    forms = [
        dict(kwargs, input=value, filters=filter, grad_output=g, strides=tuple(strides)),
        dict(kwargs, value=value, filter=filter, grad_output=g.tolist(),
             output_shape=np.array(kwargs["output_shape"], np.int32),
             strides=[1, *strides, 1], dilations=np.array([1, *dilations, 1]), name="grads"),
    ]
    for form in forms:
        for got, want in zip(impl.conv3d_transpose_grads(**form), expected):
            np.testing.assert_array_equal(got, want)
    positional = impl.conv3d_transpose_grads(value, filter, kwargs["output_shape"], g, strides,
                                             kwargs["padding"], "NDHWC", None, None, None,
                                             dilations)
    for got, want in zip(positional, expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape", [(0, 2, 2, 2, 3), (1, 2, 2, 2, 0), (1, 0, 2, 2, 3)])
@pytest.mark.parametrize("cout", [0, 4])
def test_zero_sizes_give_zeros_of_the_operand_shapes(shape, cout):
    n, d, h, w, cin = shape
    value = np.ones(shape, np.float32)
    filter = np.ones((2, 2, 2, cout, cin), np.float32)
    output_shape = [n, 2 * d, 2 * h, 2 * w, cout]
    dvalue, dfilter = impl.conv3d_transpose_grads(value, filter, output_shape,
                                                  np.ones(output_shape, np.float32), 2)
    assert dvalue.shape == shape and dfilter.shape == filter.shape
    assert dvalue.dtype == dfilter.dtype == np.float32
    assert not np.any(dvalue) and not np.any(dfilter)


def test_untouched_taps_and_inputs_get_zero_gradients():
    # SAME with a large pad: K = 5 taps, I = O = 1, P = 2: only tap 2 reaches the output, so
    # only it gets a filter gradient, and dvalue is that tap's contribution alone.
    rng = np.random.default_rng(5)
    value = rng.standard_normal((1, 1, 1, 1, 2))
    filter = rng.standard_normal((5, 1, 1, 3, 2))
    g = rng.standard_normal((1, 1, 1, 1, 3))
    kwargs = dict(value=value, filter=filter, output_shape=[1, 1, 1, 1, 3], grad_output=g,
                  strides=1, padding="SAME", data_format="NDHWC", dilations=1)
    dvalue, dfilter = check_case(kwargs, (1, 1, 1), (1, 1, 1))
    assert np.any(dfilter[2]) and not np.any(dfilter[[0, 1, 3, 4]])   # P = 2: only tap 2
    np.testing.assert_allclose(dvalue[0, 0, 0, 0], g[0, 0, 0, 0] @ filter[2, 0, 0], rtol=1e-15)


@pytest.mark.parametrize("accum", [np.float32, np.float64, np.longdouble])
def test_kernel_accumulates_in_the_requested_dtype(accum):
    rng = np.random.default_rng(17)
    # float32-representable inputs: converting them to accum is exact
    value = rng.standard_normal((2, 3, 2, 3, 2)).astype(np.float32).astype(np.float64)
    filter = rng.standard_normal((3, 2, 2, 3, 2)).astype(np.float32).astype(np.float64)
    g = rng.standard_normal((2, 5, 3, 6, 3)).astype(np.float32).astype(np.float64)
    dvalue, dfilter = transposed_conv_grads_ndhwc(value, filter, g, (2, 1, 2), (1, 2, 1),
                                                  (1, 0, 0), accum)
    assert dvalue.dtype == dfilter.dtype == np.dtype(accum)
    (dv_star, dv_abs), (df_star, df_abs) = loop_conv3d_transpose_grads(
        value, filter, (2, 5, 3, 6, 3), g, (2, 1, 2), (1, 2, 1), "SAME")
    unit = float(np.finfo(accum).eps) / 2
    for result, star, magnitude, n in ((dvalue, dv_star, dv_abs, 3 * 12),
                                       (dfilter, df_star, df_abs, 2 * 18)):
        bound = (unit + 2.0 ** -53) * np.abs(star) + 1.01 * n * unit / (1 - n * unit) * magnitude
        assert np.all(np.abs(result.astype(np.float64) - star) <= bound)
