"""The regression corpus: every shrunk Finding saved as JSON, replayed in every run.

An entry ``<dir>/<finding id>.json`` (schema ``conv3dt-corpus/1``) holds the Finding's id, kind,
target, property, expected/observed text and the full Case.

- ``save`` is atomic (a unique temporary file in the same directory, then ``os.replace``, so a
  reader or a concurrent xdist worker never sees half a file) and deduplicated by finding id:
  an existing valid entry with the same id is kept as it is (the first shrunk example wins).
- ``scan`` returns the valid entries *and* one ``CorpusError`` per unreadable file, naming it, so
  that one corrupt file is one clear failing replay item rather than a crashed collection;
  ``load`` is the strict form (raises the first ``CorpusError``).
- ``replay`` re-judges an entry on its target with its own property (differential / exact /
  invalid judging, or the metamorphic identity named by ``metamorphic-<identity>``) and returns
  its status: ``fixed`` (no Finding of the entry's kind any more), ``known`` (it reproduces but
  the ledger now covers it), ``still_failing`` (it reproduces, unknown) or ``skipped`` (target
  not selected). Findings keep the entry's property, so a reproduced Finding has the entry's id.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from conv3dt.fuzz.findings import Finding
from conv3dt.oracle.case import Case

SCHEMA = "conv3dt-corpus/1"
DEFAULT_DIR = Path(__file__).with_name("corpus")
STATUSES = ("fixed", "known", "still_failing", "skipped")


class CorpusError(ValueError):
    """A corpus file that cannot be used; ``path`` names it."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"corrupt corpus entry {self.path}: {reason}")


def entry_of(finding: Finding) -> dict:
    return {"schema": SCHEMA, "finding_id": finding.id, "kind": finding.kind,
            "target": finding.target, "property": finding.property, "case": finding.case,
            "expected": finding.expected, "observed": finding.observed}


def save(finding: Finding, directory: str | Path = DEFAULT_DIR) -> Path:
    """Write the corpus entry of a final Finding (once per id); returns its path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{finding.id}.json"
    if path.exists():
        try:
            if read_entry(path)["finding_id"] == finding.id:
                return path
        except CorpusError:
            pass  # a corrupt file under this id: replace it with the good entry
    fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{finding.id}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600: a corpus entry is an ordinary shared file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(entry_of(finding), indent=1, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_entry(path: str | Path) -> dict:
    """One entry with its parsed Case under ``case_obj``; CorpusError naming the file."""
    path = Path(path)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(entry, dict):
            raise ValueError(f"a JSON {type(entry).__name__}, expected an object")
        if entry.get("schema") != SCHEMA:
            raise ValueError(f"schema {entry.get('schema')!r}, expected {SCHEMA!r}")
        missing = [k for k in ("finding_id", "kind", "target", "property", "case") if k not in entry]
        if missing:
            raise ValueError(f"missing fields {missing}")
        if entry["finding_id"] != path.stem:
            raise ValueError(f"finding_id {entry['finding_id']!r} does not match the file name")
        entry["case_obj"] = Case.from_json(entry["case"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorpusError(path, f"{type(exc).__name__}: {exc}") from exc
    return entry


def scan(directory: str | Path = DEFAULT_DIR) -> tuple[list[dict], list[CorpusError]]:
    """(valid entries sorted by id, one CorpusError per unreadable ``*.json``)."""
    d = Path(directory)
    entries, errors = [], []
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            entries.append(read_entry(path))
        except CorpusError as exc:
            errors.append(exc)
    return entries, errors


def load(directory: str | Path = DEFAULT_DIR) -> list[dict]:
    """All entries, sorted by id; the first unreadable file raises CorpusError naming it."""
    entries, errors = scan(directory)
    if errors:
        raise errors[0]
    return entries


@dataclass
class Replay:
    status: str                                              # one of STATUSES
    findings: list[Finding] = field(default_factory=list)    # every Finding of the re-run
    unknown: list[Finding] = field(default_factory=list)     # those the ledger does not know


def rejudge(entry: dict, run, impl_run=None) -> list[Finding]:
    """The Findings of re-running an entry's Case on its target with its property's judging.
    ``run(list[Case]) -> list[Outcome]`` runs the target; ``impl_run`` runs ``impl`` (invalid
    Cases: the error-class reference)."""
    from conv3dt.fuzz import metamorphic
    from conv3dt.fuzz.judge import STRICT_TARGETS, judge_rejection, judge_value
    from conv3dt.fuzz.truth import truth_of

    case, target, prop = entry["case_obj"], entry["target"], entry["property"]
    if prop.startswith("metamorphic"):
        identity = prop.removeprefix("metamorphic").lstrip("-")
        names = [identity] if identity in metamorphic.CHECKS else ["determinism", "power-of-two"]
        return [f for v in metamorphic.run_checks(case, run, target, names) for f in v.findings]
    (out,) = run([case])
    if case.label == "valid":
        return judge_value(case, out, truth_of(case), target, prop, strict=target in STRICT_TARGETS)[0]
    impl_out = impl_run([case])[0] if impl_run is not None else None
    return judge_rejection(case, out, impl_out, target, prop)


def replay(entry: dict, ctx) -> Replay:
    """Re-judge one entry through a ``fuzz.properties.Context`` (ledger applied, known
    deviations recorded by ``ctx.settle``)."""
    target = entry["target"]
    if target not in ctx.pools:
        return Replay("skipped")
    caps = ctx.capabilities.get(target)
    if caps is not None and caps.admits(entry["case_obj"]) is not None:
        return Replay("skipped")   # outside what the target declares (oracle.capabilities)
    reference = ctx.impl_grad_pool if entry["case_obj"].is_gradient else ctx.impl_pool
    impl_run = reference.run if reference is not None else None
    findings = rejudge(entry, lambda cs: ctx.run(target, cs), impl_run)
    unknown = ctx.settle(findings)
    same = [f for f in findings if f.kind == entry["kind"]]
    if not same:
        status = "fixed"
    elif any(f.kind == entry["kind"] for f in unknown):
        status = "still_failing"
    else:
        status = "known"
    return Replay(status, findings, unknown)


def record(stats: dict, entry_id: str, status: str) -> None:
    """Add one replay result to ``stats["corpus"]`` = {"replayed": n, "fixed": [ids],
    "still_failing": [ids], "known": [ids], "skipped": [ids], "corrupt": [paths]}."""
    c = stats.setdefault("corpus", {"replayed": 0, "fixed": [], "still_failing": [], "known": [],
                                    "skipped": [], "corrupt": []})
    if status == "corrupt":
        c["corrupt"].append(entry_id)
        return
    if status != "skipped":
        c["replayed"] += 1
    c[status].append(entry_id)
