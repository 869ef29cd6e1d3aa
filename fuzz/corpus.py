"""The regression corpus: every shrunk Finding saved as JSON, replayed in every run.

An entry ``<dir>/<finding id>.json`` holds the Finding's kind, target, property and the full
Case. ``replay`` re-judges it: the same kind of deviation again → ``reproduced`` (it stays a
failure unless the ledger now covers it); none → ``fixed``. Entries whose target is not in this
run are ``skipped``.
"""
from __future__ import annotations

import json
from pathlib import Path

from fuzz.findings import Finding
from oracle.case import Case

SCHEMA = "conv3dt-corpus/1"
DEFAULT_DIR = Path(__file__).with_name("corpus")


def save(finding: Finding, directory: str | Path = DEFAULT_DIR) -> Path:
    """Write (or overwrite) the corpus entry of a final Finding; returns its path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{finding.id}.json"
    entry = {"schema": SCHEMA, "finding_id": finding.id, "kind": finding.kind,
             "target": finding.target, "property": finding.property, "case": finding.case,
             "expected": finding.expected, "observed": finding.observed}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load(directory: str | Path = DEFAULT_DIR) -> list[dict]:
    """All entries, sorted by id; a malformed file raises ValueError naming it."""
    d = Path(directory)
    entries = []
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
            if entry.get("schema") != SCHEMA:
                raise ValueError(f"schema {entry.get('schema')!r}, expected {SCHEMA!r}")
            entry["case_obj"] = Case.from_json(entry["case"])
        except (ValueError, KeyError) as exc:
            raise ValueError(f"corpus entry {path}: {exc}") from exc
        entries.append(entry)
    return entries
