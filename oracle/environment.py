"""Environment capture for run records: versions, platform, CPU, oneDNN/XLA state.

:func:`capture_environment` runs in the calling process and never imports TensorFlow
(TF facts come from the workers: ``TargetPool.info()['worker']``; :func:`target_facts` picks
what a run record says about each target from them).
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

# CPU features that decide which TF/oneDNN kernels run.
INTERESTING_CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                         "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16",
                         "amx_int8", "amx_tile")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _proc_cpuinfo() -> tuple[str | None, set[str]]:
    """The CPU model name and every feature flag, as Linux /proc/cpuinfo names them."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = val.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    return model, flags


def cpu_flags() -> set[str]:
    """Every feature flag of the CPU (empty where /proc/cpuinfo is unreadable)."""
    return _proc_cpuinfo()[1]


def cpu_info() -> dict[str, Any]:
    """CPU model, logical CPU count and the kernel-relevant feature flags (Linux /proc)."""
    model, flags = _proc_cpuinfo()
    return {"model": platform.processor() or model, "logical_cpus": os.cpu_count(),
            "flags": sorted(f for f in INTERESTING_CPU_FLAGS if f in flags)}


def capture_environment() -> dict[str, Any]:
    """What a run record needs to say where it ran (no TensorFlow import)."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_info(),
        "packages": {name: _version(name) for name in
                     ("numpy", "ml_dtypes", "tensorflow-cpu", "tensorflow", "jax", "jaxlib",
                      "onnxruntime", "onnx", "openvino",
                      "hypothesis", "conv3dt")},
        "env": {k: os.environ.get(k) for k in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL",
                                                "OMP_NUM_THREADS", "TF_XLA_FLAGS",
                                                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    }


#: Target kind -> (framework name as reports show it, the worker fact holding its version).
FRAMEWORKS = {"tf": ("TensorFlow", "tensorflow"), "jax": ("JAX", "jax"),
              "onnxruntime": ("ONNX Runtime", "onnxruntime"), "openvino": ("OpenVINO", "openvino")}


def framework_of(kind: str | None, worker: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "version"}`` of the framework a target of ``kind`` ran, from its worker's facts:
    TF, JAX, ONNX Runtime, OpenVINO; ``impl`` is conv3dt's own reference (conv3dt's version);
    a ``module:function`` target is ``external`` (its version is not known to the suite)."""
    if kind in FRAMEWORKS:
        name, key = FRAMEWORKS[kind]
        return {"name": name, "version": worker.get(key)}
    if kind == "impl":
        return {"name": "impl", "version": _version("conv3dt")}
    return {"name": "external", "version": None}


def target_facts(info: dict[str, Any]) -> dict[str, Any]:
    """What ran for one target, from its ``TargetPool.info()``: the kernel-choice inputs as the
    worker's TF decided them (oneDNN on/off, the dtypes its oneDNN kernel takes, XLA), the TF
    build, and the worker environment that was set. Per call, the kernel that actually ran is
    on each Outcome (``oracle.kernels``) and counted in the record's ``coverage.kernels``."""
    worker = info.get("worker") or {}
    build = worker.get("tf_build_info") or {}
    facts = {"kind": info.get("kind"), "worker_env": info.get("worker_env") or {},
             "framework": framework_of(info.get("kind"), worker)}
    if info.get("kind") in FRAMEWORKS and info.get("kind") != "tf":   # jax, onnxruntime, openvino
        facts.update({k: v for k, v in worker.items() if k.split("_")[0] == info["kind"]
                      or k in ("jaxlib", "onnx")})
    if info.get("kind") == "tf":
        facts.update({
            "tensorflow": worker.get("tensorflow"), "tf_git_version": worker.get("tf_git_version"),
            "onednn_enabled": worker.get("onednn_enabled"),
            "onednn_dtypes": worker.get("onednn_dtypes"),
            "onednn_op": worker.get("onednn_op"), "stock_op": worker.get("stock_op"),
            "xla_available": worker.get("xla_available"),
            "tf_build": {k: build[k] for k in ("cpu_compiler", "is_cuda_build", "is_rocm_build")
                         if k in build}})
    return facts
