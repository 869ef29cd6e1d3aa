"""TargetPool: run Cases on a target in warm, disposable worker processes.

Why not ``concurrent.futures`` or loky: ``ProcessPoolExecutor`` marks the whole pool broken
when one worker dies and cannot stop one hung call; loky's reusable executor does restart
after a crash, but reports it as a ``TerminatedWorkerError`` for every pending future — it
cannot tell which call killed the worker, keeps no stderr (so the CHECK-failure line is
lost) and has no per-call kill on timeout. The oracle needs all four, so it uses a small
protocol (``oracle.worker``) over a socketpair with ``multiprocessing.connection`` framing:

- the worker is ``python -m oracle.worker`` started by ``subprocess`` with its environment
  set *before* Python starts (``TF_ENABLE_ONEDNN_OPTS`` is read at TF import), stdout and
  stderr going to a dedicated file whose tail becomes a crash's ``stderr_tail``;
- a batch of Cases is one message; Outcomes stream back one per case, so each case has its
  own time limit (``Connection.poll``) and a crash is pinned on exactly one case: outcomes
  before it are kept, it gets ``crashed`` (signal or exit code from the process status),
  and the rest of the batch is re-sent to a fresh worker;
- memory: the worker's RSS is reported after each call and watched while a long call runs.
  A worker over ``rss_limit_mb`` after a call keeps that call's Outcome and is recycled
  (``info()['counters']['recycles']``): a leak cannot accumulate. A call that pushes it past
  ``rss_kill_mb`` is killed (``crashed``, SIGKILL, with a note in ``stderr_tail``: the
  oracle's own OOM kill) before it can take the machine down.

Workers are keyed by environment: every pool whose target has the same environment shares
one worker (refcounted), so the TF paths cost one TF import per ``TF_ENABLE_ONEDNN_OPTS``
setting. A lock serialises batches on a shared worker. ``run_on_targets`` runs the same Cases
on several pools: one message of (target, case) items per worker, the workers driven
concurrently (a thread each; they wait in ``poll``, so the GIL is free), with every guarantee
above holding per item. ``TargetPool.run`` is its one-pool case.

Warm spare (``spare=``): a crash otherwise costs the next call a full TF re-import (5-10 s on a
loaded 2-core machine). With a spare, the environment keeps one more warm worker (started in
the background, its targets loaded) that replaces a lost worker at once; a new spare is then
started in the background. Default ``True``: the spare is started after the first lost worker
in that environment (a TF worker is ~600 MB RSS and its start costs a core for seconds, so
environments that never crash don't pay); ``"always"``: from the start.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, Mapping, Sequence

import numpy as np

from oracle.arrays import numpy_dtype
from oracle.case import Case
from oracle.kernels import KernelObservation, observe as observe_kernel
from oracle.outcome import Outcome
from oracle.targets import TargetSpec, resolve
from oracle.worker import call_v1, kernel_observer, rss_bytes, run_one

STARTUP_TIMEOUT = 180.0
DEFAULT_RSS_LIMIT_MB = 4096
TAIL_CHARS = 4000
_POLL_SLICE = 0.25


class TargetUnavailable(RuntimeError):
    """The target cannot start (worker failed to start, module cannot be imported...)."""


class _Worker:
    """One worker process and its connection; replaced wholesale after a crash or timeout."""

    def __init__(self, env: dict[str, str | None], preload: str, startup_timeout: float) -> None:
        full_env = dict(os.environ)
        for key, val in env.items():
            if val is None:
                full_env.pop(key, None)
            else:
                full_env[key] = val
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        full_env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([os.getcwd(), *paths]))
        fd, self.stderr_path = tempfile.mkstemp(prefix="conv3dt-worker-", suffix=".stderr")
        os.close(fd)
        parent_sock, child_sock = socket.socketpair()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "oracle.worker", str(child_sock.fileno()), preload],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=full_env,
                pass_fds=(child_sock.fileno(),), start_new_session=True)
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.loaded: set[str] = set()
        self.load_error: str | None = None
        if not self.conn.poll(startup_timeout):
            self.kill()
            raise TargetUnavailable(f"worker did not start within {startup_timeout:.0f}s: "
                                    f"{self.stderr_since(0)[-1000:]}")
        try:
            ready = json.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            code = self.proc.wait()
            raise TargetUnavailable(f"worker died while starting (status {code}): "
                                    f"{self.stderr_since(0)[-2000:]}") from None
        self.pid: int = ready["pid"]
        self.info: dict[str, Any] = ready["info"]
        self.info["onednn_notice"] = "oneDNN custom operations are on" in self.stderr_since(0)

    def stderr_size(self) -> int:
        try:
            return os.path.getsize(self.stderr_path)
        except OSError:
            return 0

    def stderr_since(self, offset: int) -> str:
        """The worker's stderr from ``offset`` (at most the last 4 MiB: a crash's stack traces
        can be long, and ``crash_tail`` must still find the FATAL line before them)."""
        try:
            with open(self.stderr_path, "rb") as fh:
                fh.seek(max(offset, self.stderr_size() - 4 * 2**20))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> int | None:
        """SIGKILL the worker (and anything it spawned); reap it; return its status."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self.conn.close()

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.conn.send_bytes(b'{"op": "exit"}')
                self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()
        try:
            os.unlink(self.stderr_path)
        except OSError:
            pass


