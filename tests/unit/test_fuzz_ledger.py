"""fuzz.ledger: narrow predicates over observed facts (a near miss, another kernel, does not
match), hit counts, stale entries, and load errors that name the file and the misspelt name."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conv3dt.fuzz.judge import make_finding
from conv3dt.fuzz.ledger import DEFAULT_LEDGER, Entry, Ledger, LedgerError, ledger_files
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.kernels import KernelObservation

NCDHW = "cpu-ncdhw-unsupported"
MSG = "Conv3DBackpropInputOpV2 only supports NDHWC on the CPU."


def ncdhw_case(**changes):
    base = Case(value=ArraySpec("float32", (1, 2, 2, 2, 2), "normal", 1, (("scale", 1.0),)),
                filter=ArraySpec("float32", (2, 2, 2, 3, 2), "normal", 2, (("scale", 1.0),)),
                output_shape=[1, 3, 4, 4, 4], strides=[2, 2, 2], padding="SAME",
                data_format="NCDHW")
    return base.with_(**changes)


def ran(finding, *families):
    """The Finding as judged on Outcomes the oracle observed running on ``families``."""
    return replace(finding, kernels=[KernelObservation(f, evidence="message").to_json()
                                     for f in families])


def finding(case=None, target="tf-eager", kind="accept-reject", cls="tensorflow.python.framework."
            "errors_impl.InvalidArgumentError", message=MSG, prop="differential", kernel="stock"):
    return ran(make_finding(kind, case or ncdhw_case(), target, prop, "a result",
                            f"raised {cls.rsplit('.', 1)[-1]}: {message}", error_class=cls,
                            message=message), *([kernel] if kernel else []))


@pytest.fixture()
def ledger():
    return Ledger.load(DEFAULT_LEDGER, "2.21.0")


def test_the_real_finding_matches(ledger):
    assert ledger.classify(finding()).known_deviation == NCDHW
    assert ledger.hits[NCDHW] == 1


def test_the_kernel_not_the_target_name_decides():
    """The stock kernel's deviation is known on any target that ran it, and only there."""
    for target in ("tf-eager", "tf-eager-onednn", "tf-graph", "tf-grad"):
        assert ledger_21().classify(finding(target=target)).known_deviation == NCDHW
    assert ledger_21().classify(finding(target="tf-eager-stock", kernel="onednn")).known_deviation is None


def ledger_21():
    return Ledger.load(DEFAULT_LEDGER, "2.21.0")


@pytest.mark.parametrize("near_miss", [
    dict(kernel="xla"),                                        # XLA computes NCDHW
    dict(kernel="onednn"),                                     # so does oneDNN (float32)
    dict(kernel=None),                                         # no kernel observed: no kernel fact
    dict(target="tf-xla", kernel="xla"),
    dict(kind="error-class"),
    dict(cls="builtins.ValueError"),
    dict(message="Conv3DBackpropInputOpV2 failed for another reason"),
    dict(case=ncdhw_case(data_format="NDHWC", output_shape=[1, 4, 4, 4, 3])),
    dict(case=ncdhw_case(label="invalid:channel-out")),
])
def test_a_near_miss_does_not_match(ledger, near_miss):
    f = ledger.classify(finding(**near_miss))
    assert f.known_deviation is None
    assert ledger.hits[NCDHW] == 0


def test_tf_version_is_part_of_the_predicate():
    # a version no entry lists (2.20 is listed since the tf220 gate confirmed its deviations)
    assert Ledger.load(DEFAULT_LEDGER, "3.0.0").classify(finding()).known_deviation is None
    assert Ledger.load(DEFAULT_LEDGER, "2.20.0").classify(finding()).known_deviation is not None
    assert Ledger.load(DEFAULT_LEDGER, None).classify(finding()).known_deviation is None


def test_hits_counted_and_stale_listed(ledger):
    for _ in range(3):
        ledger.classify(finding())
    ledger.classify(finding(kernel="xla"))
    assert ledger.hits[NCDHW] == 3
    stale = ledger.stale()
    assert NCDHW not in stale
    assert set(stale) == {e.id for e in ledger.entries} - {NCDHW}


def test_first_matching_entry_wins_and_none_ledger_is_empty():
    a = Entry(id="a", reason="r", kernels=["stock"], kinds=["accept-reject"])
    b = Entry(id="b", reason="r", targets=["tf-*"], kinds=["accept-reject"])
    led = Ledger([a, b])
    assert led.classify(finding()).known_deviation == "a" and led.hits == {"a": 1, "b": 0}
    assert led.classify(finding(kernel="onednn")).known_deviation == "b"
    assert Ledger.load("none").classify(finding()).known_deviation is None


def test_every_kernel_of_a_finding_must_be_listed():
    e = Entry(id="e", reason="r", kernels=["stock", "xla"], kinds=["accept-reject"])
    assert e.matches(ran(finding(), "stock", "xla"), None)
    assert not e.matches(ran(finding(), "stock", "onednn"), None)


