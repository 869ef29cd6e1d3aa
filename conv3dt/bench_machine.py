"""What the impl benchmark measures the machine with: the CPU, the BLAS, the SGEMM roofline, and
a busy loop on another core.

* ``cpu_summary()``: the CPU model, family/model and the instruction-set flags that decide TF's
  and OpenBLAS's kernels (AVX2, AVX-512 F/BW/VNNI/BF16/FP16, AMX), from ``/proc/cpuinfo``.
* ``blas_summary()``: the BLAS NumPy calls (library, version, the kernel architecture it chose,
  its default thread count), from threadpoolctl.
* ``sgemm_seconds(threads)``: one ``(M, K) @ (K, N)`` float32 product with ``M = K = N =
  ROOFLINE_SIZE`` in this process, with the BLAS at its default threads (``threads=None``) or
  limited to ``threads``. ``2·M·K·N / seconds`` is the practical roofline: what the same BLAS
  reaches on a large, square, compute-bound GEMM at this moment on this machine. The benchmark
  takes the *faster* of default and one thread, so a collapsed threaded GEMM never lowers it.
* ``BusyCore``: a child process spinning on the last CPU (``while True: pass``), paused
  (SIGSTOP) and resumed (SIGCONT) between timings, so impl's time with the other core saturated is
  measured next to its time without, in one run. Only that child is ever signalled.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

ROOFLINE_SIZE = 1024
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                     "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_summary() -> str:
    """``<model name> (family F model M), <n> CPUs, flags: ...`` (``unknown CPU`` off Linux)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if not line.strip():
                    break                                   # the first processor is enough
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        return f"unknown CPU, {os.cpu_count()} CPUs"
    flags = set(info.get("flags", "").split())
    present = [f for f in FLAGS_OF_INTEREST if f in flags]
    absent = [f for f in FLAGS_OF_INTEREST if f not in flags]
    return (f"{info.get('model name', 'unknown CPU')} (family {info.get('cpu family', '?')} "
            f"model {info.get('model', '?')}), {os.cpu_count()} CPUs; flags: "
            f"{' '.join(present) or 'none'}; absent: {' '.join(absent) or 'none'}")


def blas_summary() -> str:
    """NumPy's BLAS as threadpoolctl sees it, e.g. ``openblas 0.3.31 (SkylakeX), 2 threads``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown BLAS (threadpoolctl not installed)"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')}), "
                     f"{i.get('num_threads')} threads by default" for i in libs) or "no BLAS found"


_A = _B = None


def sgemm_seconds(threads: int | None = None) -> float:
    """Seconds of one ROOFLINE_SIZE³ float32 GEMM, BLAS limited to ``threads`` (None: as is)."""
    global _A, _B
    if _A is None:
        rng = np.random.default_rng(0)
        _A = rng.standard_normal((ROOFLINE_SIZE, ROOFLINE_SIZE), dtype=np.float32)
        _B = rng.standard_normal((ROOFLINE_SIZE, ROOFLINE_SIZE), dtype=np.float32)
    if threads is None:
        start = time.perf_counter()
        _A @ _B
        return time.perf_counter() - start
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        start = time.perf_counter()
        _A @ _B
        return time.perf_counter() - start


SGEMM_FLOPS = 2.0 * ROOFLINE_SIZE ** 3


class BusyCore:
    """A spinning child process pinned to the last CPU; ``busy(True/False)`` resumes/pauses it."""

    def __init__(self) -> None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        code = ("import os\n"
                f"cpus = {cpus[-1:]!r}\n"
                "if cpus and hasattr(os, 'sched_setaffinity'): os.sched_setaffinity(0, cpus)\n"
                "while True: pass\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code])
        self.cpu = cpus[-1] if cpus else None
        self.busy(False)

    def busy(self, on: bool) -> None:
        self.proc.send_signal(signal.SIGCONT if on else signal.SIGSTOP)
        if on:
            time.sleep(0.02)                                # let it get its core

    def close(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> "BusyCore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
