"""The cross-version matrix: targets × TensorFlow versions, one run record per column; and
frameworks × targets: which framework (TF, JAX, ONNX Runtime, OpenVINO, impl, external) and
version each target ran, from the records' ``environment.targets``.

Each cell: the target's new / known findings in that record, its examples, its worst sampled
headroom and, when higher, its findings' worst. A second table lists the ledger entries each
record matched (hits per version). A column is labelled by the record's TF version and, when the
record says it, the kernel configuration its as-shipped TF paths ran (``run.as_shipped_onednn``
"0" / "1": ``oneDNN off`` / ``oneDNN on``; otherwise what ``tf-eager``'s worker says TF decided:
``as shipped: oneDNN on|off``), so the two configurations of one TF version stand side by side
(``2.21.0 · oneDNN off``, ``2.21.0 · oneDNN on``); the Markdown then renders one table per
configuration. Two records that still share a label are told apart by their run label (e.g. the
tox env name) or file name.
"""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from conv3dt.reports.html import CSS
from conv3dt.reports.markdown import fmt_headroom
from conv3dt.reports.record import headroom_value


def _version_key(v: str) -> tuple:
    parts = []
    for p in str(v).split("."):
        parts.append((0, int(p), "") if p.isdigit() else (1, 0, p))
    return tuple(parts)


def configuration(r: dict[str, Any]) -> str | None:
    """The kernel configuration a record's as-shipped TF paths ran: forced by
    ``--as-shipped-onednn`` (``run.as_shipped_onednn``), else as ``tf-eager``'s TF decided
    (``environment.targets``); None when the record says neither (older records, no TF)."""
    forced = r["run"].get("as_shipped_onednn")
    if forced in ("0", "1"):
        return f"oneDNN {'on' if forced == '1' else 'off'}"
    decided = ((r["environment"].get("targets") or {}).get("tf-eager") or {}).get("onednn_enabled")
    return None if decided is None else f"as shipped: oneDNN {'on' if decided else 'off'}"


