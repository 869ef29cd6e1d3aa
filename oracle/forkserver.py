"""Fork server: a zygote process that ``os.fork()``-s a fresh worker in milliseconds.

Why: a worker lost to a crash, a timeout or a memory kill must be replaced before the next
call. Spawning one costs a Python + NumPy + target import (~0.25 s on the loaded 2-core
machine, more for a heavy vendor module) and, at its first bfloat16 array, ml_dtypes' (~1.7 s);
a target that aborts on every bfloat16 call pays that hundreds of times in a row. The zygote
pays it once: it imports NumPy, ml_dtypes, ``impl``, ``oracle.worker`` and every loaded target,
then forks a child per worker on demand — the call after a crash takes ~6 ms instead of
~275 ms (``conv3dt bench oracle --crash-recovery``, ``oracle/README.md``).

Forking a process whose runtime runs thread pools leaves the child with locks held by threads
that do not exist in it; forking one that has only *imported* the runtime does not. So a zygote
preloads (``FORKABLE_PRELOADS``):

- ``none`` (NumPy-world targets: ``impl`` isolated, ``module:function``): NumPy, ml_dtypes,
  ``impl`` and every loaded target;
- ``tf`` (the TF paths): TensorFlow imported and its import-time facts taken
  (``oracle.tf_paths.import_facts``: versions, build, oneDNN state, registered dtypes) without
  running an op — TF starts its runtime and thread pools at the first op, in each child. Each
  child then takes the runtime facts (``runtime_facts``: the XLA probe, ~0.1 s) before it
  reports ready. A crashed TF worker is replaced in ~0.2-0.3 s instead of a 4-10 s TF import
  (``conv3dt bench oracle --crash-recovery``). TF's import starts no thread (measured on TF
  2.21: the only other thread is NumPy's OpenBLAS, whose ``pthread_atfork`` handlers make a
  fork safe).

jax starts threads at import, so jax workers keep the spawned worker + warm spare. The zygote
refuses to fork once a loaded target has brought in such a runtime beyond its preload or started
threads (:func:`fork_hazard`: one of ``FORK_UNSAFE_MODULES`` imported, or more OS threads than
after the preload); the pool then falls back to spawned workers for that environment.

Protocol (``multiprocessing.connection`` framing, JSON; file descriptors via ``SCM_RIGHTS``):

    zygote -> parent  {"ready": true, "pid", "info"}              once, after preloading
    parent -> zygote  {"op": "load", "target"}  -> {"ok", "error"?, "fork_hazard": str|null}
    parent -> zygote  {"op": "fork"} + fds [worker socket, stderr file]
                      -> {"pid", "loaded": [target, ...]}; the child then sends its own
                      {"ready": true, "pid", "info"} on the worker socket and serves it
                      (``oracle.worker.serve_loop``) with the zygote's loaded targets
    parent -> zygote  {"op": "reap", "pid", "timeout"} -> {"status": returncode | null}
    parent -> zygote  {"op": "exit"}

The zygote never reaps a child on its own, so a dead worker stays a zombie until the parent
asks for its status: its pid cannot be reused before the parent has killed and reaped it.
Each child calls ``setsid()`` (the parent kills its process group) and writes stdout and
stderr to a file of its own; a NumPy-world child enables ``faulthandler`` (a fatal signal leaves
the Python stack in the crash tail), a TF child does not (its crash text stays what a spawned TF
worker writes, which the ledger's rules match).
"""
from __future__ import annotations

import faulthandler
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import warnings
from multiprocessing.connection import Connection
from multiprocessing.reduction import recvfds, sendfds
from typing import Any, Callable

from conv3dt.oracle.process import SpawnedWorker, TargetUnavailable, WorkerBase, load_into

