"""impl's thread policy, chosen per call: single-threaded BLAS, impl's own workers.

Why. OpenBLAS's threaded GEMM splits every product across its threads and synchronises them by
spin-waiting. On a machine where another process holds one of the cores, each GEMM then waits for
a thread that is not running: measured 10–100× slower than one thread (issue 12: 222 ms instead
of 1.9 ms). impl's work is already a list of independent items — the (phase, chunk) GEMMs, each
writing a disjoint part of the output — so impl runs every GEMM on one BLAS thread and hands the
items to ``workers`` Python threads itself (NumPy releases the GIL in ``matmul`` and in copies).
Items are taken one at a time from a shared list, so a thread on a busy core simply takes fewer:
with one of two cores taken the call still has ~1.5 cores' worth of throughput, never a stall.

The policy per call (``plan(flops)``, ``flops = 2·N·ΠI·Cin·Cout·ΠK``, every input-tap product):

* under ``SMALL_FLOPS``: nothing is touched (the BLAS runs a product this small
  on one thread anyway, and changing its setting costs ~3 µs each way);
* otherwise the BLAS is limited to one thread for the call (``blas_single_threaded``: the first
  concurrent impl call saves the BLAS's settings, the last one restores them, so concurrent calls
  from user threads never leave the BLAS at one thread), and when the call has at least
  ``PARALLEL_FLOPS`` the items run on ``min(BLAS threads, CPUs this process may use)`` workers.
  A user (or a harness) who set ``OPENBLAS_NUM_THREADS=1`` thus gets one worker: impl never uses
  more threads than the BLAS was allowed.

BLAS control uses threadpoolctl (pure Python, BSD, maintained by the scikit-learn/joblib
developers), imported lazily: impl itself is called directly by users, so there is no caller that
could set the policy for it. Without threadpoolctl impl runs its items on the calling thread and
leaves the BLAS as configured. ``CONV3DT_IMPL_THREADS=N`` fixes the worker count (``1``: serial).

NumPy's floating-point error state (``np.errstate``) is a context variable: every helper thread
runs in a copy of the caller's context, so over/underflow reporting is the caller's on every item.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["plan", "run", "describe", "SMALL_FLOPS", "PARALLEL_FLOPS"]

SMALL_FLOPS = 2e5        # below: BLAS untouched, one thread (a tiny call stays ~20 µs)
PARALLEL_FLOPS = 2e7     # from here: impl's workers (~0.3 ms of work; a hand-off costs ~20-50 µs)

_lock = threading.Lock()
_state = {"libs": None, "depth": 0, "saved": None, "pool": None}


def _blas_libs():
    """threadpoolctl's controllers of the loaded BLAS libraries ([] without threadpoolctl)."""
    if _state["libs"] is None:
        try:
            from threadpoolctl import ThreadpoolController

            _state["libs"] = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:  # noqa: BLE001 - no threadpoolctl, or one that cannot inspect this BLAS
            _state["libs"] = []
    return _state["libs"]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _fixed_workers():
    text = os.environ.get("CONV3DT_IMPL_THREADS", "")
    return max(1, int(text)) if text.isdigit() else None


@contextlib.contextmanager
def plan(flops: float):
    """Context for one call of ``flops`` multiply-adds; yields the number of workers to use."""
    libs = _blas_libs() if flops >= SMALL_FLOPS else []
    if not libs:
        yield 1
        return
    with _lock:
        if _state["depth"] == 0:
            _state["saved"] = [lib.get_num_threads() for lib in libs]
            for lib in libs:
                lib.set_num_threads(1)
        _state["depth"] += 1
        blas_threads = max(n or 1 for n in _state["saved"])
    try:
        fixed = _fixed_workers()
        workers = fixed if fixed is not None else min(blas_threads, _cpus())
        yield workers if flops >= PARALLEL_FLOPS else 1
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                for lib, n in zip(libs, _state["saved"]):
                    lib.set_num_threads(n)


def _pool() -> ThreadPoolExecutor:
    if _state["pool"] is None:
        with _lock:
            if _state["pool"] is None:
                _state["pool"] = ThreadPoolExecutor(max(1, _cpus() - 1),
                                                    thread_name_prefix="conv3dt-impl")
    return _state["pool"]


def run(items, workers: int) -> None:
    """Call every zero-argument ``items[j]`` once, on ``workers`` threads (the caller included),
    each taking the next item when it is free. Every helper finishes before this returns; the first
    exception raised by any item is re-raised."""
    if workers <= 1 or len(items) <= 1:
        for item in items:
            item()
        return
    position = iter(range(len(items)))
    take = threading.Lock()
    failed = []

    def drain():
        while not failed:
            with take:
                j = next(position, None)
            if j is None:
                return
            try:
                items[j]()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                failed.append(exc)

    helpers = [_pool().submit(contextvars.copy_context().run, drain)
               for _ in range(min(workers, len(items)) - 1)]
    drain()
    for helper in helpers:
        helper.result()
    if failed:
        raise failed[0]


def describe() -> str:
    """One line: the policy as it applies in this process now."""
    libs = _blas_libs()
    if not libs:
        return "serial, BLAS as configured (threadpoolctl unavailable)"
    threads = _state["saved"] if _state["depth"] else [lib.get_num_threads() for lib in libs]
    fixed = _fixed_workers()
    workers = fixed if fixed is not None else min(max(n or 1 for n in threads), _cpus())
    return (f"GEMMs on 1 BLAS thread from {SMALL_FLOPS:.0e} flop, {workers} impl worker(s) from "
            f"{PARALLEL_FLOPS:.0e} flop")