class _SharedWorker:
    """A refcounted slot holding the current worker for one environment, and its warm spare.

    Spare policy (``spare_mode``): ``False`` none; ``True`` one spare, started in the background
    after the first lost worker (crash, timeout, memory kill or recycle) in this environment;
    ``"always"`` one spare from the start. A lost worker is replaced by the spare at once (when
    it is still starting, the caller waits for it: it has a head start) and a new spare is
    started in the background, with every target the slot has loaded already loaded.
    """

    def __init__(self, env: dict[str, str | None], preload: str) -> None:
        self.env, self.preload = env, preload
        self.worker: _Worker | None = None
        self.lock = threading.RLock()
        self.refs = 0
        self.starts = 0
        self.lost = 0
        self.spare_mode: bool | str = False
        self.spare: _Worker | None = None
        self.spare_swaps = 0
        self.spare_error: str | None = None
        self.targets: dict[str, float] = {}   # target -> startup timeout: what a spare preloads
        self.closed = False
        self._spare_thread: threading.Thread | None = None
        self._spare_lock = threading.Lock()

    def get(self, startup_timeout: float) -> _Worker:
        if self.worker is None or not self.worker.alive():
            if self.worker is not None:
                self.worker.close()
                self.lost += 1
            self.worker = self._take_spare(startup_timeout) or _Worker(self.env, self.preload, startup_timeout)
            self.starts += 1
            self.want_spare(startup_timeout)
        return self.worker

    def replace(self, lost: bool = True) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None
            if lost:
                self.lost += 1
        if lost:
            self.want_spare(STARTUP_TIMEOUT)

    # ---------------------------------------------------------------- spare
    def want_spare(self, startup_timeout: float) -> None:
        """Start a spare in the background if the policy asks for one and none exists."""
        if not self.spare_mode or self.closed or (self.spare_mode != "always" and self.lost == 0):
            return
        with self._spare_lock:
            if self.spare is not None or (self._spare_thread is not None and self._spare_thread.is_alive()):
                return
            self._spare_thread = threading.Thread(target=self._start_spare, args=(startup_timeout,),
                                                  name="conv3dt-oracle-spare", daemon=True)
            self._spare_thread.start()

    def _start_spare(self, startup_timeout: float) -> None:
        worker: _Worker | None = None
        try:
            worker = _Worker(self.env, self.preload, startup_timeout)
            for name, timeout in list(self.targets.items()):
                if _load_into(worker, name, timeout) != "ok":
                    raise TargetUnavailable(f"spare worker could not load {name}")
            self.spare_error = None
        except BaseException as exc:  # noqa: BLE001 - the caller then starts a worker itself
            self.spare_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if worker is not None:
                worker.kill()
            worker = None
        with self._spare_lock:
            if self.closed and worker is not None:
                worker.close()
            else:
                self.spare = worker

    def _take_spare(self, startup_timeout: float) -> _Worker | None:
        thread = self._spare_thread
        if thread is not None:
            thread.join(startup_timeout)
        with self._spare_lock:
            worker, self.spare = self.spare, None
        if worker is not None and not worker.alive():
            worker.close()
            worker = None
        if worker is not None:
            self.spare_swaps += 1
        return worker

    def spare_ready(self) -> bool:
        return self.spare is not None and self.spare.alive()

    def shutdown(self) -> None:
        self.closed = True
        self.replace(lost=False)
        with self._spare_lock:
            spare, self.spare = self.spare, None
        if spare is not None:
            spare.close()

    def kill_all(self) -> None:
        for worker in (self.worker, self.spare):
            if worker is not None:
                worker.kill()


