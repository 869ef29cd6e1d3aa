"""The conformance session a gate or a fuzz round runs, and the run record it becomes.

``pytest_command`` builds the session's command line (pytest + xdist + the conformance plugin's
options: profile, seed, examples, ledger, deadline, shrink budget); ``run_session`` runs it as a
subprocess and stops it cleanly on a stop signal or a hard deadline (SIGINT, so pytest still
writes its output); ``build_record`` merges its ``findings-*``/``stats-*`` into the run record
(``reports.merge``), ``publish`` writes every report atomically, ``print_summary`` prints the
verdict. Used by ``conv3dt.gate`` and ``conv3dt.campaign``.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

OWN_STOP_S = 10.0               # a stop signal that reached pytest too: its time to wind down


def pytest_command(conf: Path, session: Path, junit: Path, targets: list[str], profile: str,
                   seed: int, examples: int | None, workers: int, ledger: str | None,
                   deadline: float | None = None, shrink_seconds: float | None = None,
                   declared: dict[str, Any] | None = None, shard: Any = None) -> list[str]:
    """The conformance session's command line; ``deadline`` is a ``time.time()`` value;
    ``declared``: the user's capability declarations (``conv3dt.declare.from_args``), written
    into the session directory for the session to read; ``shard`` a ``fuzz.shard.Shard``:
    the session runs that shard with its own search seed (``Shard.seed(seed)``).

    With a shared example store (``$CONV3DT_EXAMPLE_DB``) the seed reaches each property as
    ``hypothesis.seed`` (``fuzz.profiles.seeded``) instead of ``--hypothesis-seed``, which would
    switch the database off."""
    from conv3dt.fuzz.exampledb import URL_VAR

    seed = seed if shard is None else shard.seed(seed)
    # --tb=native: Hypothesis formats every failing run's traceback through pytest, whose default
    # style parses the source of each frame; the record carries the findings, not tracebacks.
    cmd = [sys.executable, "-m", "pytest", str(conf), "-q", "-p", "no:cacheprovider", "--tb=native",
           f"--junitxml={junit}", f"--hypothesis-profile={profile}", f"--conv3dt-out={session}",
           f"--seed={seed}"] + ([] if os.environ.get(URL_VAR) else ["--hypothesis-seed", str(seed)])
    if shard is not None and not shard.whole:
        cmd.append(f"--conv3dt-shard={shard.text()}")
    if deadline is not None:
        cmd.append(f"--conv3dt-deadline={deadline:.3f}")
    if shrink_seconds is not None:
        cmd.append(f"--conv3dt-shrink-seconds={shrink_seconds:g}")
    if workers > 0:
        cmd += ["-p", "xdist", "-n", str(workers)]
    if examples is not None:
        cmd.append(f"--examples={examples}")
    if ledger is not None:
        cmd.append(f"--ledger={ledger}")
    for t in targets:
        cmd.append(f"--target={t}")
    if declared:
        from conv3dt.oracle.capabilities import write_declarations

        path = write_declarations(declared, session / "capabilities.json")
        cmd.append(f"--conv3dt-capabilities={path}")
    return cmd


def junit_counts(path: Path) -> dict[str, Any]:
    """tests / failures / errors and the first error message from pytest's JUnit XML."""
    out: dict[str, Any] = {"tests": 0, "failures": 0, "errors": 0, "first_error": ""}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return out
    for suite in root.iter("testsuite"):
        for key in ("tests", "failures", "errors"):
            out[key] += int(suite.get(key, 0))
    for case in root.iter("testcase"):
        err = case.find("error")
        if err is not None and not out["first_error"]:
            out["first_error"] = f"{case.get('name')}: {(err.get('message') or '').strip()[:300]}"
    return out


