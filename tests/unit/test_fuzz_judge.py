"""fuzz.judge: valid Cases judged against the truth's bound, invalid ones by accept/reject and
error class; crashes and timeouts always Findings."""
from __future__ import annotations

import numpy as np
import pytest

from conv3dt import impl
from conv3dt.fuzz.judge import expectation, judge_rejection, judge_value
from conv3dt.fuzz.truth import truth_of
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome


def valid(dtype="float32", exact=False, recipe="normal"):
    params = (("scale", 1.0),) if recipe == "normal" else (("low", -2), ("high", 2))
    return Case(value=ArraySpec(dtype, (1, 2, 2, 2, 2), recipe, 1, params),
                filter=ArraySpec(dtype, (2, 2, 2, 3, 2), recipe, 2, params),
                output_shape=[1, 4, 4, 4, 3], strides=[2, 2, 2], padding="SAME", exact=exact)


def run_impl(case):
    args, kwargs = case.call_args(tensor=lambda v, d: np.asarray(v, d))
    try:
        return Outcome.of_value(impl.conv3d_transpose(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001
        return Outcome.of_exception(exc)


def judge(case, y, strict=False):
    return judge_value(case, Outcome.of_value(y), truth_of(case), "tf-eager", "differential", strict)


def test_correct_result_is_within_bound_with_headroom():
    case = valid()
    findings, head = judge(case, run_impl(case).value)
    assert findings == [] and 0 <= head <= 1


@pytest.mark.parametrize("factor,ok", [(0.9, True), (3.0, False)])
def test_value_just_inside_and_outside_the_bound(factor, ok):
    case = valid("float64")
    t = truth_of(case)
    y = t.y_ref.copy()
    y[0, 1, 2, 3, 1] += factor * t.bound[0, 1, 2, 3, 1]
    findings, head = judge(case, y)
    if ok:
        assert findings == [] and 0.8 < head <= 1  # rounding y to float64 moves it by <= 1/2 ulp
    else:
        (f,) = findings
        assert f.kind == "value-mismatch" and f.details["index"] == [0, 1, 2, 3, 1]
        assert f.details["violations"] == 1 and f.headroom == pytest.approx(3.0, rel=0.1)


def test_shape_and_dtype_mismatch():
    case = valid()
    y = run_impl(case).value
    assert [f.kind for f in judge(case, y[:, :3])[0]] == ["shape"]
    assert [f.kind for f in judge(case, y.astype(np.float64))[0]] == ["dtype"]


def test_nan_and_inf_handling():
    case = valid()
    y = run_impl(case).value.copy()
    y[0, 0, 0, 0, 0] = np.nan
    assert [f.kind for f in judge(case, y)[0]] == ["value-mismatch"]
    y[0, 0, 0, 0, 0] = np.inf
    assert [f.kind for f in judge(case, y)[0]] == ["value-mismatch"]
    # a nan input: the elements it reaches must be non-finite (which one is not judged), the
    # others are judged as usual
    v = valid().value.materialize().copy()
    v[0, 0, 0, 0, 0] = np.nan
    nan_case = valid().with_(value=ArraySpec.inline(v))
    out = run_impl(nan_case).value
    assert judge(nan_case, out)[0] == []
    reached = np.isnan(out.astype(np.float64))
    assert reached.any() and (~reached).any()
    np.testing.assert_array_equal(truth_of(nan_case).reached, reached)
    bad = out.copy()
    bad[~reached] = bad[~reached] + 1.0
    assert [f.kind for f in judge(nan_case, bad)[0]] == ["value-mismatch"]
    other_nonfinite = np.where(reached, np.float32(-np.inf), out)
    assert judge(nan_case, other_nonfinite)[0] == []
    lost = out.copy()
    lost[tuple(np.argwhere(reached)[0])] = 0.0  # one reached element made finite
    (finding,) = judge(nan_case, lost)[0]
    assert finding.kind == "value-mismatch"
    assert "finite result that a non-finite input reaches" in finding.observed


def test_overflow_allows_nonfinite_only_where_possible():
    big = np.full((1, 2, 2, 2, 2), 6e4, np.float16)
    case = valid("float16").with_(value=ArraySpec.inline(big))
    t = truth_of(case)
    assert t.overflow.any()
    y = np.where(t.overflow, np.float16(np.inf), t.exact_value)
    assert judge(case, y)[0] == []


def test_exact_case_is_judged_bit_for_bit():
    case = valid("float32", exact=True, recipe="integers")
    y = run_impl(case).value
    assert judge(case, y) == ([], 0.0)
    y2 = y.copy()
    y2.flat[5] = np.nextafter(y2.flat[5], np.float32(np.inf))
    (f,) = judge(case, y2)[0]
    assert f.kind == "exactness"


def test_rejection_of_a_valid_case_and_crash_and_timeout():
    case = valid()
    t = truth_of(case)
    raised = Outcome.of_exception(ValueError("nope"))
    (f,) = judge_value(case, raised, t, "tf-eager", "differential")[0]
    assert f.kind == "accept-reject" and f.details["error_class"] == "builtins.ValueError"
    (f,) = judge_value(case, Outcome.of_crash(signal=11), t, "tf-eager", "differential")[0]
    assert f.kind == "crash" and f.details["signal"] == "SIGSEGV"
    (f,) = judge_value(case, Outcome.of_timeout(30.0), t, "tf-eager", "differential")[0]
    assert f.kind == "timeout"


def test_strict_bound_has_no_flush_to_zero_allowance():
    tiny = np.full((1, 2, 2, 2, 2), 2.0**-100, np.float32)      # normal inputs whose
    small = np.full((2, 2, 2, 3, 2), 2.0**-40, np.float32)      # products (2^-140) are subnormal
    case = valid().with_(value=ArraySpec.inline(tiny), filter=ArraySpec.inline(small))
    t = truth_of(case)
    flushed = np.zeros(t.shape, np.float32)          # FTZ: every product underflows to 0
    assert judge(case, flushed)[0] == []
    assert [f.kind for f in judge(case, flushed, strict=True)[0]] == ["value-mismatch"]


def invalid(label, **changes):
    return valid().with_(label=label, **changes)


def test_invalid_accepted_is_accept_reject():
    case = invalid("invalid:channel-out", output_shape=[1, 4, 4, 4, 5])
    (f,) = judge_rejection(case, Outcome.of_value(np.zeros((1, 4, 4, 4, 5), np.float32)), None,
                           "tf-eager", "invalid")
    assert f.kind == "accept-reject" and f.details["family"] == "channel-out"


def test_error_class_doc_rules_demand_valueerror():
    case = invalid("invalid:padding-value", padding="same")
    impl_out = run_impl(case)
    assert expectation(case, impl_out).classes == ("ValueError",)
    assert judge_rejection(case, Outcome.of_exception(ValueError("x")), impl_out, "tf-eager", "invalid") == []
    (f,) = judge_rejection(case, Outcome.of_exception(TypeError("x")), impl_out, "tf-eager", "invalid")
    assert f.kind == "error-class"


def test_error_class_other_rules_follow_impl_and_accept_subclasses():
    case = invalid("invalid:strides-length", strides=[1, 2])
    impl_out = run_impl(case)
    assert impl_out.kind == "raised"
    cls = impl_out.short_class
    assert expectation(case, impl_out).classes == (cls,)

    class Sub(ValueError if cls == "ValueError" else TypeError):
        pass
    assert judge_rejection(case, Outcome.of_exception(Sub("x")), impl_out, "tf-eager", "invalid") == []
    other = RuntimeError("x")
    assert [f.kind for f in judge_rejection(case, Outcome.of_exception(other), impl_out, "tf-eager",
                                            "invalid")] == ["error-class"]


@pytest.mark.parametrize("target,marks", [
    ("tf-eager-stock", ["os.environ['TF_ENABLE_ONEDNN_OPTS'] = '0'", "tf.compat.v1.nn.conv3d_transpose("]),
    ("tf-eager-onednn", ["os.environ['TF_ENABLE_ONEDNN_OPTS'] = '1'"]),
    ("tf-xla", ["jit_compile=True"]),
    ("tf-graph", ["tf.compat.v1.Session("]),
    ("tf-grad", ["tape.gradient("]),
    ("tf-v2", ["tf.nn.conv3d_transpose("]),
])
def test_a_findings_reproducer_makes_the_call_the_targets_way(target, marks):
    """A Finding's reproducer is ``oracle.repro``'s for its target: the oneDNN setting, the graph,
    XLA, gradient or v2 form — not one eager call standing in for every path."""
    case = valid()
    wrong = run_impl(case).value + 1.0
    (f,), _ = judge_value(case, Outcome.of_value(wrong), truth_of(case), target, "differential")
    for mark in marks:
        assert mark in f.repro, (target, mark)
    if target != "tf-eager-stock":
        assert "TF_ENABLE_ONEDNN_OPTS'] = '0'" not in f.repro


def test_every_error_class_expectation_names_its_source():
    doc = invalid("invalid:padding-value", padding="same")
    (f,) = judge_rejection(doc, Outcome.of_exception(TypeError("x")), run_impl(doc), "tf-eager",
                           "invalid")
    assert f.expected.startswith("raises ValueError (the documentation: ValueError 'if input/output")
    assert f.details["expected_source"].startswith("the documentation")
    tf_rule = invalid("invalid:strides-length", strides=[1, 2])
    impl_out = run_impl(tf_rule)
    (f,) = judge_rejection(tf_rule, Outcome.of_exception(RuntimeError("x")), impl_out, "tf-eager",
                           "invalid")
    assert "impl's class for invalid:strides-length" in f.expected
    assert f.expected.startswith(f"raises {impl_out.short_class} (a rule TensorFlow enforces")


@pytest.mark.parametrize("padding", [None, 1, ["SAME"]])
def test_a_valueerror_is_accepted_wherever_the_docs_sentence_covers_the_input(padding):
    """The doc's Raises: ValueError 'if padding is other than VALID or SAME' — padding=None too,
    though impl (like TF) raises TypeError for a non-string padding: both are accepted."""
    case = invalid("invalid:padding-type", padding=padding)
    impl_out = run_impl(case)
    assert impl_out.short_class == "TypeError"
    for raised in (ValueError("padding"), TypeError("padding")):
        assert judge_rejection(case, Outcome.of_exception(raised), impl_out, "tf-eager",
                               "invalid") == []
    (f,) = judge_rejection(case, Outcome.of_exception(KeyError("x")), impl_out, "tf-eager", "invalid")
    assert f.kind == "error-class" and f.expected.startswith("raises TypeError or ValueError (")


def test_where_the_bound_is_infinite_an_overflowed_reference_judges_nothing():
    """Found by the realistic tier on impl (float64, 774,144 outputs, special values): the
    reference, summed in float64 for a Case that large, overflowed to -inf in an intermediate
    where impl's order gave a finite -6.1e307. The bound is infinite there (the magnitude
    overflowed): nothing can be judged, so no Finding; a finite bound still judges."""
    from dataclasses import replace
    case = valid("float64")
    truth = truth_of(case)
    y = run_impl(case).value.copy()
    at = (0, 1, 1, 1, 0)
    flags = np.zeros(truth.shape, bool)
    flags[at] = True
    ref = truth.y_ref.copy()
    ref[at] = -np.inf
    blown = replace(truth, y_ref=ref, bound=np.where(flags, np.inf, truth.bound),
                    bound_strict=np.where(flags, np.inf, truth.bound_strict),
                    overflow=truth.overflow | flags)
    y[at] = -6.120540027509929e+307
    for strict in (False, True):
        assert judge_value(case, Outcome.of_value(y), blown, "impl", "realistic", strict)[0] == []
    # a finite bound, but the element may overflow and the reference did: still unknowable
    near_max = replace(blown, bound=truth.bound, bound_strict=truth.bound_strict)
    assert judge_value(case, Outcome.of_value(y), near_max, "impl", "realistic", True)[0] == []
    # a reference that cannot have overflowed (no overflow flag) is the truth: judged
    tight = replace(near_max, overflow=truth.overflow)
    (f,), _ = judge_value(case, Outcome.of_value(y), tight, "impl", "realistic", True)
    assert f.kind == "value-mismatch"
