"""Per-call time limits that follow a target's observed call times, per call structure.

A fixed limit (the pool's ``timeout``, 30 s) makes every hung call cost 30 s. Instead, each
call gets

    limit = clamp(FACTOR × expected, FLOOR_S, ceiling)        ceiling = TargetPool.timeout

where ``expected`` is, for the call's structure (``oracle.case.structure_key``: the Case minus
its values),

1. ``structure``: the slowest completed call of that structure on this target (its first call
   included: XLA's compile, oneDNN's primitive creation, a graph build — later calls of it get
   at least FACTOR × that);
2. ``size``, a structure not seen yet: the slowest completed call of the same dtype whose work
   (:func:`call_work`, ≈ products) lies in the same power-of-two bucket, × 2 (a bucket spans a
   factor 2 of work); else the nearest smaller bucket's slowest × 2^(Δbucket + 1) (linear in
   work: from an overhead-dominated small call this overshoots — safe, loose); else the nearest
   larger bucket's slowest;
3. ``other-dtype``, nothing of that dtype completed yet: the same from the other dtypes (the
   largest) × ``DTYPE_MARGIN``;
4. ``ceiling``, nothing completed at all.

Only completed calls (a value or a raised error) are observations; crashes and timeouts are not.

Confirm-once guard (``confirm=True``): a target's first timeout under a limit below the ceiling
does not count yet. The call is re-run once on a fresh worker with the ceiling; if it
completes, its Outcome stands and its time raises that structure's limit (``spurious_cuts``);
if it times out again, the timeout stands and the guard is spent — the target has shown that it
really hangs, and from then on its timeouts trust the adaptive limits. A guard that caught a
spurious cut stays armed: on a target that never hangs (TF in a user's gate) every cut is
re-run with the ceiling, so a tight limit costs time, never a false timeout.

The constants, from ``conv3dt bench oracle --spread 3`` (``oracle/README.md``: 64 structures —
24 tiny, 16 realistic, 24 at the ci budget's corners, 10⁶ outputs / 4·10⁷ products, every dtype
and layout — × 3 calls, shuffled, on tf-eager, tf-xla and isolated impl; shared 2-core Xeon,
load average 5-7 from other jobs; three runs, numbers from the last):

- ``FLOOR_S`` = 5 s: no call is cut earlier. Slowest honest calls: tiny Cases 0.03 s
  (tf-eager), 0.41 s (tf-xla, compiling), 0.05 s (impl); realistic and budget Cases 3.8 s
  (tf-eager float16: the stock half-precision kernel), 0.96 s (tf-xla), 1.5 s (impl bfloat16).
  Replaying the policy on the recorded calls, no honest call was cut and the tightest limit was
  3.3× its call (impl: a realistic bfloat16 call of a new structure, 1.5 s, 14× its size
  class's slowest, kept by the floor); tf-eager 7.7×, tf-xla 5.4×. A 1 s floor (or 0.5 s with
  factor 4) would have cut that call. A hang still costs seconds, not 30.
- ``FACTOR`` = 10: against the slowest observed call of a structure. A structure's slowest /
  fastest call was up to ~385× (tiny tf-xla Cases) and ~165× (realistic tf-eager ones), each
  time its first call (compile, kernel set-up) against its repeats — that first call is the
  slowest observation, so it raises the limit instead of being cut by it; at the budget tier
  the spread among repeats stayed ≤ ~6×. 10 leaves that and a more loaded machine headroom.
- ``DTYPE_MARGIN`` = 100: the same work is up to ~60× slower in another dtype (tf-eager
  float16 1.9 s vs float32 0.03 s on the realistic tier, 3.8 s vs 0.18 s at the budget). So a
  target that never completes a call of one dtype (aborts or hangs on every bfloat16 call)
  still gets the floor on tiny calls, and big calls of an unseen dtype (nearly) the ceiling.
- ``HANGING_FLOOR_S`` = 0.5 s, once a target has shown that it really hangs (its confirm-once
  guard is spent): the floor drops to it, and a structure that has never completed a call but
  has hung gets exactly it (basis ``hung-before``). Against a kernel that hangs on a common
  input class every new structure of that class would otherwise cost the 5 s floor, and a
  fuzz property draws its Cases in batches of one structure (8 values): measured on the
  hostile target of ``tests/unit/hostile_targets.py`` (hangs on every float16 NCDHW VALID
  call), 157-398 hung calls made most of a 10-13 minute ci gate. The price: on such a target
  an honest call slower than 10 × its expectation and than 0.5 s is cut, and its timeout joins
  the target's timeout finding, which already fails the gate.
- ``STRUCTURE_MEMORY`` = 4096 structures per target (least recently used forgotten; their
  calls fall back to the size class): a fuzz run draws a new structure per example.
"""
from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

