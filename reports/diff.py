"""Diff two run records: what regressed, what was fixed, what drifted.

- ``new``: findings in NEW whose id is not in OLD (ids are stable across runs);
- ``fixed``: findings in OLD whose id is not in NEW — only counted as fixed when NEW ran the
  same target and property (otherwise ``not_rerun``);
- ``changed``: same id, different ``observed`` (e.g. another error class) or status (new ↔ known);
  ``observed`` is compared without what differs on every run of the same call: the time and
  thread id of a glog/absl line (``F1124 16:39:20.123456  4242 file.cc:12]``) and hex addresses;
- ``headroom``: per (target, dtype), worst and p99 headroom in both, flagged when the worst
  crosses the bound (1.0) or grows by more than ``DRIFT_FACTOR``;
- ``coverage``: examples per (property, target) and coverage cells added / lost.

``regressed`` is true when NEW has a new non-ledger finding or a headroom crossing the bound.
"""
from __future__ import annotations

import re
from typing import Any

from conv3dt.reports.markdown import fmt_headroom
from conv3dt.reports.record import headroom_value

DRIFT_FACTOR = 2.0


def _error_class(observed: str) -> str | None:
    m = re.search(r"raised ([A-Za-z_][\w.]*)", observed)
    return m.group(1) if m else None


_VOLATILE = (
    (re.compile(r"\b([FEWI])\d{4} \d\d:\d\d:\d+(?:\.\d+)?\s+\d+ "), r"\1<time> <thread> "),
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x<address>"),
)


def stable_observed(observed: str) -> str:
    """``observed`` without run-to-run noise (log timestamps, thread ids, addresses)."""
    for pattern, replacement in _VOLATILE:
        observed = pattern.sub(replacement, observed)
    return observed


def _ran(record: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t, p) for p, per in record["coverage"]["examples"].items() for t, n in per.items() if n}


