"""Markdown rendering of a run record (``report.md``) and the gate's terminal summary."""
from __future__ import annotations

from typing import Any

from conv3dt.reports.record import headroom_value


def fmt_headroom(h: Any) -> str:
    v = headroom_value(h)
    if v is None:
        return "–"
    if v == float("inf"):
        return "inf"
    return f"{v:.3g}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def ledger_line(record: dict[str, Any]) -> str:
    ledger = record["ledger"]
    if not ledger.get("enabled", True):
        return "ledger: disabled (--no-ledger): every deviation counts as new"
    matched = ", ".join(f"{k}×{v}" for k, v in ledger["matched"].items()) or "none"
    stale = ", ".join(ledger["stale"]) or "none"
    idle = len(ledger.get("not_applicable") or [])
    return (f"ledger: matched {matched}; possibly stale (matched nothing): {stale}"
            + (f"; {idle} entries for kernels or targets that did not run" if idle else ""))


def corpus_lines(record: dict[str, Any]) -> list[str | tuple[str, list[str]]]:
    """The regression corpus's replay: a count line, then ``(label, entry ids)`` per non-empty
    group (fixed, still failing)."""
    corpus = record.get("corpus") or {}
    lines: list[str | tuple[str, list[str]]] = [
        f"{corpus.get('replayed', 0)} entries replayed: {len(corpus.get('fixed', []))} fixed, "
        f"{len(corpus.get('still_failing', []))} still failing, "
        f"{len(corpus.get('known', []))} known deviations."]
    for key, label in (("fixed", "Fixed (no longer reproduce)"), ("still_failing", "Still failing")):
        if corpus.get(key):
            lines.append((label, list(corpus[key])))
    return lines


def declared_lines(record: dict[str, Any]) -> list[str]:
    """One line per target that declared part of the contract (``oracle.capabilities``): what,
    from where, how many Cases it was therefore not given, and the coverage cells no target's
    declaration admits (named by the tripwire, not failed)."""
    lines = []
    declined = record["coverage"].get("declined") or {}
    for target, facts in sorted((record["environment"].get("targets") or {}).items()):
        caps = (facts or {}).get("capabilities") or {}
        if not caps or caps.get("summary") in (None, "the whole contract"):
            continue
        why = declined.get(target) or {}
        told = ", ".join(f"{r} {n}" for r, n in sorted(why.items())) or "none"
        lines.append(f"declared: {target} implements {caps['summary']} ({caps.get('source')}); "
                     f"Cases not given to it: {told}")
    out_of_reach = (record["coverage"].get("tripwire") or {}).get("unreachable") or []
    if out_of_reach:
        lines.append(f"coverage cells no declaration admits ({len(out_of_reach)}): "
                     + ", ".join(out_of_reach))
    return lines


def summary_lines(record: dict[str, Any]) -> list[str]:
    """The concise summary the gate prints (also the top of report.md)."""
    s, run = record["summary"], record["run"]
    # A partial record that found nothing new has not passed: it did not judge everything.
    head = "FAIL" if s["verdict"] == "fail" else ("INCOMPLETE" if record.get("partial") else "PASS")
    if record.get("partial"):
        head += f" (PARTIAL: interrupted by {record['interrupted']['reason']})"
    exit_ = run.get("exit") or {}
    if exit_.get("code") == 3:   # the gate could not vouch for its verdict: say so first
        head = f"INFRASTRUCTURE FAILURE (exit 3: {exit_.get('reason')}); findings say {head}"
    phases = s.get("examples_by_phase") or {}
    split = (" (" + ", ".join(f"{p} {n}" for p, n in phases.items()) + ")") if len(phases) > 1 else ""
    lines = [f"conv3dt {run['command']}: {head} — {s['examples']} examples{split} in "
             f"{run['duration_s']:.1f} s ({s['examples_per_s']:.0f} examples/s), "
             f"profile {run['profile']}, seed {run.get('seed')}",
             f"targets: {', '.join(run['targets'])}",
             f"findings: {s['new']} new, {s['known']} known (ledger), "
             f"{s.get('baselined', 0)} in baseline"]
    for label, table in (("by kind", s["by_kind"]), ("by target", s["by_target"])):
        if table:
            parts = [f"{k} {v['new']} new/{v['known'] + v.get('baseline', 0)} known"
                     for k, v in table.items()]
            lines.append(f"  {label}: " + "; ".join(parts))
    lines.append(ledger_line(record))
    lines += declared_lines(record)
    if s["worst_headroom"]:
        lines.append("worst headroom (error/bound, >1 violates): " + "; ".join(
            f"{d} {fmt_headroom(w['headroom'])} ({w['target']})"
            for d, w in s["worst_headroom"].items()))
    return lines