def build_matrix(records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """``records``: (source path, record). Returns {columns, targets, cells[target][column]}."""
    columns: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for source, r in records:
        tf = str(r["environment"].get("tensorflow", "?"))
        config = configuration(r)
        label = tf if config is None else f"{tf} · {config}"
        seen[label] = seen.get(label, 0) + 1
        columns.append({"tf": tf, "config": config, "label": label, "source": source,
                        "run_label": r["run"].get("label") or Path(source).parent.name,
                        "verdict": r["summary"]["verdict"], "partial": r["partial"], "record": r})
    for c in columns:
        if seen[c["label"]] > 1:
            c["label"] = f"{c['label']} ({c['run_label']})"
    columns.sort(key=lambda c: (_version_key(c["tf"]), c["config"] or "", c["label"]))
    targets = sorted({t for c in columns for t in c["record"]["run"]["targets"]})
    cells: dict[str, dict[str, Any]] = {}
    for t in targets:
        for c in columns:
            r = c["record"]
            if t not in r["run"]["targets"]:
                continue
            fs = [f for f in r["findings"] if f["target"] == t]
            examples = sum(per.get(t, 0) for per in r["coverage"]["examples"].values())
            # the sampled headroom (the precision of conforming results, comparable across
            # versions) and, apart, the findings' worst: sampled values alone said h≤1 for a
            # target whose known findings reach inf.
            cells.setdefault(t, {})[c["label"]] = {
                "new": sum(f["status"] == "new" for f in fs),
                "known": sum(f["status"] != "new" for f in fs),
                "examples": examples,
                "worst_headroom": _worst(cell.get("max") for cell in r["headroom"].get(t, {}).values()),
                "worst_finding_headroom": _worst(f.get("headroom") for f in fs)}
    # which known deviations each version showed: the cross-version difference the cells hide
    ledger: dict[str, dict[str, int]] = {}
    for c in columns:
        for entry, hits in c["record"]["ledger"].get("matched", {}).items():
            ledger.setdefault(entry, {})[c["label"]] = hits
    return {"columns": [{k: v for k, v in c.items() if k != "record"} for c in columns],
            "targets": targets, "cells": cells, "ledger": dict(sorted(ledger.items())),
            "frameworks": framework_matrix(columns)}


#: Framework names of older records (no ``framework`` fact): target kind -> (name, version fact).
_KIND_FRAMEWORK = {"tf": ("TensorFlow", "tensorflow"), "jax": ("JAX", "jax"),
                   "onnxruntime": ("ONNX Runtime", "onnxruntime"), "openvino": ("OpenVINO", "openvino"),
                   "impl": ("impl", None), "module": ("external", None)}


def framework_label(facts: dict[str, Any], record: dict[str, Any]) -> str:
    """``"<framework> <version>"`` a target ran, from its ``environment.targets`` facts (the
    ``framework`` fact; for older records, its kind and version facts): ``TensorFlow 2.21.0``,
    ``ONNX Runtime 1.32.0``, ``impl 0.1.0``, ``external``; ``unknown`` when the record says nothing."""
    fw = facts.get("framework") or {}
    name, version = fw.get("name"), fw.get("version")
    if name is None:
        kind_name, key = _KIND_FRAMEWORK.get(facts.get("kind"), (None, None))
        if kind_name is None:
            return "unknown"
        name = kind_name
        version = facts.get(key) if key else (
            record["environment"].get("packages", {}).get("conv3dt") if kind_name == "impl" else None)
    return f"{name} {version}" if version else name


def framework_matrix(columns: list[dict[str, Any]]) -> dict[str, Any]:
    """Frameworks × targets over every record: a row per framework and version that ran, a
    column per target; a cell sums that target's new / known findings and examples over the
    records where it ran that framework version, and counts those records."""
    cells: dict[str, dict[str, dict[str, int]]] = {}
    for c in columns:
        r = c["record"]
        facts_by_target = r["environment"].get("targets") or {}
        for t in r["run"]["targets"]:
            row = framework_label(facts_by_target.get(t) or {}, r)
            fs = [f for f in r["findings"] if f["target"] == t]
            cell = cells.setdefault(row, {}).setdefault(t, {"new": 0, "known": 0, "examples": 0, "records": 0})
            cell["new"] += sum(f["status"] == "new" for f in fs)
            cell["known"] += sum(f["status"] != "new" for f in fs)
            cell["examples"] += sum(per.get(t, 0) for per in r["coverage"]["examples"].values())
            cell["records"] += 1
    targets = sorted({t for row in cells.values() for t in row})
    def order(row: str) -> tuple:
        name, _, version = row.rpartition(" ")
        return (name, _version_key(version)) if name and version[:1].isdigit() else (row, ())

    return {"rows": sorted(cells, key=order),
            "targets": targets, "cells": cells}


def _framework_cell(cell: dict[str, int] | None) -> str:
    if cell is None:
        return "–"
    runs = f", {cell['records']} runs" if cell["records"] > 1 else ""
    return (f"{'FAIL' if cell['new'] else 'ok'} {cell['new']} new/{cell['known']} known, "
            f"{cell['examples']} ex{runs}")


def framework_markdown(m: dict[str, Any]) -> list[str]:
    """The frameworks × targets table (Markdown lines)."""
    fw = m.get("frameworks") or {}
    if not fw.get("rows"):
        return []
    out = ["Frameworks × targets (the framework and version each target ran):", "",
           "| framework | " + " | ".join(fw["targets"]) + " |", "|---|" + "---|" * len(fw["targets"])]
    for row in fw["rows"]:
        out.append(f"| {row} | " + " | ".join(_framework_cell(fw["cells"][row].get(t))
                                             for t in fw["targets"]) + " |")
    return out


def framework_html(m: dict[str, Any]) -> str:
    fw = m.get("frameworks") or {}
    if not fw.get("rows"):
        return ""
    head = "<th>framework</th>" + "".join(f"<th>{escape(t)}</th>" for t in fw["targets"])
    rows = []
    for row in fw["rows"]:
        tds = []
        for t in fw["targets"]:
            cell = fw["cells"][row].get(t)
            cls = "none" if cell is None else ("bad" if cell["new"] else "ok")
            tds.append(f'<td class="{cls}">{escape(_framework_cell(cell))}</td>')
        rows.append(f"<tr><th>{escape(row)}</th>{''.join(tds)}</tr>")
    return (f"<h2>Frameworks × targets</h2><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _worst(values) -> Any:
    """The largest headroom (record form: number or "inf") among ``values``, or None."""
    worst = None
    for raw in values:
        h = headroom_value(raw)
        if h is not None and (worst is None or h > headroom_value(worst)):
            worst = raw
    return worst


def _cell_text(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "–"
    status = "FAIL" if cell["new"] else "ok"
    text = (f"{status} {cell['new']} new/{cell['known']} known, {cell['examples']} ex, "
            f"h≤{fmt_headroom(cell['worst_headroom'])}")
    fh, h = headroom_value(cell.get("worst_finding_headroom")), headroom_value(cell["worst_headroom"])
    if fh is not None and (h is None or fh > h):
        text += f" (findings: {fmt_headroom(cell['worst_finding_headroom'])})"
    return text


def _ledger_rows(m: dict[str, Any], columns: list[dict[str, Any]] | None = None
                 ) -> list[tuple[str, list[str]]]:
    """Hits per ledger entry in ``columns`` (default: all); entries no such column matched are left out."""
    labels = [c["label"] for c in (m["columns"] if columns is None else columns)]
    return [(entry, [str(per[l]) if l in per else "–" for l in labels])
            for entry, per in m.get("ledger", {}).items() if any(l in per for l in labels)]


def _markdown_tables(m: dict[str, Any], columns: list[dict[str, Any]], heads: list[str]) -> list[str]:
    """The targets table and the ledger-hits table over ``columns``, headed ``heads``."""
    labels = [c["label"] for c in columns]
    out = ["| target | " + " | ".join(heads) + " |", "|---|" + "---|" * len(labels)]
    for t in m["targets"]:
        out.append(f"| {t} | " + " | ".join(_cell_text(m["cells"].get(t, {}).get(l)) for l in labels) + " |")
    out.append("| **verdict** | " + " | ".join(
        c["verdict"].upper() + (" (partial)" if c["partial"] else "") for c in columns) + " |")
    rows = _ledger_rows(m, columns)
    if rows:
        out += ["", "Known deviations matched (ledger hits; – = none in that run):", "",
                "| ledger entry | " + " | ".join(heads) + " |", "|---|" + "---|" * len(labels)]
        out += [f"| {entry} | " + " | ".join(vals) + " |" for entry, vals in rows]
    return out


def render_matrix_markdown(m: dict[str, Any]) -> str:
    """One table of every column; with several configurations, one table per configuration
    (by name, an unrecorded one last), headed by TF version (and run label where one repeats)."""
    configs = sorted({c.get("config") for c in m["columns"]}, key=lambda x: (x is None, x or ""))
    out = ["# conv3dt: targets × TensorFlow versions", ""]
    if len(configs) <= 1:
        out += _markdown_tables(m, m["columns"], [f"TF {c['label']}" for c in m["columns"]])
    else:
        for config in configs:
            cols = [c for c in m["columns"] if c.get("config") == config]
            suffix = f" · {config}"
            heads = ["TF " + c["label"].replace(suffix, "", 1) for c in cols]
            out += [f"## {config or 'configuration not recorded'}", ""]
            out += _markdown_tables(m, cols, heads) + [""]
        out.pop()
    frameworks = framework_markdown(m)
    if frameworks:
        out += ["", *frameworks]
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
    ledger = "".join(f"<tr><th>{escape(entry)}</th>" + "".join(
        f'<td class="{"none" if v == "–" else "num"}">{escape(v)}</td>' for v in vals) + "</tr>"
        for entry, vals in _ledger_rows(m))
    if ledger:
        ledger = ("<h2>Known deviations matched (ledger hits)</h2><table><thead><tr>"
                  "<th>ledger entry</th>" + "".join(f"<th>TF {escape(l)}</th>" for l in labels) +
                  f"</tr></thead><tbody>{ledger}</tbody></table>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>conv3dt matrix</title><style>{CSS}</style></head><body><main>"
            "<h2>conv3dt: targets × TensorFlow versions</h2>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{ledger}{framework_html(m)}<p>Records: {sources}</p></main></body></html>\n")
