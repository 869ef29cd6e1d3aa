"""The run record: schema conv3dt-report/1 — merge of a session, validation, atomic write, load errors.

``write_session`` builds a realistic conformance session directory (two xdist workers plus the
controller, real Finding/Case JSON) that the other test_reports_* modules reuse.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conv3dt.fuzz.findings import Finding
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.reports import merge
from conv3dt.reports import record as rec


def make_case(dtype: str = "float32", fmt: str = "NDHWC", padding: str = "SAME", seed: int = 0,
              label: str = "valid") -> Case:
    vshape = [1, 2, 3, 3, 4] if fmt == "NDHWC" else [1, 4, 2, 3, 3]
    oshape = [1, 4, 6, 6, 5] if fmt == "NDHWC" else [1, 5, 4, 6, 6]
    return Case(value=ArraySpec(dtype, tuple(vshape), seed=seed),
                filter=ArraySpec(dtype, (2, 2, 2, 5, 4), seed=seed + 1), output_shape=oshape,
                strides=[1, 2, 2, 2, 1] if fmt == "NDHWC" else [1, 1, 2, 2, 2], padding=padding,
                data_format=fmt, label=label)


def make_finding(kind: str, target: str, prop: str, case: Case, known: str | None = None,
                 headroom: float | None = None, observed: str = "value dtype=float32 shape=(1, 4, 6, 6, 5)",
                 expected: str = "within the error bound") -> Finding:
    return Finding(kind=kind, target=target, property=prop, case=case.to_json(),
                   case_summary=case.summary(), expected=expected, observed=observed,
                   repro="import numpy as np\nimport tensorflow as tf\n" + case.render_arrays()
                   + "\nprint(" + case.render_call() + ")\n",
                   headroom=headroom, known_deviation=known)


def session_findings(with_new: bool = True) -> list[Finding]:
    out = [make_finding("error-class", "tf-eager", "invalid", make_case(label="invalid:padding", seed=3),
                        known="tf-invalid-argument-not-valueerror",
                        expected="ValueError", observed="raised InvalidArgumentError: bad padding"),
           make_finding("accept-reject", "tf-xla", "invalid", make_case(label="invalid:strides", seed=4),
                        known="xla-accepts-batch-stride", expected="rejected",
                        observed="value dtype=float32 shape=(1, 4, 6, 6, 5)")]
    if with_new:
        out.append(make_finding("value-mismatch", "tf-graph", "differential",
                                make_case("float16", "NCDHW", "VALID", seed=7), headroom=3.75,
                                observed="max error 0.031 at [0, 1, 2, 3, 4], bound 0.0083"))
        out.append(make_finding("crash", "tf-eager-stock", "differential",
                                make_case("bfloat16", seed=9),
                                observed="crashed (SIGABRT): Check failed: ...", expected="a value"))
    return out


def session_stats(wid: str, scale: int = 1) -> dict:
    return {
        "examples": {"differential": {"tf-eager": 300 * scale, "tf-graph": 300 * scale, "impl": 300 * scale},
                     "invalid": {"tf-eager": 100 * scale, "tf-xla": 100 * scale}},
        "seconds": {"differential": 12.5, "invalid": 3.0},
        "outcomes": {"tf-eager": {"value": 300, "raised": 100}, "tf-xla": {"raised": 99, "value": 1}},
        "headroom": {"tf-eager": {"float32": [0.01, 0.2, 0.35, 0.0, 0.62], "float16": [0.1, 0.5]},
                     "tf-graph": {"float16": [0.3, 3.75, float("inf")]},
                     "impl": {"float32": [0.001 * i for i in range(1, 900)]}},
        "matrix": {"tf-eager": {"dtype=float32": [200, 0], "layout=NCDHW": [150, 1], "padding=VALID": [140, 0]},
                   "tf-graph": {"dtype=float16": [100, 1], "dilation>1": [30, 0]},
                   "impl": {"dtype=float32": [300, 0]}},
        "coverage": {"dtype=float32": 500 * scale, "padding=VALID": 200, "invalid:padding": 20},
        "ledger_hits": {"tf-invalid-argument-not-valueerror": 5, "xla-accepts-batch-stride": 1},
        "example_phases": {"differential": {"generate": 850 * scale, "shrink": 50 * scale},
                           "invalid": {"generate": 190 * scale, "explicit": 10 * scale}},
    }


def write_session(d: Path, with_new: bool = True, scale: int = 1) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    fs = session_findings(with_new)
    halves = {"gw0": fs[::2], "gw1": fs[1::2] + fs[:1], "main": []}   # fs[0] reported twice
    for wid, part in halves.items():
        (d / f"findings-{wid}.jsonl").write_text("".join(json.dumps(f.to_json()) + "\n" for f in part))
        if wid != "main":
            (d / f"stats-{wid}.json").write_text(json.dumps(session_stats(wid, scale)))
    return d


LEDGER = [{"id": "tf-invalid-argument-not-valueerror", "reason": "eager raises InvalidArgumentError",
           "tf_versions": ">=2.12"},
          {"id": "xla-accepts-batch-stride", "reason": "XLA ignores batch stride", "tf_versions": ">=2.12"},
          {"id": "old-entry", "reason": "fixed long ago", "tf_versions": "<2.10"}]


def make_record(tmp: Path, with_new: bool = True, tf: str = "2.21.0", scale: int = 1,
                baseline: dict | None = None) -> dict:
    session = write_session(tmp / f"session-{tf}-{with_new}", with_new, scale)
    record = rec.new_record({"tensorflow": tf, "python": "3.11", "numpy": "2.4"},
                            {"command": "gate", "profile": "ci", "seed": 0, "duration_s": 20.0,
                             "examples": 0, "targets": ["tf-eager", "tf-graph", "tf-xla",
                                                          "tf-eager-stock", "impl"]})
    findings, stats = merge.read_session(session)
    return merge.merge_session(record, findings, stats, LEDGER, True, baseline)


def test_merge_sums_workers_and_dedupes_findings(tmp_path: Path) -> None:
    r = make_record(tmp_path)
    rec.validate(rec.json_safe(r))
    assert r["summary"]["examples"] == 2 * (900 + 200)
    assert r["summary"]["examples_per_s"] == pytest.approx(2200 / 20.0)
    assert r["coverage"]["examples"]["differential"]["impl"] == 600
    assert r["matrix"]["tf-eager"]["layout=NCDHW"] == [300, 2]
    ids = [f["id"] for f in r["findings"]]
    assert len(ids) == len(set(ids)) == 4
    dup = [f for f in r["findings"] if f["known_deviation"] == "tf-invalid-argument-not-valueerror"]
    assert dup[0]["count"] == 2
    assert [f["status"] for f in r["findings"]][:2] == ["new", "new"]   # new findings first
    s = r["summary"]
    assert (s["verdict"], s["new"], s["known"]) == ("fail", 2, 2)
    assert s["by_kind"]["crash"] == {"new": 1, "known": 0, "baseline": 0}
    assert s["worst_headroom"]["float16"]["headroom"] == float("inf")
    assert s["worst_headroom"]["float16"]["target"] == "tf-graph"
    assert r["ledger"]["matched"] == {"tf-invalid-argument-not-valueerror": 10, "xla-accepts-batch-stride": 2}
    assert r["ledger"]["stale"] == ["old-entry"]
    case = r["findings"][0]["case"]
    for key in rec.CASE_FIELDS:
        assert key in case
    assert case["forms"]["output_shape"] == "list"


def test_merge_keeps_the_smallest_known_id_per_key_across_workers() -> None:
    """Two workers each kept their smallest hit of one (ledger id, target, property, kind):
    the record keeps the smaller of the two, so it does not depend on the xdist split."""
    def raw(fid):
        return {"id": fid, "kind": "value-mismatch", "target": "tf-eager", "property": "differential",
                "known_deviation": "some-entry", "case": {}, "expected": "", "observed": ""}

    other = dict(raw("F0000000000c"), target="tf-graph")
    kept = merge.merge_findings([raw("F00000000009"), raw("F00000000004"), other], set())
    assert sorted((f["target"], f["id"]) for f in kept) == [("tf-eager", "F00000000004"),
                                                            ("tf-graph", "F0000000000c")]


def test_merge_keeps_one_new_finding_per_distinct_failure_the_smallest_reproducer() -> None:
    """Two processes (or two parametrized tests) each shrank the same bug: one finding, the
    smaller Case, counting both; the bookkeeping of that failure is attached to it."""
    def raw(fid, n, signature="crash | t | differential | SIGABRT"):
        return {"id": fid, "kind": "crash", "target": "t", "property": "differential",
                "case": {"value": {"shape": [n, 2, 2, 2, 1]}, "filter": {"shape": [1, 1, 1, 1, 1]},
                         "output_shape": [n, 2, 2, 2, 1]},
                "expected": "", "observed": "", "details": {"signature": signature}}

    other = raw("F0000000000a", 1, "timeout | t | differential | timeout")
    kept = merge.merge_findings([raw("F00000000001", 3), raw("F00000000002", 2), other], set())
    assert sorted((f["id"], f["count"]) for f in kept) == [("F00000000002", 2), ("F0000000000a", 1)]
    stats = {"failures": {"shrink_seconds": 60.0,
                          "keys": {"crash | t | differential | SIGABRT": {"hits": 9, "raised": 4, "shrink_s": 12.5}}}}
    record = rec.new_record({}, {"command": "gate", "profile": "ci", "seed": 0, "targets": ["t"],
                                 "duration_s": 1.0, "examples": 0})
    merge.merge_session(record, [raw("F00000000002", 2)], {**merge.empty_stats(), **stats})
    (f,) = record["findings"]
    assert f["details"]["failure"] == {"hits": 9, "raised": 4, "shrink_s": 12.5}
    assert record["failures"]["shrink_seconds"] == 60.0


def test_headroom_cell_is_bounded_and_deterministic() -> None:
    values = [i / 10000 for i in range(5000)] + [float("inf")]
    a, b = merge.headroom_cell(values), merge.headroom_cell(list(reversed(values)))
    assert a == b
    assert len(a["samples"]) == merge.HEADROOM_SAMPLES
    assert a["n"] == 5001 and a["nonfinite"] == 1 and a["max"] == float("inf")
    assert a["p50"] == pytest.approx(0.25, abs=1e-3)


def test_pass_without_new_findings_and_baseline_suppresses(tmp_path: Path) -> None:
    assert make_record(tmp_path, with_new=False)["summary"]["verdict"] == "pass"
    old = rec.json_safe(make_record(tmp_path / "old"))
    again = make_record(tmp_path / "again", baseline=old)
    assert again["summary"]["verdict"] == "pass"
    assert again["summary"]["baselined"] == 2 and again["summary"]["new"] == 0
    assert again["baseline"]["still_present"] == 4


def test_write_then_load_round_trips_as_strict_json(tmp_path: Path) -> None:
    r = make_record(tmp_path)
    path = rec.write(tmp_path / "out" / "report.json", r)
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text and "_headroom_raw" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    loaded = rec.load(path)
    assert loaded["summary"] == rec.json_safe(r["summary"])
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]   # no temp files left


def test_failed_write_keeps_the_previous_record(tmp_path: Path) -> None:
    good = rec.write(tmp_path / "report.json", make_record(tmp_path))
    before = good.read_text()
    bad = make_record(tmp_path / "b")
    bad["summary"]["verdict"] = "maybe"
    with pytest.raises(rec.RecordError, match="verdict"):
        rec.write(good, bad)
    assert good.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["report.json"]


def test_interrupted_record_is_valid_and_marked(tmp_path: Path) -> None:
    r = rec.mark_interrupted(make_record(tmp_path), "SIGINT")
    loaded = rec.load(rec.write(tmp_path / "r.json", r))
    assert loaded["partial"] is True and loaded["interrupted"] == {"reason": "SIGINT"}
    r["interrupted"] = None
    with pytest.raises(rec.RecordError, match="partial record must say"):
        rec.validate(rec.json_safe(r))


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.update(schema="conv3dt-report/0"), "schema is 'conv3dt-report/0'"),
    (lambda r: r.pop("findings"), "missing field 'findings'"),
    (lambda r: r["findings"][0].update(kind="oops"), r"findings\[0\]\.kind: 'oops' is not one of"),
    (lambda r: r["findings"][1]["case"].pop("padding"), r"findings\[1\]\.case: missing field 'padding'"),
    (lambda r: r["findings"][0].update(headroom="big"), r"findings\[0\]\.headroom"),
    (lambda r: r["summary"].update(new=0), "summary.new: says 0"),
    (lambda r: r["run"].update(examples="many"), r"run\.examples: expected int"),
    (lambda r: r.update(partial="no"), r"partial: expected bool"),
])
def test_validate_names_what_is_wrong(tmp_path: Path, mutate, message) -> None:
    r = rec.json_safe(make_record(tmp_path))
    mutate(r)
    with pytest.raises(rec.RecordError, match=message):
        rec.validate(r)


def test_load_errors_are_one_clear_line(tmp_path: Path) -> None:
    cases = {"missing.json": None, "garbage.json": "{not json", "list.json": "[]",
             "other.json": json.dumps({"schema": "something-else/1"})}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(rec.RecordError) as err:
            rec.load(tmp_path / name)
        msg = str(err.value)
        assert name in msg and "\n" not in msg, msg
    assert "no such file" in _msg(tmp_path / "missing.json")
    assert "not valid JSON (line 1" in _msg(tmp_path / "garbage.json")
    assert "expected a JSON object" in _msg(tmp_path / "list.json")
    assert "expected 'conv3dt-report/1'" in _msg(tmp_path / "other.json")


def _msg(path: Path) -> str:
    try:
        rec.load(path)
    except rec.RecordError as exc:
        return str(exc)
    raise AssertionError("no error")


def test_corrupt_session_line_is_reported_with_its_location(tmp_path: Path) -> None:
    d = write_session(tmp_path / "s")
    with open(d / "findings-gw0.jsonl", "a") as fh:
        fh.write("{truncated\n")
    with pytest.raises(merge.SessionError, match=r"findings-gw0\.jsonl:\d+: not valid JSON"):
        merge.read_session(d)
    with pytest.raises(merge.SessionError, match="does not exist"):
        merge.read_session(tmp_path / "nowhere")


def test_reports_package_imports_no_fuzz_oracle_or_impl() -> None:
    import subprocess
    import sys
    code = ("import sys, reports.cli, reports.merge, reports.render, reports.diff, reports.matrix;"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fuzz', 'oracle', 'impl', 'tensorflow'));"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_controllers_coverage_verdict_reaches_the_record_and_a_corrupt_one_is_named(
        tmp_path: Path) -> None:
    from conv3dt.fuzz.session import Recorder
    d = write_session(tmp_path / "s")
    Recorder(d, "controller").write_tripwire(["value_arg=input", "dtype=bfloat16"], False)
    record = rec.new_record({"tensorflow": "2.21.0"}, {"command": "gate", "profile": "ci", "seed": 0,
                                                      "duration_s": 1.0, "examples": 0, "targets": []})
    findings, stats = merge.read_session(d)
    r = merge.merge_session(record, findings, stats, LEDGER, True)
    assert r["coverage"]["tripwire"] == {"gaps": ["dtype=bfloat16", "value_arg=input"],
                                         "past_deadline": False, "unreachable": []}
    rec.validate(rec.json_safe(r))
    (d / "tripwire.json").write_text('{"gaps": 3')
    with pytest.raises(merge.SessionError, match=r"tripwire\.json: unreadable coverage verdict"):
        merge.read_session(d)


def test_a_tripwire_gap_is_exit_3_and_the_first_console_line_says_so(tmp_path: Path) -> None:
    """Never "PASS" and then exit 3: the gate decides its exit before it prints, the record keeps
    code and reason (``run.exit``), and the summary's first line leads with the failure."""
    from conv3dt.gate import EXIT_INFRA, EXIT_OK, verdict_exit
    from conv3dt.fuzz.session import Recorder
    from conv3dt.reports.markdown import summary_lines
    d = write_session(tmp_path / "s", with_new=False)
    Recorder(d, "controller").write_tripwire(["value_arg=input"], False)
    record = rec.new_record({"tensorflow": "2.21.0"}, {"command": "gate", "profile": "ci", "seed": 0,
                                                      "duration_s": 1.0, "examples": 0, "targets": []})
    findings, stats = merge.read_session(d)
    r = merge.merge_session(record, findings, stats, LEDGER, True)
    counts = {"tests": 5, "failures": 0, "errors": 0, "first_error": ""}
    code, reason = verdict_exit(r, None, False, counts, 0, None, tmp_path)
    assert code == EXIT_INFRA and "coverage tripwire: 1 required cell(s) never hit: value_arg=input" in reason
    r["run"]["exit"] = {"code": code, "reason": reason}
    first = summary_lines(r)[0]
    assert first.startswith("conv3dt gate: INFRASTRUCTURE FAILURE (exit 3: coverage tripwire")
    assert "PASS" not in first.split("findings say")[0]
    rec.validate(rec.json_safe(r))
    r["coverage"]["tripwire"] = {"gaps": [], "past_deadline": False}
    assert verdict_exit(r, None, False, counts, 0, None, tmp_path) == (EXIT_OK, "only known deviations")


def test_judged_examples_are_counted_per_phase_and_add_up_to_the_headline(tmp_path: Path) -> None:
    from conv3dt.reports.markdown import summary_lines
    r = make_record(tmp_path)
    s = r["summary"]
    assert sum(s["examples_by_phase"].values()) == s["examples"]
    assert s["examples_by_phase"]["shrink"] > 0 and s["examples_by_phase"]["explicit"] > 0
    assert f"{s['examples']} examples (explicit " in summary_lines(r)[0]
