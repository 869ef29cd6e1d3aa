"""fuzz.metamorphic: each identity holds for impl and catches a target broken in its way
(tests/unit/broken_targets.py), run in-process (no worker, no TF)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from conv3dt.fuzz import metamorphic as mm
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome
from conv3dt.oracle.worker import call_v1
from tests.unit import broken_targets as bt

from conv3dt import impl

CFG = settings(max_examples=40, deadline=None, database=None, derandomize=True,
               suppress_health_check=list(HealthCheck))


def runner(fn):
    def run(cases):
        outs = []
        for c in cases:
            try:
                outs.append(Outcome.of_value(np.asarray(call_v1(fn, c, c.arrays()))))
            except Exception as exc:  # noqa: BLE001 - rejection is an Outcome
                outs.append(Outcome.of_exception(exc))
        return outs
    return run


def case_of(dtype="float32", n=2, layout="NDHWC", padding="SAME", strides=(2, 1, 2), seed=3,
            cin=2, cout=3, k=(3, 2, 3), i=(2, 3, 2), dil=None):
    o = [a * s for a, s in zip(i, strides)]
    v_shape = (n, *i, cin) if layout == "NDHWC" else (n, cin, *i)
    out = [n, *o, cout] if layout == "NDHWC" else [n, cout, *o]
    return Case(value=ArraySpec(dtype, v_shape, "normal", seed, (("scale", 1.0),)),
                filter=ArraySpec(dtype, (*k, cout, cin), "normal", seed + 7, (("scale", 1.0),)),
                output_shape=out, strides=list(strides), padding=padding, data_format=layout,
                dilations=dil, dilations_form="omitted" if dil is None else "list")


CORRECT = runner(impl.conv3d_transpose)


@pytest.mark.parametrize("identity", sorted(mm.CHECKS))
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_identity_holds_for_impl(identity, dtype):
    v = mm.check(identity, case_of(dtype), CORRECT, "impl")
    assert v.findings == []
    assert v.judged, identity
    if identity in ("determinism", "power-of-two", "layout", "batch-split"):
        assert v.bit_identical  # impl: same kernel, same order on both sides
    else:
        assert 0 <= v.ratio <= 1


@CFG
@given(case=mm.metamorphic_cases())
def test_no_false_alarm_on_impl_random(case):
    for v in mm.run_checks(case, CORRECT, "impl"):
        assert v.findings == [], (v.identity, v.findings[0].expected, v.findings[0].observed)


@pytest.mark.parametrize("identity,broken,dtype", [
    ("adjoint", "flipped_kernel", "float32"),
    ("adjoint", "wrong_pad_split", "float64"),
    ("linearity-value", "nonlinear", "float32"),
    ("linearity-filter", "nonlinear", "float64"),
    ("power-of-two", "nonlinear", "float32"),
    ("batch-split", "ignores_batch", "float32"),
    ("layout", "ncdhw_scaled", "float32"),
    ("determinism", "nondeterministic", "float64"),
])
def test_identity_catches_broken_target(identity, broken, dtype):
    case = case_of(dtype, padding="SAME", strides=(2, 1, 2), i=(2, 3, 2))
    if broken == "wrong_pad_split":  # needs an odd SAME pad: O = 3 for I = 2, s = 2, K = 3
        case = case.with_(output_shape=[2, 3, 3, 3, 3])
    v = mm.check(identity, case, runner(getattr(bt, broken)), f"tests.unit.broken_targets:{broken}")
    assert v.findings, (identity, broken)
    f = v.findings[0]
    assert f.kind == "metamorphic" and f.property == f"metamorphic-{identity}"
    assert f.details["identity"] == identity
    # the reproducer runs every variant of the identity
    assert f.repro.count("r0 = ") == 1 and ("r1 = " in f.repro) == (len(mm.CHECKS[identity][0](case)) > 1)


@pytest.mark.parametrize("identity,broken,shows,target", [
    ("batch-split", "ignores_batch", "max |r0 - concat(r1, r2)|", None),
    ("adjoint", "flipped_kernel", "<conv3d(y,w),x> =", None),
    ("linearity-value", "nonlinear", "max |r2 - (2.0*r0 + -0.5*r1)|", None),
    # rendered for TF paths whose call rebinds the array names (graph placeholders) or computes
    # another op (the gradient of conv3d): TF holds the identity, so it does not reproduce there
    ("adjoint", "flipped_kernel", "<conv3d(y,w),x> =", "tf-graph"),
    ("batch-split", "ignores_batch", "max |r0 - concat(r1, r2)|", "tf-grad"),
])
def test_repro_runs_every_call_prints_the_relation_and_rejudges(tmp_path, identity, broken, shows,
                                                                target):
    """A metamorphic Finding's reproducer makes every call the target's way, prints the relation
    and judges it again (``fuzz.recheck``): exit 3 "reproduced" on the broken target that
    produced it, exit 0 "did not reproduce" when rendered for a target that holds."""
    import subprocess
    import sys
    from pathlib import Path

    from conv3dt.fuzz.recheck import NOT_REPRODUCED, REPRODUCED
    from conv3dt.oracle.process import worker_env
    broken_target = f"tests.unit.broken_targets:{broken}"
    v = mm.check(identity, case_of("float32"), runner(getattr(bt, broken)), target or broken_target)
    script = tmp_path / "r.py"
    script.write_text(v.findings[0].repro)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=120, env=worker_env({}))
    assert shows in out.stdout, out.stdout + out.stderr
    if target is None:
        assert out.returncode == REPRODUCED and "reproduced: metamorphic" in out.stdout, out.stderr
    else:
        assert out.returncode == NOT_REPRODUCED and "did not reproduce" in out.stdout, out.stderr


def test_adjoint_tolerance_is_not_vacuous():
    """A perturbation of the result by 4x the |y|-weighted bound in the direction of y fails."""
    case = case_of("float32")
    y = CORRECT([case])[0].value
    lhs, rhs, diff, tol = mm.adjoint_sides(case, y)
    assert diff <= tol
    probe = mm.adjoint_probe(case)
    step = 4 * tol / float(np.sum(probe * probe))
    bad = (y.astype(np.float64) + step * probe).astype(y.dtype)
    _, _, diff2, tol2 = mm.adjoint_sides(case, bad)
    assert diff2 > tol2


def test_partial_rejection_is_an_accept_reject_finding_and_total_rejection_is_silent():
    def ndhwc_only(*args, **kwargs):
        if kwargs.get("data_format") == "NCDHW":
            raise ValueError("only supports NDHWC")
        return impl.conv3d_transpose(*args, **kwargs)

    def rejects_all(*args, **kwargs):
        raise ValueError("no")

    v = mm.check("layout", case_of(), runner(ndhwc_only), "tf-eager")
    assert [f.kind for f in v.findings] == ["accept-reject"] and not v.judged
    assert v.findings[0].case["data_format"] == "NCDHW"  # the ledger sees the rejected variant
    assert "only supports NDHWC" in v.findings[0].details["message"]
    v = mm.check("layout", case_of(), runner(rejects_all), "tf-eager")
    assert v.findings == [] and not v.judged


def test_layout_variants_round_trip():
    case = case_of("float64", layout="NDHWC", strides=(2, 1, 2)).with_(strides=[1, 2, 1, 2, 1])
    nd, nc = mm.layout_variants(case)
    assert nd is case and nc.data_format == "NCDHW" and nc.strides == [1, 1, 2, 1, 2]
    back = mm.with_layout(nc, "NDHWC")
    assert back.strides == case.strides and back.output_shape == case.output_shape
    np.testing.assert_array_equal(back.value.materialize(), case.value.materialize())


def test_batch_variants_split_and_extend():
    two = mm.batch_variants(case_of(n=2))
    assert [c.output_shape[0] for c in two] == [2, 1, 1]
    one = mm.batch_variants(case_of(n=1))
    assert [c.output_shape[0] for c in one] == [2, 1, 1]
    np.testing.assert_array_equal(one[1].value.materialize(), case_of(n=1).value.materialize())


def test_nonfinite_inputs_are_not_judged():
    case = case_of().with_(value=ArraySpec("float32", (2, 2, 3, 2, 2), "special", 1,
                                           (("pool", (float("nan"),)), ("p", 0.3), ("scale", 1.0))))
    for name in ("adjoint", "linearity-value", "linearity-filter"):
        v = mm.check(name, case, CORRECT, "impl")
        assert not v.judged and v.findings == []


def test_plan_shares_cases_but_keeps_the_repeated_call():
    case = case_of()
    p = mm.plan(case)
    ids = [c.case_id for c in p.batch]
    assert ids.count(case.case_id) == 2            # determinism's two calls, shared by the rest
    assert p.index["determinism"][0] != p.index["determinism"][1]
    assert p.index["adjoint"] == [p.index["determinism"][0]]
