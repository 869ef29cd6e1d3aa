"""Reproducers reproduce: every (kind × target) pair of Findings that a real gate run produces,
its reproducer run as a user would (``conv3dt repro ID --run``: a fresh Python, the target's own
path and environment, the call judged again by ``fuzz.recheck``)."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conv3dt.repro import run_reproducer
from tests.unit.test_cli_gate import ROOT, conv3dt

#: Deviations whose values differ from run to run (the ledger says so): uninitialised memory,
#: which a fresh process often hands out zeroed, so its reproducer shows it only sometimes.
RUN_TO_RUN = ("cin-zero-uninitialized-output",)

#: Every TF path (tf-eager is one of the two forced ones, whichever this CPU picks) and impl.
TARGETS = ("tf-eager-stock", "tf-eager-onednn", "tf-graph", "tf-function", "tf-xla", "tf-v2",
           "tf-grad", "impl")


@pytest.fixture(scope="module")
def gate_record(tmp_path_factory) -> Path:
    """A bounded ci gate without the ledger: every deviation TF shows is a Finding (~200 in ~2
    min: 3 examples per property, 5 s of shrinking per distinct failure)."""
    out = tmp_path_factory.mktemp("gate")
    res = conv3dt("gate", *[a for t in TARGETS for a in ("--target", t)], "--no-ledger",
                  "--profile", "ci", "--examples", "3", "--shrink-seconds", "5",
                  "--max-time", "300", "--report-dir", str(out), "--quiet")
    assert res.returncode == 1, res.stdout + res.stderr
    return out / "report.json"


@pytest.mark.slow
def test_every_kind_and_target_pair_reproduces(gate_record: Path) -> None:
    """One Finding per (kind, target), the first that is not run-to-run garbage by the shipped
    ledger's account (the gate ran without the ledger: it is applied here to choose)."""
    from conv3dt.fuzz.findings import Finding
    from conv3dt.fuzz.ledger import Ledger

    record = json.loads(gate_record.read_text())
    ledger = Ledger.load(tf_version=record["environment"]["tensorflow"])
    first: dict[tuple[str, str], dict] = {}
    for f in record["findings"]:
        finding = Finding(f["kind"], f["target"], f["property"], f["case_json"], f["case"],
                          f["expected"], f["observed"], f["repro"], details=f["details"],
                          kernels=f["kernels"])
        if ledger.classify(finding).known_deviation in RUN_TO_RUN:
            continue
        first.setdefault((f["kind"], f["target"]), f)
    kinds = {k for k, _ in first}
    # the run is rich enough to mean something: rejections, crashes, error classes and a numeric
    # kind (which one depends on what the bounded run reached: TF's value-mismatch on stock may
    # be only the Cin = 0 garbage, skipped above)
    assert {"accept-reject", "crash", "error-class"} <= kinds, kinds
    assert kinds & {"value-mismatch", "accumulation-precision", "shape"}, kinds
    with ThreadPoolExecutor(2) as pool:
        reruns = list(pool.map(lambda f: run_reproducer(f, 120.0, cwd=str(ROOT)), first.values()))
    failed = [f"{key} {f['id']}: {r.how}\n{r.output[-800:]}"
              for (key, f), r in zip(first.items(), reruns) if not r.reproduced]
    assert not failed, f"{len(first) - len(failed)} of {len(first)} reproduced:\n" + "\n".join(failed)
    # the command a user runs says the same
    crash = first[next(k for k in first if k[0] == "crash")]
    res = conv3dt("repro", crash["id"], "--report", str(gate_record), "--run")
    assert res.returncode == 0 and "reproduced: crash (the script died by SIG" in res.stdout, \
        res.stdout + res.stderr


def test_a_reproducer_that_holds_says_so_and_exits_0() -> None:
    """The judge in the script is not a rubber stamp: a Finding's reproducer rendered for a target
    that computes the call right says "did not reproduce" (exit 0)."""
    from conv3dt.fuzz.judge import judge_value
    from conv3dt.fuzz.truth import truth_of
    from conv3dt.oracle.outcome import Outcome
    from tests.unit.test_fuzz_judge import run_impl, valid

    case = valid()
    wrong = Outcome.of_value(run_impl(case).value * 2.0)
    (finding,), _ = judge_value(case, wrong, truth_of(case), "impl", "differential", strict=True)
    rerun = run_reproducer(finding.to_json(), 120.0, cwd=str(ROOT))
    assert rerun.reproduced is False and rerun.returncode == 0, rerun.output
    assert rerun.how.startswith("did not reproduce")