def _load_into(worker: _Worker, name: str, timeout: float) -> str:
    """Ask a worker to load a target: 'ok', 'refused' (``worker.load_error``), 'hung' or 'died'."""
    if name in worker.loaded:
        return "ok"
    try:
        worker.conn.send_bytes(json.dumps({"op": "load", "target": name}).encode())
        if not worker.conn.poll(timeout):
            return "hung"
        reply = json.loads(worker.conn.recv_bytes())
    except (EOFError, OSError):
        return "died"
    if reply["ok"]:
        worker.loaded.add(name)
        return "ok"
    worker.load_error = reply["error"]
    return "refused"


_SLOTS: dict[tuple, _SharedWorker] = {}
_SLOTS_LOCK = threading.Lock()


@atexit.register
def _kill_workers_at_exit() -> None:
    """Workers run in their own sessions: never leave one behind (e.g. a hung call)."""
    for slot in list(_SLOTS.values()):
        slot.closed = True
        slot.kill_all()


def _preload_of(spec: TargetSpec) -> str:
    return {"tf": "tf", "jax": "jax"}.get(spec.kind, "none")


class TargetPool:
    """Run Cases on one target; never raises for anything the target does.

    ``timeout``: seconds per call. ``rss_limit_mb``: a worker over this RSS after a call is
    recycled (``None``: never). ``rss_kill_mb`` (default twice ``rss_limit_mb``): a call that
    pushes the worker past it is killed and recorded as ``crashed`` (SIGKILL). ``isolate``: run ``impl`` in a worker too (TF, jax and ``module:`` targets
    are always isolated). ``startup_timeout``: seconds a worker may take to start.
    ``spare``: keep a warm spare worker for this pool's environment so a crash costs no
    restart — ``True`` (default): started in the background after the first lost worker;
    ``"always"``: from the start; ``False``: never (the environment's slot takes the strongest
    policy of the pools sharing it). In-process pools (``impl``) have no worker and no spare.
    """

    def __init__(self, name: str, timeout: float = 30.0, *, rss_limit_mb: float | None = DEFAULT_RSS_LIMIT_MB,
                 rss_kill_mb: float | None = None, isolate: bool = False,
                 startup_timeout: float = STARTUP_TIMEOUT, spare: bool | str = True) -> None:
        if spare not in (True, False, "always"):
            raise ValueError(f"spare must be True, False or 'always', not {spare!r}")
        self.spec = resolve(name, isolate_impl=isolate)
        self.name, self.timeout, self.startup_timeout = name, float(timeout), startup_timeout
        self.spare = spare
        self.rss_limit = None if rss_limit_mb is None else int(rss_limit_mb * 2**20)
        kill_mb = rss_kill_mb if rss_kill_mb is not None else (
            None if rss_limit_mb is None else 2 * rss_limit_mb)
        self.rss_kill = None if kill_mb is None else int(kill_mb * 2**20)
        self.counters = {"calls": 0, "crashes": 0, "timeouts": 0, "recycles": 0, "memory_kills": 0,
                         "restarts": 0}
        self._slot: _SharedWorker | None = None
        self._fn = None
        self._closed = False
        if not self.spec.isolated:
            from oracle.worker import _load_callable

            try:
                self._fn = _load_callable(name)
            except Exception as exc:
                raise TargetUnavailable(f"{name}: {type(exc).__name__}: {exc}") from exc
            self._observer = kernel_observer(name, {}, None)
            return
        key = (self.spec.env_key, _preload_of(self.spec))
        with _SLOTS_LOCK:
            self._slot = _SLOTS.setdefault(key, _SharedWorker(self.spec.env_dict(), key[1]))
            self._slot.refs += 1
            if spare == "always" or (spare and not self._slot.spare_mode):
                self._slot.spare_mode = spare
        try:
            with self._slot.lock:
                self._load(self._slot.get(startup_timeout))
            self._slot.want_spare(startup_timeout)
        except BaseException:
            self.close()
            raise

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
        with _SLOTS_LOCK:
            self._slot.refs -= 1
            if self._slot.refs <= 0:
                with self._slot.lock:
                    self._slot.shutdown()
                _SLOTS.pop((self.spec.env_key, _preload_of(self.spec)), None)

    def _load(self, worker: _Worker) -> None:
        if self.name in worker.loaded:
            return
        loaded = _load_into(worker, self.name, self.startup_timeout)
        if loaded in ("hung", "died"):  # importing the target: the worker is useless
            answered = loaded == "died"
            tail = worker.stderr_since(0)[-2000:]
            worker.kill()
            self._slot.replace(lost=False)
            what = "died loading the target" if answered else "did not answer the load request"
            raise TargetUnavailable(f"{self.name}: worker {what}: {tail}")
        if loaded == "refused":
            raise TargetUnavailable(f"{self.name}: {worker.load_error}")
        self._slot.targets.setdefault(self.name, self.startup_timeout)

    # ------------------------------------------------------------------ running
    def run(self, cases: Sequence[Case]) -> list[Outcome]:
        """One Outcome per Case, in order, whatever the target does."""
        return run_on_targets({self.name: self}, cases)[self.name]

    def _in_process(self, case: Case) -> Outcome:
        header, raw = run_one(self._fn, case.to_json(), self._observer)
        return _decode(header, raw)

    def _wait(self, worker: _Worker, start: float) -> str:
        """Wait for the next reply: 'ready', 'timeout' or 'memory'."""
        while True:
            remaining = self.timeout - (time.perf_counter() - start)
            if remaining <= 0:
                return "timeout"
            if worker.conn.poll(min(remaining, _POLL_SLICE)):
                return "ready"
            if self.rss_kill is not None and rss_bytes(worker.proc.pid) > self.rss_kill:
                return "memory"

    def _crashed(self, worker: _Worker, case: Case, offset: int, seconds: float) -> Outcome:
        status = worker.kill()
        text = worker.stderr_since(offset)
        tail = crash_tail(text)
        self._slot.replace()
        self.counters["crashes"] += 1
        if status is not None and status < 0:
            out = Outcome.of_crash(signal=-status, stderr_tail=tail, seconds=seconds)
        else:
            out = Outcome.of_crash(exit_code=status, stderr_tail=tail, seconds=seconds)
        return out.with_kernel(self.kernel_of(worker, case, text))

    def kernel_of(self, worker: _Worker | None, case: Case, text: str) -> KernelObservation:
        """The kernel a call that left no reply (crash, timeout) ran, from its stderr."""
        arrays = (case.filter, case.value)
        dtype = next((a.dtype for a in arrays if a is not None), None)
        return observe_kernel(self.spec.kind, self.spec.path, dtype, text,
                              worker.info if worker is not None else {})

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """Target, versions, oneDNN state, XLA availability, counters, environment."""
        from oracle.environment import capture_environment

        out: dict[str, Any] = {"target": self.name, "kind": self.spec.kind,
                               "description": self.spec.description, "isolated": self.spec.isolated,
                               "timeout": self.timeout,
                               "rss_limit_mb": None if self.rss_limit is None else self.rss_limit / 2**20,
                               "worker_env": {k: v for k, v in self.spec.env},
                               "counters": dict(self.counters), "environment": capture_environment()}
        if self._slot is not None:
            with self._slot.lock:
                worker = self._slot.get(self.startup_timeout)
                self._load(worker)
                out["worker"] = dict(worker.info)
                out["worker_starts"] = self._slot.starts
                out["spare"] = {"mode": self._slot.spare_mode, "ready": self._slot.spare_ready(),
                                "swaps": self._slot.spare_swaps, "error": self._slot.spare_error}
            if self.spec.kind == "tf":
                onednn = dict(self.spec.env).get("TF_ENABLE_ONEDNN_OPTS")
                out["onednn"] = {"TF_ENABLE_ONEDNN_OPTS": onednn,
                                 "enabled": bool(worker.info.get("onednn_enabled")),
                                 "notice": worker.info.get("onednn_notice", False)}
        return out


