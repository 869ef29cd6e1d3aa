"""Every TF path through the oracle's workers: known-good Cases match the reference within the
rigorous bound (``fuzz.truth``: impl's kernel in float64 / longdouble), invalid Cases are
rejected and the rejection is recorded. TF is a hard dependency: nothing here is skipped.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conv3dt.fuzz.truth import truth_of
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.pool import TargetPool
from tests.unit.tf_workers import forced_as_shipped_onednn

TF_TARGETS = ("tf-eager", "tf-eager-stock", "tf-eager-onednn", "tf-graph", "tf-function",
              "tf-xla", "tf-v2", "tf-grad")


@pytest.fixture(scope="module", params=("0", "1"), ids=("as-shipped-onednn=0", "as-shipped-onednn=1"))
def pools(request):
    """Every TF target, with the as-shipped paths forced to oneDNN off, then on: what the
    suite asserts must hold on both kinds of CPU, whichever this one is."""
    with forced_as_shipped_onednn(request.param):
        with ThreadPoolExecutor(3) as ex:  # the environments start in parallel
            opened = dict(zip(TF_TARGETS, ex.map(lambda t: TargetPool(t, timeout=60), TF_TARGETS)))
    opened["forced"] = request.param
    yield opened
    for name, pool in opened.items():
        if name != "forced":
            pool.close()


def _targets(pools):
    return {name: pool for name, pool in pools.items() if name != "forced"}


def spec(dtype, shape, seed, recipe="normal", **params):
    return ArraySpec(dtype, shape, recipe, seed=seed, params=tuple(params.items()))


GOOD = {
    "f32-stride2-same": Case(spec("float32", (1, 2, 3, 2, 3), 1), spec("float32", (2, 3, 2, 2, 3), 2),
                             output_shape=[1, 4, 5, 4, 2], strides=[1, 2, 2, 2, 1]),
    "f64-valid-int-stride": Case(spec("float64", (2, 2, 2, 2, 2), 3), spec("float64", (2, 2, 2, 3, 2), 4),
                                 output_shape=(2, 3, 3, 3, 3), strides=1, strides_form="int",
                                 padding="VALID", output_shape_form="tuple"),
    "f16-stride3-list3": Case(spec("float16", (1, 2, 2, 2, 4), 5), spec("float16", (3, 2, 2, 2, 4), 6),
                              output_shape=[1, 6, 3, 4, 2], strides=[3, 2, 2], padding="SAME"),
    "bf16-scaled": Case(spec("bfloat16", (1, 2, 2, 3, 2), 7, scale=100.0), spec("bfloat16", (2, 2, 2, 2, 2), 8),
                        output_shape=[1, 4, 4, 6, 2], strides=[1, 2, 2, 2, 1]),
    "f32-forms": Case(spec("float32", (1, 2, 2, 2, 3), 11), spec("float32", (2, 2, 2, 2, 3), 12),
                      output_shape=[1, 4, 4, 4, 2], strides=(1, 2, 2, 2, 1), strides_form="tuple",
                      value_arg="positional", filter_arg="positional", output_shape_form="tensor-int64"),
    "f32-filters-alias-ndarray": Case(spec("float32", (1, 2, 2, 2, 3), 13), spec("float32", (2, 2, 2, 2, 3), 14),
                                      output_shape=[1, 3, 4, 3, 2], strides=[2], filter_arg="filters",
                                      output_shape_form="ndarray-int32", name="x"),
    "f32-ones-exact": Case(ArraySpec("float32", (1, 4, 4, 4, 2), "ones"), ArraySpec("float32", (3, 3, 3, 2, 2), "ones"),
                           output_shape=[1, 4, 4, 4, 2], strides=[1, 1, 1, 1, 1], exact=True),
}


@pytest.mark.parametrize("target", TF_TARGETS)
def test_known_good_cases_within_the_bound(pools, target):
    names = list(GOOD)
    outcomes = pools[target].run([GOOD[n] for n in names])
    assert len(outcomes) == len(names)
    for name, out in zip(names, outcomes):
        case = GOOD[name]
        assert out.kind == "value", f"{target} {name}: {out.describe()}"
        assert out.value.dtype.name == case.dtype and list(out.value.shape) == list(case.output_shape)
        truth = truth_of(case)
        err = np.abs(out.value.astype(np.float64) - truth.y_ref)
        assert np.all(err <= truth.bound), f"{target} {name}: max err/bound {np.max(err / truth.bound)}"
        if case.exact:
            assert out.value.tobytes() == truth.exact_value.astype(out.value.dtype).tobytes()


def test_ones_closed_form(pools):
    """TF's own test: stride 1, SAME, 3x3x3 ones: 27, 18, 12 or 8 times Cin by interior count."""
    value = pools["tf-eager"].run([GOOD["f32-ones-exact"]])[0].value
    interior = [(1 <= i <= 2) for i in range(4)]
    for d in range(4):
        for h in range(4):
            for w in range(4):
                k = interior[d] + interior[h] + interior[w]
                assert np.all(value[0, d, h, w] == {3: 27, 2: 18, 1: 12, 0: 8}[k] * 2)


