"""Driving workers: one message of (target, case) items per worker, one Outcome per item.

``run_on_targets`` (re-exported by ``oracle.pool``) runs the same Cases on several pools. Pools
sharing a worker (same environment) get ONE message carrying (target, case) items; different
workers are driven concurrently (a thread each; they wait in ``poll``, so the GIL is free),
in-process pools run in the calling thread meanwhile. Outcomes stream back one per item, so

- each item has its own time limit (its pool's ``oracle.timelimits.TimeLimits``: adaptive per
  call structure, the pool's ``timeout`` the ceiling; a first timeout below the ceiling is
  confirmed by one re-run with the ceiling);
- a crash is pinned on exactly one item: the outcomes before it are kept, it gets ``crashed``
  (signal or exit code from the process status, the stderr the call wrote), and the rest of the
  message is re-sent to a fresh worker (``oracle.slot``: forked, or the warm spare);
- memory: the worker's RSS is reported after each call and watched while a long call runs. A
  worker over ``rss_limit_mb`` after a call keeps that call's Outcome and is recycled; a call
  that pushes it past ``rss_kill_mb`` is killed (``crashed``, SIGKILL, with a note in
  ``stderr_tail``: the oracle's own OOM kill) before it can take the machine down.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from conv3dt.oracle.arrays import numpy_dtype
from conv3dt.oracle.case import Case
from conv3dt.oracle.kernels import KernelObservation
from conv3dt.oracle.outcome import Outcome
from conv3dt.oracle.process import TAIL_CHARS, WorkerBase, crash_tail
from conv3dt.oracle.slot import WorkerSlot
from conv3dt.oracle.timelimits import CallShape, Limit, call_shape
from conv3dt.oracle.worker import rss_bytes

if TYPE_CHECKING:
    from conv3dt.oracle.pool import TargetPool

_POLL_SLICE = 0.25


def run_on_targets(pools: Mapping[str, "TargetPool"], cases: Sequence[Case]) -> dict[str, list[Outcome]]:
    """Run the same Cases on every pool: ``{key: [Outcome per case, in order]}``.

    Every ``TargetPool.run`` guarantee holds per item: its pool's time limit and memory limits,
    a crash pinned on exactly one (target, case) with the rest of the message re-sent to a
    fresh worker, nothing lost. Raises only what ``TargetPool.run`` raises (a closed pool; a
    target that can no longer be loaded in a fresh worker: ``TargetUnavailable``).
    """
    cases = list(cases)
    groups: dict[int, list[tuple[str, TargetPool]]] = {}
    local: list[tuple[str, TargetPool]] = []
    for key, pool in pools.items():
        if pool._closed:
            raise RuntimeError(f"TargetPool({pool.name!r}) is closed")
        pool.counters["calls"] += len(cases)
        if pool._fn is not None:
            local.append((key, pool))
        else:
            groups.setdefault(id(pool._slot), []).append((key, pool))
    results: dict[str, list[Outcome]] = {}
    if not cases:
        return {key: [] for key in pools}
    errors: list[BaseException] = []

    def drive(members: list[tuple[str, TargetPool]]) -> None:
        try:
            flat = _drive(members[0][1]._slot, [(pool, case) for case in cases for _, pool in members])
            for j, (key, _) in enumerate(members):
                results[key] = flat[j::len(members)]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(members,), name="conv3dt-oracle-drive", daemon=True)
               for members in list(groups.values())[1:]]
    for thread in threads:
        thread.start()
    if groups:
        drive(next(iter(groups.values())))
    try:
        for key, pool in local:
            results[key] = [pool._in_process(c) for c in cases]
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return {key: results[key] for key in pools}


@dataclass
class _Drive:
    """One ``_drive`` call's state across the batches it takes."""
    items: list[tuple["TargetPool", Case]]
    jsons: dict[int, dict] = field(default_factory=dict)
    shapes: dict[int, CallShape] = field(default_factory=dict)
    confirm_first: Limit | None = None   # the next batch's first item re-runs with this limit

    def json_of(self, case: Case) -> dict:
        if id(case) not in self.jsons:
            self.jsons[id(case)] = case.to_json()
        return self.jsons[id(case)]

    def shape_of(self, case: Case) -> CallShape:
        """Once per Case, however many targets share the message."""
        if id(case) not in self.shapes:
            self.shapes[id(case)] = call_shape(self.json_of(case))
        return self.shapes[id(case)]


def _drive(slot: WorkerSlot, items: list[tuple["TargetPool", Case]]) -> list[Outcome]:
    """One Outcome per (pool, case) item, in order, on one environment's worker."""
    outcomes: list[Outcome] = []
    state = _Drive(items)
    with slot.lock:
        while len(outcomes) < len(items):
            outcomes += _run_batch(slot, state, len(outcomes))
    return outcomes


