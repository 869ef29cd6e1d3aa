"""merge_stats: how per-process session statistics add up (the gate and the tripwire read this)."""
import json

from conv3dt.fuzz.session import merge_stats


def test_counters_add_cells_add_elementwise_samples_concatenate_ids_union(tmp_path):
    a = {"examples": {"differential": {"impl": 3}}, "matrix": {"impl": {"dtype=float32": [3, 1]}},
         "headroom": {"impl": {"float32": [0.5]}},
         "corpus": {"replayed": 2, "fixed": ["F1", "F2"], "still_failing": []}}
    b = {"examples": {"differential": {"impl": 4}}, "matrix": {"impl": {"dtype=float32": [2, 0]}},
         "headroom": {"impl": {"float32": [0.25]}},
         "corpus": {"replayed": 1, "fixed": ["F2", "F3"], "still_failing": ["F4"]}}
    paths = []
    for name, stats in (("a", a), ("b", b)):
        (tmp_path / name).write_text(json.dumps(stats))
        paths.append(tmp_path / name)
    total = merge_stats(paths)
    assert total["examples"] == {"differential": {"impl": 7}}
    assert total["matrix"] == {"impl": {"dtype=float32": [5, 1]}}
    assert total["headroom"] == {"impl": {"float32": [0.5, 0.25]}}
    assert total["corpus"] == {"replayed": 3, "fixed": ["F1", "F2", "F3"], "still_failing": ["F4"]}


def test_one_known_deviation_per_key_is_the_smallest_id_whatever_the_order(tmp_path):
    """Which xdist worker sees which hit first changes between runs of one seed: the recorder
    keeps the smallest id per (ledger id, target, property, kind), not the first seen."""
    from dataclasses import replace

    from conv3dt.fuzz.judge import make_finding
    from conv3dt.fuzz.session import Recorder
    from conv3dt.oracle.arrays import ArraySpec
    from conv3dt.oracle.case import Case

    def hit(seed):
        case = Case(ArraySpec("float32", (1, 1, 1, 1, 2), "normal", seed=seed),
                    ArraySpec("float32", (1, 1, 1, 3, 2), "normal", seed=seed),
                    output_shape=[1, 1, 1, 1, 3])
        return replace(make_finding("value-mismatch", case, "tf-eager", "differential", "e", "o"),
                       known_deviation="some-entry")

    hits = [hit(s) for s in range(6)]
    smallest = min(f.id for f in hits)
    for order in (hits, hits[::-1], hits[2:] + hits[:2]):
        rec = Recorder(None, "gw0")
        for f in order:
            rec.known(f)
        assert list(rec.findings) == [smallest]
        assert rec.ledger_hits["some-entry"] == 6


def test_the_tripwire_merges_what_real_workers_write(tmp_path):
    """Every worker's stats carry its pools' time-limit policies (strings: structure summaries,
    dtypes). The controller's tripwire merged whole files and died on them (``0 + 'float64'``):
    a ci gate with no new finding exited 3. Non-numeric leaves are facts, not sums."""
    from conv3dt.fuzz.session import Recorder
    from conv3dt.oracle.arrays import ArraySpec
    from conv3dt.oracle.case import Case
    from conv3dt.oracle.pool import TargetPool

    case = Case(ArraySpec("float32", (1, 1, 1, 1, 2), "normal", seed=1),
                ArraySpec("float32", (1, 1, 1, 3, 2), "normal", seed=2), output_shape=[1, 1, 1, 1, 3])
    with TargetPool("impl", timeout=30, isolate=True) as pool:   # as the gate runs impl
        assert pool.run([case])[0].kind == "value"
        limits = pool.time_limits()
    assert any(isinstance(s.get("summary"), str) for s in limits["structures"].values())
    for wid, n in (("gw0", 3), ("gw1", 4)):
        rec = Recorder(tmp_path, wid)
        rec.extra["time_limits"] = {"impl": limits}
        rec.examples["differential"]["impl"] = n
        rec.write()
    paths = sorted(tmp_path.glob("stats-*.json"))
    assert len(paths) == 2
    total = merge_stats(paths)
    assert total["examples"]["differential"]["impl"] == 7
    sid, structure = next(iter(limits["structures"].items()))
    merged = total["time_limits"]["impl"]["structures"][sid]
    assert merged["summary"] == structure["summary"] and merged["calls"] == 2 * structure["calls"]
    only = merge_stats(paths, ("examples", "coverage"))
    assert set(only) == {"examples", "coverage"}
