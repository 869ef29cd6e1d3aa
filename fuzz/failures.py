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
  An example showing several keys is raised as the key its round shrinks (outside
  ``every_failure``, as its smallest key), carrying all of its findings.
- ``FailureBudget``: per pytest process, the limits on cost.
    - *Shrink budget per round* (``shrink_seconds``): from the first example a shrink round
      raises, Hypothesis may go on raising new examples of its key for that long. After that,
      further hits are counted on the key (``hits``) and do not fail the example: the shrinker
      keeps the best reproducer it has. The time is reported per key (``shrink_s``).
    - *Deadline* (the gate's ``--max-time``): past it, an example is not run at all (no draws are
      judged, none are counted) and the session winds down; the record says it was cut short.
    - *No example judged twice*: every judged example is remembered by (property, Case ids)
      with its unknown Findings. When Hypothesis replays an example (a shrink round replaying
      the survey, the final report, a shrink that lands on it again) the answer comes from
      there without running the targets again, which also keeps replays consistent when the
      target is nondeterministic (uninitialised memory, a flaky crash).
- ``every_failure(test, budget)``: a survey run that raises nothing, then one shrink round per
  distinct failure (its docstring says why: Hypothesis alone stops generating on a wall-clock
  rule once it has a failure, so neither the set of failures nor the reproducers would be the
  same for the same seed on a loaded machine). Every test reports its own failures; the run
  record keeps the smallest reproducer per key, whichever process or test found it.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

from hypothesis import Phase, example, settings

