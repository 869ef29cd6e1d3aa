"""Merge a conformance session's output into a run record.

The session (``pytest tests/conformance --conv3dt-out DIR``) leaves, per pytest process,
``findings-<wid>.jsonl`` (one Finding JSON per line) and ``stats-<wid>.json`` (counters; see
docs/architecture.md). ``read_session`` sums them; ``merge_session`` folds the sums into a
record's coverage / matrix / headroom / findings / ledger, and ``summarize`` recomputes the
summary and verdict. Everything is sorted, so the same session output gives the same record.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from conv3dt.reports.record import RecordError, headroom_value, json_safe

HEADROOM_SAMPLES = 400      # per (target, dtype) kept in the record for histograms


class SessionError(RecordError):
    """The session output is missing or unreadable (an infrastructure problem)."""


def _add_nested(into: dict[str, Any], add: dict[str, Any]) -> None:
    """Sum numbers (and [n, deviations] pairs) in nested dicts."""
    for key, value in add.items():
        if isinstance(value, dict):
            _add_nested(into.setdefault(key, {}), value)
        elif isinstance(value, list):
            prev = into.get(key)
            into[key] = value if prev is None else [a + b for a, b in zip(prev, value)]
        else:
            into[key] = into.get(key, 0) + value


def empty_stats() -> dict[str, Any]:
    return {"examples": {}, "example_phases": {}, "seconds": {}, "outcomes": {}, "headroom": {},
            "matrix": {},
            "coverage": {}, "coverage_declined": {}, "declined": {},
            "ledger_hits": {}, "errors": {}, "kernels": {}, "target_facts": {}}


def read_session(session_dir: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All findings (raw Finding JSON) and the summed stats of one session directory."""
    d = Path(session_dir)
    if not d.is_dir():
        raise SessionError(f"{d}: session output directory does not exist")
    findings: list[dict[str, Any]] = []
    for path in sorted(d.glob("findings-*.jsonl")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SessionError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or "kind" not in obj or "target" not in obj:
                raise SessionError(f"{path}:{lineno}: not a Finding object")
            findings.append(obj)
    stats = empty_stats()
    for path in sorted(d.glob("stats-*.json")):
        try:
            part = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SessionError(f"{path}: unreadable stats ({exc})") from None
        add_stats(stats, part)
    tripwire = d / "tripwire.json"      # the controller's coverage verdict (fuzz.session)
    if tripwire.exists():
        try:
            verdict = json.loads(tripwire.read_text(encoding="utf-8"))
            stats["tripwire"] = {"gaps": [str(g) for g in verdict["gaps"]],
                                 "past_deadline": bool(verdict["past_deadline"]),
                                 "unreachable": [str(g) for g in verdict.get("unreachable", [])]}
            if verdict.get("deferred"):   # a shard of several: checked on the merge (reports.shards)
                stats["tripwire"].update(deferred=True,
                                         required=[str(c) for c in verdict["required"]])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SessionError(f"{tripwire}: unreadable coverage verdict ({exc!r})") from None
    return findings, stats


def add_stats(stats: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Add one process's counters (a ``stats-<wid>.json``; or a shard's record as
    ``reports.shards.record_stats`` reads it) into ``stats`` (``empty_stats()``): numbers and
    ``[n, deviations]`` cells sum, headroom samples and time-limit lists concatenate, corpus id
    lists and failure keys merge, target facts are kept once."""
    for target, per_dtype in (part.get("headroom") or {}).items():
        for dtype, values in per_dtype.items():
            stats["headroom"].setdefault(target, {}).setdefault(dtype, []).extend(values)
    for key in ("examples", "example_phases", "seconds", "outcomes", "matrix", "coverage",
                "coverage_declined", "declined", "ledger_hits", "errors", "kernels"):
        _add_nested(stats[key], part.get(key, {}) or {})
    for target, facts in (part.get("target_facts") or {}).items():   # equal in every process
        stats["target_facts"].setdefault(target, facts)
    merge_corpus(stats.setdefault("corpus", {}), part.get("corpus") or {})
    merge_failures(stats.setdefault("failures", {}), part.get("failures") or {})
    for target, limits in (part.get("time_limits") or {}).items():   # per process: keep each
        per = stats.setdefault("time_limits", {}).setdefault(target, [])
        per.extend(limits) if isinstance(limits, list) else per.append(limits)
    return stats


def merge_failures(into: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Distinct-failure bookkeeping of the processes (``fuzz.failures.FailureBudget.to_json``):
    per signature, hits and raised examples add and shrink seconds add (time spent on it in all
    processes); the shrink budget is the largest; a cut-short process makes the session cut short."""
    if "shrink_seconds" in part:
        into["shrink_seconds"] = max(float(part["shrink_seconds"]), float(into.get("shrink_seconds", 0)))
    _add_nested(into.setdefault("keys", {}), part.get("keys") or {})
    if part.get("cut_short"):
        _add_nested(into.setdefault("cut_short", {"reason": part["cut_short"].get("reason", "max-time")}),
                    {"skipped_examples": int(part["cut_short"].get("skipped_examples", 0))})
    return into


CORPUS_LISTS = ("fixed", "still_failing", "known", "skipped", "corrupt")


def merge_corpus(into: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Regression-corpus replay results: ``replayed`` counts add, id lists merge as sorted sets."""
    into["replayed"] = int(into.get("replayed", 0)) + int(part.get("replayed", 0) or 0)
    for key in CORPUS_LISTS:
        into[key] = sorted(set(into.get(key, [])) | set(part.get(key, []) or []))
    return into


def headroom_cell(values: Iterable[Any]) -> dict[str, Any]:
    """Summary of sampled headroom values: n, max, quantiles, count over 1, a fixed subsample."""
    vals = [headroom_value(v) for v in values]
    vals = sorted(v for v in vals if v is not None and not math.isnan(v))
    finite = [v for v in vals if math.isfinite(v)]
    n = len(vals)

    def q(p: float) -> float | None:
        return None if not finite else float(finite[min(len(finite) - 1, int(p * len(finite)))])

    if len(finite) > HEADROOM_SAMPLES:   # deterministic: evenly spaced order statistics
        step = (len(finite) - 1) / (HEADROOM_SAMPLES - 1)
        sample = [finite[round(i * step)] for i in range(HEADROOM_SAMPLES)]
    else:
        sample = finite
    return {"n": n, "max": (vals[-1] if vals else None), "p50": q(0.5), "p90": q(0.9),
            "p99": q(0.99), "over_1": sum(1 for v in vals if v > 1.0),
            "nonfinite": n - len(finite), "samples": [float(f"{v:.4g}") for v in sample]}


def record_finding(raw: dict[str, Any], baseline_ids: set[str]) -> dict[str, Any]:
    """A session Finding JSON as a record finding (``case`` = the readable case summary)."""
    summary = dict(raw.get("case_summary") or {})
    case = raw.get("case") or {}
    for key in ("dtype", "data_format", "value_shape", "filter_shape", "output_shape", "strides",
                "dilations", "padding", "forms"):
        summary.setdefault(key, case.get(key))
    known = raw.get("known_deviation")
    fid = str(raw.get("id") or "")
    status = "known" if known else ("baseline" if fid in baseline_ids else "new")
    return {"id": fid, "kind": raw["kind"], "target": raw["target"],
            "property": raw.get("property", ""), "case": summary, "case_json": case,
            "expected": str(raw.get("expected", "")), "observed": str(raw.get("observed", "")),
            "headroom": raw.get("headroom"), "known_deviation": known, "status": status,
            "repro": str(raw.get("repro", "")), "details": raw.get("details") or {},
            "kernels": list(raw.get("kernels") or []), "count": int(raw.get("count", 1))}


def _case_size(f: dict[str, Any]) -> int:
    """Elements in a finding's arrays and output: how small its reproducer is."""
    case = f.get("case_json") or {}
    shapes = [(case.get(k) or {}).get("shape") or [] for k in ("value", "filter")]
    out = case.get("output_shape")
    shapes.append(out if isinstance(out, list) and all(isinstance(x, int) for x in out) else [])
    return sum(math.prod(max(int(x), 0) for x in s) for s in shapes)


def merge_findings(raws: list[dict[str, Any]], baseline_ids: set[str]) -> list[dict[str, Any]]:
    """Deduplicate by id (counting repeats), keep one known deviation per (ledger id, target,
    property, kind) — the smallest id, as each worker does (``fuzz.session``), so the record does
    not depend on how xdist spread the tests — keep one new finding per distinct failure
    (``details.signature``, ``fuzz.failures``): the smallest reproducer, counting the others, as
    two processes or two parametrized tests may each have shrunk the same bug (baselined ones
    take part: with a baseline the survivor is the same as without it, only its status
    differs); and sort: new first, then kind, target, id."""
    by_id: dict[str, dict[str, Any]] = {}
    for raw in raws:
        f = record_finding(raw, baseline_ids)
        if f["id"] in by_id:
            by_id[f["id"]]["count"] += f["count"]
        else:
            by_id[f["id"]] = f
    kept: dict[tuple, str] = {}
    for fid in sorted(by_id):
        f = by_id[fid]
        if f["known_deviation"]:
            key = (f["known_deviation"], f["target"], f["property"], f["kind"])
            if key in kept:
                del by_id[fid]
            else:
                kept[key] = fid
    same_bug: dict[str, list[dict[str, Any]]] = {}
    for f in by_id.values():
        if f["status"] in ("new", "baseline") and f["details"].get("signature"):
            same_bug.setdefault(f["details"]["signature"], []).append(f)
    for group in same_bug.values():
        group.sort(key=lambda f: (_case_size(f), f["id"]))
        for other in group[1:]:
            group[0]["count"] += other["count"]
            del by_id[other["id"]]
    order = {"new": 0, "baseline": 1, "known": 2}
    return sorted(by_id.values(), key=lambda f: (order[f["status"]], f["kind"], f["target"],
                                                   f["property"], f["id"]))


def merge_session(record: dict[str, Any], findings: list[dict[str, Any]], stats: dict[str, Any],
                  ledger_entries: list[dict[str, Any]] | None = None, ledger_enabled: bool = True,
                  baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fold one session's findings and stats into ``record`` (in place) and summarize."""
    baseline_ids = {f["id"] for f in (baseline or {}).get("findings", [])}
    cov = record["coverage"]
    _add_nested(cov["cells"], stats.get("coverage", {}))
    _add_nested(cov["examples"], stats.get("examples", {}))
    _add_nested(cov.setdefault("example_phases", {}), stats.get("example_phases", {}))
    _add_nested(cov["seconds"], stats.get("seconds", {}))
    _add_nested(cov["outcomes"], stats.get("outcomes", {}))
    _add_nested(cov.setdefault("errors", {}), stats.get("errors", {}))   # target -> label -> class -> n
    _add_nested(cov.setdefault("kernels", {}), stats.get("kernels", {}))  # target -> kernel label -> n
    # Cases a target was not given, outside its capability declaration: target -> reason -> n
    _add_nested(cov.setdefault("declined", {}), stats.get("declined", {}))
    _add_nested(cov.setdefault("cells_declined", {}), stats.get("coverage_declined", {}))
    targets_env = record["environment"].setdefault("targets", {})
    for target, facts in stats.get("target_facts", {}).items():
        targets_env.setdefault(target, facts)
    _add_nested(record["matrix"], stats.get("matrix", {}))
    merge_corpus(record.setdefault("corpus", {}), stats.get("corpus", {}))
    failures = merge_failures(record.setdefault("failures", {}), stats.get("failures", {}))
    if stats.get("tripwire"):     # required cells no example hit (coverage.tripwire.gaps)
        cov["tripwire"] = stats["tripwire"]
    if stats.get("time_limits"):
        record["run"]["time_limits"] = stats["time_limits"]
    raw_headroom = record.setdefault("_headroom_raw", {})
    for target, per_dtype in stats.get("headroom", {}).items():
        for dtype, values in per_dtype.items():
            raw_headroom.setdefault(target, {}).setdefault(dtype, []).extend(values)
    record["headroom"] = {t: {d: headroom_cell(v) for d, v in sorted(per.items())}
                          for t, per in sorted(raw_headroom.items())}
    # findings of earlier merges (campaign rounds) keep their counts
    raws = [{**f, "case_summary": f["case"], "case": f.get("case_json", {})}
            for f in record["findings"]]
    merged = merge_findings(raws + list(findings), baseline_ids)
    for f in merged:   # what the distinct-failure bookkeeping knows of each new finding
        sig = f["details"].get("signature")
        if f["status"] == "new" and sig in failures.get("keys", {}):
            f["details"]["failure"] = failures["keys"][sig]
    record["findings"] = merged
    ledger = record["ledger"]
    ledger["enabled"] = bool(ledger_enabled)
    if ledger_entries is not None:
        ledger["entries"] = sorted((json_safe(e) for e in ledger_entries), key=lambda e: e["id"])
    _add_nested(ledger["matched"], {k: v for k, v in stats.get("ledger_hits", {}).items()})
    for f in merged:   # findings are the ground truth for which entries matched
        if f["known_deviation"] and f["known_deviation"] not in ledger["matched"]:
            ledger["matched"][f["known_deviation"]] = f["count"]
    ledger["matched"] = {k: v for k, v in sorted(ledger["matched"].items()) if v}
    # Possibly stale: matched nothing although a kernel family or target it names ran here (a
    # TF entry is not stale in a vendor's gate that ran no TF kernel: it had no chance to match)
    ran = applicable_filter(record)
    unmatched = [e for e in ledger.get("entries", []) if e["id"] not in ledger["matched"]]
    ledger["stale"] = sorted(e["id"] for e in unmatched if ran(e)) if ledger_enabled else []
    ledger["not_applicable"] = sorted(e["id"] for e in unmatched if not ran(e)) if ledger_enabled else []
    if baseline is not None:
        new_ids = {f["id"] for f in merged}
        record["baseline"] = {"source": (baseline.get("run") or {}).get("source", ""),
                              "findings": len(baseline_ids),
                              "still_present": len(baseline_ids & new_ids),
                              "gone": sorted(baseline_ids - new_ids)}
    return summarize(record)


def applicable_filter(record: dict[str, Any]):
    """Whether a ledger entry (as the record lists it: comma-joined ``kernels`` / ``targets``,
    ``any``) could have matched this run: one of its kernel families was observed and one of
    its target globs names a target that ran."""
    import fnmatch

    families = {label.split(":", 1)[0] for per in (record["coverage"].get("kernels") or {}).values()
                for label in per}
    targets = ({t for per in (record["coverage"].get("examples") or {}).values() for t in per}
               or set(record["run"].get("targets") or []))

    def ran(entry: dict[str, Any]) -> bool:
        kernels = [k.strip() for k in str(entry.get("kernels", "any")).split(",") if k.strip()]
        globs = [g.strip() for g in str(entry.get("targets", "any")).split(",") if g.strip()]
        kernel_ok = kernels in ([], ["any"]) or bool(families & set(kernels)) or not families
        target_ok = globs in ([], ["any"]) or any(fnmatch.fnmatchcase(t, g) for t in targets
                                                  for g in globs)
        return kernel_ok and target_ok
    return ran


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """Recompute ``record['summary']`` from findings, coverage and headroom."""
    findings = record["findings"]
    examples = sum(n for per_t in record["coverage"]["examples"].values() for n in per_t.values())
    duration = float(record["run"].get("duration_s") or 0.0)
    by_kind: dict[str, dict[str, int]] = {}
    by_target: dict[str, dict[str, int]] = {}
    for f in findings:
        for table, key in ((by_kind, f["kind"]), (by_target, f["target"])):
            cell = table.setdefault(key, {"new": 0, "known": 0, "baseline": 0})
            cell[f["status"]] += 1
    worst: dict[str, dict[str, Any]] = {}

    def consider(dtype: Any, value: Any, target: str, source: str) -> None:
        h = headroom_value(value)
        if dtype is None or h is None:
            return
        cur = worst.get(str(dtype))
        if cur is None or h > headroom_value(cur["headroom"]):
            worst[str(dtype)] = {"headroom": value, "target": target, "source": source}

    for target, per_dtype in sorted(record["headroom"].items()):
        for dtype, cell in sorted(per_dtype.items()):
            consider(dtype, cell.get("max"), target, "sampled")
    for f in findings:
        consider(f["case"].get("dtype"), f.get("headroom"), f["target"], f["id"])
    new = sum(1 for f in findings if f["status"] == "new")
    phases: dict[str, int] = {}   # judged (Case, target) pairs per Hypothesis phase
    for per_phase in (record["coverage"].get("example_phases") or {}).values():
        for phase, n in per_phase.items():
            phases[phase] = phases.get(phase, 0) + n
    record["run"]["examples"] = examples
    record["summary"] = {
        "verdict": "fail" if new else "pass", "examples": examples,
        "examples_by_phase": dict(sorted(phases.items())),
        "examples_per_s": round(examples / duration, 1) if duration > 0 else 0.0,
        "findings": len(findings), "new": new,
        "known": sum(1 for f in findings if f["status"] == "known"),
        "baselined": sum(1 for f in findings if f["status"] == "baseline"),
        "by_kind": dict(sorted(by_kind.items())), "by_target": dict(sorted(by_target.items())),
        "worst_headroom": dict(sorted(worst.items())),
        "ledger_matched": len(record["ledger"]["matched"]),
        "ledger_stale": len(record["ledger"]["stale"]),
    }
    return record


def strip_private(record: dict[str, Any]) -> dict[str, Any]:
    """The record without merge-internal fields (raw headroom samples)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
