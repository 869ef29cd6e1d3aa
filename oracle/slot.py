"""The worker slot of one environment: its current worker, how a lost one is replaced, its spare.

Workers are keyed by environment (and launcher): every pool whose target has the same
environment shares one slot (refcounted), so the TF paths cost one TF import per
``TF_ENABLE_ONEDNN_OPTS`` setting. A lock serialises batches on a shared worker.

Replacing a lost worker (crash, timeout, memory kill, recycle) — the launcher:

- ``"fork"`` (NumPy-world targets: ``impl`` isolated, ``module:function``; the TF paths): the
  slot keeps a fork server (``oracle.forkserver``), a zygote with NumPy (or TF, imported but not
  started) and every loaded target imported; a new worker is one ``fork()`` away (milliseconds;
  ~0.2-0.3 s for TF, whose child starts its runtime), so crashes in a row cost that each. When
  a loaded target makes forking unsafe (it imports a runtime beyond the preload, or starts
  threads) the slot falls back to ``"spawn"`` for good (``info()["recovery"]``).
- ``"spawn"`` (jax; or ``fork=False``): ``python -m oracle.worker`` — a full Python (+ TF:
  5-10 s on a loaded 2-core machine) import per worker.

Warm spare (``spare_mode``): ``False`` none; ``True`` one spare, started in the background after
the first lost worker in this slot; ``"always"`` one spare from the start. A lost worker is
replaced by the spare at once (when it is still starting, the caller waits for it: it has a
head start) and a new spare is started in the background, with every target the slot has
loaded already loaded. Why lazy by default: a warm TF worker is ~600 MB RSS and its start costs
a core for seconds; with the fork launcher a spare is a pre-forked child (cheap either way).
"""
from __future__ import annotations

import atexit
import threading
from typing import Any

from conv3dt.oracle.forkserver import ForkServer
from conv3dt.oracle.process import STARTUP_TIMEOUT, SpawnedWorker, TargetUnavailable, WorkerBase, load_into
from conv3dt.oracle.targets import TargetSpec

FORKABLE_KINDS = ("impl", "module", "tf", "impl-grad", "module-grad")