# Cases some TF CPU kernels compute and others reject, keyed by what is observed to decide it
# on TF 2.21: the kernel family that ran (oneDNN and XLA compute NCDHW and dilations, the stock
# kernel rejects them), or the API path (v1's required `value`).
PARTIAL = {
    "ncdhw": (Case(spec("float32", (1, 3, 2, 3, 2), 15), spec("float32", (2, 3, 2, 2, 3), 16),
                   output_shape=[1, 2, 4, 5, 4], strides=[1, 1, 2, 2, 2], data_format="NCDHW"),
              lambda target, family: family in ("xla", "onednn"), r"NDHWC|NHWC"),
    "dilated": (Case(spec("float32", (1, 3, 3, 3, 2), 9), spec("float32", (2, 2, 2, 2, 2), 10),
                     output_shape=[1, 3, 3, 3, 2], strides=[1, 1, 1, 1, 1],
                     dilations=[1, 2, 2, 2, 1], dilations_form="list"),
                lambda target, family: family in ("xla", "onednn"), r"[Dd]ilat"),
    # v1's `value` is a required positional parameter in TF 2.21: `input=` alone is a TypeError
    # (tf-v2 maps `input` to its own `input` and computes it).
    "input-alias-only": (Case(spec("float32", (1, 2, 2, 2, 3), 13), spec("float32", (2, 2, 2, 2, 3), 14),
                              output_shape=[1, 3, 4, 3, 2], strides=[2], value_arg="input"),
                         lambda target, family: target in ("tf-v2", "tf-grad"), "positional argument"),
}


def _as_shipped_family(pools, target):
    """The kernel family a float32 call of ``target`` must run under this fixture's forcing."""
    if target == "tf-xla":
        return "xla"
    onednn = {"tf-eager-stock": "0", "tf-eager-onednn": "1"}.get(target, pools["forced"])
    return "onednn" if onednn == "1" else "stock"


@pytest.mark.parametrize("name", list(PARTIAL))
def test_partially_supported_cases_are_computed_right_or_rejected(pools, name):
    case, computes, words = PARTIAL[name]
    truth = truth_of(case)
    import tensorflow as tf

    for target, pool in _targets(pools).items():
        out = pool.run([case])[0]
        family = out.kernel.family
        if name != "input-alias-only":  # a TypeError before any kernel: nothing observed
            assert family == _as_shipped_family(pools, target), (target, out.kernel)
        if out.kind == "value":
            assert list(out.value.shape) == case.output_shape
            assert np.all(np.abs(out.value.astype(np.float64) - truth.y_ref) <= truth.bound), target
        else:
            assert out.kind == "raised", f"{target}: {out.describe()}"
            assert out.is_instance_of("OpError") or out.is_instance_of("TypeError"), out.describe()
            assert re.search(words, out.message), f"{target}: {out.message[:300]}"
        if tf.__version__.startswith("2.21."):
            assert (out.kind == "value") == computes(target, family), (target, out.kernel, out.describe())


