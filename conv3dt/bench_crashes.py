"""``conv3dt bench oracle --crash-recovery N``: what a crash of a NumPy-world target costs.

The target is :func:`crashy` here (``conv3dt.bench_crashes:crashy``, a ``module:function`` with
TF's v1 signature): it calls ``os.abort()`` when the value's first element is 1 (a marked case),
else returns zeros. Two pools run it side by side, round by round (the machine is noisy):

- ``spawn`` — ``TargetPool(..., fork=False)``: before ``oracle.forkserver``: a lost worker is
  replaced by a spawned ``python -m oracle.worker`` (the lazy warm spare, the default, helps only
  when it had time to start since the previous crash — not for crashes in quick succession);
- ``fork`` — the default: the zygote forks a fresh worker.

Per round and pool: one crashing call, then the wall time of the next (fine) call is recorded.
Then a burst: ``--crash-burst`` crashing calls in a row per pool, wall time per crash.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

import numpy as np

from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case

TARGET = "conv3dt.bench_crashes:crashy"


def crashy(value=None, filter=None, output_shape=None, *args, **kwargs):
    """Aborts (SIGABRT, after a CHECK-style line) when ``value``'s first element is 1."""
    if float(np.asarray(value).ravel()[0]) == 1.0:
        sys.stderr.write("F0000 bench_crashes.py:1] Check failed: marked case\n")
        sys.stderr.flush()
        os.abort()
    return np.zeros(tuple(output_shape), dtype=np.asarray(value).dtype)


def marked(first: float, seed: int) -> Case:
    value = np.random.default_rng(seed).standard_normal((1, 2, 2, 2, 2)).astype(np.float32)
    value.flat[0] = first
    return Case(ArraySpec.inline(value), ArraySpec("float32", (2, 2, 2, 2, 2), "ones"),
                output_shape=[1, 2, 2, 2, 2], strides=[1, 1, 1, 1, 1])


def measure_crash_recovery(rounds: int, burst: int) -> dict[str, Any]:
    from conv3dt.oracle.pool import TargetPool

    pools = {"spawn": TargetPool(TARGET, timeout=30.0, fork=False),
             "fork": TargetPool(TARGET, timeout=30.0)}
    next_call: dict[str, list[float]] = {k: [] for k in pools}
    kinds: dict[str, set] = {k: set() for k in pools}
    try:
        for pool in pools.values():
            pool.run([marked(0.0, 0)])
        for i in range(rounds):
            for name, pool in pools.items():
                crash = pool.run([marked(1.0, i)])[0]
                kinds[name].add(f"{crash.kind}:{crash.signal_name}")
                start = time.perf_counter()
                after = pool.run([marked(0.0, i)])[0]
                next_call[name].append(time.perf_counter() - start)
                kinds[name].add(after.kind)
        per_crash = {}
        for name, pool in pools.items():
            start = time.perf_counter()
            outs = pool.run([marked(1.0, 1000 + j) for j in range(burst)])
            per_crash[name] = (time.perf_counter() - start) / burst
            kinds[name].update(f"{o.kind}:{o.signal_name}" for o in outs)
        recovery = {name: pool.info()["recovery"] for name, pool in pools.items()}
    finally:
        for pool in pools.values():
            pool.close()
    return {name: {"next_call_s": [round(t, 4) for t in next_call[name]],
                   "median_s": round(statistics.median(next_call[name]), 4),
                   "burst_crashes": burst, "burst_per_crash_s": round(per_crash[name], 4),
                   "outcomes": sorted(kinds[name]), "recovery": recovery[name]}
            for name in pools}


def print_crash_recovery(r: dict[str, Any]) -> None:
    print("call after a crash of a module:function target (conv3dt.bench_crashes:crashy, SIGABRT):")
    for name, row in r.items():
        print(f"  {name:<6} next call median {row['median_s'] * 1e3:8.1f} ms  "
              f"{[round(t * 1e3, 1) for t in row['next_call_s']]} ms; "
              f"{row['burst_crashes']} crashes in a row: {row['burst_per_crash_s'] * 1e3:.1f} ms each; "
              f"{row['recovery']}")