from conv3dt.oracle.case import structure_key

FLOOR_S = 5.0
FACTOR = 10.0
DTYPE_MARGIN = 100.0
STRUCTURE_MEMORY = 4096
HANGING_FLOOR_S = 0.5


@dataclass(frozen=True)
class LimitPolicy:
    """How a pool limits each call. ``adaptive=False``: every call gets the ceiling."""
    floor: float = FLOOR_S
    factor: float = FACTOR
    confirm: bool = True
    adaptive: bool = True
    memory: int = STRUCTURE_MEMORY


class Limit(NamedTuple):
    """One call's limit and what it came from."""
    seconds: float
    basis: str            # 'structure' | 'size' | 'other-dtype' | 'ceiling' | 'fixed' | 'confirm' | 'hung-before'
    key: str
    dtype: str
    work: int


@dataclass
class _Seen:
    """What one structure (or one size class) has shown on this target."""
    dtype: str
    work: int
    summary: str = ""
    calls: int = 0
    slowest: float = 0.0
    timeouts: int = 0


def call_work(case_json: dict[str, Any]) -> int:
    """The work of a call: value elements × Cout × taps (= N·ΠI·Cin·Cout·ΠK, the products) plus
    output elements; at least 1. Reads only shapes (any JSON an invalid Case carries; never raises)."""
    value, filt = _dims(case_json.get("value")), _dims(case_json.get("filter"))
    out = _dims(case_json.get("output_shape"), array=False)
    per_input = math.prod(filt[:4]) if len(filt) == 5 else math.prod(filt)
    products = math.prod(value) * per_input if value and filt else 0
    return max(1, products + (math.prod(out) if out else 0))


def _dims(x: Any, array: bool = True) -> list[int]:
    shape = x.get("shape") if array and isinstance(x, dict) else x
    if type(shape) is not list:
        return []
    for d in shape:
        if type(d) is not int:
            return []
    return [d if d > 0 else 0 for d in shape]


class CallShape(NamedTuple):
    """What the policy reads of a call: its structure key, dtype and work."""
    key: str
    dtype: str
    work: int


def call_shape(case_json: dict[str, Any]) -> CallShape:
    dtype = next((x.get("dtype") for x in (case_json.get("value"), case_json.get("filter"))
                  if isinstance(x, dict)), None)
    return CallShape(structure_key(case_json), str(dtype), call_work(case_json))


def _bucket(work: int) -> int:
    return work.bit_length() - 1


def _by_size(rows: dict[int, float] | None, work: int) -> float | None:
    """Expected seconds at ``work`` from one dtype's size classes (bucket -> slowest seconds)."""
    if not rows:
        return None
    bucket = _bucket(work)
    below = [j for j in rows if j <= bucket]
    if below:
        j = max(below)
        return rows[j] * 2.0 ** (bucket - j + 1)
    return rows[min(rows)]


def _summary(case_json: dict[str, Any]) -> str:
    def shape(x: Any) -> Any:
        return x.get("shape") if isinstance(x, dict) else None

    arrays = (case_json.get("value"), case_json.get("filter"))
    dtype = next((x.get("dtype") for x in arrays if isinstance(x, dict)), None)
    return (f"{dtype} {case_json.get('data_format')} {case_json.get('padding')} value "
            f"{shape(case_json.get('value'))} filter {shape(case_json.get('filter'))} output_shape "
            f"{case_json.get('output_shape')} strides {case_json.get('strides')} "
            f"({case_json.get('strides_form')}) dilations {case_json.get('dilations')}")


