"""``conv3dt report merge``: N shard records (``conv3dt gate --shard I/N``) as one run record.

The merged record has the same schema (``conv3dt-report/1``) and is built by the same code as a
single run's (``reports.merge``: each shard record is read back as the counters it was made of,
``record_stats``, and summed with ``add_stats``; findings go through ``merge_findings``):

- findings deduplicated by id with their counts summed, one per distinct failure and one per
  known deviation (ledger id, target, property, kind), exactly as across xdist workers;
- coverage, matrix, outcomes, kernels, ledger hits, corpus results and failure bookkeeping
  summed or united; headroom cells combined (``combine_headroom``: n, max, counts exact;
  quantiles and the ≤ 400 samples from the shards' weighted samples);
- the coverage tripwire applied to the union: the cells the shards required
  (``coverage.tripwire.required``, written by each shard: ``fuzz.shard``) that no shard hit;
- ``run.duration_s`` the longest shard (the jobs run side by side), ``run.shards`` one line per
  shard (index, seed, examples, seconds, exit, digest), one verdict and one exit code
  (``merged_exit``: the gate's rules, ``conv3dt.gate.verdict_exit``, on the union).

Merging is order-independent (everything is summed or sorted) and idempotent: every record
carries the shard records it stands for (``run.shards``, with a digest of each), so a record
already inside another input (the same shard twice, a shard and a merge containing it) counts
once. Refused with one ``MergeError`` line naming the files: records of different TF versions or
ledgers, shards of different N, or two different records of the same shard. This module reads
run records only (no fuzz / oracle / impl).
"""
from __future__ import annotations

import copy
import hashlib
from typing import Any

from conv3dt.reports import record as rec
from conv3dt.reports.merge import (HEADROOM_SAMPLES, add_stats, empty_stats, merge_session,
                                   summarize)
from conv3dt.reports.record import headroom_value

from conv3dt.reports.verdict import EXIT_INFRA, ExitFacts, exit_for


class MergeError(rec.RecordError):
    """Records that are not parts of one run (different TF, ledger, N, or one shard twice)."""


def digest(record: dict[str, Any]) -> str:
    """A short hash of a record's canonical JSON: what identifies a shard record."""
    return hashlib.sha256(rec.dumps(record).encode("utf-8")).hexdigest()[:16]


