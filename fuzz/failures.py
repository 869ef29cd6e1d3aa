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
    - *Shrink budget per key* (``shrink_seconds``): from the first example raised as that key
      (not the first that showed it inside another key's example: that would spend its budget
      before its own shrinking began), Hypothesis may go on raising new examples of it for that
      long. After that, further hits are
      counted on the key (``hits``) and do not fail the example: the shrinker keeps the best
      reproducer it has, and later tests (parametrized dtypes, invalid families) do not shrink
      the same bug again. The time is reported per key (``shrink_s``).
    - *Deadline* (the gate's ``--max-time``): past it, an example is not run at all (no draws are
      judged, none are counted) and the session winds down; the record says it was cut short.
    - *No example judged twice*: every judged example is remembered by (property, Case ids)
      with its unknown Findings. When Hypothesis replays a failure (the final report, a shrink
      that lands on it again) the same error is raised without running the targets again,
      which keeps the final replay consistent when a budget ran out in between or the target
      is nondeterministic (uninitialised memory, a flaky crash).
- ``every_failure(run, budget)``: runs a property's Hypothesis test in rounds until a round
  finds no new failure, so that every independent defect is reported, not only those the
  first examples hit (its docstring says why Hypothesis alone stops early).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

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
    """One failure key in this process: the examples that showed it, those raised for it (each
    a successful shrink step after the first), and when it was first and last raised."""
    hits: int = 0
    raised: int = 0
    first: float | None = None
    last: float | None = None

    def to_json(self) -> dict[str, Any]:
        spent = 0.0 if self.first is None else self.last - self.first
        return {"hits": self.hits, "raised": self.raised, "shrink_s": round(spent, 3)}


@dataclass
class FailureBudget:
    """The cost limits of one pytest process (module docstring). ``deadline`` is a
    ``time.time()`` value or None; ``shrink_seconds`` the budget per failure key.

    ``judged`` remembers every judged example (property and Case ids) with its unknown
    Findings, so that no example is judged twice in a process: a later round or test that draws
    it again gets the same answer without running the targets. ``reported`` holds the keys whose
    minimal reproducer a finished Hypothesis run already reported (``every_failure``): they are
    counted from then on, never raised again."""
    deadline: float | None = None
    shrink_seconds: float = DEFAULT_SHRINK_SECONDS
    keys: dict[FailureKey, KeyStats] = field(default_factory=dict)
    reported: set[FailureKey] = field(default_factory=set)
    judged: dict[tuple, list[Finding]] = field(default_factory=dict)
    raised: dict[tuple, FindingError] = field(default_factory=dict)   # this round's failures
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

    def new_round(self) -> None:
        """A new Hypothesis run starts: its failures are its own (replays raise what it raised)."""
        self.raised.clear()

    def before_example(self, prop: str, cases: Sequence[Any]) -> bool:
        """Whether to judge this example. A replay of a failure of this round raises it again; an
        example judged before is not judged again (it raises for a failure that may still be
        shrunk, else passes); past the deadline nothing is judged (nor counted)."""
        key = self.example_key(prop, cases)
        err = self.raised.get(key)
        if err is not None:
            raise err
        if key in self.judged:
            self._raise_fresh(key, self.judged[key])
            return False
        if self.past_deadline():
            self.skipped_after_deadline += 1
            return False
        return True

    def fail(self, prop: str, cases: Sequence[Any], unknown: list[Finding]) -> None:
        """Record the judged example; count each failure key it shows, and raise the
        FindingError of its smallest key that may still be shrunk (not reported, within its
        shrink budget; remembered for replays). Returns when there is none."""
        key = self.example_key(prop, cases)
        self.judged[key] = list(unknown)
        for k in {signature(f) for f in unknown}:
            self.keys.setdefault(k, KeyStats()).hits += 1
        self._raise_fresh(key, unknown)

    def _raise_fresh(self, example: tuple, unknown: list[Finding]) -> None:
        now = time.monotonic()
        fresh = [k for k in sorted({signature(f) for f in unknown}) if k not in self.reported
                 and (self.keys[k].first is None or now - self.keys[k].first < self.shrink_seconds)]
        if not fresh or self.past_deadline():
            return
        st = self.keys[fresh[0]]
        st.raised += 1
        st.first = now if st.first is None else st.first
        st.last = now
        err = FindingError.for_key(fresh[0])(unknown)
        self.raised[example] = err
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


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


MAX_ROUNDS = 16


def every_failure(run: Callable[[], None], budget: FailureBudget, max_rounds: int = MAX_ROUNDS) -> None:
    """Run a Hypothesis test (``run``) until a run reports no new distinct failure, and raise
    every failure found, each with its own minimal reproducer.

    Why rounds: once Hypothesis has found a failure it stops generating about ten seconds later
    and shrinks, so one run shows the defects its first examples happen to hit. After each run
    the failures it reported are ``reported`` in the budget (counted, never raised again) and
    the test runs again; its examples judged before are answered from ``budget.judged`` without
    running the targets, so a round costs only the examples it has not seen. The last round
    finds nothing new (or ``max_rounds`` is reached); one failure is raised as itself, several
    as an ``ExceptionGroup``. Anything else a run raises (a bug in the suite) is raised with
    them, never swallowed."""
    errors: list[BaseException] = []
    for _ in range(max_rounds):
        budget.new_round()
        try:
            run()
            break
        except BaseException as exc:   # noqa: BLE001 — sorted below, nothing is swallowed
            leaves = _leaves(exc)
            found = [e for e in leaves if isinstance(e, FindingError) and e.key is not None]
            if len(found) != len(leaves) or not found:
                raise (BaseExceptionGroup("distinct failures and an error", [*errors, exc])
                       if errors else exc)
            new = [e for e in found if e.key not in budget.reported]
            if not new:
                break
            errors += new
            budget.reported.update(e.key for e in new)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise BaseExceptionGroup(f"{len(errors)} distinct failures", errors)


def findings_in(exc: BaseException) -> list[Finding]:
    """The Findings an exception carries: a FindingError's, or every FindingError's in an
    exception group (Hypothesis reports several distinct failures as one group)."""
    if isinstance(exc, FindingError):
        return exc.findings
    if isinstance(exc, BaseExceptionGroup):
        return [f for e in exc.exceptions for f in findings_in(e)]
    return []
