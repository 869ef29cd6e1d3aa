"""``conv3dt report matrix`` with both kernel configurations of one TF version: the gate's
``--as-shipped-onednn 0|1`` runs must stand side by side, not as two unnamed copies of a version."""
from __future__ import annotations

from typing import Any

from conv3dt.reports.matrix import build_matrix, configuration, render_matrix_html, render_matrix_markdown


def record(tf: str, label: str, forced: str | None, decided: bool | None = None,
           new: int = 0, hits: dict[str, int] | None = None) -> dict[str, Any]:
    """A minimal run record: one target (tf-eager) with ``new`` new findings and one known."""
    findings = [{"target": "tf-eager", "status": "new", "headroom": 2.0}] * new + [
        {"target": "tf-eager", "status": "known", "headroom": "inf"}]
    targets = {} if decided is None else {"tf-eager": {"kind": "tf", "onednn_enabled": decided}}
    return {"environment": {"tensorflow": tf, "targets": targets},
            "run": {"label": label, "targets": ["tf-eager"], "as_shipped_onednn": forced},
            "summary": {"verdict": "fail" if new else "pass"}, "partial": False,
            "findings": findings, "coverage": {"examples": {"differential": {"tf-eager": 100}}},
            "headroom": {"tf-eager": {"float32": {"max": 0.5}}},
            "ledger": {"matched": hits or {}}}


def test_configuration_from_the_forced_flag_else_from_what_tf_decided() -> None:
    assert configuration(record("2.21.0", "a", "0", decided=False)) == "oneDNN off"
    assert configuration(record("2.21.0", "a", "1", decided=True)) == "oneDNN on"
    assert configuration(record("2.21.0", "a", None, decided=True)) == "as shipped: oneDNN on"
    assert configuration(record("2.21.0", "a", None, decided=False)) == "as shipped: oneDNN off"
    assert configuration(record("2.21.0", "a", None)) is None          # an older record


def test_matrix_both_onednn_configurations_side_by_side_and_one_table_each() -> None:
    recs = [("out/tf221-onednn1/report.json", record("2.21.0", "tf221-onednn1", "1", True,
                                                    hits={"onednn-only": 3, "both": 1})),
            ("out/tf220-onednn0/report.json", record("2.20.0", "tf220-onednn0", "0", False, new=1)),
            ("out/tf221-onednn0/report.json", record("2.21.0", "tf221-onednn0", "0", False,
                                                    hits={"both": 2}))]
    m = build_matrix(recs)
    assert [c["label"] for c in m["columns"]] == [
        "2.20.0 · oneDNN off", "2.21.0 · oneDNN off", "2.21.0 · oneDNN on"]
    assert [c["config"] for c in m["columns"]] == ["oneDNN off", "oneDNN off", "oneDNN on"]
    assert m["cells"]["tf-eager"]["2.20.0 · oneDNN off"]["new"] == 1
    assert m["cells"]["tf-eager"]["2.21.0 · oneDNN on"]["known"] == 1
    html = render_matrix_html(m)
    assert "<th>TF 2.21.0 · oneDNN off</th><th>TF 2.21.0 · oneDNN on</th>" in html
    md = render_matrix_markdown(m)
    off, on = md.split("## oneDNN off\n")[1].split("## oneDNN on\n")
    assert "| target | TF 2.20.0 | TF 2.21.0 |" in off and "| target | TF 2.21.0 |" in on
    assert "| **verdict** | FAIL | PASS |" in off and "| **verdict** | PASS |" in on
    assert "| both | – | 2 |" in off and "onednn-only" not in off   # hits of that configuration only
    assert "| onednn-only | 3 |" in on and "| both | 1 |" in on
    assert md.count("Records: ") == 1 and "out/tf220-onednn0/report.json" in md


def test_matrix_one_configuration_keeps_one_table_and_a_repeat_gets_its_run_label() -> None:
    recs = [("a/report.json", record("2.21.0", "first", "0", False)),
            ("b/report.json", record("2.21.0", "second", "0", False))]
    m = build_matrix(recs)
    assert [c["label"] for c in m["columns"]] == ["2.21.0 · oneDNN off (first)",
                                                   "2.21.0 · oneDNN off (second)"]
    md = render_matrix_markdown(m)
    assert "##" not in md
    assert "| target | TF 2.21.0 · oneDNN off (first) | TF 2.21.0 · oneDNN off (second) |" in md
