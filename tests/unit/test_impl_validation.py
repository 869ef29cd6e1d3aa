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
    ("both_value_and_input", dict(input=X), ValueError, ["value and input", "'value'"], "ValueError"),
    ("both_filter_and_filters", dict(filters=W), ValueError, ["filter and filters", "'filter'"],
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


# The exact messages (the user-facing contract; reviewed for naming the argument, the value
# received and what was expected).
EXACT_MESSAGES = {
    'value_not_5d': (
        'conv3d_transpose: value.shape=(2, 2, 2, 3) is invalid; expected a 5-D shape'
    ),
    'filter_not_5d': (
        'conv3d_transpose: filter.shape=(2, 2, 4, 3) is invalid; expected a 5-D shape'
        ' [KD, KH, KW, Cout, Cin]'
    ),
    'in_channels_mismatch': (
        'conv3d_transpose: filter.shape=(2, 2, 2, 4, 5) is invalid; expected in_channels'
        " (last entry) == value's channel count 3 (NDHWC)"
    ),
    'out_channels_mismatch': (
        'conv3d_transpose: output_shape=(1, 4, 4, 4, 5) is invalid; expected channel'
        " entry (index 4) == filter's out_channels 4"
    ),
    'output_shape_length': (
        'conv3d_transpose: output_shape=[1, 4, 4, 4] is invalid; expected a 1-D integer'
        ' sequence of length 5'
    ),
    'output_shape_not_1d': (
        'conv3d_transpose: output_shape=array([[1, 4, 4, 4, 4]]) is invalid; expected a'
        ' 1-D integer sequence of length 5'
    ),
    'output_shape_negative': (
        'conv3d_transpose: output_shape=[1, -4, 4, 4, 4] is invalid; expected'
        ' non-negative entries'
    ),
    'output_shape_inconsistent_same': (
        'conv3d_transpose: output_shape=(1, 6, 4, 4, 4) is invalid; expected spatial'
        " axis 0 (size 6) consistent with value's size 2 for stride 2, effective kernel"
        " 2 and SAME (value's size would have to be 3)"
    ),
    'output_shape_inconsistent_valid': (
        'conv3d_transpose: output_shape=(1, 7, 4, 4, 4) is invalid; expected spatial'
        " axis 0 (size 7) consistent with value's size 2 for stride 2, effective kernel"
        " 2 and VALID (value's size would have to be 3)"
    ),
    'valid_negative_input_size': (
        'conv3d_transpose: output_shape=(1, 1, 1, 1, 4) is invalid; expected spatial'
        " axis 0 (size 1) consistent with value's size 1 for stride 1, effective kernel"
        " 3 and VALID (value's size would have to be -1)"
    ),
    'batch_mismatch': (
        'conv3d_transpose: output_shape=(2, 4, 4, 4, 4) is invalid; expected batch entry'
        " == value's batch 1"
    ),
    'output_shape_missing': (
        'conv3d_transpose: output_shape=None is invalid; expected a 1-D integer sequence'
        ' of length 5'
    ),
    'output_shape_floats': (
        'conv3d_transpose: output_shape=[1.0, 4.0, 4.0, 4.0, 4.0] is invalid; expected'
        ' integers'
    ),
    'output_shape_float_array': (
        'conv3d_transpose: output_shape=array([1., 4., 4., 4., 4.]) is invalid; expected'
        ' an integer sequence or int array'
    ),
    'strides_length': (
        'conv3d_transpose: strides=[2, 2] is invalid; expected an int or a list of'
        ' length 1, 3 or 5'
    ),
    'strides_zero': (
        'conv3d_transpose: strides=[2, 0, 2] is invalid; expected every spatial entry >='
        ' 1'
    ),
    'strides_negative': (
        'conv3d_transpose: strides=-1 is invalid; expected every spatial entry >= 1'
    ),
    'strides_batch_entry': (
        'conv3d_transpose: strides=[2, 2, 2, 2, 1] is invalid; expected 1 in the batch'
        ' and channel entries of a length-5 list'
    ),
    'strides_channel_entry': (
        'conv3d_transpose: strides=[1, 2, 2, 2, 2] is invalid; expected 1 in the batch'
        ' and channel entries of a length-5 list'
    ),
    'strides_floats': (
        'conv3d_transpose: strides=[2.0, 2.0, 2.0] is invalid; expected integers'
    ),
    'strides_string': (
        "conv3d_transpose: strides='2' is invalid; expected integers"
    ),
    'dilations_length': (
        'conv3d_transpose: dilations=[1, 1, 1, 1] is invalid; expected an int or a list'
        ' of length 1, 3 or 5'
    ),
    'dilations_zero': (
        'conv3d_transpose: dilations=0 is invalid; expected every spatial entry >= 1'
    ),
    'dilations_channel_entry': (
        'conv3d_transpose: dilations=[1, 1, 1, 1, 2] is invalid; expected 1 in the batch'
        ' and channel entries of a length-5 list'
    ),
    'dilations_float': (
        'conv3d_transpose: dilations=1.0 is invalid; expected integers'
    ),
    'padding_wrong_case': (
        "conv3d_transpose: padding='same' is invalid; expected exactly 'SAME' or 'VALID'"
    ),
    'padding_not_str': (
        "conv3d_transpose: padding=5 is invalid; expected the string 'SAME' or 'VALID'"
    ),
    'padding_explicit_list': (
        'conv3d_transpose: padding=[[0, 0], [0, 0], [0, 0], [0, 0], [0, 0]] is invalid;'
        " expected the string 'SAME' or 'VALID'"
    ),
    'data_format_unknown': (
        "conv3d_transpose: data_format='NHWC' is invalid; expected exactly 'NDHWC' or"
        " 'NCDHW'"
    ),
    'data_format_not_str': (
        "conv3d_transpose: data_format=3 is invalid; expected the string 'NDHWC' or"
        " 'NCDHW'"
    ),
    'value_missing': (
        'conv3d_transpose: value=None is invalid; expected a 5-D array (or its alias'
        " 'input')"
    ),
    'filter_missing': (
        'conv3d_transpose: filter=None is invalid; expected a 5-D array (or its alias'
        " 'filters')"
    ),
    'both_value_and_input': (
        "conv3d_transpose: value and input were both given; expected only one of 'value'"
        " and its alias 'input'"
    ),
    'both_filter_and_filters': (
        'conv3d_transpose: filter and filters were both given; expected only one of'
        " 'filter' and its alias 'filters'"
    ),
    'integer_arrays': (
        "conv3d_transpose: value.dtype='int32' is invalid; expected float16, bfloat16,"
        ' float32, float64'
    ),
    'complex_arrays': (
        "conv3d_transpose: value.dtype='complex64' is invalid; expected float16,"
        ' bfloat16, float32, float64'
    ),
    'integer_lists': (
        "conv3d_transpose: value and filter element types=('int64', 'int64') is invalid;"
        ' expected floating point data (integer-only lists are int32 in TF, which it'
        ' rejects)'
    ),
    'mismatched_dtypes': (
        "conv3d_transpose: filter.dtype='float64' is invalid; expected the same dtype as"
        ' value (float32); cast one explicitly'
    ),
}


@pytest.mark.parametrize("rule", RULES, ids=[rule[0] for rule in RULES])
def test_invalid_call_is_rejected_with_a_helpful_message(rule, monkeypatch):
    rule_id, overrides, error_class, fragments, _ = rule
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
    assert message == EXACT_MESSAGES[rule_id]


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


class _ArrayLike:
    """Carries a dtype through ``__array__`` only (like a TF EagerTensor)."""

    def __init__(self, array):
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def test_accumulation_dtype_is_float32_except_for_float64():
    from impl.transpose import accum_dtype_for

    assert [accum_dtype_for(d) for d in impl.SUPPORTED_DTYPES] == [
        np.float32, np.float32, np.float32, np.float64]


def test_python_data_takes_the_dtype_of_a_typed_partner():
    as_list = X.astype(int).tolist()
    call = impl.normalize_call(value=as_list, filter=W, output_shape=[1, 4, 4, 4, 4], strides=2)
    assert call.dtype == call.value.dtype == call.filter.dtype == np.float32
    call = impl.normalize_call(value=X.astype(np.float16), filter=W.tolist(),
                               output_shape=[1, 4, 4, 4, 4], strides=2)
    assert call.dtype == call.value.dtype == call.filter.dtype == np.float16
    call = impl.normalize_call(value=X.tolist(), filter=W.tolist(),
                               output_shape=[1, 4, 4, 4, 4], strides=2)
    assert call.dtype == call.value.dtype == call.filter.dtype == np.float32


def test_objects_with_array_protocol_carry_their_dtype():
    with pytest.raises(TypeError, match="filter.dtype='float32'"):
        impl.normalize_call(value=_ArrayLike(X.astype(np.float64)), filter=W,
                            output_shape=[1, 4, 4, 4, 4], strides=2)
    call = impl.normalize_call(value=_ArrayLike(X), filter=_ArrayLike(W),
                               output_shape=[1, 4, 4, 4, 4], strides=2)
    assert call.dtype == call.value.dtype == np.float32


@pytest.mark.parametrize("element, name", [(True, "bool"), (1j, "complex128")])
def test_boolean_or_complex_python_data_is_rejected(element, name):
    data = np.full(X.shape, element).tolist()
    with pytest.raises(TypeError) as caught:
        impl.normalize_call(value=data, filter=W, output_shape=[1, 4, 4, 4, 4], strides=2)
    assert str(caught.value) == (f"conv3d_transpose: value element type={name!r} is invalid; "
                                 "expected real numbers")


def test_normalize_call_expands_every_strides_and_dilations_form():
    value = np.ones((1, 2, 3, 4, 1))
    filter = np.ones((1, 1, 1, 1, 1))
    out = [1, 4, 6, 8, 1]
    for strides in (2, [2], (2,), np.array([2]), [2, 2, 2], [1, 2, 2, 2, 1]):
        call = impl.normalize_call(value=value, filter=filter, output_shape=out, strides=strides)
        assert call.strides == (2, 2, 2) and call.dilations == (1, 1, 1)
    call = impl.normalize_call(value=value, filter=filter, output_shape=[1, 2, 6, 4, 1],
                               strides=[1, 1, 2, 1, 1], dilations=[1, 3, 2, 1, 1])
    assert call.strides == (1, 2, 1) and call.dilations == (3, 2, 1)
    ncdhw = impl.normalize_call(value=value.reshape(1, 1, 2, 3, 4), filter=filter,
                                output_shape=[1, 1, 2, 6, 4], strides=[1, 1, 1, 2, 1],
                                dilations=[1, 1, 3, 2, 1], data_format="NCDHW")
    assert ncdhw.strides == (1, 2, 1) and ncdhw.dilations == (3, 2, 1)


def test_unsigned_output_shape_is_accepted():
    call = impl.normalize_call(value=X, filter=W, output_shape=np.array([1, 4, 4, 4, 4], np.uint16),
                               strides=2)
    assert call.output_shape == (1, 4, 4, 4, 4)


def test_unsupported_filter_dtype_names_the_filter():
    with pytest.raises(TypeError) as caught:
        impl.normalize_call(value=X, filter=W.astype(np.int8), output_shape=[1, 4, 4, 4, 4],
                            strides=2)
    assert str(caught.value) == ("conv3d_transpose: filter.dtype='int8' is invalid; expected "
                                 "float16, bfloat16, float32, float64")


def test_valid_with_empty_input_has_no_padding():
    # I=0, K=5, s=3, O=1: accepted by the truncating rule; the SAME formula would give a pad.
    call = impl.normalize_call(value=np.ones((1, 0, 1, 1, 1)), filter=np.ones((5, 1, 1, 1, 1)),
                               output_shape=[1, 1, 1, 1, 1], strides=3, padding="VALID")
    assert call.pad_before == (0, 0, 0) and call.pad_after == (0, 0, 0)
