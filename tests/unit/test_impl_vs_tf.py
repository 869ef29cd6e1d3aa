"""Differential: impl vs TensorFlow 2.21's real op, both judged against the exact loop reference
under the rigorous bound. TF runs in the oracle's isolated workers (some inputs crash TF), on
the eager path with oneDNN forced off and on (``tf-eager-stock`` / ``tf-eager-onednn``: both
kernel families whatever this CPU picks) and under XLA.

Kernel facts established for 2.21 CPU (see impl/README.md), keyed by the kernel the oracle
observed running each call:
* the stock kernel (Conv3DBackpropInputV2) computes NDHWC only ("only supports NDHWC on the
  CPU") and dilation 1 only ("does not yet support dilation rates larger than 1");
* oneDNN (_MklNativeConv3DBackpropInputV2) computes NCDHW and dilations for float32;
* XLA (``tf.function(jit_compile=True)``) computes NCDHW and dilations, including stride > 1
  combined with dilation > 1 - used for those cases.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402  (hard test dependency; never skipped)

from conv3dt import impl  # noqa: E402
from conv3dt.oracle.pool import TargetPool  # noqa: E402
from tests.unit.loop_reference import (  # noqa: E402
    error_bound, fresh_plan_caches, loop_conv3d_transpose, random_valid_case)
from tests.unit.tf_workers import EAGER_BOTH_WAYS, case_of  # noqa: E402


@pytest.fixture(scope="module")
def tf_pools():
    pools = {name: TargetPool(name, timeout=60) for name in (*EAGER_BOTH_WAYS, "tf-xla")}
    yield pools
    for pool in pools.values():
        pool.close()


def _tf(pools, target, kwargs):
    """TF's result for ``conv3d_transpose(**kwargs)`` on ``target`` (asserts it returned)."""
    out = pools[target].run([case_of(kwargs)])[0]
    assert out.kind == "value", f"{target}: {out.describe()}"
    return out.value


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


@pytest.mark.parametrize("target", EAGER_BOTH_WAYS)
@pytest.mark.parametrize("dtype", EAGER_DTYPES, ids=lambda d: np.dtype(d).name)
def test_matches_tf_eager_ndhwc(tf_pools, target, dtype):
    draws = [random_valid_case(np.random.default_rng([seed, 77]), dtype=dtype, data_format="NDHWC",
                               max_dilation=1, allow_empty=False, max_in=4) for seed in range(10)]
    outs = tf_pools[target].run([case_of(kwargs) for kwargs, _, _ in draws])
    for (kwargs, strides, dilations), out in zip(draws, outs):
        assert out.kind == "value", out.describe()
        _judge(kwargs, strides, dilations, out.value)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_tf_xla_ncdhw_and_dilations(tf_pools, seed, dtype):
    rng = np.random.default_rng([seed, 78])
    kwargs, strides, dilations = random_valid_case(
        rng, dtype=dtype, data_format=("NCDHW", "NDHWC")[seed % 2], allow_empty=False,
        max_dilation=2)
    _judge(kwargs, strides, dilations, _tf(tf_pools, "tf-xla", kwargs))


def test_stride_and_dilation_together_match_xla(tf_pools):
    rng = np.random.default_rng(5)
    value = rng.standard_normal((1, 3, 3, 2, 2))
    filter = rng.standard_normal((2, 3, 2, 3, 2))
    kwargs = dict(value=value, filter=filter, output_shape=[1, 6, 5, 4, 3], strides=2,
                  padding="SAME", data_format="NDHWC", dilations=[2, 2, 3])
    _judge(kwargs, (2, 2, 2), (2, 2, 3), _tf(tf_pools, "tf-xla", kwargs))
    assert np.any(impl.conv3d_transpose(**kwargs))


@pytest.mark.parametrize("target", EAGER_BOTH_WAYS)
def test_tf_eager_dilation_and_ncdhw_depend_on_the_kernel(tf_pools, target):
    """Why dilation/NCDHW cases go through XLA above: the stock kernel rejects them; oneDNN
    computes them (float32), within the bound."""
    value, filter = np.ones((1, 2, 2, 2, 1), np.float32), np.ones((2, 2, 2, 1, 1), np.float32)
    calls = [(dict(value=value, filter=filter, output_shape=[1, 2, 2, 2, 1], strides=1,
                   padding="SAME", data_format="NDHWC", dilations=2), (1, 1, 1), (2, 2, 2),
              "dilation rates larger than 1"),
             (dict(value=value.reshape(1, 1, 2, 2, 2), filter=filter, output_shape=[1, 1, 2, 2, 2], strides=1,
                   padding="SAME", data_format="NCDHW"), (1, 1, 1), (1, 1, 1), "only supports NDHWC")]
    outs = tf_pools[target].run([case_of(kwargs) for kwargs, *_ in calls])
    for (kwargs, strides, dilations, words), out in zip(calls, outs):
        if out.kernel.family == "stock":
            assert out.kind == "raised" and out.short_class == "InvalidArgumentError", out.describe()
            assert words in out.message
        else:
            assert out.kernel.family == "onednn" and out.kind == "value", (out.kernel, out.describe())
            _judge(kwargs, strides, dilations, out.value)


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


@pytest.mark.parametrize("target", EAGER_BOTH_WAYS)
@pytest.mark.parametrize("kernel,stride,out_size", [(3, 2, 1), (3, 2, 0), (3, 3, 0)])
def test_valid_truncating_division_like_tf(tf_pools, target, kernel, stride, out_size):
    # Empty inputs TF 2.21 answers on both kernels (other I = 0 cases segfault the stock kernel:
    # ledger empty-value-segfault, so these run in the oracle's workers).
    kwargs = dict(value=np.ones((1, 0, 1, 1, 2), np.float32),
                  filter=np.ones((kernel, 1, 1, 3, 2), np.float32),
                  output_shape=[1, out_size, 1, 1, 3], strides=stride, padding="VALID")
    np.testing.assert_array_equal(impl.conv3d_transpose(**kwargs), _tf(tf_pools, target, kwargs))