def _base():
    return Case(spec("float32", (1, 2, 2, 2, 3), 1), spec("float32", (2, 2, 2, 4, 3), 2),
                output_shape=[1, 4, 4, 4, 4], strides=[1, 2, 2, 2, 1])


INVALID = {
    "padding-case": _base().with_(padding="same", label="invalid:padding"),
    "channels": _base().with_(filter=spec("float32", (2, 2, 2, 4, 5), 2), label="invalid:channels"),
    "strides-len4": _base().with_(strides=[1, 2, 2, 2], label="invalid:strides"),
    "stride-zero": _base().with_(strides=[1, 0, 2, 2, 1], label="invalid:strides"),
    "dilation-zero": _base().with_(dilations=[1, 0, 1, 1, 1], dilations_form="list", label="invalid:dilations"),
    "output-negative": _base().with_(output_shape=[1, -4, 4, 4, 4], label="invalid:output_shape"),
    "output-rank4": _base().with_(output_shape=[1, 4, 4, 4], label="invalid:output_shape"),
    "output-mismatch": _base().with_(output_shape=[1, 5, 4, 4, 4], label="invalid:output_shape"),
    "batch-stride": _base().with_(strides=[2, 2, 2, 2, 1], label="invalid:strides"),
    "both-aliases": _base().with_(value_arg="both", label="invalid:alias"),
    "missing-filter": _base().with_(filter_arg="missing", label="invalid:alias"),
    "data-format": _base().with_(data_format="NHWC", label="invalid:data_format"),
}

# Observed on TF 2.21: graph construction (tf-graph, tf-function, tf-xla tracing) raises
# ValueError where eager raises InvalidArgumentError at run time.
GRAPH_VALUE_ERRORS = {"padding-case", "output-negative", "output-rank4", "data-format"}


# Invalid calls a kernel was observed to *accept* on TF 2.21 (findings for the report, kept here
# so this test still fails on any other acceptance): the oneDNN kernel takes a rank-4
# output_shape and returns a 5-D result. Only a oneDNN kernel may crash on these calls (it
# aborts on a negative output_shape: ledger onednn-negative-output-shape-abort).
OBSERVED_ACCEPTED = {("onednn", "output-rank4")}
# The class each kernel raises for a channel mismatch (oneDNN cannot build its primitive).
CHANNEL_MISMATCH_CLASS = {"stock": "InvalidArgumentError", "onednn": "AbortedError"}


@pytest.mark.parametrize("target", TF_TARGETS)
def test_invalid_cases_are_rejected_and_recorded(pools, target):
    names = list(INVALID)
    outcomes = pools[target].run([INVALID[n] for n in names])
    assert len(outcomes) == len(names)
    for name, out in zip(names, outcomes):
        family = out.kernel.family
        if (family, name) in OBSERVED_ACCEPTED and out.kind == "value":
            continue
        assert out.kind in ("raised", "crashed"), f"{target} accepted {name}: {out.describe()}"
        if out.kind == "raised":
            assert out.error_class and out.message and out.error_bases
            assert out.to_json()["error_class"] == out.error_class
        else:
            assert family == "onednn", f"{target} {name}: {out.describe()} ({out.kernel})"
        if target in ("tf-graph", "tf-function", "tf-xla") and name in GRAPH_VALUE_ERRORS:
            assert out.short_class == "ValueError", f"{target} {name}: {out.describe()}"
        if target.startswith("tf-eager") and name == "channels":
            assert out.short_class == CHANNEL_MISMATCH_CLASS[family], (target, out.kernel)


def test_graph_errors_carry_the_kernels_text_not_the_node_definition_traceback(pools):
    """A graph execution error wraps the kernel's text in Python tracebacks of where the node was
    defined (the oracle's own call stack: ~1.5k characters on TF 2.12/2.13). The judge cuts a
    message at 1500 characters and the ledger's regexes read it, so the oracle drops them: the
    tf212 gate had 14 findings the ledger knew, whose kernel text lay past the cut."""
    out = pools["tf-graph"].run([INVALID["channels"]])[0]
    assert out.kind == "raised", out.describe()
    assert out.message.startswith("Graph execution error:"), out.message[:200]
    for noise in ("Detected at node", "Original stack trace", "most recent call last", ".py\", line"):
        assert noise not in out.message, out.message[:500]
    kernel_text = {"stock": "must have the same number of channels", "onednn": "primitive"}
    assert kernel_text[out.kernel.family] in out.message, (out.kernel, out.message)


