"""One test per validation rule: impl raises the right class with a helpful message, before any
computation, and TensorFlow 2.21 (eager, CPU) rejects the same call too (its class is recorded in
the table; where TF accepts a call impl rejects on purpose, the test asserts that and says why)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import impl
from tests.unit.loop_reference import fresh_plan_caches  # noqa: F401  (autouse fixture)

X = np.ones((1, 2, 2, 2, 3), np.float32)
W = np.ones((2, 2, 2, 4, 3), np.float32)
BASE = dict(value=X, filter=W, output_shape=[1, 4, 4, 4, 4], strides=2, padding="SAME")

# (id, overrides, impl's class, message fragments, TF's behaviour observed on 2.21 eager CPU:
#  an exception class name, or None where TF accepts the call)
RULES = [
    ("value_not_5d", dict(value=X[0]), ValueError, ["value.shape", "(2, 2, 2, 3)"],
     "InvalidArgumentError"),
    ("filter_not_5d", dict(filter=W[0]), ValueError, ["filter.shape", "(2, 2, 4, 3)"],
     "InvalidArgumentError"),
    ("in_channels_mismatch", dict(filter=np.ones((2, 2, 2, 4, 5), np.float32)), ValueError,
     ["filter.shape", "(2, 2, 2, 4, 5)", "3"], "InvalidArgumentError"),
    ("out_channels_mismatch", dict(output_shape=[1, 4, 4, 4, 5]), ValueError,
     ["output_shape", "(1, 4, 4, 4, 5)", "out_channels 4"], "InvalidArgumentError"),
    ("output_shape_length", dict(output_shape=[1, 4, 4, 4]), ValueError,
     ["output_shape", "[1, 4, 4, 4]", "length 5"], "InvalidArgumentError"),
    ("output_shape_not_1d", dict(output_shape=np.array([[1, 4, 4, 4, 4]])), ValueError,
     ["output_shape", "1-D"], "InvalidArgumentError"),
    ("output_shape_negative", dict(output_shape=[1, -4, 4, 4, 4]), ValueError,
     ["output_shape", "-4", "non-negative"], "InvalidArgumentError"),
    ("output_shape_inconsistent_same", dict(output_shape=[1, 6, 4, 4, 4]), ValueError,
     ["output_shape", "(1, 6, 4, 4, 4)", "would have to be 3"], "InvalidArgumentError"),
    ("output_shape_inconsistent_valid", dict(output_shape=[1, 7, 4, 4, 4], padding="VALID"),
     ValueError, ["output_shape", "(1, 7, 4, 4, 4)", "VALID"], "InvalidArgumentError"),
    ("valid_negative_input_size", dict(value=np.ones((1, 1, 1, 1, 3), np.float32),
                                       filter=np.ones((3, 1, 1, 4, 3), np.float32),
                                       output_shape=[1, 1, 1, 1, 4], strides=1,
                                       padding="VALID"),
     ValueError, ["output_shape", "would have to be -1"], "InvalidArgumentError"),
    ("batch_mismatch", dict(output_shape=[2, 4, 4, 4, 4]), ValueError,
     ["output_shape", "(2, 4, 4, 4, 4)", "batch"], "InvalidArgumentError"),
    ("output_shape_missing", dict(output_shape=None), ValueError, ["output_shape=None"],
     "ValueError"),
    ("output_shape_floats", dict(output_shape=[1.0, 4.0, 4.0, 4.0, 4.0]), TypeError,
     ["output_shape", "1.0", "integers"], "InvalidArgumentError"),
    # TF 2.21 accepts a float NumPy array as output_shape (though it rejects a list of floats);
    # impl rejects both consistently: a shape is integers.
    ("output_shape_float_array", dict(output_shape=np.array([1.0, 4, 4, 4, 4])), TypeError,
     ["output_shape", "integer"], None),
    ("strides_length", dict(strides=[2, 2]), ValueError, ["strides=[2, 2]", "1, 3 or 5"],
     "ValueError"),
    ("strides_zero", dict(strides=[2, 0, 2]), ValueError, ["strides=[2, 0, 2]", ">= 1"],
     "InvalidArgumentError"),
    ("strides_negative", dict(strides=-1), ValueError, ["strides=-1", ">= 1"],
     "InvalidArgumentError"),
    ("strides_batch_entry", dict(strides=[2, 2, 2, 2, 1]), ValueError,
     ["strides=[2, 2, 2, 2, 1]", "batch and channel"], "InvalidArgumentError"),
    ("strides_channel_entry", dict(strides=[1, 2, 2, 2, 2]), ValueError,
     ["strides=[1, 2, 2, 2, 2]", "batch and channel"], "InvalidArgumentError"),
    # TF 2.21 silently truncates float strides to ints; impl insists on integers (a float stride
    # is a type error in the caller's code, and 2.5 would be truncated without notice).
    ("strides_floats", dict(strides=[2.0, 2.0, 2.0]), TypeError,
     ["strides=[2.0, 2.0, 2.0]", "integers"], None),
    ("strides_string", dict(strides="2"), TypeError, ["strides='2'", "integers"], "TypeError"),
    ("dilations_length", dict(dilations=[1, 1, 1, 1]), ValueError,
     ["dilations=[1, 1, 1, 1]", "1, 3 or 5"], "ValueError"),
    ("dilations_zero", dict(dilations=0), ValueError, ["dilations=0", ">= 1"],
     "InvalidArgumentError"),
    ("dilations_channel_entry", dict(dilations=[1, 1, 1, 1, 2]), ValueError,
     ["dilations=[1, 1, 1, 1, 2]", "batch and channel"], "InvalidArgumentError"),
    # TF accepts dilations=1.0 (truncated to 1); impl insists on integers, as for strides.
    ("dilations_float", dict(dilations=1.0), TypeError, ["dilations=1.0", "integers"], None),
    ("padding_wrong_case", dict(padding="same"), ValueError, ["padding='same'", "'SAME'"],
     "InvalidArgumentError"),
    ("padding_not_str", dict(padding=5), TypeError, ["padding=5"], "TypeError"),
    ("padding_explicit_list", dict(padding=[[0, 0]] * 5), TypeError, ["padding=[[0, 0]"],
     "TypeError"),
    ("data_format_unknown", dict(data_format="NHWC"), ValueError,
     ["data_format='NHWC'", "'NDHWC' or 'NCDHW'"], "InvalidArgumentError"),
    ("data_format_not_str", dict(data_format=3), TypeError, ["data_format=3"], "AttributeError"),
    ("value_missing", dict(value=None), ValueError, ["value=None"], "ValueError"),
    ("filter_missing", dict(filter=None), ValueError, ["filter=None"], "ValueError"),
    ("both_value_and_input", dict(input=X), ValueError, ["input=", "'value'"], "ValueError"),
    ("both_filter_and_filters", dict(filters=W), ValueError, ["filters=", "'filter'"],
     "ValueError"),
    ("integer_arrays", dict(value=X.astype(np.int32), filter=W.astype(np.int32)), TypeError,
     ["value.dtype='int32'", "float32"], "InvalidArgumentError"),
    ("complex_arrays", dict(value=X.astype(np.complex64), filter=W.astype(np.complex64)),
     TypeError, ["value.dtype='complex64'"], "InvalidArgumentError"),
    ("integer_lists", dict(value=X.astype(int).tolist(), filter=W.astype(int).tolist()),
     TypeError, ["value and filter element types", "int64"], "InvalidArgumentError"),
    # TF casts a NumPy value to the filter's dtype (float32 value + float64 filter -> float64
    # result, float64 value + float32 filter -> float32): order-dependent, so impl refuses.
    ("mismatched_dtypes", dict(filter=W.astype(np.float64)), TypeError,
     ["filter.dtype='float64'", "float32"], None),
]


@pytest.mark.parametrize("rule", RULES, ids=[rule[0] for rule in RULES])
def test_invalid_call_is_rejected_with_a_helpful_message(rule, monkeypatch):
    _, overrides, error_class, fragments, tf_behaviour = rule
    kwargs = dict(BASE, **overrides)
    # Nothing may be computed before validation fails: make the kernel explode if reached.
    import impl.transpose as transpose_module

    def _kernel_must_not_run(*args, **kw):
        raise AssertionError("kernel ran before validation failed")

    monkeypatch.setattr(transpose_module, "transposed_conv_ndhwc", _kernel_must_not_run)
    with pytest.raises(error_class) as caught:
        impl.conv3d_transpose(**kwargs)
    assert type(caught.value) is error_class
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "expected" in message


@pytest.fixture(scope="module")
def tf():
    """TensorFlow (a hard test dependency, never skipped), imported only by the tests using it so
    that the impl-only tests stay TF-free (fast, and safe to fork under mutation testing)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow

    return tensorflow


