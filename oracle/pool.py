"""TargetPool: run Cases on a target in warm, disposable worker processes.

Why not ``concurrent.futures`` or loky: ``ProcessPoolExecutor`` marks the whole pool broken
when one worker dies and cannot stop one hung call; loky's reusable executor does restart
after a crash, but reports it as a ``TerminatedWorkerError`` for every pending future — it
cannot tell which call killed the worker, keeps no stderr (so the CHECK-failure line is
lost) and has no per-call kill on timeout. The oracle needs all four, so it uses a small
protocol (``oracle.worker``) over a socketpair with ``multiprocessing.connection`` framing.

The pieces:

- ``oracle.process``: one worker process as the parent sees it (spawned: ``python -m
  oracle.worker`` with its environment set before Python starts, stdout and stderr to a file of
  its own whose tail becomes a crash's ``stderr_tail``); ``TargetUnavailable``, ``crash_tail``.
- ``oracle.forkserver``: the zygote that forks NumPy-world and TF workers in milliseconds.
- ``oracle.slot``: one environment's shared worker, how a lost one is replaced (forked, or
  spawned / the warm spare for jax) — a crash costs milliseconds, not a re-import.
- ``oracle.timelimits``: per-call time limits learnt per call structure (floor, factor,
  ceiling = ``timeout``, the confirm-once guard).
- ``oracle.drive``: the batch loop and ``run_on_targets`` (one message per worker, workers
  driven concurrently); ``TargetPool.run`` is its one-pool case.
"""
from __future__ import annotations

import json

from typing import Any, Sequence

from conv3dt.oracle.case import Case
from conv3dt.oracle.drive import decode, run_on_targets
from conv3dt.oracle.kernels import KernelObservation, observe as observe_kernel
from conv3dt.oracle.outcome import Outcome
from conv3dt.oracle.process import STARTUP_TIMEOUT, TargetUnavailable, WorkerBase, crash_tail, load_into
from conv3dt.oracle.slot import WorkerSlot, acquire, release
from conv3dt.oracle.targets import resolve
from conv3dt.oracle.timelimits import LimitPolicy, TimeLimits
from conv3dt.oracle.worker import call_v1, kernel_observer, run_one

DEFAULT_RSS_LIMIT_MB = 4096