@pytest.mark.parametrize("target", ("tf-graph", "tf-function", "tf-xla"))
def test_cached_graphs_and_traces_see_each_calls_arrays_and_errors(pools, target):
    """tf-graph/function/xla cache a built graph per argument structure: a second Case of the
    same structure with other values must get its own result (not the first one's), and a
    structure whose construction raised must raise again on every call."""
    first = GOOD["f32-stride2-same"]
    second = first.with_(value=spec("float32", (1, 2, 3, 2, 3), 101),
                         filter=spec("float32", (2, 3, 2, 2, 3), 102))
    bad = INVALID["channels"]
    outcomes = pools[target].run([first, second, bad, first, bad])
    assert [o.kind for o in outcomes] == ["value", "value", "raised", "value", "raised"]
    for case, out in zip((first, second, first), (outcomes[0], outcomes[1], outcomes[3])):
        truth = truth_of(case)
        assert np.all(np.abs(out.value.astype(np.float64) - truth.y_ref) <= truth.bound)
    assert not np.array_equal(outcomes[0].value, outcomes[1].value)
    assert outcomes[2].error_class == outcomes[4].error_class


def test_info_reports_versions_onednn_and_xla(pools):
    shipped, stock, forced = (pools[t].info() for t in ("tf-eager", "tf-eager-stock", "tf-eager-onednn"))
    import tensorflow as tf  # the test process may import TF; the oracle package does not

    for info in (shipped, stock, forced):
        assert info["worker"]["tensorflow"] == tf.__version__
        assert info["worker"]["xla_available"] is True
        assert info["environment"]["cpu"]["logical_cpus"] >= 1
    assert stock["onednn"]["TF_ENABLE_ONEDNN_OPTS"] == "0" and stock["onednn"]["enabled"] is False
    assert forced["onednn"]["TF_ENABLE_ONEDNN_OPTS"] == "1" and forced["onednn"]["enabled"] is True
    assert shipped["onednn"]["enabled"] is (pools["forced"] == "1")   # as TF decided, in the worker
    assert {"float32", "bfloat16"} <= set(forced["worker"]["onednn_dtypes"])
    assert "float64" not in forced["worker"]["onednn_dtypes"]
    assert shipped["worker"]["pid"] == pools["tf-graph"].info()["worker"]["pid"]  # one worker per env
    # as-shipped forced off shares the oneDNN-off worker; forced on, the oneDNN-on one
    assert (shipped["worker"]["pid"] == stock["worker"]["pid"]) is (pools["forced"] == "0")
    assert (shipped["worker"]["pid"] == forced["worker"]["pid"]) is (pools["forced"] == "1")


def test_bfloat16_result_is_ml_dtypes(pools):
    import ml_dtypes

    out = pools["tf-function"].run([GOOD["bf16-scaled"]])[0]
    assert out.value.dtype == np.dtype(ml_dtypes.bfloat16)


# Real TensorFlow crashes found through the oracle (TF 2.21 CPU). The pool must pin each on
# its case, keep the CHECK-failure line, replace the worker and carry on with the batch.
XLA_ZERO_COUT = _base().with_(filter=spec("float32", (2, 2, 2, 0, 3), 2), output_shape=[1, 4, 4, 4, 0],
                              label="valid")
ONEDNN_HUGE_SHAPE = _base().with_(output_shape=[2**20, 2**20, 2**20, 2**20, 4],
                                  output_shape_form="tensor-int64", label="invalid:output_shape")