#: Runtimes whose thread pools do not survive ``fork()`` once running.
FORK_UNSAFE_MODULES = ("tensorflow", "jax", "jaxlib", "torch", "onnxruntime", "openvino")
#: What a zygote may preload (``oracle.worker.import_info``), and the runtime each brings in
#: deliberately (imported, not started: forking stays safe until its first op).
FORKABLE_PRELOADS = {"none": (), "tf": ("tensorflow",)}
_REAP_POLL = 0.001


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def fork_hazard(baseline_threads: int, preload: str = "none") -> str | None:
    """Why this process must not fork any more (None: it may)."""
    loaded = [m for m in FORK_UNSAFE_MODULES
              if m in sys.modules and m not in FORKABLE_PRELOADS[preload]]
    if loaded:
        return f"a loaded target imported {loaded[0]}"
    if _threads() > baseline_threads:
        return (f"a loaded target started threads ({_threads()} > {baseline_threads} after the "
                f"zygote's own imports)")
    return None


# ============================================================================ zygote side
def _child(zygote_fds: tuple[int, ...], sock_fd: int, err_fd: int, info: dict[str, Any],
           callables: dict[str, Callable], preload: str) -> None:
    """The forked worker: its own session, stderr file and socket; never returns."""
    code = 1
    try:
        for fd in zygote_fds:  # the zygote's channel is not this worker's business
            os.close(fd)
        os.setsid()
        os.dup2(err_fd, 1)
        os.dup2(err_fd, 2)
        os.close(err_fd)
        from conv3dt.oracle import worker

        if worker._SELF_STATM is not None:  # an fd on the zygote's /proc/self/statm: its RSS
            os.close(worker._SELF_STATM)
            worker._SELF_STATM = None
        if preload == "none":
            faulthandler.enable()
        conn = Connection(sock_fd)
        info = {**info, **worker.runtime_info(preload), "pid": os.getpid(), "launcher": "fork"}
        conn.send_bytes(json.dumps({"ready": True, "pid": os.getpid(), "info": info}).encode())
        worker.serve_loop(conn, info, callables)
        code = 0
    except BaseException:  # noqa: BLE001 - the parent sees the death and this text
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _reap(pid: int, timeout: float) -> int | None:
    """The child's returncode (-signal or exit code), waiting up to ``timeout``; None if alive."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(_REAP_POLL)


def zygote(conn: Connection, preload: str = "none") -> None:
    from conv3dt.oracle import worker

    if preload not in FORKABLE_PRELOADS:
        raise SystemExit(f"oracle.forkserver: cannot preload {preload!r} and fork safely")
    info = {**worker.import_info(preload), "launcher": "fork"}
    # what every fork would otherwise import on its own: impl (isolated) and ml_dtypes (every
    # bfloat16 array; its import alone takes ~1.7 s on the loaded 2-core machine)
    import ml_dtypes  # noqa: F401

    from conv3dt import impl  # noqa: F401
    baseline = _threads()
    callables: dict[str, Callable] = {}
    conn.send_bytes(json.dumps({"ready": True, "pid": os.getpid(), "info": info}).encode())
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    while True:
        try:
            msg = json.loads(conn.recv_bytes())
        except EOFError:
            return
        op = msg.get("op")
        if op == "exit":
            return
        if op == "load":
            reply = worker.load_target(callables, msg["target"])
            reply["fork_hazard"] = fork_hazard(baseline, preload)
            conn.send_bytes(json.dumps(reply).encode())
        elif op == "fork":
            sock_fd, err_fd = recvfds(sock, 2)
            sys.stdout.flush(), sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child((conn.fileno(), sock.fileno()), sock_fd, err_fd, info, callables, preload)
            os.close(sock_fd), os.close(err_fd)
            conn.send_bytes(json.dumps({"pid": pid, "loaded": list(callables)}).encode())
        elif op == "reap":
            conn.send_bytes(json.dumps({"status": _reap(msg["pid"], msg["timeout"])}).encode())
        else:
            raise SystemExit(f"oracle.forkserver: unknown op {op!r}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Python >= 3.12 warns on fork() with more than one OS thread; NumPy's BLAS has one (its
    # pthread_atfork handlers make that safe) and fork_hazard() refuses any other.
    warnings.filterwarnings("ignore", r".*multi-threaded, use of fork\(\) may lead", DeprecationWarning)
    zygote(Connection(int(argv[0])), argv[1] if len(argv) > 1 else "none")
    return 0


# ============================================================================ parent side
class ForkServer:
    """The parent's handle on one zygote (one per worker environment); thread-safe."""

    def __init__(self, env: dict[str, str | None], startup_timeout: float,
                 preload: str = "none") -> None:
        self.zygote = SpawnedWorker(env, preload, startup_timeout, module="conv3dt.oracle.forkserver")
        self.hazard: str | None = None
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self.zygote.alive()

    def load(self, name: str, timeout: float) -> str:
        """Import a target in the zygote (later forks have it): 'ok', 'refused' (see
        ``zygote.load_error``), 'hung' or 'died'. Sets ``hazard`` when forking became unsafe."""
        with self._lock:
            status = load_into(self.zygote, name, timeout)
        self.hazard = self.hazard or self.zygote.load_reply.get("fork_hazard")
        return status

    def fork(self, startup_timeout: float) -> "ForkedWorker":
        return ForkedWorker(self, startup_timeout)

    def request(self, msg: dict[str, Any], fds: tuple[int, ...] = (), timeout: float = 30.0
                ) -> dict[str, Any] | None:
        """One request/reply with the zygote; None when it is gone or silent."""
        with self._lock:
            try:
                self.zygote.conn.send_bytes(json.dumps(msg).encode())
                if fds:
                    with socket.socket(fileno=os.dup(self.zygote.conn.fileno())) as sock:
                        sendfds(sock, list(fds))
                if not self.zygote.conn.poll(timeout):
                    return None
                return json.loads(self.zygote.conn.recv_bytes())
            except (EOFError, OSError):
                return None

    def close(self) -> None:
        self.zygote.close()

    def kill(self) -> None:
        self.zygote.kill()


