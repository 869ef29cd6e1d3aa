"""``conv3dt bench fuzz`` prints a table by default and JSON with ``--json``, and its ``--batches``
help says how many Cases a batch holds."""
from __future__ import annotations

import json

import pytest

from conv3dt import bench_fuzz
from conv3dt.fuzz.strategies import VALUE_BATCH

# the shape of one tier's result from bench_fuzz._bench (numbers made up)
RESULT = {"tier": "differential", "targets": ["impl", "tf-eager"], "jobs": 2, "cases": 1600,
          "examples": 3200, "example": "one judged (Case, target) pair", "wall_s": 12.5,
          "examples_per_s": 256.0, "cases_per_s": 128.0,
          "per_case_ms": {"oracle": 3.25, "truth": 1.5, "judge": 0.75,
                          "generate+hypothesis": 2.125, "other (coverage, recording)": 0.375},
          "deviating_batches": 7, "worker_crashes": 3}


@pytest.fixture
def canned(monkeypatch):
    """``_bench`` returns RESULT for the tier asked (no processes, no targets)."""
    tiers = []

    def fake_bench(targets, a, tier):
        tiers.append(tier)
        return {**RESULT, "tier": tier, "targets": targets}

    monkeypatch.setattr(bench_fuzz, "_bench", fake_bench)
    return tiers


def test_prints_a_table_of_every_tier_by_default(canned, capsys):
    assert bench_fuzz.main(["--target", "impl", "--target", "tf-eager"]) == 0
    out = capsys.readouterr().out
    assert canned == ["differential", "realistic"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    for tier in ("differential", "realistic"):
        assert f"tier {tier}: impl, tf-eager (2 processes" in out
    lines = out.splitlines()

    def row(label):
        hits = [ln.split() for ln in lines if ln.strip().startswith(label)]
        assert len(hits) == 2, (label, out)  # one per tier
        return hits[0]

    assert row("examples/s")[1] == "256.0" and "(3200" in row("examples/s")
    assert row("Cases/s")[1] == "128.0"
    for part, ms in RESULT["per_case_ms"].items():
        assert row(part)[-1] == f"{ms:.3f}"
    assert row("worker crashes")[-1] == "3"
    assert row("deviating batches")[-1] == "7"


def test_json_instead_of_the_table(canned, capsys):
    assert bench_fuzz.main(["--target", "impl", "--tier", "realistic", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {**RESULT, "tier": "realistic", "targets": ["impl"]}
    assert bench_fuzz.main(["--target", "impl", "--json"]) == 0
    assert [r["tier"] for r in json.loads(capsys.readouterr().out)] == ["differential", "realistic"]


@pytest.mark.parametrize("flag", ["--batches", "--jobs"])
def test_a_count_below_one_is_a_usage_error(flag, canned, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_fuzz.main(["--target", "impl", flag, "0"])
    assert exc.value.code == 2
    assert f"{flag} must be >= 1" in capsys.readouterr().err
    assert canned == []


def test_batches_help_states_the_batch_size_drawn(capsys):
    with pytest.raises(SystemExit):
        bench_fuzz.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"differential, {VALUE_BATCH} Cases of one call structure" in text
    assert "up to 4" not in text


def test_a_real_run_prints_the_table(capsys):
    """One differential batch on impl, in a spawned process: the table's counts are real."""
    assert bench_fuzz.main(["--target", "impl", "--batches", "1", "--jobs", "1",
                            "--tier", "differential"]) == 0
    out = capsys.readouterr().out
    assert "tier differential: impl (1 process," in out
    cases = next(int(ln.split("(")[1].split()[0]) for ln in out.splitlines()
                 if ln.strip().startswith("Cases/s"))
    assert cases in (1, VALUE_BATCH)  # one batch: VALUE_BATCH Cases, 1 when zero-size
    assert "deviating batches" in out and "generate+hypothesis" in out