class TargetPool:
    """Run Cases on one target; never raises for anything the target does.

    ``timeout``: the ceiling of every call's time limit, in seconds; below it, each call's limit
    follows this target's observed call times for that call structure (``limits``, a
    ``LimitPolicy``; ``LimitPolicy(adaptive=False)``: every call gets ``timeout``; see
    ``oracle.timelimits``). ``rss_limit_mb``: a worker over this RSS after a call is recycled
    (``None``: never). ``rss_kill_mb`` (default twice ``rss_limit_mb``): a call that pushes the
    worker past it is killed and recorded as ``crashed`` (SIGKILL). ``isolate``: run ``impl``
    in a worker too (TF, jax and ``module:`` targets are always isolated).
    ``startup_timeout``: seconds a worker may take to start. ``spare``: keep a warm spare
    worker for this pool's environment so a crash costs no restart — ``True`` (default):
    started in the background after the first lost worker; ``"always"``: from the start;
    ``False``: never (the environment's slot takes the strongest policy of the pools sharing
    it). ``fork`` (default ``True``): NumPy-world targets (``impl`` isolated, ``module:``) and
    the TF paths get their workers forked by a zygote (``oracle.forkserver``), so replacing a
    lost worker costs milliseconds (TF: ~0.2-0.3 s); ``False``: spawned like jax's.
    In-process pools (``impl``) have no worker, no spare and no time limit.
    """

    def __init__(self, name: str, timeout: float = 30.0, *, rss_limit_mb: float | None = DEFAULT_RSS_LIMIT_MB,
                 rss_kill_mb: float | None = None, isolate: bool = False,
                 startup_timeout: float = STARTUP_TIMEOUT, spare: bool | str = True,
                 fork: bool = True, limits: LimitPolicy | None = None) -> None:
        if spare not in (True, False, "always"):
            raise ValueError(f"spare must be True, False or 'always', not {spare!r}")
        self.spec = resolve(name, isolate_impl=isolate)
        self.name, self.startup_timeout = name, startup_timeout
        self.limits = TimeLimits(float(timeout), limits)
        self.spare = spare
        self.rss_limit = None if rss_limit_mb is None else int(rss_limit_mb * 2**20)
        kill_mb = rss_kill_mb if rss_kill_mb is not None else (
            None if rss_limit_mb is None else 2 * rss_limit_mb)
        self.rss_kill = None if kill_mb is None else int(kill_mb * 2**20)
        self.counters = {"calls": 0, "crashes": 0, "timeouts": 0, "recycles": 0, "memory_kills": 0,
                         "restarts": 0}
        self._slot: WorkerSlot | None = None
        self._fn = None
        self._closed = False
        if not self.spec.isolated:
            from conv3dt.oracle.worker import _load_callable

            try:
                self._fn = _load_callable(name)
            except Exception as exc:
                raise TargetUnavailable(f"{name}: {type(exc).__name__}: {exc}") from exc
            self._observer = kernel_observer(name, {}, None)
            return
        self._slot = acquire(self.spec, fork, spare)
        try:
            with self._slot.lock:
                self._load_in_server()
                self._load(self._slot.get(startup_timeout))
            self._slot.want_spare(startup_timeout)
        except BaseException:
            self.close()
            raise

    @property
    def timeout(self) -> float:
        """The ceiling of every call's time limit (seconds)."""
        return self.limits.ceiling

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self.limits.ceiling = float(seconds)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "TargetPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed or self._slot is None:
            self._closed = True
            return
        self._closed = True
        release(self._slot)

    def _load_in_server(self) -> None:
        status, detail = self._slot.load_in_server(self.name, self.startup_timeout)
        self._raise_for(status, detail)

    def _load(self, worker: WorkerBase) -> None:
        if self.name in worker.loaded:
            self._slot.targets.setdefault(self.name, self.startup_timeout)
            return
        loaded = load_into(worker, self.name, self.startup_timeout)
        if loaded in ("hung", "died"):  # importing the target: the worker is useless
            detail = worker.stderr_since(0)[-2000:]
            worker.kill()
            self._slot.replace(lost=False)
        else:
            detail = worker.load_error or ""
        self._raise_for(loaded, detail)
        self._slot.targets.setdefault(self.name, self.startup_timeout)

    def _raise_for(self, status: str, detail: str) -> None:
        if status in ("hung", "died"):
            what = "died loading the target" if status == "died" else "did not answer the load request"
            raise TargetUnavailable(f"{self.name}: worker {what}: {detail}")
        if status == "refused":
            raise TargetUnavailable(f"{self.name}: {detail}")

    # ------------------------------------------------------------------ running
    def run(self, cases: Sequence[Case]) -> list[Outcome]:
        """One Outcome per Case, in order, whatever the target does."""
        return run_on_targets({self.name: self}, cases)[self.name]

    def _in_process(self, case: Case) -> Outcome:
        header, raw = run_one(self._fn, case.to_json(), self._observer)
        return decode(header, raw)

    def kernel_of(self, worker: WorkerBase | None, case: Case, text: str) -> KernelObservation:
        """The kernel a call that left no reply (crash, timeout) ran, from its stderr."""
        arrays = (case.filter, case.value)
        dtype = next((a.dtype for a in arrays if a is not None), None)
        return observe_kernel(self.spec.kind, self.spec.path, dtype, text,
                              worker.info if worker is not None else {}, operation=case.operation)

    # ------------------------------------------------------------------ info
    def declared(self) -> dict[str, Any]:
        """What the target declares it implements (``oracle.capabilities``): ``{"source",
        "declared"}`` — the spec's built-in declaration, else the callable's attribute (asked
        of its worker), else None (the whole contract). Not validated here: the caller names
        the error."""
        if self.spec.capabilities is not None:
            return {"source": "built-in", "declared": self.spec.capabilities}
        if self.spec.kind not in ("module", "module-grad") or self._slot is None:
            return {"source": "built-in", "declared": None}
        with self._slot.lock:
            worker = self._slot.get(self.startup_timeout)
            self._load(worker)
            try:
                worker.conn.send_bytes(json.dumps({"op": "declared", "target": self.name}).encode())
                if not worker.conn.poll(self.startup_timeout):
                    raise TargetUnavailable(f"{self.name}: worker did not answer the declared request")
                reply = json.loads(worker.conn.recv_bytes())
            except (EOFError, OSError) as exc:
                raise TargetUnavailable(f"{self.name}: worker died reading its declaration: {exc}") from None
        if "error" in reply:
            return {"source": "callable attribute", "declared": None, "error": reply["error"]}
        return {"source": "callable attribute" if reply["declared"] is not None else "none",
                "declared": reply["declared"]}

    def time_limits(self) -> dict[str, Any]:
        """The time-limit policy and what it has learnt (JSON-serialisable): ``floor_s``,
        ``ceiling_s``, ``factor``, the confirm-once guard, and per structure id (a hash of
        ``oracle.case.structure_key``): summary, dtype, work, calls, slowest_s, limit_s, timeouts;
        ``enforced`` is False for an in-process pool (nothing can cut its calls)."""
        return {"enforced": self._slot is not None, **self.limits.to_json()}

    def info(self) -> dict[str, Any]:
        """Target, versions, oneDNN state, XLA availability, counters, recovery, time limits,
        environment."""
        from conv3dt.oracle.environment import capture_environment

        out: dict[str, Any] = {"target": self.name, "kind": self.spec.kind,
                               "description": self.spec.description, "isolated": self.spec.isolated,
                               "timeout": self.timeout,
                               "rss_limit_mb": None if self.rss_limit is None else self.rss_limit / 2**20,
                               "worker_env": {k: v for k, v in self.spec.env},
                               "counters": dict(self.counters), "time_limits": self.time_limits(),
                               "environment": capture_environment()}
        if self._slot is not None:
            with self._slot.lock:
                worker = self._slot.get(self.startup_timeout)
                self._load(worker)
                out["worker"] = dict(worker.info)
                out["worker_starts"] = self._slot.starts
                out["spare"] = {"mode": self._slot.spare_mode, "ready": self._slot.spare_ready(),
                                "swaps": self._slot.spare_swaps, "error": self._slot.spare_error}
                out["recovery"] = self._slot.recovery_info()
            if self.spec.kind == "tf":
                onednn = dict(self.spec.env).get("TF_ENABLE_ONEDNN_OPTS")
                out["onednn"] = {"TF_ENABLE_ONEDNN_OPTS": onednn,
                                 "enabled": bool(worker.info.get("onednn_enabled")),
                                 "notice": worker.info.get("onednn_notice", False)}
        return out


__all__ = ["LimitPolicy", "TargetPool", "TargetUnavailable", "call_v1", "crash_tail", "run_on_targets"]
