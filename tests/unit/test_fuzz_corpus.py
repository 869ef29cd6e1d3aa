"""fuzz.corpus: atomic, deduplicated saves; corrupt files named; replay statuses
(fixed / known / still_failing / skipped) with the entry's own property."""
from __future__ import annotations

import json
import multiprocessing
import threading

import numpy as np
import pytest

from conv3dt import impl
from conv3dt.fuzz import corpus
from conv3dt.fuzz.judge import judge_value
from conv3dt.fuzz.ledger import Entry, Ledger
from conv3dt.fuzz.metamorphic import check
from conv3dt.fuzz.properties import Context
from conv3dt.fuzz.session import Recorder
from conv3dt.fuzz.truth import truth_of
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome
from conv3dt.oracle.worker import call_v1
from tests.unit import broken_targets as bt


class FakePool:
    def __init__(self, fn):
        self.fn = fn

    def run(self, cases):
        outs = []
        for c in cases:
            try:
                outs.append(Outcome.of_value(np.asarray(call_v1(self.fn, c, c.arrays()))))
            except Exception as exc:  # noqa: BLE001
                outs.append(Outcome.of_exception(exc))
        return outs


def case(n=2):
    return Case(value=ArraySpec("float32", (n, 2, 2, 2, 2), "normal", 1, (("scale", 1.0),)),
                filter=ArraySpec("float32", (2, 2, 2, 3, 2), "normal", 2, (("scale", 1.0),)),
                output_shape=[n, 4, 4, 4, 3], strides=[2, 2, 2], padding="SAME")


def value_finding(target="tf-eager"):
    """A real differential Finding of ignores_batch."""
    c = case()
    out = FakePool(bt.ignores_batch).run([c])[0]
    (f,) = judge_value(c, out, truth_of(c), target, "differential")[0]
    return f


def test_round_trip(tmp_path):
    f = value_finding()
    p = corpus.save(f, tmp_path)
    assert p.name == f"{f.id}.json"
    assert p.stat().st_mode & 0o777 == 0o644
    (e,) = corpus.load(tmp_path)
    assert e["finding_id"] == f.id and e["kind"] == f.kind and e["property"] == "differential"
    assert e["case_obj"] == case() and e["case_obj"].to_json() == f.case


def test_dedupe_by_id_keeps_the_first(tmp_path):
    f = value_finding()
    p = corpus.save(f, tmp_path)
    before = p.read_text()
    from dataclasses import replace
    corpus.save(replace(f, observed="a later, different text"), tmp_path)
    assert p.read_text() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == [p.name]  # no temp file left over


def _save_many(args):
    directory, n = args
    f = value_finding()
    for _ in range(n):
        corpus.save(f, directory)
    return f.id


def test_concurrent_saves_leave_one_valid_file(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        ids = pool.map(_save_many, [(str(tmp_path), 20)] * 4)
    threads = [threading.Thread(target=_save_many, args=((tmp_path, 20),)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert [x.name for x in tmp_path.iterdir()] == [f"{ids[0]}.json"]
    assert corpus.load(tmp_path)[0]["finding_id"] == ids[0]


def test_a_corrupt_entry_is_replaced_by_a_good_save(tmp_path):
    f = value_finding()
    (tmp_path / f"{f.id}.json").write_text("{oops")
    corpus.save(f, tmp_path)
    assert corpus.load(tmp_path)[0]["finding_id"] == f.id


@pytest.mark.parametrize("text,why", [
    ("{not json", "JSONDecodeError"),
    ("[1, 2]", "expected an object"),
    (json.dumps({"schema": "other/1"}), "schema"),
    (json.dumps({"schema": corpus.SCHEMA, "finding_id": "Fx"}), "missing fields"),
])
def test_corrupt_file_is_one_clear_error_naming_it(tmp_path, text, why):
    corpus.save(value_finding(), tmp_path)
    bad = tmp_path / "Fbad.json"
    bad.write_text(text)
    entries, errors = corpus.scan(tmp_path)
    assert len(entries) == 1 and len(errors) == 1
    assert errors[0].path == bad and str(bad) in str(errors[0]) and why in str(errors[0])
    with pytest.raises(corpus.CorpusError, match="Fbad.json"):
        corpus.load(tmp_path)


def test_id_must_match_file_name(tmp_path):
    p = corpus.save(value_finding(), tmp_path)
    p.rename(tmp_path / "Fother.json")
    (err,) = corpus.scan(tmp_path)[1]
    assert "does not match the file name" in str(err)


def ctx_for(fn, ledger_entries=()):
    return Context({"tf-eager": FakePool(fn)}, Recorder(None), Ledger(list(ledger_entries), "2.21.0"),
                   FakePool(impl.conv3d_transpose))


def entry_for(f, tmp_path):
    corpus.save(f, tmp_path)
    return corpus.load(tmp_path)[0]


def test_replay_still_failing_fixed_known_skipped(tmp_path):
    e = entry_for(value_finding(), tmp_path)
    r = corpus.replay(e, ctx_for(bt.ignores_batch))
    assert r.status == "still_failing" and r.unknown and r.unknown[0].id == e["finding_id"]
    assert corpus.replay(e, ctx_for(impl.conv3d_transpose)).status == "fixed"
    known = Entry(id="k", reason="r", targets=["*"], kinds=["value-mismatch"])
    ctx = ctx_for(bt.ignores_batch, [known])
    r = corpus.replay(e, ctx)
    assert r.status == "known" and r.unknown == [] and ctx.ledger.hits["k"] == 1
    other = dict(e, target="not-selected")
    assert corpus.replay(other, ctx_for(impl.conv3d_transpose)).status == "skipped"


def test_replay_of_a_metamorphic_entry_uses_its_identity(tmp_path):
    v = check("batch-split", case(), FakePool(bt.ignores_batch).run, "tf-eager")
    e = entry_for(v.findings[0], tmp_path)
    assert e["property"] == "metamorphic-batch-split"
    assert corpus.replay(e, ctx_for(bt.ignores_batch)).status == "still_failing"
    assert corpus.replay(e, ctx_for(impl.conv3d_transpose)).status == "fixed"


def test_replay_of_an_invalid_entry(tmp_path):
    c = case().with_(filter=ArraySpec("float32", (2, 2, 2, 3, 3), "normal", 2, (("scale", 1.0),)),
                     label="invalid:channel-in")
    from conv3dt.fuzz.judge import judge_rejection
    impl_out = FakePool(impl.conv3d_transpose).run([c])[0]
    (f,) = judge_rejection(c, FakePool(bt.skipped_channel_validation).run([c])[0], impl_out, "tf-eager",
                           "invalid")
    e = entry_for(f, tmp_path)
    assert corpus.replay(e, ctx_for(bt.skipped_channel_validation)).status == "still_failing"
    assert corpus.replay(e, ctx_for(impl.conv3d_transpose)).status == "fixed"


def test_record_builds_the_stats_section():
    stats = {}
    for i, s in [("a", "fixed"), ("b", "still_failing"), ("c", "known"), ("d", "skipped")]:
        corpus.record(stats, i, s)
    corpus.record(stats, "/x/Fbad.json", "corrupt")
    assert stats["corpus"] == {"replayed": 3, "fixed": ["a"], "still_failing": ["b"],
                               "known": ["c"], "skipped": ["d"], "corrupt": ["/x/Fbad.json"]}
