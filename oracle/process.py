"""One worker process as the parent sees it: its connection, its stderr file, its death.

Two kinds share this interface (``conn``, ``pid``, ``info``, ``loaded``, ``load_error``,
``stderr_since``, ``alive``, ``kill``, ``close``):

- :class:`SpawnedWorker` — ``python -m oracle.worker`` (or ``oracle.forkserver``, the zygote)
  started by ``subprocess`` with its environment set *before* Python starts
  (``TF_ENABLE_ONEDNN_OPTS`` is read at TF import), in its own session, stdout and stderr going
  to a dedicated file whose tail becomes a crash's ``stderr_tail``. Every TF and jax worker is
  one; a start costs a Python + NumPy (+ TF: 5-10 s) import.
- ``oracle.forkserver.ForkedWorker`` — a child ``os.fork()``-ed by a zygote that has imported
  NumPy and the targets already: a start costs milliseconds (NumPy-world targets only).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from typing import Any

STARTUP_TIMEOUT = 180.0
TAIL_CHARS = 4000
_STDERR_WINDOW = 4 * 2**20


class TargetUnavailable(RuntimeError):
    """The target cannot start (worker failed to start, module cannot be imported...)."""


class WorkerBase:
    """What every worker has: a connection, a pid, its info, and a stderr file of its own."""

    conn: Connection
    pid: int
    info: dict[str, Any]
    stderr_path: str

    def __init__(self) -> None:
        self.loaded: set[str] = set()
        self.load_error: str | None = None
        self.load_reply: dict[str, Any] = {}

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
                fh.seek(max(offset, self.stderr_size() - _STDERR_WINDOW))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _unlink_stderr(self) -> None:
        try:
            os.unlink(self.stderr_path)
        except OSError:
            pass

    def _await_ready(self, startup_timeout: float, reap) -> None:
        """Read the worker's ``{"ready": true, "pid", "info"}`` (``reap()``: its exit status)."""
        if not self.conn.poll(startup_timeout):
            self.kill()
            raise TargetUnavailable(f"worker did not start within {startup_timeout:.0f}s: "
                                    f"{self.stderr_since(0)[-1000:]}")
        try:
            ready = json.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            code = reap()
            raise TargetUnavailable(f"worker died while starting (status {code}): "
                                    f"{self.stderr_since(0)[-2000:]}") from None
        self.pid = ready["pid"]
        self.info = ready["info"]

    def orphaned(self) -> bool:
        """Whether nothing could report this worker's death any more (a forked worker whose
        zygote died): it must be replaced before it runs another call."""
        return False

    # alive / kill / close: per kind
    def alive(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def kill(self) -> int | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def worker_env(env: dict[str, str | None]) -> dict[str, str]:
    """The full environment of a spawned worker: ours, ``env`` applied (None removes a
    variable), and ``PYTHONPATH`` = the current directory plus our ``sys.path``."""
    full = dict(os.environ)
    for key, val in env.items():
        if val is None:
            full.pop(key, None)
        else:
            full[key] = val
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    full["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([os.getcwd(), *paths]))
    return full


class SpawnedWorker(WorkerBase):
    """One ``python -m MODULE FD PRELOAD`` process; replaced wholesale after a crash or timeout."""

    def __init__(self, env: dict[str, str | None], preload: str, startup_timeout: float,
                 module: str = "conv3dt.oracle.worker") -> None:
        super().__init__()
        fd, self.stderr_path = tempfile.mkstemp(prefix="conv3dt-worker-", suffix=".stderr")
        os.close(fd)
        parent_sock, child_sock = socket.socketpair()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, str(child_sock.fileno()), preload],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=worker_env(env),
                pass_fds=(child_sock.fileno(),), start_new_session=True)
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.pid = self.proc.pid
        self._await_ready(startup_timeout, self.proc.wait)
        self.info["onednn_notice"] = "oneDNN custom operations are on" in self.stderr_since(0)

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
        self._unlink_stderr()


def load_into(worker: WorkerBase, name: str, timeout: float) -> str:
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
    worker.load_reply = reply
    if reply["ok"]:
        worker.loaded.add(name)
        return "ok"
    worker.load_error = reply["error"]
    return "refused"


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
