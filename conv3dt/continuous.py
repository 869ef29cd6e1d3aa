"""``conv3dt continuous``: the conformance properties under HypoFuzz, for a night or for ever.

Launches ``hypothesis fuzz -n N -- <conformance dir>/hypofuzz_targets.py --rootdir <that dir>
--hypothesis-profile nightly --target ...`` (``fuzz.continuous``) with the shared example store
(``--example-db`` or ``$CONV3DT_EXAMPLE_DB``) in engine mode: HypoFuzz schedules the properties
across its N processes, and across machines through the store, and saves what it finds there.
What it found reaches Findings and reports through any gate or campaign that names the same
store (``conv3dt gate --example-db URL``): docs/scale-out.md, "Continuous fuzzing".

Stops after ``--budget`` seconds (default: never), on Ctrl-C, SIGTERM or SIGHUP: HypoFuzz gets
SIGINT and 30 s, then is killed. Exit codes: 0 stopped as asked, 2 bad usage, 3 HypoFuzz is not
installed or ended by itself (e.g. nothing to collect; its output says why).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time

from conv3dt.cli import EXIT_INFRA, EXIT_OK, EXIT_USAGE
from conv3dt.fuzz.continuous import PROPERTIES

STOP_GRACE_S = 30.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"conv3dt continuous: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="conv3dt continuous", description="Fuzz the conformance properties "
                "continuously with HypoFuzz, sharing what it finds through the example store.",
                epilog="example:\n  conv3dt continuous --example-db redis://fuzzbox:6379/0 "
                "--target tf-eager --target impl -n 8 --budget 28800",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", action="append", metavar="NAME", default=None,
                   help="target to judge (repeatable; default: every TF path available + impl)")
    p.add_argument("--example-db", metavar="URL", default=None,
                   help="the shared store, redis://host:port/db (default: $CONV3DT_EXAMPLE_DB; "
                   "none: this machine's .hypothesis/conv3dt only)")
    p.add_argument("-n", "--processes", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="fuzzing processes on this machine (default: %(default)s)")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="stop after this long (default: run until stopped)")
    p.add_argument("--property", action="append", default=None, metavar="NAME",
                   choices=PROPERTIES,
                   help="fuzz only this property (repeatable; " + ", ".join(PROPERTIES) + "; "
                   "default: all). One per invocation is the robust choice: HypoFuzz 25.11.1 "
                   "under pytest 9 can lose the session fixture when a process switches between "
                   "properties (docs/scale-out.md)")
    p.add_argument("--dashboard", action="store_true", help="serve HypoFuzz's live dashboard")
    return p


def command(args: argparse.Namespace, conf) -> list[str]:
    """The ``hypothesis fuzz`` command line."""
    from conv3dt.fuzz.continuous import TARGETS_FILE

    cmd = [sys.executable, "-c", "from hypothesis.extra.cli import main; main()", "fuzz",
           "-n", str(args.processes), "--dashboard" if args.dashboard else "--no-dashboard", "--",
           str(conf / TARGETS_FILE), "--rootdir", str(conf), "-p", "no:cacheprovider",
           "--hypothesis-profile", "nightly"]
    if args.property:
        cmd += ["-k", " or ".join(f"test_{p}" for p in dict.fromkeys(args.property))]
    return cmd + [f"--target={t}" for t in args.target or []]


def main(argv: list[str] | None = None) -> int:
    from conv3dt import gate
    from conv3dt.fuzz.exampledb import ENGINE_VAR, URL_VAR, check_url
    from conv3dt.oracle.targets import UnknownTarget, resolve

    args = build_parser().parse_args(argv)
    try:
        if args.processes < 1:
            raise gate.UsageError(f"-n must be at least 1, got {args.processes}")
        if args.budget is not None and args.budget <= 0:
            raise gate.UsageError(f"--budget must be positive, got {args.budget}")
        for name in args.target or []:
            try:
                resolve(name)
            except UnknownTarget as exc:
                raise gate.UsageError(str(exc)) from None
        url = args.example_db or os.environ.get(URL_VAR) or None
        if url and check_url(url):
            raise gate.UsageError(f"--example-db {check_url(url)}")
    except gate.UsageError as exc:
        print(f"conv3dt continuous: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if importlib.util.find_spec("hypofuzz") is None:
        print("conv3dt continuous: infrastructure failure: HypoFuzz is not installed: "
              "pip install 'conv3dt[hypofuzz]'", file=sys.stderr)
        return EXIT_INFRA
    env = {**os.environ, ENGINE_VAR: "1", "PYTHONPATH": os.pathsep.join(
        p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)}
    if url:
        env[URL_VAR] = url
    cmd = command(args, gate.conformance_dir())
    print(f"conv3dt continuous: {args.processes} process(es), store "
          f"{url or 'local .hypothesis/conv3dt only'}, budget "
          f"{f'{args.budget:.0f} s' if args.budget else 'none'}", flush=True)
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    deadline = None if args.budget is None else time.monotonic() + args.budget
    try:
        rc = proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        print(f"conv3dt continuous: HypoFuzz ended by itself (exit {rc})", file=sys.stderr)
        return EXIT_INFRA
    except subprocess.TimeoutExpired:
        pass
    except KeyboardInterrupt:      # Ctrl-C, SIGTERM, SIGHUP (conv3dt.signals)
        pass
    _stop(proc)
    return EXIT_OK


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to HypoFuzz's process group (it and its workers), then SIGKILL after a grace."""
    for sig, wait in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
