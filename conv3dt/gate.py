"""``conv3dt gate``: judge targets against the contract; write reports; exit 0/1/2/3/4/128+n.

The conformance session (``pytest <conformance dir>`` with pytest-xdist and a Hypothesis
profile; ``conv3dt.session``) runs as a *subprocess*, so a crash of pytest itself is an
infrastructure failure (exit 3), never a lost gate. Its output (``findings-*.jsonl``,
``stats-*.json``) is merged into the run record (``reports.merge``), rendered
(``reports.render``) and summarised. A wall-clock budget (``--max-time``) ends the session
cleanly (exit 4: cut short, nothing new), and a stop signal (Ctrl-C, SIGTERM, SIGHUP) leaves a
valid partial record (exit 128 + the signal number).

Nothing already in the report directory is lost: the session writes into a fresh temp
directory, every report file is written to a temp name and ``os.replace``d, and files are only
replaced once the run produced a record. Bad usage never touches the directory.

Where the conformance tests are (first that exists): ``$CONV3DT_CONFORMANCE_DIR``; the
``conformance`` directory inside the installed ``fuzz`` package; ``tests/conformance`` next
to the installed ``conv3dt`` package (a source checkout or ``pip install -e``).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conv3dt import blas_policy, declare, scale

from conv3dt.cli import EXIT_FINDINGS, EXIT_INFRA, EXIT_OK, EXIT_USAGE  # noqa: F401 - re-exported
from conv3dt.session import (build_record, junit_counts, log_tail, print_summary, publish,
                             pytest_command, run_session)
from conv3dt.reports.verdict import EXIT_INCOMPLETE, ExitFacts, exit_for  # noqa: F401
from conv3dt.signals import exit_code

DEFAULT_REPORT_DIR = "conv3dt-report"
PROFILES = ("ci", "dev", "nightly")
EXIT_INTERRUPTED = 130          # Ctrl-C; SIGTERM 143, SIGHUP 129 (conv3dt.signals.exit_code)
# The default wall-clock budget per profile (seconds; None: none). A ci gate takes ~3 minutes
# on 2 cores against every default target; the budget bounds a run against a kernel that
# crashes or hangs everywhere, so that CI still gets a record and a verdict.
MAX_TIME = {"ci": 900.0, "dev": 300.0, "nightly": None}
WIND_DOWN_S = 120.0             # after the budget: time for in-flight calls and the record


class UsageError(Exception):
    """Bad usage or input: one line, exit 2."""


class InfraError(Exception):
    """The run could not be carried out (a target cannot start, pytest broke): exit 3."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UsageError(message)


