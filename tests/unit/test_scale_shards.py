"""Sharded gates (``conv3dt gate --shard I/N``) and their merge (``conv3dt report merge``).

The shard records are real: two shard gates of a broken kernel (``tests.unit.scale_targets:
wrong_cout3``, NumPy only: a few seconds each). What the merge must equal is computed here
from the shard records independently of ``reports.shards``.
"""
from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest

from conv3dt.fuzz import profiles
from conv3dt.fuzz.coverage import REQUIRED
from conv3dt.fuzz.session import Recorder
from conv3dt.fuzz.shard import Shard, ShardError
from conv3dt.reports.record import dumps, load, write
from conv3dt.reports.shards import MergeError, merge_records
from tests.unit.scale_helpers import built_once
from tests.unit.test_cli_gate import conv3dt

TARGET = "tests.unit.scale_targets:wrong_cout3"
SHARD_RUN = ["--workers", "0", "--examples", "4", "--target", TARGET, "--quiet"]


# ---------------------------------------------------------------------------- Shard
@pytest.mark.parametrize("count", [1, 2, 3, 8, 64])
def test_every_item_belongs_to_exactly_one_shard(count: int) -> None:
    keys = [f"F{i:011x}" for i in range(100 * count)]
    owners = Counter(i for k in keys for i in range(1, count + 1) if Shard(i, count).owns(k))
    assert sum(owners.values()) == len(keys)                 # disjoint and complete
    assert all(owners[i] > 100 * 0.5 for i in range(1, count + 1)), owners   # 100 ± 10 each


def test_shard_seeds_are_distinct_and_1_of_1_is_the_run() -> None:
    assert Shard(1, 1).seed(7) == 7
    seeds = {Shard(i, 8).seed(7) for i in range(1, 9)} | {Shard(i, 8).seed(8) for i in range(1, 9)}
    assert len(seeds) == 16 and all(0 <= s < 2**63 for s in seeds)


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1/0", "a/b", "2", "1/2/3"])
def test_a_bad_shard_is_refused(spec: str) -> None:
    with pytest.raises(ShardError, match="shard"):
        Shard.parse(spec)


