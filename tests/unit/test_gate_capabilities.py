"""A vendor's capability declaration through the real gate: Cases outside it never reach the
kernel (the fixtures abort there), cost no budget, paint nothing red, and the record says what
was declared, what was declined and which coverage cells are therefore unreachable."""
from __future__ import annotations

import json

import pytest

from tests.unit.test_cli_gate import conv3dt

PARTIAL = "tests.unit.partial_targets:float32_float16_ndhwc"
UNDECLARED = "tests.unit.partial_targets:undeclared_float32_float16_ndhwc"


def _record(out):
    return json.loads((out / "report.json").read_text())


def _assert_judged_only_inside(rec, target):
    assert "crashed" not in rec["coverage"]["outcomes"][target]
    declined = rec["coverage"]["declined"][target]
    assert declined.get("dtype float64") and declined.get("layout NCDHW")
    for cell in rec["matrix"][target]:            # the heat map: no undeclared cell at all
        assert not cell.startswith(("dtype=float64", "dtype=bfloat16", "layout=NCDHW")), cell


def test_declared_on_the_callable_passes_a_full_ci_gate(tmp_path):
    out = tmp_path / "r"
    proc = conv3dt("gate", "--target", PARTIAL, "--report-dir", str(out), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = _record(out)
    facts = rec["environment"]["targets"][PARTIAL]["capabilities"]
    assert facts["source"] == "callable attribute"
    assert facts["declared"]["dtypes"] == ["float32", "float16"]
    _assert_judged_only_inside(rec, PARTIAL)
    tripwire = rec["coverage"]["tripwire"]
    assert not tripwire["gaps"]
    assert {"dtype=float64", "dtype=bfloat16", "layout=NCDHW"} <= set(tripwire["unreachable"])
    assert "dtype=float32" not in tripwire["unreachable"]


def test_declared_by_flags_and_the_same_kernel_undeclared_fails(tmp_path):
    out = tmp_path / "flags"
    proc = conv3dt("gate", "--target", UNDECLARED, "--dtype", "float32", "--dtype", "float16",
                   "--layout", "NDHWC", "--examples", "20", "--report-dir", str(out), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = _record(out)
    assert rec["environment"]["targets"][UNDECLARED]["capabilities"]["source"] == "command-line flags"
    _assert_judged_only_inside(rec, UNDECLARED)
    # without the declaration the kernel's missing code paths crash: the gate must say so
    out = tmp_path / "none"
    proc = conv3dt("gate", "--target", UNDECLARED, "--examples", "10", "--report-dir", str(out),
                   "--quiet")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert any(f["kind"] == "crash" and f["status"] == "new" for f in _record(out)["findings"])


@pytest.mark.parametrize("argv, words", [
    (["--target", "tests.unit.partial_targets:misdeclared"], "float128"),
    (["--target", "impl", "--dtype", "float32"], "module:function"),
    (["--target", "impl", "--capabilities", "/nonexistent.toml"], "cannot read"),
])
def test_a_bad_declaration_is_exit_2_naming_it(tmp_path, argv, words):
    proc = conv3dt("gate", *argv, "--report-dir", str(tmp_path / "r"), "--examples", "5")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
