"""The per-process recorder of a conformance session (docs/architecture.md, "Conformance
session output"): ``findings-<wid>.jsonl`` and ``stats-<wid>.json`` in the output directory,
``<wid>`` the xdist worker id or ``main``.

Only final Findings are written: unknown ones when pytest reports the failed test (after
Hypothesis shrank them), and one known deviation per (ledger id, target, property, kind) — the
one with the smallest id, since every further hit only adds to ``ledger_hits``. The smallest id
rather than the first seen: which xdist worker runs which test, and so which hit comes first,
changes from run to run; the smallest id over all hits does not (the merge takes it across
workers too), so a seed's record lists the same findings every time.
"""
from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from conv3dt.fuzz import exampledb
from conv3dt.fuzz.findings import Finding

HEADROOM_SAMPLES = 2000
WRITE_PERIOD_S = 5.0
TRIPWIRE_FILE = "tripwire.json"


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _tree():
    return defaultdict(_tree)


def _plain(d):
    return {k: _plain(v) for k, v in d.items()} if isinstance(d, dict) else d


class Recorder:
    def __init__(self, out_dir: str | Path | None, wid: str | None = None) -> None:
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.wid = wid or worker_id()
        self.examples: dict = defaultdict(lambda: defaultdict(int))
        self.example_phases: dict = defaultdict(lambda: defaultdict(int))
        self.seconds: dict = defaultdict(float)
        self.outcomes: dict = defaultdict(lambda: defaultdict(int))
        self.headroom: dict = defaultdict(lambda: defaultdict(list))
        self._seen_headroom: dict = defaultdict(int)
        self.matrix: dict = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        self.coverage: dict = defaultdict(int)
        self.coverage_declined: dict = defaultdict(int)   # cells of Cases no target admitted
        self.declines: dict = defaultdict(lambda: defaultdict(int))   # target -> reason -> Cases
        self.ledger_hits: dict = defaultdict(int)
        self.errors: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        self.kernels: dict = defaultdict(lambda: defaultdict(int))
        self.target_facts: dict[str, dict[str, Any]] = {}
        self.findings: dict[str, Finding] = {}
        self._known_kept: dict = {}  # (ledger id, target, property, kind) -> kept id
        self._rng = random.Random(0)
        self.extra: dict[str, Any] = {}
        self._written = time.monotonic()

    # -------------------------------------------------------------- counting
    def example(self, prop: str, target: str, phase: str = "generate") -> None:
        """One judged (Case, target) pair of property ``prop``, judged in ``phase``
        (``FailureBudget.phase``: generate, explicit or shrink)."""
        self.examples[prop][target] += 1
        self.example_phases[prop][phase] += 1

    def outcome(self, target: str, kind: str) -> None:
        self.outcomes[target][kind] += 1

    def kernel(self, target: str, kernel) -> bool:
        """Count the kernel (``oracle.kernels.KernelObservation``) that ran one call; whether
        this process saw that kernel label on that target for the first time."""
        if kernel is None:
            return False
        counts = self.kernels[target]
        counts[kernel.label] += 1
        return counts[kernel.label] == 1

    def error(self, target: str, label: str, cls: str | None) -> None:
        self.errors[target][label][cls or "?"] += 1

    def add_headroom(self, target: str, dtype: str, h: float) -> None:
        """Reservoir-sample headroom values (≤ HEADROOM_SAMPLES per cell)."""
        cell = self.headroom[target][dtype]
        key = (target, dtype)
        self._seen_headroom[key] += 1
        if len(cell) < HEADROOM_SAMPLES:
            cell.append(h)
        else:
            j = self._rng.randrange(self._seen_headroom[key])
            if j < HEADROOM_SAMPLES:
                cell[j] = h

    def matrix_cells(self, target: str, cells: list[str], deviated: bool) -> None:
        for c in cells:
            m = self.matrix[target][c]
            m[0] += 1
            m[1] += int(deviated)

    def cover(self, cells) -> None:
        for c in cells:
            self.coverage[c] += 1

    def cover_declined(self, cells) -> None:
        """Cells of a Case that every target's declaration excluded (``oracle.capabilities``)."""
        for c in cells:
            self.coverage_declined[c] += 1

    def declined(self, target: str, reason: str, n: int = 1) -> None:
        """``n`` Cases not given to ``target``: outside its declaration for ``reason``."""
        self.declines[target][reason] += n

    # -------------------------------------------------------------- findings
    def known(self, f: Finding) -> None:
        self.ledger_hits[f.known_deviation] += 1
        key = (f.known_deviation, f.target, f.property, f.kind)
        kept = self._known_kept.get(key)
        if kept is None or f.id < kept:
            if kept is not None:
                del self.findings[kept]
            self._known_kept[key] = f.id
            self.findings[f.id] = f

    def final(self, f: Finding) -> None:
        self.findings[f.id] = f

    # -------------------------------------------------------------- output
    def stats(self) -> dict[str, Any]:
        return {"examples": _plain(self.examples), "example_phases": _plain(self.example_phases),
                "seconds": dict(self.seconds),
                "outcomes": _plain(self.outcomes), "headroom": _plain(self.headroom),
                "matrix": _plain(self.matrix), "coverage": dict(self.coverage),
                "coverage_declined": dict(self.coverage_declined), "declined": _plain(self.declines),
                "ledger_hits": dict(self.ledger_hits), "errors": _plain(self.errors),
                "kernels": _plain(self.kernels), "target_facts": dict(self.target_facts),
                # the shared example store as this process saw it (fuzz.exampledb), if one is named
                **({"example_db": dict(exampledb.STATUS)} if exampledb.STATUS else {}),
                **self.extra}

    def maybe_write(self, period: float = WRITE_PERIOD_S) -> None:
        """``write()`` when the last write is older than ``period`` seconds: a process killed
        before its session ends (an xdist worker torn down after Ctrl-C, a CI timeout) still
        leaves what it judged up to then."""
        now = time.monotonic()
        if now - self._written >= period:
            self.write()

    def write(self) -> None:
        self._written = time.monotonic()
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        _replace_file(self.out_dir / f"findings-{self.wid}.jsonl",
                      "".join(json.dumps(f.to_json(), sort_keys=True) + "\n"
                              for f in self.findings.values()))
        _replace_file(self.out_dir / f"stats-{self.wid}.json",
                      json.dumps(self.stats(), indent=1, sort_keys=True))

    def write_tripwire(self, gaps: list[str], past_deadline: bool,
                       unreachable: list[str] = (), required: list[str] | None = None) -> None:
        """The controller's coverage verdict (``tripwire.json``): the required cells no process
        hit, whether the wall-clock budget had run out by then (a cut-short run, not a hole), and
        the cells no target's declaration admits (``fuzz.covering.unreachable``: not a failure).
        ``required`` (a shard of several, ``fuzz.shard``): the verdict is deferred to the merge,
        which checks these cells on the union of the shards' coverage."""
        if self.out_dir is not None:
            verdict = {"gaps": sorted(gaps), "past_deadline": past_deadline,
                       "unreachable": sorted(unreachable)}
            if required is not None:
                verdict.update(deferred=True, required=sorted(required))
            _replace_file(self.out_dir / TRIPWIRE_FILE, json.dumps(verdict))


