"""Meta-tests of the gradient conformance (issue 13): a broken backward gated as a vendor would
gate it (``conv3dt gate --target grad:module:function``, profile ci) must fail the gate with a
finding naming it, of the kind its defect calls for and on the gradient it corrupts; the same
route with impl's own backward (``faithful``) must pass having judged gradient examples.

The broken backwards are in broken_grad_targets.py. The gate runs from the repo root (its worker
processes import ``tests.unit.broken_grad_targets`` from the cwd, as test_gate_capabilities.py's
fixtures). The broken backwards share one small gate (``--examples 5``: the coverage floor of
``grad_differential``, both gradients of every forward covering Case, is what catches most of
them), each judged on its own; the control passes a gate of its own.
"""
from __future__ import annotations

import json

import pytest

from tests.unit.test_cli_gate import conv3dt

MOD = "grad:tests.unit.broken_grad_targets"
SMALL = ["--examples", "5", "--max-time", "300", "--quiet"]

# broken backward -> (finding kinds that count as caught, the Case fields each such finding has)
BROKEN = {
    "dfilter_flipped_taps": ({"exactness", "value-mismatch"}, {"grad_wrt": "filter"}),
    "dvalue_missing_stride_phase": ({"exactness", "value-mismatch"}, {"grad_wrt": "value"}),
    "dfilter_float16_accumulation": ({"accumulation-precision"}, {"grad_wrt": "filter"}),
    "dvalue_flipped_filter": ({"exactness", "value-mismatch"}, {"grad_wrt": "value"}),
    "dfilter_ignores_dilation": ({"exactness", "value-mismatch"}, {"grad_wrt": "filter"}),
    "crashes_on_ncdhw_dfilter": ({"crash"}, {"data_format": "NCDHW"}),
    # caught by grad_invalid's explicit examples of the backward's own families (fuzz.grad_invalid)
    "takes_any_grad_output": ({"accept-reject"}, {}),
}
GRAD_OUTPUT_FAMILIES = {"takes_any_grad_output"}


def gate(tmp_path, *targets: str):
    """Run the ci gate on ``targets`` (+ impl-grad); returns (exit code, record, output)."""
    out = tmp_path / "report"
    argv = [a for t in (*targets, "impl-grad") for a in ("--target", t)]
    proc = conv3dt("gate", *argv, *SMALL, "--report-dir", str(out))
    return proc.returncode, json.loads((out / "report.json").read_text()), proc.stdout + proc.stderr


def gradient_examples(rec: dict, target: str) -> int:
    """Gradient examples judged on ``target`` (the grad_* properties' counts in the record)."""
    return sum(per.get(target, 0) for prop, per in rec["coverage"]["examples"].items()
               if prop.startswith("grad_"))


@pytest.fixture(scope="module")
def broken_gate(tmp_path_factory):
    """One gate judging every broken backward and the faithful control side by side: each
    target is judged on its own, so one run says which of them it catches."""
    names = [*sorted(BROKEN), "faithful"]
    return gate(tmp_path_factory.mktemp("broken-grad"), *(f"{MOD}:{n}" for n in names))


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_backward_is_caught(broken_gate, name):
    """A new finding on that target, of a fitting kind, on the Case the defect corrupts (the
    right gradient, or NCDHW for the crash), after judging gradient examples on it."""
    code, rec, output = broken_gate
    assert code == 1, output
    target = f"{MOD}:{name}"
    kinds, where = BROKEN[name]
    assert gradient_examples(rec, target) > 0
    mine = [f for f in rec["findings"] if f["target"] == target]
    fitting = [f for f in mine if f["kind"] in kinds and f["status"] == "new"]
    assert fitting, (name, [(f["kind"], f["status"]) for f in mine])
    for f in fitting:
        assert f["case"]["grad_wrt"] in ("value", "filter")
        assert {k: f["case"][k] for k in where} == where, (name, f["case"])
        if name in GRAD_OUTPUT_FAMILIES:
            assert f["case"]["label"].startswith("invalid:grad-output-"), (name, f["case"])
            assert f["case"]["grad_output_shape"] != f["case"]["output_shape"] or \
                f["case"]["grad_output_dtype"] != f["case"]["dtype"], f["case"]


def test_only_the_broken_backwards_have_findings(broken_gate):
    """The faithful control and impl-grad, judged in the same run, have none."""
    code, rec, output = broken_gate
    assert {f["target"] for f in rec["findings"]} == {f"{MOD}:{n}" for n in BROKEN}, output
    assert gradient_examples(rec, f"{MOD}:faithful") > 0


def test_the_faithful_backward_alone_passes_the_gate(tmp_path):
    """The control, gated as a vendor gates only a backward (no forward target: the forward
    properties are skipped, the gradient ones judge): exit 0, no finding, both gradients covered."""
    target = f"{MOD}:faithful"
    code, rec, output = gate(tmp_path, target)
    assert code == 0, output
    assert rec["findings"] == [] and rec["summary"]["verdict"] == "pass"
    assert gradient_examples(rec, target) > 0
    assert rec["coverage"]["examples"]["grad_differential"][target] > 0
    assert rec["coverage"]["outcomes"][target].get("value", 0) > 0
    assert {"grad-value", "grad-filter"} <= set(rec["coverage"]["cells"])