def run_on_targets(pools: Mapping[str, TargetPool], cases: Sequence[Case]) -> dict[str, list[Outcome]]:
    """Run the same Cases on every pool: ``{key: [Outcome per case, in order]}``.

    Pools sharing a worker (same environment) get ONE message carrying (target, case) items;
    different workers are driven concurrently (one thread each: send, then collect), in-process
    pools run in the calling thread meanwhile. Every ``TargetPool.run`` guarantee holds per
    item: its pool's time limit and memory limits, a crash pinned on exactly one (target, case)
    with the rest of the message re-sent to a fresh worker (the warm spare when there is one),
    nothing lost. Raises only what ``TargetPool.run`` raises (a closed pool; a target that can
    no longer be loaded in a fresh worker: ``TargetUnavailable``).
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


def _drive(slot: _SharedWorker, items: list[tuple[TargetPool, Case]]) -> list[Outcome]:
    """One Outcome per (pool, case) item, in order, on one environment's worker."""
    outcomes: list[Outcome] = []
    jsons: dict[int, dict] = {}
    with slot.lock:
        while len(outcomes) < len(items):
            outcomes += _run_batch(slot, items[len(outcomes):], jsons)
    return outcomes


def _run_batch(slot: _SharedWorker, items: list[tuple[TargetPool, Case]], jsons: dict[int, dict]) -> list[Outcome]:
    """Run until the items end or the worker is lost; return the outcomes obtained."""
    first = items[0][0]
    before = slot.starts
    worker = slot.get(first.startup_timeout)
    if slot.starts > before and before > 0:
        first.counters["restarts"] += 1
    for pool in dict.fromkeys(pool for pool, _ in items):
        pool._load(worker)
    payload = []
    for pool, case in items:
        if id(case) not in jsons:
            jsons[id(case)] = case.to_json()
        payload.append([pool.name, jsons[id(case)]])
    offset = worker.stderr_size()
    try:
        worker.conn.send_bytes(json.dumps({"op": "run", "items": payload}).encode())
    except OSError:
        return [first._crashed(worker, items[0][1], offset, 0.0)]
    outcomes: list[Outcome] = []
    for pool, case in items:
        start = time.perf_counter()
        status = pool._wait(worker, start)
        if status == "timeout":
            worker.kill()
            text = worker.stderr_since(offset)
            slot.replace()
            pool.counters["timeouts"] += 1
            outcomes.append(Outcome.of_timeout(time.perf_counter() - start, text[-TAIL_CHARS:])
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
            outcomes.append(pool._crashed(worker, case, offset, time.perf_counter() - start))
            return outcomes
        outcomes.append(_decode(header, raw))
        # The next item's stderr starts where the worker says this one's ended: reading the
        # file size now would race the worker, already running the next item (a CHECK line
        # written before the read would be lost from that item's crash tail).
        offset = header.get("output_end", worker.stderr_size())
        if pool.rss_limit is not None and header.get("rss", 0) > pool.rss_limit:
            pool.counters["recycles"] += 1
            slot.replace()
            return outcomes
    return outcomes


def crash_tail(text: str, limit: int = TAIL_CHARS) -> str:
    """The last ``limit`` characters of a crashed worker's stderr, keeping the FATAL /
    CHECK-failure line even when a long stack trace follows it."""
    if len(text) <= limit:
        return text
    fatal = None
    for match in re.finditer(r"(?m)^(F\d{4} .*|.*Check failed.*)$", text):
        fatal = match
    tail = text[-limit:]
    if fatal is None or fatal.start() >= len(text) - limit:
        return tail
    head = text[fatal.start():fatal.end()][:1000] + "\n[...]\n"
    return head + text[-(limit - len(head)):]


def _decode(header: dict, raw: bytes | None) -> Outcome:
    kernel = KernelObservation.from_json(header.get("kernel"))
    if header["kind"] == "value":
        dtype = numpy_dtype("bfloat16") if header["dtype"] == "bfloat16" else np.dtype(header["dtype"])
        arr = np.frombuffer(raw, dtype=dtype).reshape(header["shape"]).copy()
        return Outcome(kind="value", value=arr, seconds=header["seconds"], kernel=kernel)
    return Outcome(kind="raised", error_class=header["error_class"],
                   error_bases=tuple(header["error_bases"]), message=header["message"],
                   seconds=header["seconds"], kernel=kernel)


__all__ = ["TargetPool", "TargetUnavailable", "call_v1", "run_on_targets"]