def _replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old or the new file, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def merge_stats(paths, sections: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Sum several ``stats-*.json`` (the coverage tripwire uses this; ``reports.merge`` builds the
    record): counters add, matrix cells ``[n, deviations]`` add element-wise, headroom samples
    concatenate, and lists of ids (e.g. ``corpus.fixed``) merge as a sorted union. Leaves that
    are not numbers (the time-limit policy's structure summaries, facts) are per-process facts,
    not sums: the first process's stands. ``sections`` keeps only those top-level keys."""
    total: dict[str, Any] = {}

    def add(dst, src, section):
        for k, v in src.items():
            if section == "target_facts":
                dst.setdefault(k, v)   # facts, equal in every process: not summed
            elif isinstance(v, dict):
                add(dst.setdefault(k, {}), v, section or k)
            elif isinstance(v, list) and section == "headroom":
                dst[k] = list(dst.get(k, [])) + list(v)
            elif isinstance(v, list) and any(isinstance(x, str) for x in [*v, *dst.get(k, [])]):
                dst[k] = sorted(set(dst.get(k, [])) | set(v))
            elif isinstance(v, list):
                dst[k] = [a + b for a, b in zip(dst[k], v)] if k in dst else list(v)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                dst[k] = dst.get(k, 0) + v
            else:
                dst.setdefault(k, v)
    for p in paths:
        part = json.loads(Path(p).read_text())
        add(total, part if sections is None else {k: part[k] for k in sections if k in part}, None)
    return total
