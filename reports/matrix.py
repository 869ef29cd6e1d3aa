"""The cross-version matrix: targets × TensorFlow versions, one run record per column.

Each cell: the target's new / known findings in that record, its examples, and its worst
headroom. A column is labelled by the record's TF version; two records of the same version are
told apart by their run label (e.g. the tox env name) or file name.
"""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from reports.html import CSS
from reports.markdown import fmt_headroom
from reports.record import headroom_value


def _version_key(v: str) -> tuple:
    parts = []
    for p in str(v).split("."):
        parts.append((0, int(p), "") if p.isdigit() else (1, 0, p))
    return tuple(parts)


def build_matrix(records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """``records``: (source path, record). Returns {columns, targets, cells[target][column]}."""
    columns: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for source, r in records:
        tf = str(r["environment"].get("tensorflow", "?"))
        label = tf
        seen[tf] = seen.get(tf, 0) + 1
        columns.append({"tf": tf, "label": label, "source": source,
                        "run_label": r["run"].get("label") or Path(source).parent.name,
                        "verdict": r["summary"]["verdict"], "partial": r["partial"], "record": r})
    for c in columns:
        if seen[c["tf"]] > 1:
            c["label"] = f"{c['tf']} ({c['run_label']})"
    columns.sort(key=lambda c: (_version_key(c["tf"]), c["label"]))
    targets = sorted({t for c in columns for t in c["record"]["run"]["targets"]})
    cells: dict[str, dict[str, Any]] = {}
    for t in targets:
        for c in columns:
            r = c["record"]
            if t not in r["run"]["targets"]:
                continue
            fs = [f for f in r["findings"] if f["target"] == t]
            examples = sum(per.get(t, 0) for per in r["coverage"]["examples"].values())
            # worst over the sampled headroom *and* the findings' (as the record's summary does):
            # sampled values alone said h≤1 for a target whose known findings reach inf.
            worst = None
            for h_raw in [cell.get("max") for cell in r["headroom"].get(t, {}).values()] + \
                    [f.get("headroom") for f in fs]:
                h = headroom_value(h_raw)
                if h is not None and (worst is None or h > headroom_value(worst)):
                    worst = h_raw
            cells.setdefault(t, {})[c["label"]] = {
                "new": sum(f["status"] == "new" for f in fs),
                "known": sum(f["status"] != "new" for f in fs),
                "examples": examples, "worst_headroom": worst}
    return {"columns": [{k: v for k, v in c.items() if k != "record"} for c in columns],
            "targets": targets, "cells": cells}


def _cell_text(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "–"
    status = "FAIL" if cell["new"] else "ok"
    return (f"{status} {cell['new']} new/{cell['known']} known, {cell['examples']} ex, "
            f"h≤{fmt_headroom(cell['worst_headroom'])}")


def render_matrix_markdown(m: dict[str, Any]) -> str:
    labels = [c["label"] for c in m["columns"]]
    out = ["# conv3dt: targets × TensorFlow versions", "",
           "| target | " + " | ".join(f"TF {l}" for l in labels) + " |",
           "|---|" + "---|" * len(labels)]
    for t in m["targets"]:
        out.append(f"| {t} | " + " | ".join(_cell_text(m["cells"].get(t, {}).get(l)) for l in labels) + " |")
    out.append("| **verdict** | " + " | ".join(
        c["verdict"].upper() + (" (partial)" if c["partial"] else "") for c in m["columns"]) + " |")
    out += ["", "Records: " + ", ".join(f"`{c['source']}`" for c in m["columns"])]
    return "\n".join(out) + "\n"


def render_matrix_html(m: dict[str, Any]) -> str:
    labels = [c["label"] for c in m["columns"]]
    head = "<th>target</th>" + "".join(f"<th>TF {escape(l)}</th>" for l in labels)
    rows = []
    for t in m["targets"]:
        tds = []
        for l in labels:
            cell = m["cells"].get(t, {}).get(l)
            cls = "none" if cell is None else ("bad" if cell["new"] else "ok")
            tds.append(f'<td class="{cls}">{escape(_cell_text(cell))}</td>')
        rows.append(f"<tr><th>{escape(t)}</th>{''.join(tds)}</tr>")
    verdicts = "".join(f'<td class="{"ok" if c["verdict"] == "pass" else "bad"}">'
                       f"{escape(c['verdict'].upper())}{' (partial)' if c['partial'] else ''}</td>"
                       for c in m["columns"])
    rows.append(f"<tr><th>verdict</th>{verdicts}</tr>")
    sources = ", ".join(f"<code>{escape(c['source'])}</code>" for c in m["columns"])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>conv3dt matrix</title><style>{CSS}</style></head><body><main>"
            "<h2>conv3dt: targets × TensorFlow versions</h2>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p>Records: {sources}</p></main></body></html>\n")