@pytest.mark.parametrize("argv, message", [
    (["--shard", "3/2"], "shard 3/2: need 1 <= I <= N"),
    (["--example-db", "http://127.0.0.1:1/"], "expected a redis://host:port/db URL"),
])
def test_bad_scale_options_are_one_usage_line(tmp_path: Path, argv, message) -> None:
    res = conv3dt("gate", *argv, "--target", "impl", "--report-dir", str(tmp_path / "r"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
    assert not (tmp_path / "r" / "report.json").exists()


def test_a_shard_defers_the_tripwire_to_the_merge(tmp_path: Path) -> None:
    """A shard of several writes the cells the tripwire requires instead of failing on them;
    the whole run (1/1) keeps checking them itself."""
    from conv3dt.fuzz.conformance.plugin import deferred_tripwire

    rec = Recorder(tmp_path, "main")
    saved = profiles.ACTIVE["shard"]
    try:
        profiles.ACTIVE["shard"] = Shard(1, 1)
        assert deferred_tripwire(rec, []) is False and not (tmp_path / "tripwire.json").exists()
        profiles.ACTIVE["shard"] = Shard(2, 3)
        assert deferred_tripwire(rec, ["dtype=bfloat16"]) is True
    finally:
        profiles.ACTIVE["shard"] = saved
    verdict = json.loads((tmp_path / "tripwire.json").read_text())
    assert verdict["deferred"] and verdict["gaps"] == []
    assert verdict["required"] == sorted(c for c in REQUIRED if c != "dtype=bfloat16")


# ---------------------------------------------------------------------------- merge
@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[Path]:
    """Shard 1/2 and 2/2 of one gate (built once per test session)."""
    def build(out: Path) -> None:
        for i in (1, 2):
            res = conv3dt("gate", "--shard", f"{i}/2", "--report-dir", str(out / f"shard{i}"),
                          *SHARD_RUN)
            assert res.returncode in (0, 1), res.stderr

    out = built_once(tmp_path_factory, "scale-shards", build)
    return [out / f"shard{i}" / "report.json" for i in (1, 2)]


def test_shards_split_the_corpus_and_search_with_their_own_seeds(shards) -> None:
    a, b = (load(p) for p in shards)
    assert (a["run"]["shard"]["index"], b["run"]["shard"]["index"]) == (1, 2)
    assert a["run"]["shard"]["seed"] != b["run"]["shard"]["seed"]

    def entries(r: dict) -> set[str]:
        return {i for k in ("skipped", "fixed", "still_failing", "known") for i in r["corpus"][k]}

    shipped = {p.stem for p in (Path(profiles.__file__).parent / "corpus").glob("*.json")}
    assert entries(a).isdisjoint(entries(b)) and entries(a) | entries(b) == shipped


def test_merge_equals_the_union_of_the_shards(shards, tmp_path: Path) -> None:
    res = conv3dt("report", "merge", *map(str, shards), "-o", str(tmp_path / "m"))
    merged = load(tmp_path / "m" / "report.json")
    parts = [load(p) for p in shards]
    for name in ("report.md", "report.html", "junit.xml"):
        assert (tmp_path / "m" / name).stat().st_size > 0
    # coverage, examples and ledger hits: sums of the shards'
    cells = Counter()
    for r in parts:
        cells.update(r["coverage"]["cells"])
    assert merged["coverage"]["cells"] == dict(cells)
    assert merged["summary"]["examples"] == sum(r["summary"]["examples"] for r in parts)
    hits = Counter()
    for r in parts:
        hits.update(r["ledger"]["matched"])
    assert merged["ledger"]["matched"] == dict(hits)
    # findings: one per distinct failure of the union, its count the union's count
    by_sig: dict[str, int] = Counter()
    for r in parts:
        for f in r["findings"]:
            by_sig[f["details"].get("signature") or f["id"]] += f["count"]
    got = {f["details"].get("signature") or f["id"]: f["count"] for f in merged["findings"]}
    assert got == dict(by_sig) and merged["summary"]["new"] >= 1
    # one verdict, one exit code: the gate's own rules for the union
    from conv3dt.gate import verdict_exit
    counts = {"errors": 0, "failures": merged["summary"]["new"], "first_error": ""}
    code, _ = verdict_exit(merged, None, False, counts, 1 if merged["summary"]["new"] else 0, None,
                           tmp_path)
    assert res.returncode == merged["run"]["exit"]["code"] == code == 1, res.stderr
    assert [u["index"] for u in merged["run"]["shards"]] == [1, 2]


def test_merge_is_order_independent_and_idempotent(shards, tmp_path: Path) -> None:
    a, b = ((str(p), load(p)) for p in shards)
    once = dumps(merge_records([a, b]))
    assert dumps(merge_records([b, a])) == once
    write(tmp_path / "ab.json", json.loads(once))
    ab = (str(tmp_path / "ab.json"), load(tmp_path / "ab.json"))
    assert dumps(merge_records([b, ab, a, a])) == once          # each shard counted once
    assert dumps(merge_records([ab])) == once


def _variant(src: Path, dst: Path, change) -> str:
    r = load(src)
    change(r)
    write(dst, r)
    return str(dst)


@pytest.mark.parametrize("change, message", [
    (lambda r: r["environment"].update(tensorflow="2.99.0"), "different TensorFlow versions"),
    (lambda r: r["ledger"].update(entries=r["ledger"]["entries"][1:]),
     r"different ledgers \(entries only in the first: \['\S+'\]; only in the second: \[\]\)"),
    (lambda r: r["run"]["shard"].update(count=3), "shards of different N"),
    (lambda r: r["run"].update(duration_s=r["run"]["duration_s"] + 1),
     "different records of shard 2/2"),
])
def test_merge_refuses_records_of_different_runs(shards, tmp_path: Path, change, message) -> None:
    other = _variant(shards[1], tmp_path / "other.json", change)
    with pytest.raises(MergeError, match=message) as err:
        merge_records([(str(p), load(p)) for p in shards] + [(other, load(other))])
    assert "\n" not in str(err.value) and "other.json" in str(err.value)


def test_a_refused_merge_is_one_line_and_writes_nothing(shards, tmp_path: Path) -> None:
    other = _variant(shards[1], tmp_path / "other.json",
                     lambda r: r["environment"].update(tensorflow="2.99.0"))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "report.json").write_text("kept")
    res = conv3dt("report", "merge", str(shards[0]), other, "-o", str(tmp_path / "m"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "different TensorFlow versions" in res.stderr and "Traceback" not in res.stderr
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["report.json"]
    assert (tmp_path / "m" / "report.json").read_text() == "kept"


def test_a_missing_shard_makes_the_merge_partial_and_not_a_pass(shards, tmp_path: Path) -> None:
    only = _variant(shards[1], tmp_path / "s2.json", lambda r: r.update(findings=[]) or
                    r["summary"].update(new=0, verdict="pass"))
    merged = merge_records([(only, load(only))])
    assert merged["partial"] and "shards missing: 1/2" in merged["interrupted"]["reason"]
    assert merged["run"]["exit"]["code"] == 3


def test_the_tripwire_applies_to_the_union_of_the_shards(shards) -> None:
    """Each shard required cells; a cell one shard missed but the other hit is covered, a cell
    neither hit is a gap of the merged run (exit 3 when nothing new)."""
    a, b = (load(p) for p in shards)
    for r in (a, b):
        r["findings"], r["summary"]["new"], r["summary"]["verdict"] = [], 0, "pass"
    only_b = sorted(c for c in REQUIRED
                    if c in b["coverage"]["cells"] and c not in a["coverage"]["cells"])
    assert only_b, "the two shards' coverage should differ"
    never = next(c for c in REQUIRED if c in a["coverage"]["cells"] and c in b["coverage"]["cells"])
    for r in (a, b):          # a required cell neither shard hit
        del r["coverage"]["cells"][never]
    required = [c for c in REQUIRED if c in a["coverage"]["cells"] or c in b["coverage"]["cells"]
                or c == never]
    for r in (a, b):
        r["coverage"]["tripwire"] = {"gaps": [], "past_deadline": False, "unreachable": [],
                                     "deferred": True, "required": required}
    merged = merge_records([("a", copy.deepcopy(a)), ("b", copy.deepcopy(b))])
    assert merged["coverage"]["tripwire"]["gaps"] == [never]
    assert merged["run"]["exit"]["code"] == 3 and never in merged["run"]["exit"]["reason"]
    b["coverage"]["cells"][never] = 1
    merged = merge_records([("a", a), ("b", b)])
    assert merged["coverage"]["tripwire"]["gaps"] == [] and merged["run"]["exit"]["code"] == 0


def test_a_campaign_runs_its_shard_with_its_own_seeds(tmp_path: Path) -> None:
    """``conv3dt fuzz --shard I/N``: each round's session runs shard I with the shard's seed of
    that round; the record says which shard it is."""
    res = conv3dt("fuzz", "--shard", "2/3", "--budget", "6", "--round-examples", "1",
                  "--workers", "0", "--target", "impl", "--report-dir", str(tmp_path / "c"),
                  "--quiet")
    assert res.returncode == 0, res.stderr
    record = load(tmp_path / "c" / "report.json")
    assert record["run"]["shard"] == {"index": 2, "count": 3, "seed": Shard(2, 3).seed(0)}
    shipped = {p.stem for p in (Path(profiles.__file__).parent / "corpus").glob("*.json")}
    seen = {i for k in ("skipped", "fixed", "still_failing", "known") for i in record["corpus"][k]}
    assert seen == {i for i in shipped if Shard(2, 3).owns(i)}        # its slice of the corpus
