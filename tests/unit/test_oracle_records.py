"""Records: ArraySpec recipes, Case JSON round-trips, Outcome JSON; reproducers run and reproduce."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import ml_dtypes
import numpy as np
import pytest

from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome
from conv3dt.oracle.pool import TargetPool
from tests.unit.tf_workers import forced_as_shipped_onednn
from conv3dt.oracle.repro import render_reproducer

NAN, INF = float("nan"), float("inf")
SPECIAL_POOL = (0.0, -0.0, NAN, INF, -INF, 1e-40, 6e-8, 70000.0, 3.4e38)

SPECS = [
    ArraySpec("float32", (2, 3), "normal", seed=3, params=(("scale", 1e3),)),
    ArraySpec("bfloat16", (4,), "uniform", seed=1, params=(("low", -2.0), ("high", 5.0))),
    ArraySpec("float16", (3, 3), "integers", seed=9, params=(("low", -3), ("high", 3))),
    ArraySpec("float64", (2, 2), "ones"),
    ArraySpec("float16", (5, 5), "special", seed=4, params=(("p", 0.5), ("pool", SPECIAL_POOL), ("scale", 2.0))),
    ArraySpec("bfloat16", (3, 4), "special", seed=5, params=(("p", 0.9), ("pool", SPECIAL_POOL))),
    ArraySpec.inline(np.array([1.5, -0.0, NAN, -INF, 1e-45], dtype=np.float32)),
    ArraySpec.inline(np.array([[1.0, 2.5]], dtype=ml_dtypes.bfloat16)),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.recipe}-{s.dtype}")
def test_materialize_is_bit_identical_to_the_expression_text(spec):
    a, b = spec.materialize(), spec.evaluate_expression()
    assert a.dtype == b.dtype == np.dtype(ml_dtypes.bfloat16 if spec.dtype == "bfloat16" else spec.dtype)
    assert a.shape == b.shape == spec.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.recipe}-{s.dtype}")
def test_array_spec_json_round_trip(spec):
    back = ArraySpec.from_json(json.loads(json.dumps(spec.to_json(), allow_nan=False)))
    assert back == spec and hash(back) == hash(spec)
    assert back.materialize().tobytes() == spec.materialize().tobytes()


def _case(**changes):
    base = Case(SPECS[0].__class__("float32", (1, 2, 2, 2, 3), "normal", seed=1),
                ArraySpec("float32", (2, 2, 2, 4, 3), "normal", seed=2),
                output_shape=[1, 4, 4, 4, 4], strides=[1, 2, 2, 2, 1])
    return base.with_(**changes)


ROUND_TRIP = [
    _case(),
    _case(strides=2, strides_form="int", dilations=None, dilations_form="none"),
    _case(strides=(2, 2, 2), strides_form="tuple", output_shape_form="tuple"),
    _case(output_shape_form="ndarray-int64", value_arg="positional", filter_arg="positional"),
    _case(output_shape_form="tensor-int32", value_arg="both", filter_arg="filters", name="op"),
    _case(value=None, value_arg="missing", label="invalid:alias"),
    _case(padding=["SAME"], data_format=7, output_shape={"a": 1}, label="invalid:padding"),
    _case(value=SPECS[4].__class__("float16", (1, 2, 2, 2, 3), "special", seed=3,
                                   params=(("pool", SPECIAL_POOL),)), exact=False),
    _case(value=ArraySpec.inline(np.full((1, 1, 1, 1, 3), NAN, np.float32)), exact=True),
]


@pytest.mark.parametrize("case", ROUND_TRIP, ids=range(len(ROUND_TRIP)))
def test_case_json_round_trip_is_exact(case):
    text = json.dumps(case.to_json(), allow_nan=False)
    back = Case.from_json(json.loads(text))
    assert back == case and back.case_id == case.case_id
    assert json.dumps(back.to_json(), allow_nan=False) == text
    assert back.render_call() == case.render_call()


def test_case_json_rejects_foreign_objects():
    with pytest.raises(ValueError, match="schema"):
        Case.from_json({"schema": "other/1"})
    with pytest.raises(ValueError, match="unexpected or missing"):
        Case.from_json({**_case().to_json(), "bogus": 1})


def test_outcome_json():
    v = Outcome.of_value(np.zeros((1, 2), np.float16), seconds=0.5).to_json()
    assert v == {"kind": "value", "seconds": 0.5, "dtype": "float16", "shape": [1, 2]}
    c = Outcome.of_crash(signal=6, stderr_tail="x" * 5000).to_json()
    assert c["signal_name"] == "SIGABRT" and len(c["stderr_tail"]) == 4000


# ---------------------------------------------------------------- reproducers
VALID = _case(value=ArraySpec("float32", (1, 2, 2, 2, 3), "normal", seed=11, params=(("scale", 10.0),)))
BF16 = Case(ArraySpec("bfloat16", (1, 2, 2, 2, 2), "normal", seed=12),
            ArraySpec("bfloat16", (2, 2, 2, 2, 2), "normal", seed=13),
            output_shape=[1, 3, 4, 4, 2], strides=[2], output_shape_form="tensor-int64")
INVALID = VALID.with_(padding="same", label="invalid:padding")
REPRO_TARGETS = ("tf-eager", "tf-graph", "tf-function", "tf-xla", "tf-v2", "tf-grad", "impl")

RUNNER = textwrap.dedent("""
    import json, runpy, sys, traceback
    import numpy as np
    results = {}
    for key, path in json.load(open(sys.argv[1])).items():
        try:
            result = np.asarray(runpy.run_path(path, run_name="__main__")["result"])
            open(path + ".bin", "wb").write(result.tobytes())
            results[key] = {"kind": "value", "dtype": result.dtype.name, "shape": list(result.shape)}
        except Exception as exc:
            results[key] = {"kind": "raised", "class": type(exc).__name__}
    json.dump(results, open(sys.argv[2], "w"))