def test_blanket_entries_are_refused():
    with pytest.raises(ValueError, match="too broad"):
        Entry(id="x", reason="r", targets=["tf-*"])
    with pytest.raises(ValueError, match="too broad"):
        Entry(id="x", reason="r", kernels=["onednn"])
    with pytest.raises(ValueError, match="too broad"):
        Entry(id="x", reason="r", targets=[], kinds=["crash"])


@pytest.mark.parametrize("field,value,words", [
    ("kernels", ["onedn"], "unknown kernel families ['onedn']"),
    ("kinds", ["crashed"], "unknown finding kinds ['crashed']"),
    ("features", {"layuot": "NCDHW"}, "unknown features ['layuot']"),
    ("labels", ["invalid:chanel-in"], "unknown label globs ['invalid:chanel-in']"),
    ("targets", ["tf-eagr"], "unknown target globs ['tf-eagr']"),
    ("dtypes", ["float31"], "unknown dtypes ['float31']"),
    ("properties", ["metamorphic-batchsplit"], "unknown properties"),
    ("tf_versions", ["2.21"], None),          # a version glob: fine
    ("tf_versions", ["v2.21"], "not version globs"),
    ("message", "([unclosed", "not a valid regex"),
])
def test_a_misspelt_name_is_an_error_at_load_naming_entry_and_name(tmp_path, field, value, words):
    e = {"id": "typo", "reason": "r", "kernels": ["stock"], "kinds": ["crash"], field: value}
    p = tmp_path / "l.json"
    p.write_text(json.dumps({"schema": "conv3dt-ledger/1", "entries": [e]}))
    if words is None:
        Ledger.load(p)
        return
    with pytest.raises(LedgerError) as info:
        Ledger.load(p)
    assert str(p) in str(info.value) and "'typo'" in str(info.value) and words in str(info.value)


def test_duplicate_ids_and_unknown_fields_are_refused(tmp_path):
    e = {"id": "x", "reason": "r", "kernels": ["stock"], "kinds": ["crash"]}
    with pytest.raises(ValueError, match="duplicate"):
        Ledger([Entry(**e), Entry(**e)])
    p = tmp_path / "l.json"
    p.write_text(json.dumps({"entries": [dict(e, colour="red")]}))
    with pytest.raises(ValueError, match=r"'x': unknown fields \['colour'\]"):
        Ledger.load(p)
    p.write_text(json.dumps({"schema": "conv3dt-ledger/9", "entries": []}))
    with pytest.raises(LedgerError, match="schema"):
        Ledger.load(p)
    p.write_text(json.dumps([e]))
    with pytest.raises(LedgerError, match="'entries' list"):
        Ledger.load(p)


def test_corrupt_ledger_file_is_one_clear_error_naming_it(tmp_path):
    p = tmp_path / "tf.json"
    p.write_text('{"entries": [ {"id": "x", ')
    with pytest.raises(ValueError) as info:
        Ledger.load(p)
    assert str(p) in str(info.value)


def test_every_real_entry_is_narrow_and_has_a_reason():
    entries = [e for path in ledger_files(DEFAULT_LEDGER)
               for e in json.loads(path.read_text())["entries"]]
    assert {p.name for p in ledger_files(DEFAULT_LEDGER)} >= {"tf.json", "onnxruntime.json",
                                                              "openvino.json"}
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))
    for e in entries:
        assert e["reason"].strip() and (e.get("kernels") or e.get("targets")), e["id"]
        Entry(**e)  # validates: kernels or target globs, plus kinds/labels/message
        # never a target's name as a stand-in for a kernel: oneDNN/stock facts are `kernels`
        assert not {"tf-eager-stock", "tf-eager-onednn"} & set(e.get("targets", [])), e["id"]
        if "onednn" in e["id"] or "stock" in e["id"] or e["id"].startswith("xla-"):
            assert e.get("kernels") and not e.get("targets"), e["id"]


def test_batch_split_nan_entry_is_one_directional(ledger):
    """stock-batched-unreached-inf-tap-nan: only 'batched nan, split finite' on stock paths."""
    inf_filter = ArraySpec("float32", (2, 2, 2, 3, 2), "special", 2,
                           (("pool", (0.0, -float("inf"))), ("p", 0.3), ("scale", 1.0)))
    base = ncdhw_case(data_format="NDHWC", output_shape=[1, 4, 4, 4, 3], filter=inf_filter)
    finite = ncdhw_case(data_format="NDHWC", output_shape=[1, 4, 4, 4, 3])

    def f(observed, target="tf-eager", prop="metamorphic-batch-split", case=base, kernel="stock"):
        return ran(make_finding("metamorphic", case, target, prop, "T(concat) = concat(T)", observed,
                                identity="batch-split"), kernel)
    hit = "2 of 2 elements differ beyond 2*bound; at [0, 0, 0, 0, 0]: np.float64(nan) vs np.float64(0.0)"
    assert ledger.classify(f(hit)).known_deviation == "stock-batched-unreached-inf-tap-nan"
    assert ledger.classify(f(hit.replace("(nan) vs np.float64(0.0)", "(0.0) vs np.float64(nan)"))
                           ).known_deviation is None
    assert ledger.classify(f(hit.replace("(0.0)", "(nan)"))).known_deviation is None
    # the text fuzz/metamorphic/pairs.py writes now (float repr, the same under NumPy 1 and 2)
    plain = "2 of 2 elements differ beyond 2*bound; at [0, 0, 0, 0, 0]: nan vs 0.0"
    assert ledger.classify(f(plain)).known_deviation == "stock-batched-unreached-inf-tap-nan"
    assert ledger.classify(f(plain.replace("nan vs 0.0", "0.0 vs nan"))).known_deviation is None
    assert ledger.classify(f(plain.replace("0.0", "nan"))).known_deviation is None
    assert ledger.classify(f(hit, target="tf-xla", kernel="xla")).known_deviation is None
    assert ledger.classify(f(hit, kernel="onednn")).known_deviation is None
    assert ledger.classify(f(hit, prop="metamorphic-layout")).known_deviation is None
    assert ledger.classify(f(hit, case=finite)).known_deviation is None  # needs a non-finite input


