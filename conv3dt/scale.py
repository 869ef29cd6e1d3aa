"""The gate's and the campaign's scale-out options: ``--shard I/N`` and ``--example-db URL``.

- ``--shard I/N`` (``fuzz.shard``): the session runs shard I of N — a disjoint slice of the
  corpus, the explicit examples and the coverage floor, and a search seed of its own
  (``Shard.seed``: the run seed for 1/1). The record says so (``run.shard``); its coverage
  tripwire is deferred to ``conv3dt report merge`` (``coverage.tripwire.deferred``).
- ``--example-db URL`` (or ``$CONV3DT_EXAMPLE_DB``): a shared Redis store next to the local
  example directory (``fuzz.exampledb``). Checked once before the session: unreachable, the run
  goes on with the local directory and one warning line (here; the session's processes log
  theirs in ``pytest.log``). A store lost during the session is
  reported by the processes that saw it (``example_db`` in their stats) and the gate prints one
  warning line; the record says what happened (``run.example_db``). Never a failed gate.

Docs: docs/scale-out.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

STATES = ("shared", "unreachable", "lost")     # worse to the right


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shard", metavar="I/N", default=None,
                   help="run shard I of N (1-based) of the run: a disjoint slice of the corpus, "
                   "explicit examples and coverage floor, and a search seed of its own; merge the "
                   "N records with 'conv3dt report merge' (the coverage tripwire is checked there)")
    p.add_argument("--example-db", metavar="URL", default=None,
                   help="a shared example store, redis://host:port/db (default: "
                   "$CONV3DT_EXAMPLE_DB): failing examples any shard or machine saved replay "
                   "here; losing it degrades to the local directory with one warning")


def check(args: argparse.Namespace, usage_error: type[Exception]) -> None:
    """Validate ``--shard`` / ``--example-db`` (``usage_error`` on bad usage); sets
    ``args.shard_obj`` and, for the session, ``$CONV3DT_EXAMPLE_DB``."""
    from conv3dt.fuzz.exampledb import URL_VAR, check_url
    from conv3dt.fuzz.shard import Shard, ShardError

    try:
        args.shard_obj = Shard.parse(args.shard)
    except ShardError as exc:
        raise usage_error(str(exc)) from None
    url = args.example_db or os.environ.get(URL_VAR) or None
    if url:
        problem = check_url(url)
        if problem:
            raise usage_error(f"--example-db {problem}")
        os.environ[URL_VAR] = url
    args.example_db = url


def preflight_store(args: argparse.Namespace, prog: str) -> None:
    """Reach the shared store once: unreachable → one warning line here. The session's
    processes find it unreachable too and use the local directory (``fuzz.exampledb``): a
    Hypothesis run with a database draws other examples than one without (its pareto front
    takes from the same random stream), so a lost store must leave a database in place, not
    switch it off, for the run to judge what it would have judged with an empty store."""
    from conv3dt.fuzz import exampledb

    args.example_db_status = None
    if not args.example_db:
        return
    saved_err, sys.stderr = sys.stderr, _Prefixed(sys.stderr, prog)
    try:
        store = exampledb.shared_store(args.example_db)
    finally:
        sys.stderr = saved_err
    args.example_db_status = dict(exampledb.STATUS)


class _Prefixed:
    """stderr with the command's name in place of the library's ``conv3dt:`` prefix."""

    def __init__(self, stream, prog: str) -> None:
        self.stream, self.prog = stream, prog

    def write(self, text: str) -> int:
        return self.stream.write(text.replace("conv3dt: ", f"{self.prog}: ", 1))

    def flush(self) -> None:
        self.stream.flush()


def session_store_status(session: Path, before: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the shared store did in a session: the worst state any process reported
    (``example_db`` in ``stats-*.json``), else what the preflight found."""
    worst = dict(before) if before else None
    for path in sorted(Path(session).glob("stats-*.json")):
        try:
            st = json.loads(path.read_text(encoding="utf-8")).get("example_db") or {}
        except (OSError, ValueError):
            continue
        if st.get("state") in STATES and (worst is None or STATES.index(st["state"])
                                          > STATES.index(worst.get("state", "shared"))):
            worst = {k: st.get(k, "") for k in ("url", "state", "error")}
    return worst


def record_run(args: argparse.Namespace, session: Path | None, prog: str) -> dict[str, Any]:
    """``run.shard`` and ``run.example_db`` for the record; prints the one warning line when
    the store was lost during the session."""
    out: dict[str, Any] = {"shard": args.shard_obj.to_json(args.seed)}
    status = session_store_status(session, getattr(args, "example_db_status", None)) if session \
        else getattr(args, "example_db_status", None)
    if status:
        out["example_db"] = status
        before = getattr(args, "example_db_status", None) or {}
        if status.get("state") == "lost" and before.get("state") != "lost":
            print(f"{prog}: warning: example database {status['url']} lost during the run "
                  f"({status.get('error', '')}); continued with the local directory only",
                  file=sys.stderr, flush=True)
            args.example_db_status = status
    return out
