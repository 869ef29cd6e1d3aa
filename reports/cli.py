"""``conv3dt report diff | matrix | render | merge`` — work with run records (JSON only).

Exit codes: 0 ok (``diff``: no regression), 1 ``diff`` found a regression, 2 bad usage or a
missing / corrupt / wrong-schema record (one line on stderr naming the file and the problem).
``merge`` exits with the merged run's code, as the gate would for it (0 / 1 / 3 / 4 / 128+n;
``reports.shards.merged_exit``), or 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from conv3dt.reports import record as rec
from conv3dt.reports.diff import diff_records, render_diff
from conv3dt.reports.matrix import build_matrix, render_matrix_html, render_matrix_markdown
from conv3dt.reports.render import render_all
from conv3dt.reports.shards import merge_records


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"conv3dt report: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="conv3dt report", description="Work with conv3dt run records "
                "(schema conv3dt-report/1, see reports/README.md).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    d = sub.add_parser("diff", help="what changed between two records (exit 1 on regression)",
                       description="New findings, fixed ones, changed error classes, headroom "
                       "drift and coverage change from OLD to NEW. Exit 1 when NEW regressed.")
    d.add_argument("old", metavar="OLD.json")
    d.add_argument("new", metavar="NEW.json")
    d.add_argument("--json", action="store_true", help="print the diff as JSON instead of Markdown")
    m = sub.add_parser("matrix", help="targets × TF versions from several records",
                       description="One column per record (its TensorFlow version).")
    m.add_argument("records", metavar="RECORD.json", nargs="+")
    m.add_argument("--out", metavar="DIR", help="also write DIR/matrix.md and DIR/matrix.html")
    r = sub.add_parser("render", help="re-render report.md/html and plots from a record",
                       description="Write report.md, report.html and the plot PNGs for a record.")
    r.add_argument("record", metavar="RECORD.json")
    r.add_argument("--out", metavar="DIR", help="output directory (default: the record's directory)")
    g = sub.add_parser("merge", help="merge shard records (conv3dt gate --shard I/N) into one run",
                       description="One record of the same schema from the shards' records: "
                       "findings deduplicated by id with counts summed, coverage and ledger hits "
                       "combined, the coverage tripwire applied to the union, one verdict and one "
                       "exit code; writes report.json, report.md, report.html, junit.xml and plots. "
                       "Order-independent and idempotent; refuses records of different TF "
                       "versions, ledgers or shard counts.")
    g.add_argument("records", metavar="RECORD.json", nargs="+")
    g.add_argument("-o", "--out", metavar="DIR", required=True, help="where the merged reports go")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "diff":
            d = diff_records(rec.load(args.old), rec.load(args.new))
            print(json.dumps(d, indent=1) if args.json else render_diff(d), end="" if not args.json else "\n")
            return 1 if d["regressed"] else 0
        if args.command == "matrix":
            m = build_matrix([(p, rec.load(p)) for p in args.records])
            text = render_matrix_markdown(m)
            if args.out:
                rec.write_atomic(Path(args.out) / "matrix.md", text)
                rec.write_atomic(Path(args.out) / "matrix.html", render_matrix_html(m))
            print(text, end="")
            return 0
        if args.command == "merge":
            return _merge(args.records, Path(args.out))
        record = rec.load(args.record)
        out = Path(args.out) if args.out else Path(args.record).parent
        written = render_all(record, out, write_json=args.out is not None and
                             Path(args.out).resolve() != Path(args.record).resolve().parent)
        print("\n".join(str(p) for p in written.values()))
        return 0
    except rec.RecordError as exc:
        print(f"conv3dt report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"conv3dt report: cannot write: {exc}", file=sys.stderr)
        return 2


def _merge(paths: list[str], out: Path) -> int:
    """``report merge``: load, merge, write every report (atomically, report.json last)."""
    from conv3dt.reports.junit import render_junit

    merged = merge_records([(p, rec.load(p)) for p in paths])
    render_all(merged, out)     # validates first: nothing is written for an invalid record
    rec.write_atomic(out / "junit.xml", render_junit(merged))
    s = merged["summary"]
    code, reason = merged["run"]["exit"]["code"], merged["run"]["exit"]["reason"]
    print(f"conv3dt report merge: {s['verdict'].upper()} — {len(merged['run']['shards'])} "
          f"shard(s), {s['examples']:,} examples, {s['new']} new, {s['known']} known finding(s); exit {code} "
          f"({reason}); reports in {out}")
    return code
