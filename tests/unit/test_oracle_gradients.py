"""The oracle's gradient pieces (issue 13): gradient Cases (JSON, identity, call structure), the
gradient targets against impl's backward through the real worker pools (values and the kernel
each says ran), the refusals (a forward target given a gradient Case, a backward returning no
pair), and every gradient target's standalone reproducer run in a fresh Python."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conv3dt.impl import conv3d_transpose_grads
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case, structure_key
from conv3dt.oracle.drive import run_on_targets
from conv3dt.oracle.pool import TargetPool
from conv3dt.oracle.repro import render_reproducer
from conv3dt.oracle.targets import DEFAULT_GRADIENT_TARGET_NAMES, is_gradient_target, resolve
from tests.unit.test_cli_gate import ROOT

TF_GRADIENT_TARGETS = ("tf-grad-eager", "tf-grad-eager-stock", "tf-grad-eager-onednn",
                       "tf-grad-function", "tf-grad-xla", "tf-grad-v1")
GRADIENT_TARGETS = (*TF_GRADIENT_TARGETS, "impl-grad")
FAITHFUL = "grad:tests.unit.broken_grad_targets:faithful"
#: float32 results of different summation orders: far inside the rigorous bound for these sizes
RTOL, ATOL = 1e-4, 1e-5
#: the forward Case's canonical JSON keys: exactly those of before gradients existed
FORWARD_KEYS = {"schema", "value", "filter", "output_shape", "strides", "dilations", "padding",
                "data_format", "value_arg", "filter_arg", "output_shape_form", "strides_form",
                "dilations_form", "name", "label", "exact"}


def forward_case(dtype: str = "float32", data_format: str = "NDHWC") -> Case:
    """A small valid call with stride 2 on D and SAME padding (pads on every axis); dilations 1:
    TF's CPU kernels reject larger ones (the ledger's ``cpu-dilation-unsupported``)."""
    ndhwc = data_format == "NDHWC"
    value = (1, 2, 3, 2, 2) if ndhwc else (1, 2, 2, 3, 2)
    out = [1, 4, 3, 2, 3] if ndhwc else [1, 3, 4, 3, 2]
    strides = [1, 2, 1, 1, 1] if ndhwc else [1, 1, 2, 1, 1]
    return Case(ArraySpec(dtype, value, "normal", seed=1), ArraySpec(dtype, (2, 2, 2, 3, 2), "normal", seed=2),
                output_shape=out, strides=strides, padding="SAME", data_format=data_format)


def grad_case(wrt: str, dtype: str = "float32", data_format: str = "NDHWC", seed: int = 3) -> Case:
    case = forward_case(dtype, data_format)
    return case.gradient_of(wrt, ArraySpec(dtype, tuple(case.output_shape), "normal", seed=seed))


def reference(case: Case) -> np.ndarray:
    """impl's gradient for ``case``, called with the Case's recorded arguments."""
    args, kwargs = case.call_args(tensor=lambda v, d: np.asarray(v, dtype=d))
    pair = conv3d_transpose_grads(*args, grad_output=case.grad_array(), **kwargs)
    return pair[0 if case.grad_wrt == "value" else 1]


# ---------------------------------------------------------------------------- Case identity
def test_gradient_case_round_trips_and_the_forward_json_is_unchanged():
    """A gradient Case survives JSON (and is not the forward Case); its forward() is the forward
    Case, id and all; a forward Case's JSON has no grad key, so corpus and ledger ids made before
    gradients existed keep their meaning (the id is the hash of exactly the old keys)."""
    fwd = forward_case()
    assert set(fwd.to_json()) == FORWARD_KEYS
    canonical = json.dumps(fwd.to_json(), sort_keys=True, separators=(",", ":"))
    assert fwd.case_id == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    assert fwd.case_id == "c1a032178ce7"        # its id at the commit before gradients (HEAD)
    assert (fwd.is_gradient, fwd.operation, fwd.forward()) == (False, "forward", fwd)
    for wrt in ("value", "filter"):
        g = grad_case(wrt)
        obj = json.loads(json.dumps(g.to_json()))
        assert set(obj) == FORWARD_KEYS | {"grad_output", "grad_wrt"} and obj["grad_wrt"] == wrt
        back = Case.from_json(obj)
        assert back == g and back.case_id == g.case_id
        assert (g.is_gradient, g.operation) == (True, f"grad-{wrt}")
        assert g.forward() == fwd and g.forward().case_id == fwd.case_id != g.case_id
        assert g.summary()["grad_wrt"] == wrt and "grad_wrt" not in fwd.summary()
    assert grad_case("value").case_id != grad_case("filter").case_id
    assert grad_case("value", seed=4).case_id != grad_case("value").case_id


@pytest.mark.parametrize("fields", [{"grad_wrt": "value"}, {"grad_wrt": "bias"},
                                    {"grad_output": ArraySpec("float32", (1,), "ones")}])
def test_a_half_made_gradient_case_is_refused(fields):
    with pytest.raises(ValueError):
        forward_case().with_(**fields)


def test_structure_key_tells_the_gradients_apart_but_not_their_data():
    """wrt value and wrt filter are different computations (traced and timed apart); a new
    upstream gradient of the same shape is the same structure; a gradient is not its forward."""
    keys = {wrt: structure_key(grad_case(wrt)) for wrt in ("value", "filter")}
    assert keys["value"] != keys["filter"]
    assert structure_key(grad_case("value", seed=9)) == keys["value"]
    assert structure_key(forward_case()) not in keys.values()
    assert structure_key(grad_case("value").to_json()) == keys["value"]


def test_gradient_targets_are_named_as_such():
    for name in (*GRADIENT_TARGETS, FAITHFUL):
        assert resolve(name).gradient and is_gradient_target(name), name
    assert set(GRADIENT_TARGETS) == set(DEFAULT_GRADIENT_TARGET_NAMES)
    for name in ("tf-eager", "tf-grad", "impl", "tests.unit.broken_grad_targets:faithful"):
        assert not resolve(name).gradient and not is_gradient_target(name), name
    assert not is_gradient_target("grad:not a module")


# ---------------------------------------------------------------------------- the pools
@pytest.fixture(scope="module")
def outcomes():
    """Both gradients of one float32 call, NDHWC and NCDHW, on every gradient target (and
    impl's backward as a vendor's), in one ``run_on_targets`` call; the pools are closed."""
    cases = [grad_case(w, "float32", f) for f in ("NDHWC", "NCDHW") for w in ("value", "filter")]
    pools = {name: TargetPool(name) for name in (*GRADIENT_TARGETS, FAITHFUL)}
    try:
        return cases, run_on_targets(pools, cases)
    finally:
        for pool in pools.values():
            pool.close()


@pytest.mark.parametrize("target", [*GRADIENT_TARGETS, FAITHFUL])
def test_every_gradient_target_agrees_with_impl(outcomes, target):
    """Each gradient target's dvalue and dfilter, in both layouts, agree with impl's backward
    (shape, dtype, values to float32 summation-order tolerance). TF's stock Conv3D rejects
    NCDHW on the CPU (a contract deviation the gate's ledger knows): there a rejection is
    accepted, never a wrong value."""
    cases, outs = outcomes
    for case, out in zip(cases, outs[target]):
        if out.kind == "raised" and case.data_format == "NCDHW" and target.startswith("tf-"):
            continue
        assert out.kind == "value", (target, case.operation, case.data_format, out.describe())
        want = reference(case)
        assert out.value.shape == want.shape and out.value.dtype == want.dtype
        np.testing.assert_allclose(out.value, want, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{target} {case.operation} {case.data_format}")
    assert sum(o.kind == "value" for o in outs[target]) >= 2      # NDHWC at least


def test_the_kernel_observation_of_gradient_targets(outcomes):
    """oneDNN forced on names its float32 gradient primitive from its verbose lines (Conv3D's
    forward for dvalue, backward_weights for dfilter); XLA is XLA; impl's is impl's and a
    vendor backward is external."""
    cases, outs = outcomes
    for case, out in zip(cases[:2], outs["tf-grad-eager-onednn"][:2]):   # NDHWC
        assert (out.kernel.family, out.kernel.evidence) == ("onednn", "verbose"), (case.operation, out.kernel)
    assert {o.kernel.family for o in outs["tf-grad-xla"]} == {"xla"}
    assert {o.kernel.family for o in outs["impl-grad"]} == {"impl"}
    assert {o.kernel.family for o in outs[FAITHFUL]} == {"external"}


@pytest.mark.parametrize("target", [
    "impl", "tests.unit.broken_targets:correct",
    "tf-eager",
])
def test_a_forward_target_given_a_gradient_case_raises(target):
    with TargetPool(target) as pool:
        (out,) = pool.run([grad_case("value")])
    assert out.kind == "raised" and out.short_class == "TypeError", out.describe()


def not_a_pair(*args, **kwargs):
    """A backward returning dvalue alone (not the pair)."""
    return conv3d_transpose_grads(*args, **kwargs)[0]


def three_things(*args, **kwargs):
    return (*conv3d_transpose_grads(*args, **kwargs), None)


@pytest.mark.parametrize("function", ["not_a_pair", "three_things"])
def test_a_backward_returning_no_pair_is_a_raised_outcome(function):
    with TargetPool(f"grad:{__name__}:{function}") as pool:
        outs = pool.run([grad_case("value"), grad_case("filter")])
    for out in outs:
        assert out.kind == "raised" and out.short_class == "GradientReturn", out.describe()
        assert out.is_instance_of("TypeError")


def test_a_gradient_target_given_a_forward_case_raises():
    with TargetPool("impl-grad") as pool:
        (out,) = pool.run([forward_case()])
    assert out.kind == "raised" and out.short_class == "TypeError", out.describe()


# ---------------------------------------------------------------------------- reproducers
_RESULT = re.compile(r"^result: (\S+) \(([\d, ]*)\)\n\[([^\]]*)\]", re.M)


def _run_script(source: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run([sys.executable, "-c", source], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, source + proc.stdout + proc.stderr
    return proc.stdout


#: one gradient per target (a TF import each: ~5 s), the two alternating so both are rendered
#: for the eager, traced and v1 paths and the NumPy-world backwards
REPRO_PAIRS = [(t, ("value", "filter")[i % 2]) for i, t in enumerate([*GRADIENT_TARGETS, FAITHFUL])]


@pytest.mark.parametrize("target,wrt", REPRO_PAIRS)
def test_every_gradient_targets_reproducer_reproduces(target, wrt):
    """``render_reproducer`` for one gradient, run as a user would in a fresh Python from the
    repo root: it prints the gradient's dtype, shape and first values, which agree with impl's."""
    for wrt in (wrt,):
        case = grad_case(wrt)
        match = _RESULT.search(_run_script(render_reproducer(case, target)))
        assert match, target
        want = reference(case)
        dtype, shape, head = match.groups()
        assert dtype == want.dtype.name
        assert tuple(int(s) for s in shape.replace(",", " ").split()) == want.shape
        got = np.array([float(x) for x in head.split()])
        np.testing.assert_allclose(got, want.ravel()[:8].astype(np.float64), rtol=1e-4, atol=1e-5,
                                   err_msg=f"{target} {case.operation}")