from conv3dt.fuzz.findings import Finding

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
    a successful shrink step after the first), and the seconds its shrink rounds took."""
    hits: int = 0
    raised: int = 0
    shrink_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"hits": self.hits, "raised": self.raised, "shrink_s": round(self.shrink_s, 3)}


@dataclass
class FailureBudget:
    """The cost limits of one pytest process (module docstring). ``deadline`` is a
    ``time.time()`` value or None; ``shrink_seconds`` the budget of one shrink round.

    ``judged`` remembers every judged example (property and Case ids) with its unknown
    Findings, so that no example is judged twice in a process: a later round or test that draws
    it again gets the same answer without running the targets. What a failing example raises
    depends on the round (``new_round``, driven by ``every_failure``):

    - a *survey* raises nothing: it judges, counts and remembers (``seen``: each key's first
      example in this test);
    - a *shrink round* raises only its key, for ``shrink_seconds`` from its first raise; later
      examples of the key are counted, not raised, so the shrinker keeps the best it has;
    - outside ``every_failure`` (a single explicit example) an example raises its smallest key.
    """
    deadline: float | None = None
    shrink_seconds: float = DEFAULT_SHRINK_SECONDS
    keys: dict[FailureKey, KeyStats] = field(default_factory=dict)
    judged: dict[tuple, list[Finding]] = field(default_factory=dict)
    raised: dict[tuple, FindingError] = field(default_factory=dict)   # this round's failures
    seen: dict[FailureKey, tuple] = field(default_factory=dict)      # key -> first example
    surveying: bool = False
    shrinking: FailureKey | None = None
    skipped_after_deadline: int = 0
    cut_short_at: float | None = None
    _round_last_raise: float | None = None
    _round_first_raise: float | None = None

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

    def new_round(self, shrinking: FailureKey | None = None, surveying: bool = False) -> None:
        """A new Hypothesis run starts: its failures are its own (replays raise what it raised).
        ``surveying``: judge and count, raise nothing (and start a new ``seen``);
        ``shrinking``: raise only that key."""
        self.raised.clear()
        self.surveying, self.shrinking = surveying, shrinking
        self._round_first_raise = self._round_last_raise = None
        if surveying:
            self.seen = {}

    def phase(self, prop: str, cases: Sequence[Any]) -> str:
        """Which phase judges this (not yet judged) example: ``explicit`` (an ``explicit``
        example), ``shrink`` (a shrink round looking for a smaller reproducer) or ``generate``."""
        if self.example_key(prop, cases) in EXPLICIT_EXAMPLES:
            return "explicit"
        return "shrink" if self.shrinking is not None else "generate"

    def before_example(self, prop: str, cases: Sequence[Any]) -> bool:
        """Whether to judge this example. A replay of a failure of this round raises it again; an
        example judged before is not judged again (it raises as a newly judged one would, else
        passes); past the deadline nothing is judged (nor counted)."""
        key = self.example_key(prop, cases)
        err = self.raised.get(key)
        if err is not None:
            raise err
        if key in self.judged:
            self._maybe_raise(key, self.judged[key])
            return False
        if self.past_deadline():
            self.skipped_after_deadline += 1
            return False
        return True

    def fail(self, prop: str, cases: Sequence[Any], unknown: list[Finding]) -> None:
        """Record the judged example and count each failure key it shows; raise as the round
        says (class docstring; the raised error is remembered for replays). Returns when there
        is nothing to raise."""
        key = self.example_key(prop, cases)
        self.judged[key] = list(unknown)
        for k in {signature(f) for f in unknown}:
            self.keys.setdefault(k, KeyStats()).hits += 1
        self._maybe_raise(key, unknown)

    def _maybe_raise(self, example: tuple, unknown: list[Finding]) -> None:
        shown = sorted({signature(f) for f in unknown})
        for k in shown:
            self.seen.setdefault(k, example)
        if not shown or self.surveying or self.past_deadline():
            return
        now = time.monotonic()
        if self.shrinking is None:
            key = shown[0]
        elif self.shrinking not in shown or (self._round_first_raise is not None
                                             and now - self._round_first_raise >= self.shrink_seconds):
            return
        else:
            key = self.shrinking
            if self._round_first_raise is None:
                self._round_first_raise = self._round_last_raise = now
        st = self.keys.setdefault(key, KeyStats())
        st.raised += 1
        if self._round_last_raise is not None:
            st.shrink_s += now - self._round_last_raise
            self._round_last_raise = now
        err = FindingError.for_key(key)(unknown)
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


MAX_ROUNDS = 32

#: Example keys (``FailureBudget.example_key``) of the conformance tests' explicit examples.
EXPLICIT_EXAMPLES: set[tuple] = set()


def explicit(prop: str, **kwargs: Any):
    """``hypothesis.example(**kwargs)`` for property ``prop``, remembered as explicit: the Cases
    are deterministic and chosen small, so a failure first shown by one gets no shrink round (a
    round without the explicit phase would regenerate the whole run looking for it: the 2.21
    gate judged 88,956 differential examples in 523 s for eight keys only explicit limit Cases
    showed) and is reported with that example."""
    (arg,) = kwargs.values()
    EXPLICIT_EXAMPLES.add(FailureBudget.example_key(prop, arg if isinstance(arg, list) else [arg]))
    return example(**kwargs)


def every_failure(test: Callable[..., None], budget: FailureBudget, *args: Any,
                  max_rounds: int = MAX_ROUNDS, first: Callable[[], None] | None = None) -> None:
    """Run a Hypothesis test (``test(*args)``) so that every distinct failure is found and
    raised with its own minimal reproducer, the same ones for the same seed on every run.

    1. *Survey*: one run judges all of its examples and raises nothing, so Hypothesis generates
       exactly its ``max_examples`` (a run that has seen a failure stops generating on a
       wall-clock rule, ten seconds after it, so what it judged would depend on the machine's
       speed and load).
    2. *One shrink round per distinct failure*, in the order the survey first met them: a run
       in which only that key raises, with ``report_multiple_bugs`` off, so Hypothesis stops
       generating at the first example showing it (the same example every time: the survey's
       examples replay from ``budget.judged`` without running the targets) and shrinks it alone.
       A failure first met while shrinking gets a round of its own.
    ``first`` (optional) judges explicit examples in the survey round, before the search.

    3. A key without a shrunk reproducer (past ``max_rounds`` or the deadline, or its round
       raised nothing) is reported with the first example that showed it; so is a key first
       shown by an explicit example (``explicit``), which gets no round.

    One failure is raised as itself, several as an ``ExceptionGroup``. Anything else a run raises
    (a bug in the suite) is raised with them, never swallowed."""
    budget.new_round(surveying=True)
    try:
        if first is not None:   # explicit examples outside Hypothesis (fuzz.covering), surveyed
            first()
        test(*args)
    finally:
        budget.new_round()
    errors: dict[FailureKey, FindingError] = {}
    tried: set[FailureKey] = set()
    for _ in range(max_rounds):
        pending = [k for k in budget.seen
                   if k not in tried and budget.seen[k] not in EXPLICIT_EXAMPLES]
        if not pending or budget.past_deadline():
            break
        tried.add(pending[0])
        budget.new_round(shrinking=pending[0])
        try:
            _one_failure_only(test)(*args)
        except BaseException as exc:   # noqa: BLE001 — sorted below, nothing is swallowed
            leaves = _leaves(exc)
            if not all(isinstance(e, FindingError) and e.key is not None for e in leaves):
                raise (BaseExceptionGroup("distinct failures and an error", [*errors.values(), exc])
                       if errors else exc)
            errors.update((e.key, e) for e in leaves)
        finally:
            budget.new_round()
    for key, example in budget.seen.items():
        if key not in errors:
            errors[key] = FindingError.for_key(key)(budget.judged.get(example, []))
    found = [errors[k] for k in budget.seen]      # every key seen has an error, in first-met order
    if len(found) == 1:
        raise found[0]
    if found:
        raise BaseExceptionGroup(f"{len(found)} distinct failures", found)


def _one_failure_only(test: Callable[..., None]) -> Callable[..., None]:
    """``test`` with Hypothesis's ``report_multiple_bugs`` off: it stops generating at the first
    failing example and shrinks that one. A @given test reads the settings it carries when it
    is called (``hypothesis.settings`` cannot decorate a test twice); anything else is run as
    it is."""
    current = getattr(test, "_hypothesis_internal_use_settings", None)
    if current is None or not current.report_multiple_bugs:
        return test

    # without the explicit examples: Hypothesis reports a failing explicit example as it is,
    # unshrunk (a realistic-tier boundary Case of 10^5 elements); the generated examples that
    # show the key are shrunk instead, and a key only explicit examples show is reported with
    # the survey's first example (every_failure)
    phases = tuple(p for p in current.phases if p != Phase.explicit)

    def run(*args: Any) -> None:
        test._hypothesis_internal_use_settings = settings(current, report_multiple_bugs=False,
                                                          phases=phases)
        try:
            test(*args)
        finally:
            test._hypothesis_internal_use_settings = current
    return run


def findings_in(exc: BaseException) -> list[Finding]:
    """The Findings an exception carries: a FindingError's, or every FindingError's in an
    exception group (Hypothesis reports several distinct failures as one group)."""
    if isinstance(exc, FindingError):
        return exc.findings
    if isinstance(exc, BaseExceptionGroup):
        return [f for e in exc.exceptions for f in findings_in(e)]
    return []