def _run_batch(slot: WorkerSlot, state: _Drive, done: int) -> list[Outcome]:
    """Run items[done:] until they end or the worker is lost; return the outcomes obtained."""
    items = state.items[done:]
    first = items[0][0]
    before = slot.starts
    worker = slot.get(first.startup_timeout)
    if slot.starts > before and before > 0:
        first.counters["restarts"] += 1
    for pool in dict.fromkeys(pool for pool, _ in items):
        pool._load(worker)
    payload = [[pool.name, state.json_of(case)] for pool, case in items]
    offset = worker.stderr_size()
    try:
        worker.conn.send_bytes(json.dumps({"op": "run", "items": payload}).encode())
    except OSError:
        state.confirm_first = None
        return [_crashed(first, slot, worker, items[0][1], offset, 0.0)]
    outcomes: list[Outcome] = []
    for i, (pool, case) in enumerate(items):
        case_json = state.json_of(case)
        limit = state.confirm_first if i == 0 else None
        limit = limit or pool.limits.limit(state.shape_of(case))
        state.confirm_first = None
        start = time.perf_counter()
        status = _wait(pool, worker, start, limit.seconds)
        if status == "timeout":
            worker.kill()
            text = worker.stderr_since(offset)
            slot.replace()
            if pool.limits.should_confirm(limit):  # re-run this item first, with the ceiling
                state.confirm_first = pool.limits.ceiling_limit(limit)
                return outcomes
            pool.limits.timed_out(limit, case_json)
            pool.counters["timeouts"] += 1
            note = (f"\nconv3dt oracle: no reply within the time limit of {limit.seconds:.3g} s "
                    f"({limit.basis}; ceiling {pool.limits.ceiling:.3g} s); worker killed")
            outcomes.append(Outcome.of_timeout(time.perf_counter() - start, (text + note)[-TAIL_CHARS:])
                            .with_kernel(pool.kernel_of(worker, case, text)))
            return outcomes
        if status == "memory":
            worker.kill()
            note = (f"\nconv3dt oracle: worker RSS exceeded rss_kill_mb="
                    f"{pool.rss_kill / 2**20:.0f} during the call; killed (SIGKILL)")
            tail = (worker.stderr_since(offset) + note)[-TAIL_CHARS:]
            slot.replace()
            pool.counters["memory_kills"] += 1
            pool.counters["crashes"] += 1
            outcomes.append(Outcome.of_crash(signal=signal.SIGKILL, stderr_tail=tail,
                                             seconds=time.perf_counter() - start)
                            .with_kernel(pool.kernel_of(worker, case, tail)))
            return outcomes
        try:
            header = json.loads(worker.conn.recv_bytes())
            raw = worker.conn.recv_bytes() if header["kind"] == "value" else None
        except (EOFError, OSError):
            outcomes.append(_crashed(pool, slot, worker, case, offset, time.perf_counter() - start))
            return outcomes
        pool.limits.observe(limit, max(time.perf_counter() - start, header["seconds"]), case_json)
        outcomes.append(decode(header, raw))
        # The next item's stderr starts where the worker says this one's ended: reading the
        # file size now would race the worker, already running the next item (a CHECK line
        # written before the read would be lost from that item's crash tail).
        offset = header.get("output_end", worker.stderr_size())
        if pool.rss_limit is not None and header.get("rss", 0) > pool.rss_limit:
            pool.counters["recycles"] += 1
            slot.replace()
            return outcomes
    return outcomes


def _wait(pool: "TargetPool", worker: WorkerBase, start: float, limit: float) -> str:
    """Wait for the next reply: 'ready', 'timeout' or 'memory'. A reply already there when the
    limit has passed (this thread was descheduled) is still 'ready': only the worker is timed."""
    while True:
        remaining = limit - (time.perf_counter() - start)
        if worker.conn.poll(min(max(remaining, 0.0), _POLL_SLICE)):
            return "ready"
        if remaining <= 0:
            return "timeout"
        if pool.rss_kill is not None and rss_bytes(worker.pid) > pool.rss_kill:
            return "memory"


def _crashed(pool: "TargetPool", slot: WorkerSlot, worker: WorkerBase, case: Case, offset: int,
             seconds: float) -> Outcome:
    """The Outcome of a worker that died on ``case``: its status, the stderr the call wrote."""
    status = worker.kill()
    text = worker.stderr_since(offset)
    slot.replace()
    pool.counters["crashes"] += 1
    if status is not None and status < 0:
        out = Outcome.of_crash(signal=-status, stderr_tail=crash_tail(text), seconds=seconds)
    else:
        out = Outcome.of_crash(exit_code=status, stderr_tail=crash_tail(text), seconds=seconds)
    return out.with_kernel(pool.kernel_of(worker, case, text))


def decode(header: dict[str, Any], raw: bytes | None) -> Outcome:
    """An Outcome from a worker's reply header (and a value's raw bytes)."""
    kernel = KernelObservation.from_json(header.get("kernel"))
    if header["kind"] == "value":
        dtype = numpy_dtype("bfloat16") if header["dtype"] == "bfloat16" else np.dtype(header["dtype"])
        arr = np.frombuffer(raw, dtype=dtype).reshape(header["shape"]).copy()
        return Outcome(kind="value", value=arr, seconds=header["seconds"], kernel=kernel)
    return Outcome(kind="raised", error_class=header["error_class"],
                   error_bases=tuple(header["error_bases"]), message=header["message"],
                   seconds=header["seconds"], kernel=kernel)
