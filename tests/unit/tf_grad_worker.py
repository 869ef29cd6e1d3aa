"""TF's gradients of ``conv3d_transpose`` in a separate process (a test helper).

``python tf_grad_worker.py IN OUT`` reads a pickled list of calls (dicts: ``value``, ``filter``,
``output_shape``, ``grad_output``, ``strides``, ``padding``, ``data_format``, ``dilations``,
``mode`` ∈ {"eager", "function", "xla"}) and writes a pickled list of results, one per call:
``{"kind": "value", "dvalue": ..., "dfilter": ..., "seconds": ...}`` or
``{"kind": "raised", "error": "<class>: <message>"}``. Each gradient is
``tf.GradientTape.gradient(y, [value, filter], output_gradients=grad_output)`` over
``tf.compat.v1.nn.conv3d_transpose``; ``xla`` wraps the tape in ``tf.function(jit_compile=True)``.

TF runs here, never in the pytest process: a kernel that aborts or segfaults kills this process
only (the caller reports that as the result of the whole batch). ``TF_ENABLE_ONEDNN_OPTS`` in the
environment picks the kernel family, as for the oracle's ``tf-eager-stock`` / ``tf-eager-onednn``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _grads(tf, call):
    def run(value, filter, grad_output):
        with tf.GradientTape() as tape:
            tape.watch([value, filter])
            y = tf.compat.v1.nn.conv3d_transpose(
                value, filter, call["output_shape"], strides=call["strides"],
                padding=call["padding"], data_format=call["data_format"],
                dilations=call["dilations"])
        return tape.gradient(y, [value, filter], output_gradients=grad_output)

    if call["mode"] == "xla":
        run = tf.function(run, jit_compile=True)
    elif call["mode"] == "function":
        run = tf.function(run)
    dvalue, dfilter = run(tf.constant(call["value"]), tf.constant(call["filter"]),
                          tf.constant(call["grad_output"]))
    return dvalue.numpy(), dfilter.numpy()


def main(argv: list[str]) -> int:
    import tensorflow as tf

    with open(argv[1], "rb") as handle:
        calls = pickle.load(handle)
    results = []
    for call in calls:
        start = time.perf_counter()
        try:
            dvalue, dfilter = _grads(tf, call)
            results.append({"kind": "value", "dvalue": dvalue, "dfilter": dfilter,
                            "seconds": time.perf_counter() - start})
        except Exception as error:  # noqa: BLE001  (TF's answer is the result)
            results.append({"kind": "raised",
                            "error": f"{type(error).__name__}: {str(error)[:300]}"})
    results.append({"tf_version": tf.__version__})
    with open(argv[2], "wb") as handle:
        pickle.dump(results, handle)
    return 0


def tf_gradients(calls: list[dict], onednn: str,
                 timeout: float = 600.0) -> tuple[list[dict], str]:
    """Run ``calls`` in one fresh worker with ``TF_ENABLE_ONEDNN_OPTS=onednn``: ``(results,
    tf_version)``. A crashed worker raises AssertionError with its exit status and stderr; a hung
    one is killed after ``timeout`` seconds (``subprocess.TimeoutExpired``)."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.TemporaryDirectory(prefix="tf-grad-") as tmp:
        src, dst = os.path.join(tmp, "in.pkl"), os.path.join(tmp, "out.pkl")
        with open(src, "wb") as handle:
            pickle.dump(calls, handle)
        done = subprocess.run([sys.executable, os.path.abspath(__file__), src, dst], env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"TF worker exit {done.returncode}: {done.stderr[-2000:]}"
        with open(dst, "rb") as handle:
            results: list[Any] = pickle.load(handle)
    return results[:-1], results[-1]["tf_version"]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
