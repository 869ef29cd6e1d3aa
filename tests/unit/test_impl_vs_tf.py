"""Differential: impl vs TensorFlow 2.21's real op, in-process, both judged against the exact loop
reference under the rigorous bound.

TF paths used (facts established for 2.21 CPU, see impl/README.md):
* eager ``tf.compat.v1.nn.conv3d_transpose`` (Conv3DBackpropInputV2): NDHWC only ("only supports
  NDHWC on the CPU") and dilation 1 only ("does not yet support dilation rates larger than 1");
* the same call under ``tf.function(jit_compile=True)`` (XLA): supports NCDHW and dilations,
  including stride > 1 combined with dilation > 1 - used for those cases.
Empty spatial inputs are avoided: TF 2.21 segfaults on some of them.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402  (hard test dependency; never skipped)

import impl  # noqa: E402
from tests.unit.loop_reference import (  # noqa: E402
    error_bound, fresh_plan_caches, loop_conv3d_transpose, random_valid_case)


def _tf_eager(kwargs):
    return tf.compat.v1.nn.conv3d_transpose(**kwargs).numpy()


def _tf_xla(kwargs):
    static = {k: v for k, v in kwargs.items() if k not in ("value", "filter")}

    @tf.function(jit_compile=True)
    def run(value, filter):
        return tf.compat.v1.nn.conv3d_transpose(value, filter, **static)

    return run(kwargs["value"], kwargs["filter"]).numpy()


def _judge(kwargs, strides, dilations, tf_result):
    ours = impl.conv3d_transpose(**kwargs)
    value, filter = kwargs["value"], kwargs["filter"]
    assert ours.shape == tf_result.shape and ours.dtype == tf_result.dtype
    y_star, magnitude = loop_conv3d_transpose(value, filter, kwargs["output_shape"], strides,
                                              dilations, kwargs["padding"],
                                              kwargs["data_format"])
    n_terms = int(np.prod(filter.shape[:3])) * filter.shape[4]
    bound = error_bound(y_star, magnitude, value.dtype, n_terms)
    assert np.all(np.abs(ours.astype(np.float64) - y_star) <= bound)
    assert np.all(np.abs(tf_result.astype(np.float64) - y_star) <= bound)


EAGER_DTYPES = [np.float64, np.float32, np.float16, tf.bfloat16.as_numpy_dtype]


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", EAGER_DTYPES, ids=lambda d: np.dtype(d).name)
def test_matches_tf_eager_ndhwc(seed, dtype):
    rng = np.random.default_rng([seed, 77])
    kwargs, strides, dilations = random_valid_case(rng, dtype=dtype, data_format="NDHWC",
                                                   max_dilation=1, allow_empty=False,
                                                   max_in=4)
    _judge(kwargs, strides, dilations, _tf_eager(kwargs))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_tf_xla_ncdhw_and_dilations(seed, dtype):
    rng = np.random.default_rng([seed, 78])
    kwargs, strides, dilations = random_valid_case(
        rng, dtype=dtype, data_format=("NCDHW", "NDHWC")[seed % 2], allow_empty=False,
        max_dilation=2)
    _judge(kwargs, strides, dilations, _tf_xla(kwargs))


def test_stride_and_dilation_together_match_xla():
    rng = np.random.default_rng(5)
    value = rng.standard_normal((1, 3, 3, 2, 2))
    filter = rng.standard_normal((2, 3, 2, 3, 2))
    kwargs = dict(value=value, filter=filter, output_shape=[1, 6, 5, 4, 3], strides=2,
                  padding="SAME", data_format="NDHWC", dilations=[2, 2, 3])
    _judge(kwargs, (2, 2, 2), (2, 2, 3), _tf_xla(kwargs))
    assert np.any(impl.conv3d_transpose(**kwargs))


def test_tf_eager_rejects_dilation_and_ncdhw_on_cpu():
    """Documents why dilation/NCDHW cases go through XLA above."""
    value, filter = np.ones((1, 2, 2, 2, 1), np.float32), np.ones((2, 2, 2, 1, 1), np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="dilation rates larger than 1"):
        tf.compat.v1.nn.conv3d_transpose(value, filter, [1, 2, 2, 2, 1], 1, dilations=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="only supports NDHWC"):
        tf.compat.v1.nn.conv3d_transpose(value, filter, [1, 1, 2, 2, 2], 1,
                                         data_format="NCDHW")


def test_tf_tensors_are_accepted_without_importing_tf_in_impl():
    rng = np.random.default_rng(9)
    value = tf.constant(rng.standard_normal((2, 2, 3, 2, 3)), tf.float32)
    filter = tf.constant(rng.standard_normal((2, 3, 2, 4, 3)), tf.float32)
    shape = tf.constant([2, 4, 6, 3, 4], tf.int64)
    ours = impl.conv3d_transpose(value, filter, shape, [2, 2, 2], "SAME")
    theirs = tf.compat.v1.nn.conv3d_transpose(value, filter, shape, [2, 2, 2], "SAME").numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_python_float_lists_are_float32_like_tf():
    value = np.arange(16, dtype=np.float32).reshape(1, 2, 2, 2, 2) / 4
    filter = np.ones((1, 2, 1, 3, 2), np.float32)
    args = (value.tolist(), filter.tolist(), [1, 2, 4, 2, 3], [1, 2, 1], "VALID")
    ours = impl.conv3d_transpose(*args)
    theirs = tf.compat.v1.nn.conv3d_transpose(*args).numpy()
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("kernel,stride,out_size", [(3, 2, 1), (3, 2, 0), (3, 3, 0)])
def test_valid_truncating_division_like_tf(kernel, stride, out_size):
    # Cases TF 2.21 eager accepts and answers (other I = 0 cases segfault TF, see README).
    kwargs = dict(value=np.ones((1, 0, 1, 1, 2), np.float32),
                  filter=np.ones((kernel, 1, 1, 3, 2), np.float32),
                  output_shape=[1, out_size, 1, 1, 3], strides=stride, padding="VALID")
    theirs = _tf_eager(kwargs)
    ours = impl.conv3d_transpose(**kwargs)
    np.testing.assert_array_equal(ours, theirs)