def diff_records(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    old_f = {f["id"]: f for f in old["findings"]}
    new_f = {f["id"]: f for f in new["findings"]}
    ran = _ran(new)
    brief = lambda f: {k: f.get(k) for k in ("id", "kind", "target", "property", "status",  # noqa: E731
                                             "known_deviation", "observed")}
    added = [brief(new_f[i]) for i in sorted(set(new_f) - set(old_f))]
    fixed, not_rerun = [], []
    for i in sorted(set(old_f) - set(new_f)):
        f = old_f[i]
        (fixed if (f["target"], f["property"]) in ran else not_rerun).append(brief(f))
    changed = []
    for i in sorted(set(old_f) & set(new_f)):
        a, b = old_f[i], new_f[i]
        if stable_observed(a["observed"]) != stable_observed(b["observed"]) or \
                a["status"] != b["status"]:
            changed.append({"id": i, "kind": b["kind"], "target": b["target"],
                            "property": b["property"], "old_status": a["status"],
                            "new_status": b["status"], "old_observed": a["observed"],
                            "new_observed": b["observed"],
                            "old_error_class": _error_class(a["observed"]),
                            "new_error_class": _error_class(b["observed"])})
    drift = []
    keys = sorted({(t, d) for r in (old, new) for t, per in r["headroom"].items() for d in per})
    for t, d in keys:
        a = old["headroom"].get(t, {}).get(d)
        b = new["headroom"].get(t, {}).get(d)
        amax = headroom_value(a["max"]) if a else None
        bmax = headroom_value(b["max"]) if b else None
        flag = ""
        if amax is not None and bmax is not None:
            if bmax > 1.0 >= amax:
                flag = "crossed the bound"
            elif amax > 1.0 >= bmax:
                flag = "back within the bound"
            elif amax > 0 and bmax > DRIFT_FACTOR * amax:
                flag = f"worst grew more than {DRIFT_FACTOR:g}x"
        drift.append({"target": t, "dtype": d, "old_max": a["max"] if a else None,
                      "new_max": b["max"] if b else None, "old_p99": a.get("p99") if a else None,
                      "new_p99": b.get("p99") if b else None, "flag": flag})
    cov_rows = []
    props = sorted(set(old["coverage"]["examples"]) | set(new["coverage"]["examples"]))
    for p in props:
        a, b = old["coverage"]["examples"].get(p, {}), new["coverage"]["examples"].get(p, {})
        for t in sorted(set(a) | set(b)):
            if a.get(t, 0) != b.get(t, 0):
                cov_rows.append({"property": p, "target": t, "old": a.get(t, 0), "new": b.get(t, 0)})
    oc, nc = old["coverage"]["cells"], new["coverage"]["cells"]
    coverage = {"examples": cov_rows,
                "cells_added": sorted(k for k in nc if nc[k] and not oc.get(k)),
                "cells_lost": sorted(k for k in oc if oc[k] and not nc.get(k))}
    regressed = any(f["status"] == "new" for f in added) or \
        any(c["new_status"] == "new" and c["old_status"] != "new" for c in changed) or \
        any(r["flag"] == "crossed the bound" for r in drift)
    return {"old": {"tensorflow": old["environment"].get("tensorflow"),
                    "verdict": old["summary"]["verdict"], "examples": old["summary"]["examples"]},
            "new": {"tensorflow": new["environment"].get("tensorflow"),
                    "verdict": new["summary"]["verdict"], "examples": new["summary"]["examples"]},
            "new_findings": added, "fixed": fixed, "not_rerun": not_rerun, "changed": changed,
            "headroom": drift, "coverage": coverage, "regressed": regressed}


def render_diff(d: dict[str, Any]) -> str:
    o, n = d["old"], d["new"]
    out = [f"# conv3dt report diff — {'REGRESSED' if d['regressed'] else 'no regression'}", "",
           f"OLD: TF {o['tensorflow']}, {o['verdict']}, {o['examples']} examples",
           f"NEW: TF {n['tensorflow']}, {n['verdict']}, {n['examples']} examples", ""]
    def section(title: str, rows: list[dict[str, Any]], fmt) -> None:  # noqa: ANN001
        out.append(f"## {title} ({len(rows)})")
        out.extend(fmt(r) for r in rows)
        out.append("")
    line = lambda f: (f"- `{f['id']}` {f['kind']} on {f['target']} ({f['property']}), "  # noqa: E731
                      f"{f['status']}{' ' + f['known_deviation'] if f.get('known_deviation') else ''}: "
                      f"{f['observed'][:160]}")
    section("New findings", d["new_findings"], line)
    section("Fixed", d["fixed"], line)
    if d["not_rerun"]:
        section("Not re-run (target/property absent from NEW)", d["not_rerun"], line)
    section("Changed (error class / status)", d["changed"],
            lambda c: (f"- `{c['id']}` {c['kind']} on {c['target']}: {c['old_status']} → "
                       f"{c['new_status']}; {c['old_error_class'] or c['old_observed'][:80]} → "
                       f"{c['new_error_class'] or c['new_observed'][:80]}"))
    out += ["## Headroom drift (worst, p99)", "", "| target | dtype | old max | new max | old p99 | new p99 | flag |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {r['target']} | {r['dtype']} | {fmt_headroom(r['old_max'])} | {fmt_headroom(r['new_max'])} "
            f"| {fmt_headroom(r['old_p99'])} | {fmt_headroom(r['new_p99'])} | {r['flag']} |"
            for r in d["headroom"]]
    cov = d["coverage"]
    out += ["", f"## Coverage change: {len(cov['examples'])} (property, target) count(s) changed, "
            f"{len(cov['cells_added'])} cell(s) added, {len(cov['cells_lost'])} lost", ""]
    out += [f"- {r['property']} / {r['target']}: {r['old']} → {r['new']}" for r in cov["examples"]]
    out += [f"- cell added: {c}" for c in cov["cells_added"]]
    out += [f"- cell lost: {c}" for c in cov["cells_lost"]]
    return "\n".join(out) + "\n"
