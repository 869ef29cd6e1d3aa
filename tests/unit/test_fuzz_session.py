"""merge_stats: how per-process session statistics add up (the gate and the tripwire read this)."""
import json

from fuzz.session import merge_stats


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