def _property(f: dict[str, Any]) -> str:
    """The property, and for the backward which gradient it judged (``d/dvalue``, ``d/dfilter``)
    and, where it is not y's, the upstream gradient's shape or dtype."""
    c = f.get("case") or {}
    wrt = c.get("grad_wrt")
    if not wrt:
        return f["property"]
    odd = []
    if c.get("grad_output_shape") not in (None, c.get("output_shape")):
        odd.append(f"g shape {c['grad_output_shape']}")
    if c.get("grad_output_dtype") not in (None, c.get("dtype")):
        odd.append(f"g {c['grad_output_dtype']}")
    return f"{f['property']} (d/d{wrt}{''.join(', ' + x for x in odd)})"


def findings_table(findings: list[dict[str, Any]]) -> list[str]:
    if not findings:
        return ["No findings."]
    lines = ["| status | id | kind | target | property | dtype | layout | padding | value shape "
             "| headroom | ledger | observed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in findings:
        c = f["case"]
        lines.append("| " + " | ".join(_cell(x) for x in (
            f["status"], f"`{f['id']}`", f["kind"], f["target"], _property(f), c.get("dtype"),
            c.get("data_format"), c.get("padding"), c.get("value_shape"),
            fmt_headroom(f.get("headroom")), f.get("known_deviation") or "–",
            f["observed"][:160])) + " |")
    return lines


def failure_lines(f: dict[str, Any]) -> list[str]:
    """What the run spent on a new finding's distinct failure (``details.failure``)."""
    fail = (f.get("details") or {}).get("failure")
    if not fail:
        return []
    return [f"- distinct failure `{_cell(f['details'].get('signature', ''))}`: seen in "
            f"{fail.get('hits', 0)} example(s) ({f.get('count', 1)} shrunk reproducer(s) kept as "
            f"one), {fail.get('shrink_s', 0):.1f} s spent shrinking"]


def render_markdown(record: dict[str, Any]) -> str:
    s, run, env = record["summary"], record["run"], record["environment"]
    out = [f"# conv3dt report — {s['verdict'].upper()}", ""]
    out += ["```", *summary_lines(record), "```", ""]
    if record.get("baseline"):
        b = record["baseline"]
        out += [f"Baseline `{b.get('source', '')}`: {b['findings']} finding(s), "
                f"{b['still_present']} still present, {len(b['gone'])} gone.", ""]
    new = [f for f in record["findings"] if f["status"] == "new"]
    rest = [f for f in record["findings"] if f["status"] != "new"]
    out += ["## New findings", "", *findings_table(new), ""]
    for f in new[:50]:
        out += [f"### `{f['id']}` {f['kind']} on {f['target']} ({_property(f)})", "",
                f"- expected: {f['expected']}", f"- observed: {f['observed']}",
                *failure_lines(f), "", "```python", f["repro"].rstrip(), "```", ""]
    if len(new) > 50:
        out += [f"({len(new) - 50} more new findings: see report.json)", ""]
    out += ["## Known deviations and baselined findings", "", *findings_table(rest), ""]
    ledger = record["ledger"]
    if ledger.get("entries"):
        out += ["## Ledger", "", "| entry | hits | TF versions | reason |", "|---|---|---|---|"]
        for e in ledger["entries"]:
            out.append(f"| `{e['id']}` | {ledger['matched'].get(e['id'], 0)} | "
                       f"{_cell(e.get('tf_versions', ''))} | {_cell(e.get('reason', ''))} |")
        out.append("")
    out += ["## Headroom (error / bound) per target and dtype", "",
            "| target | dtype | n | p50 | p99 | max | > 1 |", "|---|---|---|---|---|---|---|"]
    for target, per in record["headroom"].items():
        for dtype, cell in per.items():
            out.append(f"| {target} | {dtype} | {cell['n']} | {fmt_headroom(cell.get('p50'))} | "
                       f"{fmt_headroom(cell.get('p99'))} | {fmt_headroom(cell.get('max'))} | "
                       f"{cell.get('over_1', 0)} |")
    out += ["", "## Regression corpus"]
    for line in corpus_lines(record):
        out += ["", line if isinstance(line, str)
                else f"{line[0]}: " + ", ".join(f"`{i}`" for i in line[1])]
    out += ["", "## Coverage", "", "| property | target | examples |", "|---|---|---|"]
    for prop, per in sorted(record["coverage"]["examples"].items()):
        for target, n in sorted(per.items()):
            out.append(f"| {prop} | {target} | {n} |")
    cells = record["coverage"]["cells"]
    if cells:
        out += ["", "| cell | examples |", "|---|---|"]
        out += [f"| {_cell(k)} | {v} |" for k, v in sorted(cells.items())]
    out += ["", "## Environment", "", "| | |", "|---|---|"]
    out += [f"| {k} | {_cell(v)} |" for k, v in sorted(env.items())]
    out += [f"| run.{k} | {_cell(v)} |" for k, v in sorted(run.items())]
    return "\n".join(out) + "\n"