class WorkerSlot:
    """A refcounted slot holding the current worker for one environment, and its warm spare."""

    def __init__(self, env: dict[str, str | None], preload: str, launcher: str = "spawn") -> None:
        self.env, self.preload, self.launcher = env, preload, launcher
        self.worker: WorkerBase | None = None
        self.lock = threading.RLock()
        self.refs = 0
        self.starts = 0
        self.lost = 0
        self.spawned = 0        # processes started by subprocess (workers and zygotes)
        self.forked = 0         # workers forked by the zygote
        self.fork_hazard: str | None = None
        self.server: ForkServer | None = None
        self.spare_mode: bool | str = False
        self.spare: WorkerBase | None = None
        self.spare_swaps = 0
        self.spare_error: str | None = None
        self.targets: dict[str, float] = {}   # target -> startup timeout: what a spare preloads
        self.closed = False
        self._spare_thread: threading.Thread | None = None
        self._spare_lock = threading.Lock()
        self._server_lock = threading.Lock()

    # ---------------------------------------------------------------- workers
    def get(self, startup_timeout: float) -> WorkerBase:
        if self.worker is not None and self.worker.alive() and self.worker.orphaned():
            self.worker.close()  # its zygote died: nothing could report its death any more
            self.worker = None
        if self.worker is None or not self.worker.alive():
            if self.worker is not None:
                self.worker.close()
                self.lost += 1
            self.worker = self._take_spare(startup_timeout) or self.new_worker(startup_timeout)
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

    def new_worker(self, startup_timeout: float) -> WorkerBase:
        """A fresh worker: forked by the zygote (launcher "fork", no hazard) or spawned."""
        if self.launcher == "fork" and self.fork_hazard is None:
            server = self._server(startup_timeout)
            if server is not None:
                worker = server.fork(startup_timeout)
                self.forked += 1
                return worker
        self.spawned += 1
        return SpawnedWorker(self.env, self.preload, startup_timeout)

    def _server(self, startup_timeout: float) -> ForkServer | None:
        """The live zygote, started (with every loaded target) if there is none."""
        with self._server_lock:
            if self.server is not None and self.server.alive():
                return self.server
            if self.server is not None:
                self.server.kill()
            self.server = ForkServer(self.env, startup_timeout, self.preload)
            self.spawned += 1
            for name, timeout in list(self.targets.items()):
                if self.server.load(name, timeout) != "ok":
                    raise TargetUnavailable(f"fork server could not load {name}: "
                                            f"{self.server.zygote.load_error}")
            self._note_hazard()
            return self.server if self.fork_hazard is None else None

    def load_in_server(self, name: str, startup_timeout: float) -> tuple[str, str]:
        """Launcher "fork": import a target in the zygote before any worker needs it, so later
        forks have it. ``(status, detail)`` as ``process.load_into``; ('ok', '') otherwise."""
        if self.launcher != "fork" or self.fork_hazard is not None or name in self.targets:
            return "ok", ""
        server = self._server(startup_timeout)
        if server is None:
            return "ok", ""
        status = server.load(name, startup_timeout)
        if status == "refused":
            detail = server.zygote.load_error or ""
        else:
            detail = server.zygote.stderr_since(0)[-2000:]
        if status in ("hung", "died"):
            with self._server_lock:
                server.kill()
                self.server = None
        self._note_hazard()
        return status, detail

    def _note_hazard(self) -> None:
        if self.server is not None and self.server.hazard and self.fork_hazard is None:
            self.fork_hazard = self.server.hazard
            self.server.close()
            self.server = None

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
        worker: WorkerBase | None = None
        try:
            worker = self.new_worker(startup_timeout)
            for name, timeout in list(self.targets.items()):
                if load_into(worker, name, timeout) != "ok":
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

    def _take_spare(self, startup_timeout: float) -> WorkerBase | None:
        thread = self._spare_thread
        if thread is not None:
            thread.join(startup_timeout)
        with self._spare_lock:
            worker, self.spare = self.spare, None
        if worker is not None and (not worker.alive() or worker.orphaned()):
            worker.close()
            worker = None
        if worker is not None:
            self.spare_swaps += 1
        return worker

    def spare_ready(self) -> bool:
        return self.spare is not None and self.spare.alive()

    # ---------------------------------------------------------------- info and end
    def recovery_info(self) -> dict[str, Any]:
        """How lost workers are replaced here, and how often each way was taken."""
        launcher = "spawn" if self.launcher == "fork" and self.fork_hazard else self.launcher
        return {"launcher": launcher, "fork_hazard": self.fork_hazard, "forked": self.forked,
                "spawned": self.spawned, "lost": self.lost}

    def shutdown(self) -> None:
        self.closed = True
        self.replace(lost=False)
        with self._spare_lock:
            spare, self.spare = self.spare, None
        if spare is not None:
            spare.close()
        with self._server_lock:
            if self.server is not None:
                self.server.close()
                self.server = None

    def kill_all(self) -> None:
        for worker in (self.worker, self.spare):
            if worker is not None:
                worker.kill()
        if self.server is not None:
            self.server.kill()


_SLOTS: dict[tuple, WorkerSlot] = {}
_SLOTS_LOCK = threading.Lock()


@atexit.register
def _kill_workers_at_exit() -> None:
    """Workers run in their own sessions: never leave one behind (e.g. a hung call)."""
    for slot in list(_SLOTS.values()):
        slot.closed = True
        slot.kill_all()


def slot_key(spec: TargetSpec, fork: bool) -> tuple:
    """Pools with equal keys share a slot: environment, what the worker preloads, launcher."""
    preload = {"tf": "tf", "jax": "jax", "onnxruntime": "onnxruntime",
               "openvino": "openvino"}.get(spec.kind, "none")
    return spec.env_key, preload, "fork" if fork and spec.kind in FORKABLE_KINDS else "spawn"


def acquire(spec: TargetSpec, fork: bool, spare: bool | str) -> WorkerSlot:
    """The shared slot for this target (created on first use), one more reference held."""
    key = slot_key(spec, fork)
    with _SLOTS_LOCK:
        slot = _SLOTS.get(key)
        if slot is None:
            slot = _SLOTS[key] = WorkerSlot(spec.env_dict(), key[1], key[2])
            slot.key = key
        slot.refs += 1
        if spare == "always" or (spare and not slot.spare_mode):
            slot.spare_mode = spare
    return slot


def release(slot: WorkerSlot) -> None:
    """Drop one reference; the last one shuts the slot down (workers, spare, zygote)."""
    with _SLOTS_LOCK:
        slot.refs -= 1
        if slot.refs <= 0:
            with slot.lock:
                slot.shutdown()
            if _SLOTS.get(slot.key) is slot:
                _SLOTS.pop(slot.key)