class TimeLimits:
    """One target's time-limit policy state (see the module docstring); thread-safe."""

    def __init__(self, ceiling: float, policy: LimitPolicy | None = None) -> None:
        self.ceiling = float(ceiling)
        self.policy = policy or LimitPolicy()
        self._structures: OrderedDict[str, _Seen] = OrderedDict()
        self._sizes: dict[str, dict[int, float]] = {}   # dtype -> bucket -> slowest seconds
        self._lock = threading.Lock()
        self.calls = self.timeouts = 0
        self.guard_spent = False
        self.reruns = self.spurious_cuts = self.confirmed_timeouts = 0

    # ------------------------------------------------------------------ the limit
    def limit(self, case_json: dict[str, Any] | CallShape) -> Limit:
        """The limit of one call of this Case (its JSON, or its :func:`call_shape`)."""
        key, dtype, work = case_json if isinstance(case_json, CallShape) else call_shape(case_json)
        if not self.policy.adaptive:
            return Limit(self.ceiling, "fixed", key, dtype, work)
        with self._lock:
            seen = self._structures.get(key)
            if seen is not None and seen.calls:
                return Limit(self._clamp(seen.slowest), "structure", key, dtype, work)
            if seen is not None and seen.timeouts and self.guard_spent:
                return Limit(min(self.ceiling, HANGING_FLOOR_S), "hung-before", key, dtype, work)
            expected, basis = self._unseen(dtype, work)
        if expected is None:
            return Limit(self.ceiling, "ceiling", key, dtype, work)
        return Limit(self._clamp(expected), basis, key, dtype, work)

    def ceiling_limit(self, limit: Limit) -> Limit:
        """The same call, limited by the ceiling (the confirming re-run)."""
        return limit._replace(seconds=self.ceiling, basis="confirm")

    def _clamp(self, expected: float) -> float:
        floor = min(self.policy.floor, self.ceiling)
        if self.guard_spent:       # the target really hangs: see HANGING_FLOOR_S
            floor = min(floor, HANGING_FLOOR_S)
        return min(self.ceiling, max(floor, self.policy.factor * expected))

    def _unseen(self, dtype: str, work: int) -> tuple[float | None, str]:
        """Expected seconds of a structure not seen yet, and from what ('size', 'other-dtype')."""
        own = _by_size(self._sizes.get(dtype), work)
        if own is not None:
            return own, "size"
        others = [e for d, rows in self._sizes.items() if d != dtype
                  for e in (_by_size(rows, work),) if e is not None]
        return (max(others) * DTYPE_MARGIN, "other-dtype") if others else (None, "ceiling")

    # ------------------------------------------------------------------ what happened
    def observe(self, limit: Limit, seconds: float, case_json: dict[str, Any] | None = None) -> None:
        """A completed call (value or raised) of ``limit``'s structure took ``seconds``."""
        with self._lock:
            self.calls += 1
            seen = self._seen(limit, case_json)
            seen.calls += 1
            seen.slowest = max(seen.slowest, seconds)
            rows = self._sizes.setdefault(limit.dtype, {})
            bucket = _bucket(limit.work)
            rows[bucket] = max(rows.get(bucket, 0.0), seconds)
            if limit.basis == "confirm":
                self.spurious_cuts += 1

    def timed_out(self, limit: Limit, case_json: dict[str, Any] | None = None) -> None:
        """A call ran past ``limit`` and the timeout stands."""
        with self._lock:
            self.timeouts += 1
            self._seen(limit, case_json).timeouts += 1
            if limit.basis == "confirm":
                self.confirmed_timeouts += 1
                self.guard_spent = True

    def should_confirm(self, limit: Limit) -> bool:
        """Whether a timeout under ``limit`` must be confirmed by a re-run with the ceiling."""
        confirm = self.policy.confirm and not self.guard_spent and limit.seconds < self.ceiling
        if confirm:
            with self._lock:
                self.reruns += 1
        return confirm

    def _seen(self, limit: Limit, case_json: dict[str, Any] | None) -> _Seen:
        seen = self._structures.get(limit.key)
        if seen is None:
            seen = self._structures[limit.key] = _Seen(limit.dtype, limit.work,
                                                       _summary(case_json) if case_json else "")
            while len(self._structures) > self.policy.memory:
                self._structures.popitem(last=False)
        else:
            self._structures.move_to_end(limit.key)
        return seen

    # ------------------------------------------------------------------ report
    def to_json(self) -> dict[str, Any]:
        """Policy constants, the guard, and per structure: calls, slowest, current limit, timeouts."""
        with self._lock:
            structures = {
                hashlib.sha256(key.encode()).hexdigest()[:12]: {
                    "summary": s.summary, "dtype": s.dtype, "work": s.work, "calls": s.calls,
                    "slowest_s": round(s.slowest, 6), "timeouts": s.timeouts,
                    "limit_s": round(self._current(s), 3)}
                for key, s in self._structures.items()}
            sizes = {dtype: {f"2^{j}": round(t, 6) for j, t in sorted(rows.items())}
                     for dtype, rows in sorted(self._sizes.items())}
        return {"adaptive": self.policy.adaptive, "floor_s": self.policy.floor,
                "ceiling_s": self.ceiling, "factor": self.policy.factor,
                "confirm": {"enabled": self.policy.confirm, "spent": self.guard_spent,
                            "reruns": self.reruns, "spurious_cuts": self.spurious_cuts,
                            "confirmed_timeouts": self.confirmed_timeouts},
                "calls": self.calls, "timeouts": self.timeouts,
                "structures": structures, "slowest_by_size": sizes}

    def _current(self, seen: _Seen) -> float:
        """The limit the structure's next call would get."""
        if not self.policy.adaptive:
            return self.ceiling
        expected = seen.slowest if seen.calls else self._unseen(seen.dtype, seen.work)[0]
        return self.ceiling if expected is None else self._clamp(expected)