""")


def _expect_reproduced(outcome, got, raw_path):
    assert got["kind"] == outcome.kind, (got, outcome.describe())
    if outcome.kind == "value":
        assert got["dtype"] == outcome.value.dtype.name and got["shape"] == list(outcome.value.shape)
        with open(raw_path, "rb") as fh:
            assert fh.read() == outcome.value.tobytes()
    else:
        assert got["class"] == outcome.short_class


@pytest.mark.parametrize("onednn", ("0", "1"), ids=("as-shipped-onednn=0", "as-shipped-onednn=1"))
def test_rendered_reproducers_run_and_reproduce(tmp_path, onednn):
    """Each target's reproducer, run as a user would (its own process), gives the oracle's
    Outcome bit for bit — on both kernel families of the as-shipped paths."""
    with forced_as_shipped_onednn(onednn):
        _reproducers_reproduce(tmp_path)


def _reproducers_reproduce(tmp_path):
    cases = {"valid": VALID, "bf16": BF16, "invalid": INVALID}
    scripts = {}
    for target in REPRO_TARGETS:
        for key, case in cases.items():
            path = tmp_path / f"{target}-{key}.py"
            path.write_text(render_reproducer(case, target))
            scripts[f"{target}/{key}"] = str(path)
    (tmp_path / "scripts.json").write_text(json.dumps(scripts))
    (tmp_path / "runner.py").write_text(RUNNER)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "scripts.json"),
                             str(tmp_path / "out.json")], cwd=os.getcwd(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    with ThreadPoolExecutor(4) as ex:
        observed = dict(zip(REPRO_TARGETS, ex.map(
            lambda t: _run_pool(t, list(cases.values())), REPRO_TARGETS)))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    results = json.loads((tmp_path / "out.json").read_text())
    for target in REPRO_TARGETS:
        for (key, _), outcome in zip(cases.items(), observed[target]):
            name = f"{target}/{key}"
            _expect_reproduced(outcome, results[name], scripts[name] + ".bin")
    assert observed["tf-eager"][2].short_class == "InvalidArgumentError"   # either kernel
    assert observed["tf-graph"][2].short_class == "ValueError"


def _run_pool(target, cases):
    with TargetPool(target, timeout=60) as pool:
        return pool.run(cases)


def test_stock_reproducer_sets_onednn_before_import_and_runs_standalone(tmp_path):
    script = render_reproducer(VALID, "tf-eager-stock")
    assert script.index("os.environ['TF_ENABLE_ONEDNN_OPTS'] = '0'") < script.index("import tensorflow")
    path = tmp_path / "repro.py"
    path.write_text(script + "\nnp.save(" + repr(str(tmp_path / "out.npy")) + ", result)\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "result: float32 (1, 4, 4, 4, 4)" in run.stdout
    with TargetPool("tf-eager-stock", timeout=60) as pool:
        outcome = pool.run([VALID])[0]
    assert np.load(tmp_path / "out.npy").tobytes() == outcome.value.tobytes()


def test_crashing_module_reproducer_crashes_the_same_way(tmp_path):
    target = "tests.unit.fixtures_targets:abort"
    with TargetPool(target, timeout=10) as pool:
        outcome = pool.run([VALID])[0]
    path = tmp_path / "repro.py"
    path.write_text(render_reproducer(VALID, target, note="observed: " + outcome.describe()))
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60,
                         cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert outcome.signal == signal.SIGABRT and run.returncode == -signal.SIGABRT
    assert "Check failed: deliberate abort" in run.stderr
    assert "# observed: crashed (SIGABRT)" in path.read_text()


def test_grad_reproducer_states_inexpressible_forms():
    script = render_reproducer(VALID.with_(value_arg="both"), "tf-grad")
    assert "raise TypeError(\"tf-grad cannot express this call: value_arg='both'" in script
    with pytest.raises(TypeError, match="tf-grad cannot express"):
        exec(compile(script.split("import tensorflow as tf")[1], "repro", "exec"),  # noqa: S102
             {"np": np, "ml_dtypes": ml_dtypes})
