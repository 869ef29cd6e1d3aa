"""``conv3dt repro FINDING_ID``: print a finding's standalone reproducer from a run record.

The reproducer is a self-contained Python script (NumPy recipes for the arrays, the call in
exactly the argument forms that were used). ``FINDING_ID`` may be a unique prefix.
Exit 0 printed, 2 unknown id / unreadable record.
"""
from __future__ import annotations

import argparse
import json
import sys
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
    return p


def find(record: dict, finding_id: str) -> dict:
    exact = [f for f in record["findings"] if f["id"] == finding_id]
    matches = exact or [f for f in record["findings"] if f["id"].startswith(finding_id)]
    if not matches:
        raise LookupError(f"no finding {finding_id!r} in the record ({len(record['findings'])} findings)")
    if len(matches) > 1:
        raise LookupError(f"{finding_id!r} is ambiguous: " + ", ".join(f["id"] for f in matches[:5]))
    return matches[0]


def main(argv: list[str] | None = None) -> int:
    from reports.record import RecordError, load

    args = build_parser().parse_args(argv)
    try:
        finding = find(load(args.report), args.finding_id)
    except (RecordError, LookupError) as exc:
        print(f"conv3dt repro: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(finding, indent=1, sort_keys=True))
    else:
        print(f"# {finding['id']}: {finding['kind']} on {finding['target']} ({finding['property']})")
        print(f"# expected: {finding['expected']}")
        print(f"# observed: {finding['observed']}")
        print(finding["repro"].rstrip())
    return EXIT_OK
