"""Distinct failures, each at a bounded cost: what makes a deviation *this* bug, and how long
Hypothesis may spend on it.

A target with several independent defects must show every one of them in one run, each with
its own minimal reproducer, and a target that crashes or hangs on common inputs must not eat
the run. Three pieces:

- ``signature(f)``: the identity of a deviation, ``FailureKey(kind, target, property, what)``
  where ``what`` is
    - a crash: the signal (or exit code) and the FATAL / CHECK-failure line, else the last
      stderr line (the top frame), with the run-to-run noise (glog time and thread id, hex
      addresses, numbers) replaced;
    - a timeout: ``"timeout"``;
    - an accept-reject / error-class finding: the observed error class (or "returned a value"),
      and for invalid Cases the validation rule (the family), since each rule is its own check;
    - a numeric finding: nothing more (kind, target and property say it).
- ``FindingError.for_key(key)``: one ``FindingError`` subclass per key. Hypothesis tells
  failures apart by exception type and raising line (its ``InterestingOrigin``), so every key
  is a failure of its own that it shrinks separately and reports in its ``ExceptionGroup``.
  An example showing several keys is raised as the smallest key that still has shrink budget,
  carrying all of its findings.
- ``FailureBudget``: per pytest process, the limits on cost.
    - *Shrink budget per key* (``shrink_seconds``): from the first example that shows a key,
      Hypothesis may go on raising new examples of it for that long. After that, further hits are
      counted on the key (``hits``) and do not fail the example: the shrinker keeps the best
      reproducer it has, and later tests (parametrized dtypes, invalid families) do not shrink
      the same bug again. The time is reported per key (``shrink_s``).
    - *Deadline* (the gate's ``--max-time``): past it, an example is not run at all (no draws are
      judged, none are counted) and the session winds down; the record says it was cut short.
    - *Replays*: an example that raised is remembered by (property, Case ids); when Hypothesis
      replays it (the final report, a shrink that lands on it again) the same error is raised
      without running the targets again. That keeps the final replay consistent when a budget
      ran out in between, or when a target is nondeterministic (uninitialised memory, a
      flaky crash), and costs no oracle time.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

from fuzz.findings import Finding

# Shrink budget per failure key (seconds): long enough for Hypothesis to reach a minimal Case
# on a crash-free target (its shrinks of a ci-sized Case take 5-40 s here), short enough that a
# vendor kernel with a dozen distinct defects still gets a verdict in minutes.
DEFAULT_SHRINK_SECONDS = 60.0

_NOISE = (
    (re.compile(r"^[FEWI]\d{4} \d\d:\d\d:\d+(?:\.\d+)?\s+\d+\s+"), ""),   # glog time + thread
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "0x#"),
    (re.compile(r"(?<![\w.:])-?\d+(?:\.\d+)?(?![\w])"), "#"),           # numbers, not file:line
)


class FailureKey(NamedTuple):
    """What makes a deviation one distinct failure (see the module docstring)."""
    kind: str
    target: str
    property: str
    what: str

    def text(self) -> str:
        return " | ".join(x for x in self if x)


def _stable(line: str) -> str:
    """A stderr line without what changes from run to run of the same call."""
    line = line.strip()
    for pattern, replacement in _NOISE:
        line = pattern.sub(replacement, line)
    return line[:200]


def _fatal_line(tail: str) -> str:
    lines = [ln.strip() for ln in (tail or "").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^F\d{4} ", ln) or "Check failed" in ln or ln.startswith("Fatal Python error"):
            return ln
    return lines[-1] if lines else ""


def signature(f: Finding) -> FailureKey:
    """The distinct-failure key of a Finding."""
    d = f.details
    if f.kind == "crash":
        cause = d.get("signal") or f"exit code {d.get('exit_code')}"
        line = _stable(_fatal_line(d.get("stderr_tail") or ""))
        what = f"{cause}: {line}" if line else cause
    elif f.kind == "timeout":
        what = "timeout"
    elif f.kind in ("accept-reject", "error-class"):
        cls = (d.get("error_class") or "").rsplit(".", 1)[-1] or "returned a value"
        label = f.case.get("label") or "valid"
        what = f"{cls} on {label}" if label != "valid" else cls
    else:
        what = ""
    return FailureKey(f.kind, f.target, f.property, what)


class FindingError(AssertionError):
    """Raised by a property for deviations the ledger does not know; carries ``.findings``.
    ``for_key`` gives the subclass of one distinct failure (one Hypothesis origin each)."""

    key: FailureKey | None = None
    _classes: dict[FailureKey, type] = {}

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = list(findings)
        lines = [f"{len(self.findings)} unknown deviation(s):"]
        lines += [f"  [{f.kind}] {f.target} ({f.property}): expected {f.expected}; "
                  f"observed {f.observed}" for f in self.findings[:8]]
        if self.findings:
            lines += ["reproducer:", self.findings[0].repro]
        super().__init__("\n".join(lines))

    @classmethod
    def for_key(cls, key: FailureKey) -> type["FindingError"]:
        """The one subclass for ``key`` (the same class object every time)."""
        sub = cls._classes.get(key)
        if sub is None:
            sub = type(f"FindingError[{key.text()[:80]}]", (cls,), {"key": key})
            cls._classes[key] = sub
        return sub


@dataclass
class KeyStats:
    """One failure key in this process: when it was first and last raised, how often seen."""
    first: float
    last: float
    hits: int = 0
    raised: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"hits": self.hits, "raised": self.raised, "shrink_s": round(self.last - self.first, 3)}


@dataclass
class FailureBudget:
    """The cost limits of one pytest process (module docstring). ``deadline`` is a
    ``time.time()`` value or None; ``shrink_seconds`` the budget per failure key."""
    deadline: float | None = None
    shrink_seconds: float = DEFAULT_SHRINK_SECONDS
    keys: dict[FailureKey, KeyStats] = field(default_factory=dict)
    raised: dict[tuple, FindingError] = field(default_factory=dict)
    skipped_after_deadline: int = 0
    cut_short_at: float | None = None

    def __post_init__(self) -> None:
        if self.shrink_seconds <= 0:
            raise ValueError(f"shrink_seconds must be > 0, not {self.shrink_seconds!r}")

    @staticmethod
    def example_key(prop: str, cases: Sequence[Any]) -> tuple:
        return (prop, *(c.case_id for c in cases))

    def past_deadline(self) -> bool:
        if self.deadline is None or time.time() < self.deadline:
            return False
        if self.cut_short_at is None:
            self.cut_short_at = time.time()
        return True

    def before_example(self, prop: str, cases: Sequence[Any]) -> bool:
        """Whether to judge this example: re-raises a remembered failure (a replay), and says
        False past the deadline (the example is neither run nor counted)."""
        err = self.raised.get(self.example_key(prop, cases))
        if err is not None:
            raise err
        if self.past_deadline():
            self.skipped_after_deadline += 1
            return False
        return True

    def fail(self, prop: str, cases: Sequence[Any], unknown: list[Finding]) -> None:
        """Raise the FindingError of the smallest key of ``unknown`` that still has shrink
        budget (remembered for replays); when none has, count the hits and return."""
        if not unknown:
            return
        now = time.monotonic()
        keys = sorted({signature(f) for f in unknown})
        fresh = []
        for k in keys:
            st = self.keys.setdefault(k, KeyStats(first=now, last=now))
            st.hits += 1
            if now - st.first < self.shrink_seconds:
                fresh.append(k)
        if not fresh or self.past_deadline():
            return
        key = fresh[0]
        st = self.keys[key]
        st.raised += 1
        st.last = now
        err = FindingError.for_key(key)(unknown)
        self.raised[self.example_key(prop, cases)] = err
        raise err

    def stats_of(self, f: Finding) -> dict[str, Any]:
        st = self.keys.get(signature(f))
        return {} if st is None else st.to_json()

    def to_json(self) -> dict[str, Any]:
        """For the session stats: per key text, {hits, raised, shrink_s}; the cut-short facts."""
        out: dict[str, Any] = {"shrink_seconds": self.shrink_seconds,
                               "keys": {k.text(): s.to_json() for k, s in self.keys.items()}}
        if self.cut_short_at is not None:
            out["cut_short"] = {"reason": "max-time", "skipped_examples": self.skipped_after_deadline}
        return out


def findings_in(exc: BaseException) -> list[Finding]:
    """The Findings an exception carries: a FindingError's, or every FindingError's in an
    exception group (Hypothesis reports several distinct failures as one group)."""
    if isinstance(exc, FindingError):
        return exc.findings
    if isinstance(exc, BaseExceptionGroup):
        return [f for e in exc.exceptions for f in findings_in(e)]
    return []
