"""One test per validation rule: impl raises the right class with a helpful message, before any
computation, and TensorFlow 2.21 (eager, CPU) rejects the same call too (its class is recorded in
the table; where TF accepts a call impl rejects on purpose, the test asserts that and says why)."""

from __future__ import annotations

import numpy as np
import pytest

from conv3dt import impl
from conv3dt.oracle.pool import TargetPool
from tests.unit.loop_reference import fresh_plan_caches  # noqa: F401  (autouse fixture)
from tests.unit.tf_workers import EAGER_BOTH_WAYS, case_of

X = np.ones((1, 2, 2, 2, 3), np.float32)
W = np.ones((2, 2, 2, 4, 3), np.float32)
BASE = dict(value=X, filter=W, output_shape=[1, 4, 4, 4, 4], strides=2, padding="SAME")

# (id, overrides, impl's class, message fragments, TF's behaviour observed on 2.21 eager CPU,
#  per kernel where the kernels differ ({"stock": ..., "onednn": ...}): an exception class name,
#  None where TF accepts the call, or the signal of a crash — oneDNN aborts on a negative or
#  2-D output_shape, which is why these calls run in the oracle's workers, never in pytest)
RULES = [
    ("value_not_5d", dict(value=X[0]), ValueError, ["value.shape", "(2, 2, 2, 3)"],
     {"stock": "InvalidArgumentError", "onednn": "AbortedError"}),
    ("filter_not_5d", dict(filter=W[0]), ValueError, ["filter.shape", "(2, 2, 4, 3)"],
     "InvalidArgumentError"),
    ("in_channels_mismatch", dict(filter=np.ones((2, 2, 2, 4, 5), np.float32)), ValueError,
     ["filter.shape", "(2, 2, 2, 4, 5)", "3"], {"stock": "InvalidArgumentError", "onednn": "AbortedError"}),
    ("out_channels_mismatch", dict(output_shape=[1, 4, 4, 4, 5]), ValueError,
     ["output_shape", "(1, 4, 4, 4, 5)", "out_channels 4"], "InvalidArgumentError"),
    ("output_shape_length", dict(output_shape=[1, 4, 4, 4]), ValueError,
     ["output_shape", "[1, 4, 4, 4]", "length 5"], {"stock": "InvalidArgumentError", "onednn": None}),
    ("output_shape_not_1d", dict(output_shape=np.array([[1, 4, 4, 4, 4]])), ValueError,
     ["output_shape", "1-D"], {"stock": "InvalidArgumentError", "onednn": "SIGABRT"}),
    ("output_shape_negative", dict(output_shape=[1, -4, 4, 4, 4]), ValueError,
     ["output_shape", "-4", "non-negative"], {"stock": "InvalidArgumentError", "onednn": "SIGABRT"}),
    ("output_shape_inconsistent_same", dict(output_shape=[1, 6, 4, 4, 4]), ValueError,
     ["output_shape", "(1, 6, 4, 4, 4)", "would have to be 3"], {"stock": "InvalidArgumentError", "onednn": "AbortedError"}),
    ("output_shape_inconsistent_valid", dict(output_shape=[1, 7, 4, 4, 4], padding="VALID"),
     ValueError, ["output_shape", "(1, 7, 4, 4, 4)", "VALID"], {"stock": "InvalidArgumentError", "onednn": "AbortedError"}),
    ("valid_negative_input_size", dict(value=np.ones((1, 1, 1, 1, 3), np.float32),
                                       filter=np.ones((3, 1, 1, 4, 3), np.float32),
                                       output_shape=[1, 1, 1, 1, 4], strides=1,
                                       padding="VALID"),
     ValueError, ["output_shape", "would have to be -1"], "InvalidArgumentError"),
    ("batch_mismatch", dict(output_shape=[2, 4, 4, 4, 4]), ValueError,
     ["output_shape", "(2, 4, 4, 4, 4)", "batch"], {"stock": "InvalidArgumentError", "onednn": "AbortedError"}),
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
     ["dilations=[1, 1, 1, 1, 2]", "batch and channel"], {"stock": "InvalidArgumentError", "onednn": None}),
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
    import conv3dt.impl.transpose as transpose_module

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
def tf_eager_both_ways():
    """The eager path with oneDNN forced off and on, in the oracle's isolated workers."""
    pools = {name: TargetPool(name, timeout=60) for name in EAGER_BOTH_WAYS}
    yield pools
    for pool in pools.values():
        pool.close()


def _behaviour(outcome) -> str | None:
    if outcome.kind == "raised":
        return outcome.short_class
    return None if outcome.kind == "value" else outcome.signal_name or outcome.describe()


@pytest.mark.parametrize("target", EAGER_BOTH_WAYS)
def test_tensorflow_behaves_as_recorded_for_the_same_call(tf_eager_both_ways, target):
    """The same calls on TF: impl's stricter rules are deliberate where TF accepts (None)."""
    outcomes = tf_eager_both_ways[target].run([case_of(dict(BASE, **rule[1])) for rule in RULES])
    for (rule_id, _, _, _, recorded), out in zip(RULES, outcomes):
        family = out.kernel.family   # oneDNN on still runs the stock kernel for int dtypes
        assert family in ("stock", "onednn"), (rule_id, out.kernel)
        expected = recorded[family] if isinstance(recorded, dict) else recorded
        assert _behaviour(out) == expected, (rule_id, family, out.describe())