@pytest.mark.parametrize("rule", RULES, ids=[rule[0] for rule in RULES])
def test_tensorflow_behaves_as_recorded_for_the_same_call(rule, tf):
    _, overrides, _, _, tf_behaviour = rule
    kwargs = dict(BASE, **overrides)
    if tf_behaviour is None:
        tf.compat.v1.nn.conv3d_transpose(**kwargs)  # TF accepts: impl is deliberately stricter
    else:
        with pytest.raises(Exception) as tf_caught:
            tf.compat.v1.nn.conv3d_transpose(**kwargs)
        assert type(tf_caught.value).__name__ == tf_behaviour


def test_normalize_call_reports_the_canonical_form():
    call = impl.normalize_call(value=X.transpose(0, 4, 1, 2, 3), filter=W,
                               output_shape=np.array([1, 4, 2, 4, 3]), strides=[1, 1, 1, 2, 2],
                               padding="SAME", data_format="NCDHW", dilations=(1, 1, 2))
    assert isinstance(call, impl.NormalizedCall)
    assert call.output_shape == (1, 4, 2, 4, 3) and call.output_spatial == (2, 4, 3)
    assert call.strides == (1, 2, 2) and call.dilations == (1, 1, 2)
    # W: I=2, eff=3, s=2, O=3: total pad (2-1)*2+3-3 = 2 -> 1 before, 1 after.
    assert call.pad_before == (0, 0, 1) and call.pad_after == (1, 0, 1)
    assert call.padding == "SAME" and call.data_format == "NCDHW"
    assert call.dtype == np.float32 and call.value.shape == (1, 3, 2, 2, 2)
    assert all(isinstance(v, int) for v in call.output_shape + call.pad_before)


def test_normalize_call_padding_split_puts_the_odd_pad_after():
    value = np.ones((1, 2, 2, 2, 1))
    call = impl.normalize_call(value=value, filter=np.ones((4, 3, 1, 1, 1)),
                               output_shape=[1, 4, 3, 2, 1], strides=[2, 2, 1], padding="SAME",
                               dilations=[1, 1, 2])
    # D: (2-1)*2+4-4 = 2 -> 1/1; H: (2-1)*2+3-3 = 2 -> 1/1; W: eff 1: (2-1)*1+1-2 = 0.
    assert call.pad_before == (1, 1, 0) and call.pad_after == (1, 1, 0)
    odd = impl.normalize_call(value=value, filter=np.ones((2, 2, 2, 1, 1)),
                              output_shape=[1, 2, 2, 2, 1], strides=1)
    assert odd.pad_before == (0, 0, 0) and odd.pad_after == (1, 1, 1)
    valid = impl.normalize_call(value=value, filter=np.ones((2, 2, 2, 1, 1)),
                                output_shape=[1, 4, 5, 3, 1], strides=[2, 2, 1],
                                padding="VALID")
    assert valid.pad_before == (0, 0, 0) and valid.pad_after == (0, 0, 0)
