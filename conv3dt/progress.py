"""Live progress of a gate's conformance session: one console line, refreshed about once a second.

``SessionReader`` sums what the session's processes have written so far (``stats-<wid>.json``,
``findings-<wid>.jsonl``; docs/architecture.md, "Conformance session output") and counts as the run
record does, so the live figures converge to the summary's headline: examples judged are
``summary.examples`` (judged (Case, target) pairs) and findings go through
``reports.merge.merge_findings`` (one per known deviation's key, one per distinct new failure). The
Recorder replaces its files atomically (``fuzz.session._replace_file``), but a file may still
vanish, be cut short or hold garbage: it then keeps its last good contribution, and nothing raises.
Unchanged files (inode, size, mtime) and findings lines already seen are not parsed again.

``LiveProgress`` draws the line from a daemon thread (``\\r``, the line padded over the last one,
cut to the terminal's width) and ends it with a newline when the session is over; it draws
nothing unless enabled (the gate: not ``--quiet`` and stdout a TTY, so CI logs get no ``\\r``).
"""
from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, TextIO

from conv3dt.reports.merge import merge_findings

_Key = tuple[int, int, int]     # (inode, size, mtime_ns): os.replace gives a new inode
_Lines = dict[str, "dict[str, Any] | None"]   # a findings file's lines -> Finding (None: not one)


@dataclass(frozen=True)
class Progress:
    """What the session has recorded so far."""

    examples: int = 0       # judged (Case, target) pairs, as summary.examples counts them
    findings: int = 0       # findings as the record will list them
    new: int = 0            # of which neither known deviations nor in the baseline


# The Recorder writes stats with indent=1: the top-level table is found by its indentation and
# only it is decoded (a ci session's stats file holds 1-4 MB of headroom samples, a full parse
# 0.2-1 s per rewrite on a loaded 2-core machine); any other layout is parsed whole.
_EXAMPLES_AT = '\n "examples": '
_DECODER = json.JSONDecoder()


def _examples(text: str) -> int:
    """Judged examples in one stats file: the sum of ``examples[property][target]``."""
    at = text.find(_EXAMPLES_AT)
    if at >= 0:
        table = _DECODER.raw_decode(text, at + len(_EXAMPLES_AT))[0]
    else:
        stats = json.loads(text)
        table = stats.get("examples") if isinstance(stats, dict) else None
    if not isinstance(table, dict):
        raise ValueError("no examples table")
    return sum(int(n) for per_target in table.values() for n in per_target.values())


def _findings(text: str, seen: _Lines) -> _Lines:
    """Each line of a findings file with its Finding object (None: a cut or foreign line); the
    file is rewritten whole, so lines already in ``seen`` (its last read) are not parsed again."""
    out: _Lines = {}
    for line in text.splitlines():
        if line in seen:
            out[line] = seen[line]
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        ok = isinstance(obj, dict) and "kind" in obj and "target" in obj and "id" in obj
        out[line] = obj if ok else None
    return out


class SessionReader:
    """Sums a session directory's stats and findings files, robustly and incrementally."""

    def __init__(self, session: str | Path, baseline_ids: Iterable[str] = ()) -> None:
        self.session = Path(session)
        self.baseline_ids = set(baseline_ids)
        self._examples: dict[Path, tuple[_Key, int]] = {}
        self._raws: dict[Path, tuple[_Key, _Lines]] = {}
        self._counts = (0, 0)       # (findings, new) of the last good merge
        self.errors = 0             # files that could not be read or parsed (kept their last value)

    def _changed(self, pattern: str, cache: dict[Path, Any]) -> list[tuple[Path, _Key]]:
        """The files matching ``pattern`` that are new or changed since they were last read."""
        out = []
        try:
            for path in self.session.glob(pattern):
                st = path.stat()
                key = (st.st_ino, st.st_size, st.st_mtime_ns)
                if path not in cache or cache[path][0] != key:
                    out.append((path, key))
        except OSError:             # no directory yet, or a file replaced under us: next time
            pass
        return out

    def read(self) -> Progress:
        """The session's progress now; never raises for what is (or is not) on disk."""
        for path, key in self._changed("stats-*.json", self._examples):
            try:
                self._examples[path] = (key, _examples(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError, AttributeError):
                self.errors += 1    # cut short or rewritten under us: try again next time
        changed = False
        for path, key in self._changed("findings-*.jsonl", self._raws):
            try:
                seen = self._raws[path][1] if path in self._raws else {}
                lines = _findings(path.read_text(encoding="utf-8"), seen)
                self._raws[path] = (key, lines)
                changed = changed or lines.keys() != seen.keys()   # the merge: 0.1 s at 250 findings
            except (OSError, ValueError):
                self.errors += 1
        if changed:
            raws = [raw for _, lines in self._raws.values() for raw in lines.values() if raw]
            try:
                merged = merge_findings(raws, self.baseline_ids)
                self._counts = (len(merged), sum(1 for f in merged if f["status"] == "new"))
            except (KeyError, TypeError, ValueError, AttributeError):
                self.errors += 1    # a Finding the merge cannot take: keep the last counts
        return Progress(sum(n for _, n in self._examples.values()), *self._counts)


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on) of a non-negative duration."""
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def render(progress: Progress, elapsed: float, budget: float | None, width: int = 10**6,
           sep: str = " · ") -> str:
    """The progress line, cut to ``width - 1`` characters (the last column would wrap)."""
    parts = [f"conv3dt gate: {progress.examples:,} examples judged",
             f"{progress.findings:,} finding{'' if progress.findings == 1 else 's'} "
             f"({progress.new:,} new)",
             f"{clock(elapsed)} elapsed"]
    if budget:
        left = budget - elapsed
        parts.append(f"~{clock(left)} left of {clock(budget)}" if left > 0
                     else f"budget of {clock(budget)} spent, finishing")
    return sep.join(parts)[:max(0, width - 1)]


class LiveProgress:
    """A context manager drawing ``render(reader.read(), ...)`` on one line while it is open."""

    def __init__(self, session: str | Path, budget: float | None, enabled: bool,
                 stream: TextIO | None = None, period: float = 1.0,
                 baseline_ids: Iterable[str] = ()) -> None:
        self.reader = SessionReader(session, baseline_ids)
        self.budget, self.enabled, self.period = budget, enabled, period
        self.stream = sys.stdout if stream is None else stream
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = time.monotonic()
        self._shown = 0             # length of the line on screen, 0: nothing drawn yet
        self._sep = " · " if "utf" in (getattr(self.stream, "encoding", None) or "").lower() else " | "

    def draw(self) -> None:
        """Read the session and redraw the line; any failure ends the drawing, never the gate."""
        try:
            line = render(self.reader.read(), time.monotonic() - self._start, self.budget,
                          shutil.get_terminal_size().columns, self._sep)
            if self.enabled:        # not stopped while reading
                self.stream.write("\r" + line.ljust(self._shown))
                self.stream.flush()
                self._shown = len(line)
        except Exception:           # a closed stdout, a bug: no traceback on the gate's console
            self.enabled = False

    def _run(self) -> None:
        while not self._stop.wait(self.period) and self.enabled:
            self.draw()

    def __enter__(self) -> LiveProgress:
        self._start = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="conv3dt-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the thread, draw the final figures and end the line (before the summary)."""
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join(timeout=1.0)
        if not self._thread.is_alive() and self.enabled:   # else stuck on a slow disk: a daemon
            self.draw()
        self.enabled = False
        try:
            self.stream.write("\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass
