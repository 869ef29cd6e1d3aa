"""Helpers of the scale-out tests: a result built once per test session, shared by the
pytest-xdist workers (each worker would otherwise run the same gates again)."""
from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Callable


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``build(directory)`` run by the first worker that asks, under a file lock; the others
    wait for it and get the same directory. A failed build raises in every worker that asks."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if root.name.startswith("popen-gw") else root    # shared by the workers
    out, done, failed = root / name, root / f"{name}.done", root / f"{name}.failed"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            raise AssertionError(f"{name}: {failed.read_text()}")
        if not done.exists():
            out.mkdir(exist_ok=True)
            try:
                build(out)
            except BaseException as exc:
                failed.write_text(str(exc)[:2000])
                raise
            done.touch()
    return out
