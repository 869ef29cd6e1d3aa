"""docs/vendors.md's worked example, gated as the guide says: it must pass, judged only inside
its declaration; and the same kernel with a planted defect must fail."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from tests.unit.test_cli_gate import ROOT, conv3dt

EXAMPLES = ROOT / "examples"
TARGET = "vendor_kernel:conv3d_transpose"


def test_the_worked_example_passes_inside_its_declaration(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES)}
    proc = conv3dt("gate", "--target", TARGET, "--report-dir", str(tmp_path), "--quiet", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = json.loads((tmp_path / "report.json").read_text())
    caps = rec["environment"]["targets"][TARGET]["capabilities"]
    assert caps["source"] == "callable attribute" and caps["declared"]["dtypes"] == ["float32"]
    assert set(rec["coverage"]["declined"][TARGET]) >= {"dtype float64", "dilation > 1"}
    assert rec["summary"]["examples"] > 1000


def test_the_native_kernel_matches_impl_and_a_planted_defect_is_seen(monkeypatch):
    sys.path.insert(0, str(EXAMPLES))
    try:
        import vendor_kernel
    finally:
        sys.path.remove(str(EXAMPLES))
    from conv3dt import impl

    r = np.random.default_rng(3)
    x = r.standard_normal((2, 3, 4, 5, 3)).astype(np.float32)
    w = r.standard_normal((3, 2, 4, 6, 3)).astype(np.float32)
    args = ([2, 8, 5, 17, 6], [1, 2, 1, 3, 1], "VALID", "NDHWC")
    np.testing.assert_allclose(vendor_kernel.conv3d_transpose(x, w, *args),
                               impl.conv3d_transpose(x, w, *args), rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(vendor_kernel, "native_deconv3d",
                        lambda x, w, o, s, p: np.zeros((x.shape[0], w.shape[1], *o), np.float32))
    assert not np.allclose(vendor_kernel.conv3d_transpose(x, w, *args),
                           impl.conv3d_transpose(x, w, *args))
