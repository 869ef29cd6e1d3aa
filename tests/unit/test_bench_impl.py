"""``conv3dt bench impl`` times every TF path (eager, tf.function, XLA) that accepts each shape's
call and compares with the fastest, naming it. Path acceptance is tested with fake paths, and on a
real dilated shape in a subprocess per oneDNN setting (TF's stock CPU kernel rejects dilation; its
oneDNN kernel accepts it); the goal summary on made-up rows. No timings are asserted."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conv3dt.bench_impl import (GOALS, TF_PATHS, NoTfPathError, Rejection, TfPath,
                                accepting_tf_paths, error_summary, summarise)

ROOT = Path(__file__).resolve().parents[2]


class Rejected(Exception):
    """Stands in for tf.errors.OpError."""


def fake(name: str, calls: list[str], error: BaseException | None = None) -> TfPath:
    def call():
        calls.append(name)
        if error is not None:
            raise error
        return np.full(2, len(calls), dtype=np.float32)
    return TfPath(name, call)


def test_no_accepting_path_is_one_error_naming_every_path():
    calls: list[str] = []
    paths = [fake(n, calls, Rejected(f"{n} refuses")) for n in TF_PATHS]
    with pytest.raises(NoTfPathError) as exc:
        accepting_tf_paths(paths, (Rejected,))
    assert all(f"{n}: Rejected: {n} refuses" in str(exc.value) for n in TF_PATHS)


def test_an_error_that_is_not_a_rejection_propagates():
    calls: list[str] = []
    paths = [fake("eager", calls, KeyError("bug")), fake("xla", calls)]
    with pytest.raises(KeyError):
        accepting_tf_paths(paths, (Rejected,))
    assert calls == ["eager"]


def test_every_accepting_path_is_kept_with_its_result_and_rejections_named():
    calls: list[str] = []
    paths = [fake("eager", calls, Rejected("no")), fake("function", calls), fake("xla", calls)]
    accepted, rejected = accepting_tf_paths(paths, (Rejected,))
    assert [p.name for p, _ in accepted] == ["function", "xla"] and calls == list(TF_PATHS)
    assert [r.tolist() for _, r in accepted] == [[2, 2], [3, 3]]
    assert rejected == (Rejection("eager", "Rejected: no"),)
    with pytest.raises(NoTfPathError):
        accepting_tf_paths([fake("eager", calls, Rejected("x"))], (Rejected,))


def row(label, ratio, flops, roof, memory=1.0, t_impl=1.0, busy=None):
    return dict(label=label, ratio=ratio, flops=flops, roof=roof, memory=memory, t_impl=t_impl,
                t_tf=t_impl / ratio, busy=busy)


def test_summary_takes_the_roofline_of_the_three_largest_and_excludes_tiny_from_memory():
    rows = [row("a", 0.5, 10, 0.9), row("b", 2.0, 40, 0.6), row("c", 0.6, 30, 0.55),
            row("d", 0.7, 20, 0.8), row("e", 0.1, 1, 0.01, busy=3.0),
            row("tiny", 0.05, 0, 0.0, memory=70.0, t_impl=1e-5, busy=1.5)]
    s = summarise(rows)
    assert s["largest"] == ["b", "c", "d"] and s["roofline"] == 0.55   # not a's 0.9, not e's 0.01
    assert s["median_ratio"] == 0.6 and s["worst_ratio"] == 2.0
    assert s["memory_ratio"] == 1.0 and s["contended"] == 3.0
    assert abs(s["tiny_speedup"] - 20.0) < 1e-9
    assert GOALS["median_ratio"] == 0.7 and GOALS["worst_ratio"] == 1.5   # issue 12's goals


def test_error_summary_keeps_the_kernel_text_of_eager_and_graph_errors():
    eager = ("{{function_node __wrapped__Conv3DBackpropInputV2_device_/job:localhost/replica:0/"
             "task:0/device:CPU:0}} Current CPU implementation does not yet support dilation "
             "rates larger than 1. [Op:Conv3DBackpropInputV2]")
    graph = ("Graph execution error:\n\nDetected at node conv3d_transpose defined at (most recent "
             "call last):\n  File \"x.py\", line 7, in <module>\n\nCurrent CPU implementation does "
             "not yet support dilation rates larger than 1.\n\t [[{{node conv3d_transpose}}]] "
             "[Op:__inference_conv_10]")
    want = "ValueError: Current CPU implementation does not yet support dilation rates larger than 1."
    assert error_summary(ValueError(eager)) == want
    assert error_summary(ValueError(graph)) == want
    assert error_summary(ValueError("")) == "ValueError: "


# one small dilated shape and the non-dilated tiny one, each run through run_shape (trial, bound
# check, one short timing) in a fresh process with oneDNN forced on or off
PROBE = """
import json, os, sys
import numpy as np
import tensorflow as tf
from conv3dt.bench_impl import TINY, onednn_state, run_shape
dilated = ("dilated k3s1d2 4^3 2->2", 1, 4, 2, 2, 3, 1, 2, "SAME")
rows = [run_shape(tf, s, 1, np.random.default_rng(0), 0.0) for s in (dilated, TINY)]
print(json.dumps({"onednn": onednn_state(), "rows": [
    {"path": r["path"], "rejected": [[x.path, x.error] for x in r["rejected"]], "ok": r["ok"]}
    for r in rows]}))
"""


def probe(onednn: str) -> dict:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_with_onednn_on_dilated_shapes_run_eager():
    out = probe("1")
    if out["onednn"] != "on":
        pytest.fail(f"TF_ENABLE_ONEDNN_OPTS=1 left oneDNN {out['onednn']} in this TF build")
    dilated, tiny = out["rows"]
    # every path accepts; the fastest is timed (eager and tf.function run the same oneDNN kernel)
    assert dilated["rejected"] == [] and dilated["ok"] and dilated["path"] in TF_PATHS
    assert tiny["rejected"] == [] and tiny["ok"]


def test_with_onednn_off_dilated_shapes_run_on_a_path_that_accepts_them():
    out = probe("0")
    assert out["onednn"] in ("off", "unknown")
    dilated, tiny = out["rows"]
    assert dilated["ok"] and tiny["rejected"] == [] and tiny["ok"]
    # TF's stock CPU kernel rejects dilation, eager and graph alike: XLA is the first to accept
    assert dilated["path"] == "xla"
    assert [path for path, _ in dilated["rejected"]] == ["eager", "function"]
    assert all(err.startswith("InvalidArgumentError: ") and "dilation" in err
               for _, err in dilated["rejected"])
