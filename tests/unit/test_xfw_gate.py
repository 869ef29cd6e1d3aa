"""The cross-framework targets gated as a user would (``conv3dt gate --target onnxruntime
--target openvino --target impl``): a bounded gate without the ledger finds their deviations
(exit 1), the shipped ledger (``fuzz/ledger/onnxruntime.json``, ``openvino.json``) knows every
one of them, and the reproducer of every (kind × target) pair reproduces it in a fresh Python.

ONNX Runtime and OpenVINO are optional extras (the ``test`` extra installs both): skipped, naming
the extra, only when one is missing.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conv3dt.oracle.targets import framework_installed
from tests.unit.test_cli_gate import ROOT, conv3dt

TARGETS = ("onnxruntime", "openvino", "impl")

pytestmark = pytest.mark.skipif(
    not (framework_installed("onnxruntime") and framework_installed("openvino")),
    reason="onnxruntime and openvino are optional extras (pip install 'conv3dt[onnxruntime,openvino]')")


@pytest.fixture(scope="module")
def gate_record(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("xfw-gate")
    res = conv3dt("gate", *[a for t in TARGETS for a in ("--target", t)], "--no-ledger",
                  "--profile", "ci", "--examples", "3", "--shrink-seconds", "5",
                  "--max-time", "300", "--report-dir", str(out), "--quiet")
    assert res.returncode == 1, res.stdout + res.stderr          # their deviations are found
    return out / "report.json"


@pytest.mark.slow
def test_every_deviation_is_ledgered_and_every_pair_reproduces(gate_record: Path) -> None:
    from conv3dt.fuzz.findings import Finding
    from conv3dt.fuzz.ledger import Ledger
    from conv3dt.repro import run_reproducer

    record = json.loads(gate_record.read_text())
    ledger = Ledger.load()
    first: dict[tuple[str, str], dict] = {}
    unknown = []
    for f in record["findings"]:
        finding = Finding(f["kind"], f["target"], f["property"], f["case_json"], f["case"],
                          f["expected"], f["observed"], f["repro"], details=f["details"],
                          kernels=f["kernels"])
        assert f["target"] in ("onnxruntime", "openvino"), f["id"]      # impl conforms
        entry = ledger.classify(finding).known_deviation
        if entry is None:
            unknown.append((f["id"], f["target"], f["kind"], f["observed"][:200]))
        elif entry.split("-")[0] not in ("ort", "openvino"):
            unknown.append((f["id"], "matched a TF entry", entry))
        first.setdefault((f["kind"], f["target"]), f)
    assert not unknown, unknown
    assert {t for _, t in first} == {"onnxruntime", "openvino"}
    # the deterministic covering Cases (zero-size cells) alone give these two
    assert ("accept-reject", "onnxruntime") in first and ("shape", "openvino") in first, sorted(first)
    with ThreadPoolExecutor(2) as pool:
        reruns = list(pool.map(lambda f: run_reproducer(f, 120.0, cwd=str(ROOT)), first.values()))
    failed = [f"{key} {f['id']}: {r.how}\n{r.output[-800:]}"
              for (key, f), r in zip(first.items(), reruns) if not r.reproduced]
    assert not failed, f"{len(first) - len(failed)} of {len(first)} reproduced:\n" + "\n".join(failed)
