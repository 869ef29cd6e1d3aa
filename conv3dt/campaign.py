"""``conv3dt fuzz``: a time-budgeted fuzzing campaign with live progress.

A campaign is a sequence of *rounds*; each round is one conformance session (the same
subprocess the gate runs) with a fresh seed (``--seed``, ``--seed + 1``, ...) and
``--round-examples`` examples per property, under the ``nightly`` profile by default (its
Hypothesis database keeps and replays what earlier rounds found). After every round the
cumulative record is merged and written atomically, and a progress line is printed:

    round 3  0:02:41 / 0:10:00  4,210 examples  26/s  findings 0 new, 5 known

While the campaign runs the record says ``partial: true`` (``interrupted.reason`` =
"campaign in progress"), so even a killed campaign leaves the last round's valid record.
Ctrl-C, SIGTERM or SIGHUP stops the running round (pytest still writes what it judged), merges
it, and writes a valid partial record (``interrupted.reason`` = the signal's name; exit 128 + its
number unless there are new findings: 1). When the budget is used up the last
round is stopped the same way and the record is final (``partial: false``).
Exit codes as for the gate: 0 no new findings, 1 new findings, 2 bad usage, 3 infrastructure,
130 / 143 / 129 stopped by Ctrl-C / SIGTERM / SIGHUP with nothing new.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from conv3dt import gate, scale
from conv3dt import session as session_run
from conv3dt.cli import EXIT_FINDINGS, EXIT_INFRA, EXIT_OK, EXIT_USAGE
from conv3dt.signals import exit_code, reason_of


def build_parser():
    p = gate.build_parser("conv3dt fuzz")
    p.description = ("A long fuzzing campaign: repeated conformance sessions with new seeds until "
                     "the time budget is used; live progress; Ctrl-C leaves a valid partial record.")
    p.epilog = ("exit codes: 0 no new findings, 1 new findings, 2 bad usage, 3 infrastructure failure.\n"
                "example:\n  conv3dt fuzz --budget 3600 --target tf-eager --target tf-xla")
    p.set_defaults(profile="nightly", report_dir="conv3dt-fuzz")
    p.add_argument("--budget", type=float, default=600.0, metavar="SECONDS",
                   help="wall-clock budget of the campaign (default %(default)s)")
    p.add_argument("--round-examples", type=int, default=200, metavar="N",
                   help="examples per property per round (default %(default)s; --examples overrides)")
    return p


def _progress(round_no: int, elapsed: float, budget: float, record: dict) -> str:
    s = record["summary"]
    fmt = lambda t: time.strftime("%H:%M:%S", time.gmtime(t))  # noqa: E731
    rate = s["examples"] / elapsed if elapsed > 0 else 0.0
    return (f"round {round_no}  {fmt(elapsed)} / {fmt(budget)}  {s['examples']:,} examples  "
            f"{rate:.0f}/s  findings {s['new']} new, {s['known']} known")


def main(argv: list[str] | None = None) -> int:
    from conv3dt.reports.merge import SessionError
    from conv3dt.reports.record import mark_interrupted

    try:
        args = build_parser().parse_args(argv)
        if args.budget <= 0:
            raise gate.UsageError(f"--budget must be positive, got {args.budget}")
        if args.round_examples < 1:
            raise gate.UsageError(f"--round-examples must be at least 1, got {args.round_examples}")
        targets, baseline = gate.check_args(args)
    except gate.UsageError as exc:
        print(f"conv3dt fuzz: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except gate.InfraError as exc:
        print(f"conv3dt fuzz: infrastructure failure: {exc}", file=sys.stderr)
        return EXIT_INFRA
    out = Path(args.report_dir)
    work = Path(tempfile.mkdtemp(prefix=".run-", dir=out))
    start = time.monotonic()
    deadline = start + args.budget
    record, interrupted, round_no = None, None, 0
    try:
        try:
            conf = gate.conformance_dir()
            gate.preflight(targets, args.declared)
            scale.preflight_store(args, "conv3dt fuzz")
        except gate.InfraError as exc:
            print(f"conv3dt fuzz: infrastructure failure: {exc}", file=sys.stderr)
            return EXIT_INFRA
        except gate.UsageError as exc:
            print(f"conv3dt fuzz: {exc}", file=sys.stderr)
            return gate.EXIT_USAGE
        log = work / "pytest.log"
        print(f"conv3dt fuzz: {len(targets)} target(s), profile {args.profile}, budget "
              f"{args.budget:.0f} s, reports in {out}", flush=True)
        while time.monotonic() < deadline - 1.0 and not interrupted:
            round_no += 1
            session = work / f"session-{round_no}"
            session.mkdir()
            seed = args.seed + round_no - 1
            cmd = session_run.pytest_command(conf, session, work / "junit.xml", targets, args.profile, seed,
                                      args.examples or args.round_examples, args.workers,
                                      args.ledger_spec,
                                      time.time() + (deadline - time.monotonic()), args.shrink_seconds,
                                      args.declared, args.shard_obj)
            rc, interrupted, _ = session_run.run_session(cmd, log, deadline=deadline)
            if not any(session.glob("stats-*.json")):
                if interrupted or time.monotonic() >= deadline - 1.0:
                    break          # stopped before this round judged anything
                print(f"conv3dt fuzz: infrastructure failure: round {round_no} (pytest exit {rc}) "
                      f"wrote no statistics; log tail:\n{session_run.log_tail(log)}", file=sys.stderr)
                return EXIT_INFRA
            try:
                record = session_run.build_record("fuzz", args, targets, session, time.monotonic() - start,
                                           baseline, {"budget_s": args.budget, "rounds": 0}, record)
                record["run"].update(scale.record_run(args, session, "conv3dt fuzz"))
            except SessionError as exc:
                print(f"conv3dt fuzz: infrastructure failure: {exc}", file=sys.stderr)
                return EXIT_INFRA
            record["run"]["rounds"] = round_no
            record["run"]["seeds"] = [args.seed, seed]
            mark_interrupted(record, interrupted or "campaign in progress")
            session_run.publish(record, out, None, None)
            print(_progress(round_no, time.monotonic() - start, args.budget, record), flush=True)
            shutil.rmtree(session, ignore_errors=True)
    except KeyboardInterrupt as exc:     # Ctrl-C / SIGTERM / SIGHUP between rounds
        interrupted = reason_of(exc)
        if record is not None:
            mark_interrupted(record, interrupted)
            session_run.publish(record, out, None, None)
    finally:
        if (work / "pytest.log").exists():
            (work / "pytest.log").replace(out / "pytest.log")
        shutil.rmtree(work, ignore_errors=True)
    if record is None:
        print("conv3dt fuzz: no round completed; nothing written", file=sys.stderr)
        return exit_code(interrupted) if interrupted else EXIT_INFRA
    if interrupted:    # also when the stopped round had judged nothing: the last record says so
        mark_interrupted(record, interrupted)
    else:
        record["partial"], record["interrupted"] = False, None
    session_run.publish(record, out, None, None)
    session_run.print_summary(record, out, args.quiet)
    if interrupted and record["summary"]["verdict"] != "fail":
        return exit_code(interrupted)
    return EXIT_FINDINGS if record["summary"]["verdict"] == "fail" else EXIT_OK
