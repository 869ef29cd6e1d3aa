"""The BLAS-thread policy of the suite's own processes: one BLAS thread per process.

A gate runs, on the same cores at once, the pytest controller, ``--workers`` xdist workers (each
drawing examples and computing the truth with impl's kernel in float64 / long double) and each
worker's target processes (one per TF environment, the impl worker). Its parallelism is these
processes. A threaded BLAS inside each of them would add threads that spin-wait for cores the
other processes hold (OpenBLAS's GEMM threads synchronise by spinning), so the gate sets
``OPENBLAS_NUM_THREADS=1`` and ``MKL_NUM_THREADS=1`` in its own environment before the session
starts; every process below it inherits them (the variables are read once, when NumPy loads its
BLAS). impl then also runs serially there (``impl.threads``: never more workers than BLAS
threads). A variable the user set is kept as set. TF's own thread pools are left as shipped: the
gate judges TF as a user runs it.

``apply()`` returns what the run record keeps under ``run.blas_threads``.
"""
from __future__ import annotations

import os

VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
POLICY = "1"


def apply(environ=None) -> dict:
    """Set every unset ``VARIABLES`` entry to ``POLICY`` in ``environ`` (default ``os.environ``);
    return ``{"policy": ..., "values": {var: value}, "set_by": {var: "gate" | "user"}}``."""
    environ = os.environ if environ is None else environ
    set_by = {}
    for name in VARIABLES:
        if environ.get(name):
            set_by[name] = "user"
        else:
            environ[name] = POLICY
            set_by[name] = "gate"
    return {"policy": "one BLAS thread per process (the gate's parallelism is its processes)",
            "values": {name: environ[name] for name in VARIABLES}, "set_by": set_by}