def _stop(proc: subprocess.Popen, grace: float = 30.0) -> int:
    """Ask pytest to stop (SIGINT: it still writes its output), then kill it after ``grace``.
    A signal sent to the whole process group (a terminal's Ctrl-C, ``timeout``'s SIGTERM) has
    reached pytest already: it gets ``OWN_STOP_S`` to wind down first, since a second interrupt
    would cut its JUnit XML and statistics short."""
    try:
        return proc.wait(timeout=OWN_STOP_S)
    except subprocess.TimeoutExpired:
        pass
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run_session(cmd: list[str], log: Path, deadline: float | None = None) -> tuple[int, str | None, float]:
    """Run pytest; returns (returncode, interrupted, seconds), ``interrupted`` the stop signal's
    name ("SIGINT", "SIGTERM", "SIGHUP"; ``conv3dt.signals``) or None.

    A stop signal and reaching ``deadline`` (a ``time.monotonic()`` value; not counted as
    interrupted) both stop pytest with SIGINT so it still writes its output.
    """
    from conv3dt.signals import reason_of

    # A gate run from inside a pytest-xdist worker (our own tests; a user's pytest plugin) must
    # not pass that worker's identity on: the session's controller would take PYTEST_XDIST_WORKER
    # as its own and overwrite its worker's stats file of the same name (seen: 0 examples).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTEST_XDIST_") and k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH")) if p)
    start = time.monotonic()
    interrupted = None
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    rc = proc.wait(timeout=left)
                    break
                except subprocess.TimeoutExpired:
                    rc = _stop(proc)
                    break
        except KeyboardInterrupt as exc:
            interrupted = reason_of(exc)
            while True:
                try:
                    rc = _stop(proc)
                    break
                except KeyboardInterrupt:    # impatient second Ctrl-C: kill now
                    proc.kill()
    return rc, interrupted, time.monotonic() - start


def environment() -> dict[str, Any]:
    from conv3dt.oracle.environment import capture_environment
    env = capture_environment()
    pk = env.get("packages", {})
    env["tensorflow"] = pk.get("tensorflow-cpu") or pk.get("tensorflow") or "not installed"
    env["numpy"] = pk.get("numpy")
    return env


def build_record(command: str, args: argparse.Namespace, targets: list[str], session: Path,
                 seconds: float, baseline: dict[str, Any] | None, extra_run: dict[str, Any] | None = None,
                 record: dict[str, Any] | None = None) -> dict[str, Any]:
    from conv3dt.gate import ledger_label
    from conv3dt.reports import merge
    from conv3dt.reports.record import new_record

    if record is None:
        run = {"command": command, "profile": args.profile, "seed": args.seed, "targets": targets,
               "examples": 0, "examples_requested": args.examples, "workers": args.workers,
               "duration_s": round(seconds, 2), "ledger": ledger_label(args),
               "baseline": args.baseline, "label": os.environ.get("CONV3DT_RUN_LABEL") or None,
               "as_shipped_onednn": getattr(args, "as_shipped_onednn", None),
               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        run.update(extra_run or {})
        record = new_record(environment(), run)
        if baseline is not None:
            record["run"]["baseline"] = args.baseline
            baseline.setdefault("run", {})["source"] = args.baseline
    else:
        record["run"]["duration_s"] = round(seconds, 2)
    findings, stats = merge.read_session(session)
    entries = None if args.no_ledger else args.ledger_entries
    return merge.merge_session(record, findings, stats, entries, not args.no_ledger, baseline)


def publish(record: dict[str, Any], out: Path, junit_tmp: Path | None, log_tmp: Path | None) -> None:
    """Render the reports and move JUnit XML / the pytest log into place (atomically). When
    pytest's JUnit XML is missing or cut short (a session stopped by a signal), the record's
    own rendering takes its place (``reports.junit``)."""
    from conv3dt.reports.junit import render_junit, well_formed
    from conv3dt.reports.record import write_atomic
    from conv3dt.reports.render import render_all

    if junit_tmp is not None and well_formed(junit_tmp):
        os.replace(junit_tmp, out / "junit.xml")
    elif junit_tmp is not None:
        write_atomic(out / "junit.xml", render_junit(record))
    if log_tmp is not None and log_tmp.exists():
        os.replace(log_tmp, out / "pytest.log")
    render_all(record, out)


def print_summary(record: dict[str, Any], out: Path, quiet: bool) -> None:
    from conv3dt.reports.markdown import summary_lines

    lines = summary_lines(record)
    print("\n".join(lines[:1] if quiet else lines))
    if not quiet:
        print(f"reports: {out / 'report.html'} (also report.json, report.md, junit.xml)")
        new = [f for f in record["findings"] if f["status"] == "new"][:5]
        for f in new:
            print(f"  new {f['id']} {f['kind']} on {f['target']} ({f['property']}): "
                  f"{f['observed'][:120]}   → conv3dt repro {f['id']} --report {out / 'report.json'}")


def log_tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""