def test_the_stock_fallback_under_onednn_is_the_stock_entry(ledger):
    """With oneDNN on, float64 runs the stock kernel (oneDNN's kernel is not registered for it):
    the oracle observes 'stock', so the stock kernel's entry covers it on the oneDNN target;
    the same text observed on oneDNN is not known."""
    hit = "2 of 2 elements differ beyond 2*bound; at [0, 0, 0, 0, 0]: nan vs 0.0"
    base = Case(value=ArraySpec("float64", (2, 1, 1, 1, 1), "normal", 1, (("scale", 1.0),)),
                filter=ArraySpec("float64", (1, 1, 2, 1, 1), "special", 2,
                                 (("pool", (-float("inf"),)), ("p", 0.3), ("scale", 1.0))),
                output_shape=[2, 1, 1, 1, 1], strides=[1, 1, 1], padding="SAME")
    f = make_finding("metamorphic", base, "tf-eager-onednn", "metamorphic-batch-split", "e", hit)
    assert ledger.classify(ran(f, "stock")).known_deviation == "stock-batched-unreached-inf-tap-nan"
    assert ledger.classify(ran(f, "onednn")).known_deviation is None


# ---------------------------------------------------------------- overlays
MINE = {"id": "mine-ncdhw", "reason": "our kernel rejects NCDHW", "targets": ["mypkg.kernel:*"],
        "kinds": ["accept-reject"], "message": "only supports NDHWC"}


def _write(path, *entries):
    path.write_text(json.dumps({"schema": "conv3dt-ledger/1", "entries": list(entries)}))
    return path


def test_an_overlay_adds_to_the_shipped_ledger_in_source_order(tmp_path):
    own = _write(tmp_path / "mine.json", MINE)
    both = Ledger.load([DEFAULT_LEDGER, own], "2.21.0")
    shipped = Ledger.load(DEFAULT_LEDGER, "2.21.0")
    assert [e.id for e in both.entries] == [e.id for e in shipped.entries] + ["mine-ncdhw"]
    vendor = finding(target="mypkg.kernel:conv3d_transpose", kernel="external")
    assert both.classify(vendor).known_deviation == "mine-ncdhw"
    assert shipped.classify(vendor).known_deviation is None
    # the shipped entries still apply to TF's own findings
    assert both.classify(finding()).known_deviation == NCDHW
    # the same, spelt as the gate passes it to the session: paths joined by os.pathsep
    import os
    joined = Ledger.load(os.pathsep.join([str(DEFAULT_LEDGER), str(own)]), "2.21.0")
    assert [e.id for e in joined.entries] == [e.id for e in both.entries]


def test_a_directory_is_every_json_in_it_and_ids_are_unique_across_sources(tmp_path):
    d = tmp_path / "ledgers"
    d.mkdir()
    _write(d / "b.json", dict(MINE, id="second"))
    _write(d / "a.json", MINE)
    assert [e.id for e in Ledger.load(d).entries] == ["mine-ncdhw", "second"]
    clash = _write(tmp_path / "clash.json", dict(MINE, id=NCDHW))
    with pytest.raises(LedgerError) as info:
        Ledger.load([DEFAULT_LEDGER, clash])
    assert str(clash) in str(info.value) and f"{NCDHW!r} is already defined in" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LedgerError, match="without any"):
        Ledger.load(tmp_path / "empty")


@pytest.mark.parametrize("field,value", [("kernels", "onednn"), ("kinds", [3]),
                                         ("message", ["a"]), ("features", ["layout"])])
def test_a_field_of_the_wrong_type_is_one_clear_error(tmp_path, field, value):
    p = _write(tmp_path / "l.json", dict(MINE, **{field: value}))
    with pytest.raises(LedgerError) as info:
        Ledger.load(p)
    assert str(p) in str(info.value) and "'mine-ncdhw'" in str(info.value)


def test_an_empty_grad_output_is_a_feature_entries_may_name():
    from conv3dt.fuzz.ledger import case_features

    assert case_features({"grad_output": {"shape": [0, 4, 4, 4, 4]}})["empty-grad-output"] is True
    assert case_features({"grad_output": {"shape": [1, 4, 4, 4, 4]}})["empty-grad-output"] is False
    assert case_features({})["empty-grad-output"] is False