def build_parser(prog: str = "conv3dt gate") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Run the conformance properties and the regression corpus against "
                "the targets and write DIR/report.json, report.md, report.html, junit.xml and "
                "plots.",
                epilog="exit codes: 0 pass (only known deviations), 1 new findings, 2 bad usage "
                "or input, 3 infrastructure failure (a target cannot start, pytest broke), "
                "4 cut short by --max-time with no new finding, 130 / 143 / 129 interrupted by "
                "Ctrl-C / SIGTERM / SIGHUP (a valid partial record is still written).\n"
                "examples:\n  conv3dt gate\n  conv3dt gate --profile dev --target impl\n"
                "  conv3dt gate --target mypkg.kernels:conv3d_transpose --baseline old/report.json")
    p.add_argument("--target", action="append", metavar="NAME", default=None,
                   help="target to judge (repeatable): a name from 'conv3dt targets' or "
                   "module:function with TF's v1 signature; default: every TF path available + impl")
    p.add_argument("--profile", default="ci", metavar="{ci,dev,nightly}",
                   help="Hypothesis profile: ci (default, reproducible), dev (fast), nightly (large)")
    p.add_argument("--examples", type=int, metavar="N", help="examples per property (overrides the profile)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for the session (default 0)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                   help="pytest-xdist worker processes (0: run in the pytest process; default: %(default)s)")
    p.add_argument("--report-dir", default=DEFAULT_REPORT_DIR, metavar="DIR",
                   help="where the reports go (default: ./%(default)s)")
    p.add_argument("--baseline", metavar="RECORD.json",
                   help="a previous run record: its findings do not fail the gate (new ones do)")
    p.add_argument("--no-ledger", action="store_true",
                   help="disable the known-deviation ledger: every deviation counts as new")
    p.add_argument("--ledger", metavar="PATH", action="append", default=None,
                   help="a ledger file or directory of your own (repeatable), added to the shipped "
                   "one: its entries mark your target's known deviations (docs/ledger.md)")
    p.add_argument("--ledger-replace", action="store_true",
                   help="use only the --ledger files, not the shipped ledger")
    p.add_argument("--as-shipped-onednn", choices=("0", "1"), default=None, metavar="{0,1}",
                   help="force oneDNN off (0) or on (1) for the as-shipped TF paths (tf-eager, "
                   "tf-graph, tf-function, tf-xla, tf-v2, tf-grad), to check a verdict for the "
                   "other kind of CPU; default: TF decides by this CPU, as a user gets")
    p.add_argument("--max-time", type=float, default=None, metavar="SECONDS",
                   help="wall-clock budget of the gate: when it runs out no new example is drawn, "
                   "what is in flight finishes and the record of everything judged so far is "
                   "written, marked cut short (exit 1 if it holds new findings, else 4); "
                   "0: no budget; default: " + ", ".join(f"{k} {v or 'none'}" for k, v in MAX_TIME.items()))
    p.add_argument("--shrink-seconds", type=float, default=None, metavar="SECONDS",
                   help="how long Hypothesis may shrink any one distinct failure before later hits "
                   "of it are only counted (default: 60)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    declare.add_arguments(p)
    scale.add_arguments(p)
    return p


# ---------------------------------------------------------------------------- checks
def conformance_dir() -> Path:
    candidates = []
    if os.environ.get("CONV3DT_CONFORMANCE_DIR"):
        candidates.append(Path(os.environ["CONV3DT_CONFORMANCE_DIR"]))
    import conv3dt
    from conv3dt import fuzz
    candidates.append(Path(fuzz.__file__).parent / "conformance")
    candidates.append(Path(conv3dt.__file__).resolve().parent.parent / "tests" / "conformance")
    for c in candidates:
        if c.is_dir() and any(c.glob("test_*.py")):
            return c
    raise InfraError("cannot find the conformance tests (looked in "
                     + ", ".join(str(c) for c in candidates) + "); set CONV3DT_CONFORMANCE_DIR")


def check_args(args: argparse.Namespace) -> tuple[list[str], dict[str, Any] | None]:
    """Validate usage; returns (targets, baseline record). Raises UsageError."""
    from conv3dt.oracle.targets import UnknownTarget, as_shipped_onednn, default_targets, resolve
    from conv3dt.reports.record import RecordError, load

    if args.profile not in PROFILES:
        raise UsageError(f"unknown profile {args.profile!r}: use one of {', '.join(PROFILES)}")
    if args.examples is not None and args.examples < 1:
        raise UsageError(f"--examples must be at least 1, got {args.examples}")
    if args.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {args.workers}")
    if args.max_time is not None and args.max_time < 0:
        raise UsageError(f"--max-time must be 0 (no budget) or more seconds, got {args.max_time}")
    if args.shrink_seconds is not None and args.shrink_seconds <= 0:
        raise UsageError(f"--shrink-seconds must be positive, got {args.shrink_seconds}")
    if args.no_ledger and args.ledger:
        raise UsageError("--no-ledger and --ledger contradict each other")
    if args.ledger_replace and not args.ledger:
        raise UsageError("--ledger-replace needs at least one --ledger PATH to use instead")
    scale.check(args, UsageError)
    for path in args.ledger or []:
        if not Path(path).exists():
            raise UsageError(f"--ledger {path}: no such file or directory")
    if args.as_shipped_onednn is None:
        try:
            as_shipped_onednn()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    targets = list(dict.fromkeys(args.target or default_targets()))
    for name in targets:
        try:
            resolve(name)
        except UnknownTarget as exc:
            raise UsageError(str(exc)) from None
    baseline = None
    if args.baseline:
        try:
            baseline = load(args.baseline)
        except RecordError as exc:
            raise UsageError(f"--baseline: {exc}") from None
    out = Path(args.report_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"--report-dir {out}: not writable ({exc.strerror or exc})") from None
    from conv3dt.oracle.capabilities import CapabilityError
    try:
        args.declared = declare.from_args(args, targets)
    except CapabilityError as exc:
        raise UsageError(f"capabilities: {exc}") from None
    args.ledger_spec = ledger_spec(args)
    args.ledger_entries = None if args.no_ledger else ledger_entries(args.ledger_spec)
    if args.as_shipped_onednn is not None:   # the workers (in the pytest child) inherit it
        from conv3dt.oracle.targets import AS_SHIPPED_ONEDNN_VAR
        os.environ[AS_SHIPPED_ONEDNN_VAR] = args.as_shipped_onednn
    return targets, baseline


def verdict_exit(record: dict[str, Any], interrupted: str | None, cut_short: bool,
                 counts: dict[str, Any], rc: int, baseline: dict[str, Any] | None,
                 out: Path) -> tuple[int, str]:
    """The gate's exit code for a written record, and its reason in one line (the record keeps
    both, and the console's first line says it: never "PASS" and then exit 3). The ladder is
    ``reports.verdict.exit_for``'s."""
    errors = counts["errors"]
    return exit_for(ExitFacts(
        new=record["summary"]["new"],
        stopped=(exit_code(interrupted), f"interrupted ({interrupted})") if interrupted else None,
        cut_short="cut short by --max-time" if cut_short else None,
        unjudged=": not everything was judged",
        infra=(f"{errors} test error(s) ({counts['first_error']}); see {out / 'pytest.log'}"
               if errors else None),
        gaps=tuple((record["coverage"].get("tripwire") or {}).get("gaps") or ()),
        gaps_note=" (the run cannot vouch for them; docs/architecture.md, coverage tripwire)",
        unexplained=(f"pytest reported {counts['failures']} failure(s) but the session recorded "
                     f"no new finding; see {out / 'pytest.log'}"
                     if rc == 1 and not baseline else None)))


def preflight(targets: list[str], declared: dict[str, Any] | None = None,
              timeout: float = 60.0) -> None:
    """Start every non-TF target once (cheap) so one that cannot start is exit 3 up front, and
    read what each declares it implements: a declaration not in the schema is exit 2, named."""
    from conv3dt.oracle.capabilities import Capabilities, CapabilityError
    from conv3dt.oracle.pool import TargetPool, TargetUnavailable
    from conv3dt.oracle.targets import resolve, tf_installed

    for name in targets:
        spec = resolve(name)
        if spec.kind == "tf":
            if not tf_installed():
                raise InfraError(f"target {name} cannot start: no TensorFlow is installed. Install "
                                 f"one (pip install 'conv3dt[tf]' brings tensorflow-cpu; tensorflow "
                                 f"and tf-nightly are gated as well), or name only non-TF targets "
                                 f"with --target (e.g. --target impl --target mypkg:fn)")
            continue
        try:
            with TargetPool(name, timeout=timeout) as pool:
                if name not in (declared or {}):
                    entry = pool.declared()
                    if entry.get("error"):
                        raise UsageError(f"target {name}: {entry['error']}")
                    if entry["declared"] is not None:
                        Capabilities.from_mapping(entry["declared"],
                                                  f"{name}.conv3dt_capabilities")
        except CapabilityError as exc:
            raise UsageError(f"capabilities: {exc}") from None
        except TargetUnavailable as exc:
            raise InfraError(f"target {name} cannot start: {str(exc).strip().splitlines()[-1]}") from None


def tf_version_warning(targets: list[str], spec: str) -> str | None:
    """One warning line when the TF to be gated is newer than every version the ledger names
    (its known deviations are then not excused there: a new finding may be an old deviation),
    or when two TF distributions overwrite each other's ``tensorflow`` module; else None."""
    from conv3dt.fuzz.ledger import Ledger
    from conv3dt.oracle.targets import resolve, tf_distributions

    if spec == "none" or not any(resolve(t).kind == "tf" for t in targets):
        return None
    found = tf_distributions()
    if len(found) > 1:
        return ("two TensorFlow distributions are installed and share one tensorflow module: "
                + ", ".join(f"{n} {v}" for n, v in found) + "; the gated one is whichever was "
                "installed last")
    if not found:
        return None
    dist, version = found[0]
    named = {tuple(int(x) for x in v.split(".")[:2]) for e in Ledger.load(spec).entries
             for v in e.tf_versions if re.fullmatch(r"\d+\.\d+(\..*)?", v)}
    have = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    if named and len(have) == 2 and have > max(named):
        newest = ".".join(map(str, max(named)))
        return (f"{dist} {version} is newer than any TF version the ledger names (newest "
                f"{newest}): its version-scoped known deviations do not apply, so a finding "
                f"may be one of them; check it against docs/ledger.md")
    return None


def ledger_spec(args: argparse.Namespace) -> str:
    """What the session loads (``fuzz.ledger.Ledger.load``): ``none``, or the shipped ledger
    followed by the user's ``--ledger`` sources (only theirs with ``--ledger-replace``), as
    absolute paths joined by ``os.pathsep``."""
    from conv3dt.fuzz.ledger import DEFAULT_LEDGER

    if args.no_ledger:
        return "none"
    own = [str(Path(p).resolve()) for p in args.ledger or []]
    return os.pathsep.join(own if args.ledger_replace else [str(DEFAULT_LEDGER), *own])


def ledger_label(args: argparse.Namespace) -> str:
    """The ledger as the record names it: none, shipped, shipped + yours, or yours only."""
    if args.no_ledger:
        return "none"
    own = " + ".join(args.ledger or [])
    return own if args.ledger_replace else ("shipped + " + own if own else "shipped")


def ledger_entries(spec: str) -> list[dict[str, Any]]:
    """The ledger's entries (id, reason, TF versions, targets) for the record."""
    from conv3dt.fuzz.ledger import DEFAULT_LEDGER, Ledger

    try:
        ledger = Ledger.load(spec)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"ledger: {type(exc).__name__}: {exc}"
        raise (InfraError(msg) if spec == str(DEFAULT_LEDGER) else UsageError(msg)) from None
    return [{"id": e.id, "reason": e.reason, "tf_versions": ", ".join(e.tf_versions) or "any",
             "kernels": ", ".join(e.kernels) or "any",
             "targets": ", ".join(e.targets) or "any"} for e in ledger.entries]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        targets, baseline = check_args(args)
    except UsageError as exc:
        print(f"conv3dt gate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InfraError as exc:
        print(f"conv3dt gate: infrastructure failure: {exc}", file=sys.stderr)
        return EXIT_INFRA
    out = Path(args.report_dir)
    work = Path(tempfile.mkdtemp(prefix=".run-", dir=out))
    try:
        try:
            conf = conformance_dir()
            preflight(targets, args.declared)
            scale.preflight_store(args, "conv3dt gate")
            warning = tf_version_warning(targets, args.ledger_spec)
            if warning:
                print(f"conv3dt gate: warning: {warning}", file=sys.stderr, flush=True)
        except InfraError as exc:
            print(f"conv3dt gate: infrastructure failure: {exc}", file=sys.stderr)
            return EXIT_INFRA
        except UsageError as exc:
            print(f"conv3dt gate: {exc}", file=sys.stderr)
            return EXIT_USAGE
        session, junit, log = work / "session", work / "junit.xml", work / "pytest.log"
        session.mkdir()
        ledger = args.ledger_spec
        budget = MAX_TIME.get(args.profile) if args.max_time is None else (args.max_time or None)
        deadline = None if budget is None else time.time() + budget
        cmd = pytest_command(conf, session, junit, targets, args.profile, args.seed, args.examples,
                             args.workers, ledger, deadline, args.shrink_seconds, args.declared,
                             args.shard_obj)
        if not args.quiet:
            print(f"conv3dt gate: {len(targets)} target(s), profile {args.profile}, seed {args.seed}, "
                  f"{args.workers} worker(s), budget {f'{budget:.0f} s' if budget else 'none'} ...",
                  flush=True)
        hard_stop = None if budget is None else time.monotonic() + budget + WIND_DOWN_S
        blas_threads = blas_policy.apply()        # inherited by pytest, its workers, targets
        from conv3dt.progress import LiveProgress   # one line, refreshed; TTY only, not --quiet
        with LiveProgress(session, budget, not args.quiet and sys.stdout.isatty(),
                          baseline_ids=[f["id"] for f in (baseline or {}).get("findings", [])]):
            rc, interrupted, seconds = run_session(cmd, log, hard_stop)
        stopped_at_deadline = hard_stop is not None and time.monotonic() >= hard_stop
        counts = junit_counts(junit)
        if not interrupted and not stopped_at_deadline and rc not in (0, 1):
            print(f"conv3dt gate: infrastructure failure: pytest exited {rc}"
                  + (f" ({counts['first_error']})" if counts["first_error"] else "")
                  + f"; log tail:\n{log_tail(log)}", file=sys.stderr)
            return EXIT_INFRA
        if not any(session.glob("stats-*.json")):
            if interrupted:
                print(f"conv3dt gate: interrupted ({interrupted}) before any example ran; nothing "
                      f"written", file=sys.stderr)
                return exit_code(interrupted)
            print(f"conv3dt gate: infrastructure failure: the session wrote no statistics; log tail:\n"
                  f"{log_tail(log)}", file=sys.stderr)
            return EXIT_INFRA
        from conv3dt.reports.merge import SessionError
        try:
            record = build_record("gate", args, targets, session, seconds, baseline,
                                  {"max_time_s": budget, "blas_threads": blas_threads,
                                   **scale.record_run(args, session, "conv3dt gate")})
        except SessionError as exc:
            print(f"conv3dt gate: infrastructure failure: {exc}", file=sys.stderr)
            return EXIT_INFRA
        record["run"]["pytest"] = {"returncode": rc, **{k: counts[k] for k in ("tests", "failures", "errors")}}
        tripwire = record["coverage"].get("tripwire") or {}
        cut_short = (stopped_at_deadline or bool((record.get("failures") or {}).get("cut_short"))
                     or bool(tripwire.get("past_deadline")))
        from conv3dt.reports.record import mark_interrupted
        if interrupted:
            mark_interrupted(record, interrupted)
        elif cut_short:
            mark_interrupted(record, f"max-time ({budget:.0f} s)")
        code, reason = verdict_exit(record, interrupted, cut_short, counts, rc, baseline, out)
        record["run"]["exit"] = {"code": code, "reason": reason}
        publish(record, out, junit, log)
        if os.path.isdir(out / "session"):
            shutil.rmtree(out / "session", ignore_errors=True)
        os.replace(session, out / "session")
        print_summary(record, out, args.quiet)
        if code == EXIT_INFRA:
            print(f"conv3dt gate: infrastructure failure: {reason}", file=sys.stderr)
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)
