"""The ``conv3dt`` command line: one entry point, each subcommand in its own module.

Every subcommand module exposes ``main(argv: list[str]) -> int``; this file only
dispatches, so the CLI stays importable without TensorFlow. Exit codes across the CLI:
0 success / only known deviations, 1 new findings, 2 bad usage or input, 3 infrastructure
failure (e.g. a target cannot start), 4 cut short by the time budget with nothing new, 128 + the
signal number when stopped by Ctrl-C (130), SIGTERM (143) or SIGHUP (129).
"""
from __future__ import annotations

import importlib
import sys

from conv3dt import signals
from conv3dt.reports.verdict import EXIT_FINDINGS, EXIT_INFRA, EXIT_OK, EXIT_USAGE  # noqa: F401

# subcommand -> (module, one-line help). Two-word commands ("bench impl") are keyed by both words.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "gate": ("conv3dt.gate", "run the conformance properties and corpus against targets; write reports"),
    "fuzz": ("conv3dt.campaign", "a long fuzzing campaign with a time budget and live progress"),
    "continuous": ("conv3dt.continuous", "fuzz the properties continuously under HypoFuzz, sharing the example store"),
    "report": ("conv3dt.reports.cli", "report diff | matrix | render | merge: work with run records"),
    "repro": ("conv3dt.repro", "print the standalone reproducer of a finding"),
    "targets": ("conv3dt.oracle.cli", "list the targets with availability and versions"),
    "bench impl": ("conv3dt.bench_impl", "benchmark impl vs TF's fastest path that accepts each shape"),
    "bench oracle": ("conv3dt.bench_oracle", "calls/s per target on tiny cases through the workers"),
    "bench fuzz": ("conv3dt.bench_fuzz", "judged differential examples/s and where the time goes"),
}


def _usage() -> str:
    width = max(len(k) for k in SUBCOMMANDS)
    lines = ["usage: conv3dt <command> [options]   (conv3dt <command> --help for its options)", "",
             "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "exit codes: 0 pass (only known deviations), 1 new findings, 2 bad usage, 3 infrastructure failure",
              "first run: conv3dt gate   (reports in ./conv3dt-report/)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Ctrl-C, SIGTERM (CI timeouts) and SIGHUP stop gate/fuzz the same way, leaving a valid
    # partial record (conv3dt.signals), also when SIGINT was inherited as ignored (a parent such
    # as a pytest-xdist worker): a campaign would otherwise run to its budget.
    signals.install()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return EXIT_OK if argv else EXIT_USAGE
    key = " ".join(argv[:2]) if " ".join(argv[:2]) in SUBCOMMANDS else argv[0]
    if key not in SUBCOMMANDS:
        hint = " (did you mean 'bench impl', 'bench oracle' or 'bench fuzz'?)" if key == "bench" else ""
        print(f"conv3dt: unknown command {key!r}{hint}; run 'conv3dt --help'", file=sys.stderr)
        return EXIT_USAGE
    try:
        module = importlib.import_module(SUBCOMMANDS[key][0])
    except ImportError as exc:
        print(f"conv3dt: {key!r} is not available in this installation ({exc})", file=sys.stderr)
        return EXIT_INFRA
    try:
        return int(module.main(argv[len(key.split()):]) or 0)
    except KeyboardInterrupt:
        print(f"conv3dt {key}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