def test_real_tf_crashes_are_pinned_and_survived(pools):
    import tensorflow as tf

    pinned = tf.__version__.startswith("2.21.")
    good = GOOD["f32-stride2-same"]
    for target, crasher, sig, words in (("tf-xla", XLA_ZERO_COUT, "SIGFPE", None),
                                        ("tf-eager-onednn", ONEDNN_HUGE_SHAPE, "SIGABRT", "Check failed")):
        pool = pools[target]
        before = pool.counters["crashes"]
        outs = pool.run([good, crasher, good])
        assert [outs[0].kind, outs[2].kind] == ["value", "value"], [o.describe() for o in outs]
        assert outs[0].value.tobytes() == outs[2].value.tobytes()
        if pinned:
            assert outs[1].kind == "crashed" and outs[1].signal_name == sig, outs[1].describe()
            assert pool.counters["crashes"] == before + 1 and pool.counters["restarts"] >= 1
            if words:
                assert words in outs[1].describe() and "mkl_conv_grad_input_ops" in outs[1].stderr_tail
        else:
            assert outs[1].kind in ("crashed", "raised")


def test_run_on_targets_one_message_per_environment_with_real_crashes(pools):
    """Every TF target, one case list: the XLA SIGFPE and the oneDNN SIGABRT are pinned on their
    (target, case); every other item keeps its outcome; good cases agree with single runs."""
    import tensorflow as tf

    from conv3dt.oracle.pool import run_on_targets

    good, other = GOOD["f32-stride2-same"], GOOD["f64-valid-int-stride"]
    cases = [good, XLA_ZERO_COUT, ONEDNN_HUGE_SHAPE, other]
    pools = _targets(pools)
    out = run_on_targets(pools, cases)
    assert list(out) == list(pools) and all(len(v) == 4 for v in out.values())
    for target, outs in out.items():
        for i in (0, 3):
            alone = pools[target].run([cases[i]])[0]
            assert outs[i].kind == alone.kind == "value", (target, outs[i].describe())
            assert outs[i].value.tobytes() == alone.value.tobytes(), target
    if tf.__version__.startswith("2.21."):
        assert out["tf-xla"][1].kind == "crashed" and out["tf-xla"][1].signal_name == "SIGFPE"
        assert out["tf-eager-onednn"][2].kind == "crashed" and out["tf-eager-onednn"][2].signal_name == "SIGABRT"
        for target in ("tf-eager", "tf-eager-stock", "tf-graph", "tf-function", "tf-v2"):
            assert out[target][1].kind != "crashed", target
            huge = out[target][2]   # only oneDNN aborts on it (a CHECK failure), wherever it ran
            if huge.kernel.family == "stock":
                assert huge.kind == "raised", (target, huge.describe())
            elif huge.kind == "crashed":
                assert huge.signal_name == "SIGABRT" and "Check failed" in huge.describe(), target


def test_bfloat16_inputs_reach_tf_as_its_own_bfloat16_type(monkeypatch):
    """TF 2.12 has its own NumPy bfloat16 and rejects ml_dtypes.bfloat16 arrays (every bfloat16
    Case was a false accept-reject finding on the tf212 gate): inputs are viewed as TF's type."""
    import types

    import ml_dtypes

    from conv3dt.oracle import tf_paths

    foreign = np.dtype(np.float16)          # stands for TF 2.12's own 2-byte bfloat16 type
    monkeypatch.setattr(tf_paths, "_tf", lambda: types.SimpleNamespace(
        bfloat16=types.SimpleNamespace(as_numpy_dtype=foreign.type)))
    bf = np.array([1.5, -2.0, 3.0], dtype=ml_dtypes.bfloat16)
    f32 = np.ones(2, np.float32)
    v, f = tf_paths.from_numpy((bf, f32))
    assert v.dtype == foreign and v.view(ml_dtypes.bfloat16).tolist() == bf.tolist() and f is f32
    assert tf_paths.from_numpy((None, f32)) == (None, f32)
    monkeypatch.setattr(tf_paths, "_tf", lambda: types.SimpleNamespace(      # TF >= 2.13
        bfloat16=types.SimpleNamespace(as_numpy_dtype=ml_dtypes.bfloat16)))
    assert tf_paths.from_numpy((bf, None))[0] is bf