def units(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The shard records ``record`` stands for: its ``run.shards`` when it is a merge, else
    itself (``run.shard``, 1/1 for an unsharded run)."""
    run = record["run"]
    if run.get("shards"):
        return [dict(u) for u in run["shards"]]
    shard = run.get("shard") or {"index": 1, "count": 1, "seed": run.get("seed")}
    exit_ = run.get("exit") or {}
    return [{"index": int(shard["index"]), "count": int(shard["count"]), "seed": shard.get("seed"),
             "examples": int(record["summary"]["examples"]),
             "duration_s": float(run.get("duration_s") or 0.0),
             "exit": {"code": exit_.get("code"), "reason": exit_.get("reason", "")},
             "interrupted": (record.get("interrupted") or {}).get("reason"),
             "digest": digest(record)}]


def _ledger_of(r: dict[str, Any]) -> tuple:
    """What makes two records' ledgers the same: enabled, the label, the entry ids."""
    return (r["ledger"].get("enabled", True), r["run"].get("ledger"),
            [e.get("id") for e in r["ledger"].get("entries", [])])


def _check_compatible(loaded: list[tuple[str, dict[str, Any]]]) -> None:
    first_path, first = loaded[0]
    for path, r in loaded[1:]:
        for what, get in (("TensorFlow versions", lambda x: x["environment"].get("tensorflow")),
                          ("ledgers", _ledger_of)):
            if get(r) != get(first):
                raise MergeError(f"{first_path} and {path} are not parts of one run: different "
                                 f"{what} ({_difference(get(first), get(r))})")
    counts = {u["count"] for _, r in loaded for u in units(r)}
    if len(counts) > 1:
        raise MergeError("the records are shards of different N (" + ", ".join(
            f"{p}: {'/'.join(str(u['index']) + '/' + str(u['count']) for u in units(r))}"
            for p, r in loaded) + ")")


def _difference(a: Any, b: Any) -> str:
    """What tells two ledgers (``_ledger_of``) or versions apart, shortly: the entry ids only
    one of the ledgers has, else the differing fields."""
    if isinstance(a, tuple) and isinstance(b, tuple) and a[:2] == b[:2]:
        only_a, only_b = sorted(set(a[2]) - set(b[2])), sorted(set(b[2]) - set(a[2]))
        if only_a or only_b:
            return (f"entries only in the first: {_short(only_a)}; "
                    f"only in the second: {_short(only_b)}")
    return f"{_short(a)} vs {_short(b)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def select(loaded: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The inputs that add something: a record whose shards all come with another input is
    dropped (idempotence); what is left must cover disjoint shards, each by one record."""
    keyed = sorted(loaded, key=lambda pr: (-len(units(pr[1])), digest(pr[1])))
    kept: list[tuple[str, dict[str, Any]]] = []
    have: dict[tuple[int, int], tuple[str, str]] = {}     # shard -> (digest, path)
    for path, r in keyed:
        us = units(r)
        known = [have.get((u["index"], u["count"])) for u in us]
        if all(k is not None and k[0] == u["digest"] for k, u in zip(known, us)):
            continue                                    # all of it is in an input already kept
        for k, u in zip(known, us):
            if k is not None:
                what = "different records" if k[0] != u["digest"] else "overlapping sets"
                raise MergeError(f"{path} and {k[1]} hold {what} of shard "
                                 f"{u['index']}/{u['count']}: merge each shard once")
        for u in us:
            have[(u["index"], u["count"])] = (u["digest"], path)
        kept.append((path, r))
    return kept


def record_stats(r: dict[str, Any]) -> dict[str, Any]:
    """A record's counters in the shape of a session's ``stats-*.json`` (for ``add_stats``)."""
    cov = r["coverage"]
    return {"examples": cov["examples"], "example_phases": cov.get("example_phases", {}),
            "seconds": cov["seconds"], "outcomes": cov["outcomes"], "matrix": r["matrix"],
            "coverage": cov["cells"], "coverage_declined": cov.get("cells_declined", {}),
            "declined": cov.get("declined", {}), "ledger_hits": r["ledger"].get("matched", {}),
            "errors": cov.get("errors", {}), "kernels": cov.get("kernels", {}),
            "target_facts": r["environment"].get("targets", {}), "corpus": r.get("corpus", {}),
            "failures": r.get("failures", {}), "time_limits": r["run"].get("time_limits", {})}


def combine_headroom(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """One headroom cell from several: n, max, over_1 and nonfinite exact; each shard's samples
    stand for its finite values in equal shares, and the quantiles and ≤ 400 samples are the
    weighted order statistics of them all (deterministic, order-independent)."""
    weighted = []
    for c in cells:
        samples = sorted(float(v) for v in c.get("samples", []))
        finite = int(c["n"]) - int(c.get("nonfinite", 0))
        weighted += [(v, finite / len(samples)) for v in samples] if samples else []
    weighted.sort()
    total = sum(w for _, w in weighted)

    def at(p: float) -> float | None:
        acc = 0.0
        for v, w in weighted:
            acc += w
            if acc >= p * total:
                return v
        return weighted[-1][0] if weighted else None

    k = min(HEADROOM_SAMPLES, len(weighted))
    samples = [at(i / (k - 1)) if k > 1 else weighted[0][0] for i in range(k)]
    maxes = [headroom_value(c.get("max")) for c in cells if c.get("max") is not None]
    return {"n": sum(int(c["n"]) for c in cells),
            "max": (max(maxes) if maxes else None),
            "p50": at(0.5), "p90": at(0.9), "p99": at(0.99),
            "over_1": sum(int(c.get("over_1", 0)) for c in cells),
            "nonfinite": sum(int(c.get("nonfinite", 0)) for c in cells),
            "samples": [float(f"{v:.4g}") for v in samples]}


def _tripwire(parts: list[dict[str, Any]], cells: dict[str, int]) -> dict[str, Any] | None:
    """The union's coverage verdict: the cells any shard required that no shard hit."""
    wires = [p["coverage"].get("tripwire") for p in parts if p["coverage"].get("tripwire")]
    required = sorted({c for w in wires for c in w.get("required", [])})
    unreachable = sorted({c for w in wires for c in w.get("unreachable", [])})
    if not wires:
        return None
    # a shard that checked itself (1/1) names its gaps; deferred shards name what they required
    gaps = sorted({c for c in required if not cells.get(c)}
                  | {c for w in wires if not w.get("required") for c in w.get("gaps", [])
                     if not cells.get(c)})
    return {"gaps": gaps, "past_deadline": any(w.get("past_deadline") for w in wires),
            "unreachable": unreachable, "required": required, "merged": True}


def merged_exit(record: dict[str, Any], shards: list[dict[str, Any]]) -> tuple[int, str]:
    """The merged run's exit code and reason, by the gate's ladder (``reports.verdict``) on the
    union: a stopped shard (its signal's code), a cut-short shard (1 with new findings, else 4),
    a missing shard or a shard's infrastructure failure, an uncovered required cell (3, unless
    there are new findings), new findings (1), else 0."""
    missing = (record.get("interrupted") or {}).get("reason", "")
    stopped = next((u for u in shards if (u.get("interrupted") or "") and not (
        u["interrupted"].startswith("max-time") or u["interrupted"] == "campaign in progress")),
        None)
    infra = next((u for u in shards if u["exit"].get("code") == EXIT_INFRA), None)
    return exit_for(ExitFacts(
        new=record["summary"]["new"],
        stopped=(int(stopped["exit"]["code"] or EXIT_INFRA),
                 f"shard {stopped['index']}/{stopped['count']} interrupted "
                 f"({stopped['interrupted']})") if stopped else None,
        cut_short="a shard was cut short by --max-time" if any(
            (u.get("interrupted") or "").startswith("max-time") for u in shards) else None,
        infra=(missing if missing.startswith("shards missing") else
               f"shard {infra['index']}/{infra['count']}: {infra['exit'].get('reason', '')}"
               if infra else None),
        gaps=tuple((record["coverage"].get("tripwire") or {}).get("gaps") or ()),
        gaps_in="coverage tripwire on the merged shards"))


def merge_records(loaded: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The merged record of ``[(path, record), ...]`` (module docstring); raises MergeError."""
    if not loaded:
        raise MergeError("no records to merge")
    loaded = [(path, copy.deepcopy(r)) for path, r in loaded]   # the inputs stay as they were
    _check_compatible(loaded)
    parts = [r for _, r in select(loaded)]
    shards = sorted((u for r in parts for u in units(r)), key=lambda u: u["index"])
    if len(parts) == 1 and len(loaded) > 1:
        return parts[0]                     # every other input is inside this one
    first = min(parts, key=lambda r: units(r)[0]["index"])
    stats = empty_stats()
    for r in parts:
        add_stats(stats, record_stats(r))
    run = {k: v for k, v in first["run"].items()
           if k not in ("shard", "exit", "pytest", "time_limits")}
    run.update(targets=list(dict.fromkeys(t for r in parts for t in r["run"]["targets"])),
               duration_s=max(float(u["duration_s"]) for u in shards), shards=shards,
               examples_requested=first["run"].get("examples_requested"))
    merged = rec.new_record(first["environment"], run)
    baseline = _baseline(parts)
    raws = [{**f, "case_summary": f["case"], "case": f.get("case_json", {})}
            for r in parts for f in r["findings"]]
    entries = first["ledger"].get("entries")
    merge_session(merged, raws, stats, entries, first["ledger"].get("enabled", True), baseline)
    if baseline is not None:
        merged["baseline"]["findings"] = first["baseline"]["findings"]
    merged.pop("_headroom_raw", None)
    merged["headroom"] = {t: {d: combine_headroom([r["headroom"][t][d] for r in parts
                                                   if d in r["headroom"].get(t, {})])
                              for d in sorted({d for r in parts for d in r["headroom"].get(t, {})})}
                          for t in sorted({t for r in parts for t in r["headroom"]})}
    wire = _tripwire(parts, merged["coverage"]["cells"])
    if wire is not None:
        merged["coverage"]["tripwire"] = wire
    count = shards[0]["count"]
    absent = [f"{i}/{count}" for i in range(1, count + 1) if i not in {u["index"] for u in shards}]
    stopped = [f"shard {u['index']}/{u['count']}: {u['interrupted']}" for u in shards
               if u.get("interrupted")]
    if absent or stopped:
        missing = [f"shards missing: {', '.join(absent)}"] if absent else []
        rec.mark_interrupted(merged, "; ".join(missing + stopped))
    summarize(merged)
    code, reason = merged_exit(merged, shards)
    merged["run"]["exit"] = {"code": code, "reason": reason}
    return merged


def _baseline(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The baseline the shards were gated against, as ``merge_session`` takes it: the ids still
    present in some shard plus those gone from every shard."""
    bases = [r["baseline"] for r in parts if r.get("baseline")]
    if not bases:
        return None
    present = {f["id"] for r in parts for f in r["findings"] if f["status"] == "baseline"}
    gone = set.intersection(*(set(b.get("gone", [])) for b in bases))
    return {"findings": [{"id": i} for i in sorted(present | gone)],
            "run": {"source": bases[0].get("source", "")}}