class ForkedWorker(WorkerBase):
    """A worker forked by a :class:`ForkServer`: same interface as ``SpawnedWorker``."""

    def __init__(self, server: ForkServer, startup_timeout: float) -> None:
        super().__init__()
        self.server = server
        self._status: int | None = None
        self._reaped = False
        fd, self.stderr_path = tempfile.mkstemp(prefix="conv3dt-worker-", suffix=".stderr")
        parent_sock, child_sock = socket.socketpair()
        try:
            reply = server.request({"op": "fork"}, fds=(child_sock.fileno(), fd), timeout=startup_timeout)
        finally:
            child_sock.close()
            os.close(fd)
        if reply is None:
            parent_sock.close()
            self._unlink_stderr()
            raise TargetUnavailable(f"fork server did not fork a worker: "
                                    f"{server.zygote.stderr_since(0)[-1000:]}")
        self.pid = reply["pid"]
        self.loaded.update(reply["loaded"])
        self.conn = Connection(parent_sock.detach())
        self._await_ready(startup_timeout, self._reap)
        if "onednn_notice" in server.zygote.info:  # TF printed it once, at the zygote's import
            self.info["onednn_notice"] = server.zygote.info["onednn_notice"]

    def alive(self) -> bool:
        """Running (not a zombie): the zygote reaps only when asked, so the pid is still ours."""
        if self._reaped:
            return False
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in (b"Z", b"X")

    def orphaned(self) -> bool:
        return not self.server.alive()

    def _reap(self) -> int | None:
        if not self._reaped:
            reply = self.server.request({"op": "reap", "pid": self.pid, "timeout": 10.0}, timeout=15.0)
            self._status = None if reply is None else reply["status"]
            self._reaped = True
        return self._status

    def kill(self) -> int | None:
        """SIGKILL the worker's process group; have the zygote reap it; return its status."""
        if not self._reaped:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        status = self._reap()
        self.conn.close()
        return status

    def close(self) -> None:
        self.kill()  # nothing to flush: a worker holds no state worth a graceful exit
        self._unlink_stderr()


if __name__ == "__main__":
    sys.exit(main())
