"""``conv3dt repro FINDING_ID``: print a finding's standalone reproducer from a run record.

The reproducer is a self-contained Python script (NumPy recipes for the arrays, the call in
exactly the argument forms and the target's own way — its oneDNN setting, graph, tf.function,
XLA, v2 or gradient form, or the vendor's callable), which then judges what happened as the gate
did (``fuzz.recheck``: exit 3 "reproduced", 0 "did not reproduce"). ``FINDING_ID`` may be a
unique prefix. Exit 0 printed, 2 unknown id / unreadable record.

``--run`` runs it in a subprocess (the current directory importable, as the gate's workers have
it) and says ``reproduced`` — the script's judge said so, or it died by a signal for a crash
finding, or outlived ``--timeout`` for a timeout finding — or ``did not reproduce``. Exit 0
reproduced, 1 did not reproduce, 3 the script could not run (its error is printed).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from conv3dt.cli import EXIT_OK, EXIT_USAGE
from conv3dt.gate import DEFAULT_REPORT_DIR


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"conv3dt repro: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="conv3dt repro", description="Print the standalone reproducer of a finding "
                "recorded in a run record.")
    p.add_argument("finding_id", metavar="FINDING_ID", help="the finding's id (or a unique prefix)")
    p.add_argument("--report", metavar="REPORT.json", default=str(Path(DEFAULT_REPORT_DIR) / "report.json"),
                   help="the run record (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the whole finding as JSON instead")
    p.add_argument("--run", action="store_true",
                   help="run the reproducer and say whether the deviation reproduced "
                        "(exit 0 reproduced, 1 not, 3 the script could not run)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                   help="with --run: how long the script may take (a timeout finding reproduces "
                        "by outliving it; default %(default)s)")
    return p


@dataclass(frozen=True)
class Rerun:
    """What running a finding's reproducer showed."""
    reproduced: bool | None          # None: the script itself failed (it could not judge)
    how: str                         # the line printed: why it counts as reproduced or not
    returncode: int | None           # None when it outlived the timeout
    output: str


def run_reproducer(finding: dict, timeout: float, cwd: str | None = None) -> Rerun:
    """Run ``finding``'s reproducer in a fresh Python (``cwd`` and our ``sys.path`` importable,
    as the gate's workers have them); judge what it showed."""
    import subprocess
    import tempfile

    from conv3dt.fuzz.recheck import NOT_REPRODUCED, REPRODUCED
    from conv3dt.oracle.outcome import Outcome
    from conv3dt.oracle.process import worker_env

    with tempfile.TemporaryDirectory(prefix="conv3dt-repro-") as tmp:
        script = Path(tmp) / f"{finding['id']}.py"
        script.write_text(finding["repro"])
        try:
            proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                  timeout=timeout, cwd=cwd, env=worker_env({}))
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            if finding["kind"] == "timeout":
                return Rerun(True, f"reproduced: timeout (still running after {timeout:g} s)", None, out)
            return Rerun(None, f"the reproducer did not finish within {timeout:g} s", None, out)
    output = proc.stdout + proc.stderr
    code = proc.returncode
    if code < 0:
        name = Outcome.of_crash(signal=-code).signal_name
        if finding["kind"] == "crash":
            return Rerun(True, f"reproduced: crash (the script died by {name})", code, output)
        return Rerun(False, f"did not reproduce: the script died by {name}, not a {finding['kind']}",
                     code, output)
    if code == REPRODUCED:
        return Rerun(True, _line(proc.stdout, "reproduced:"), code, output)
    if code == NOT_REPRODUCED:
        return Rerun(False, _line(proc.stdout, "did not reproduce"), code, output)
    return Rerun(None, f"the reproducer failed (exit {code}): {proc.stderr.strip()[-600:]}", code, output)


def _line(text: str, prefix: str) -> str:
    return next((line for line in text.splitlines() if line.startswith(prefix)), prefix)


def find(record: dict, finding_id: str) -> dict:
    exact = [f for f in record["findings"] if f["id"] == finding_id]
    matches = exact or [f for f in record["findings"] if f["id"].startswith(finding_id)]
    if not matches:
        raise LookupError(f"no finding {finding_id!r} in the record ({len(record['findings'])} findings)")
    if len(matches) > 1:
        raise LookupError(f"{finding_id!r} is ambiguous: " + ", ".join(f["id"] for f in matches[:5]))
    return matches[0]


def main(argv: list[str] | None = None) -> int:
    from conv3dt.reports.record import RecordError, load

    args = build_parser().parse_args(argv)
    try:
        finding = find(load(args.report), args.finding_id)
    except (RecordError, LookupError) as exc:
        print(f"conv3dt repro: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.run:
        rerun = run_reproducer(finding, args.timeout)
        print(f"{finding['id']}: {rerun.how}")
        return EXIT_OK if rerun.reproduced else (1 if rerun.reproduced is False else 3)
    if args.json:
        print(json.dumps(finding, indent=1, sort_keys=True))
    else:
        print(f"# {finding['id']}: {finding['kind']} on {finding['target']} ({finding['property']})")
        print(f"# expected: {finding['expected']}")
        print(f"# observed: {finding['observed']}")
        print(finding["repro"].rstrip())
    return EXIT_OK
