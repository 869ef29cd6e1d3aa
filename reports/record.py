"""The run record: schema ``conv3dt-report/1`` — build, validate, load, write atomically.

A run record is one JSON object (strict JSON: no NaN/Infinity; an infinite headroom is the
string ``"inf"``) that everything downstream reads: Markdown/HTML rendering, ``report diff``,
``report matrix``, ``repro``. This module imports nothing from fuzz/, oracle/ or impl/.

Validation is done by hand (no jsonschema dependency): ``validate`` raises ``RecordError``
with one line naming the first thing that is wrong, e.g.
``report.json: findings[3].kind: 'oops' is not one of value-mismatch, exactness, ...``.

Writing is atomic: the text goes to a temp file in the same directory, is fsync'ed, then
``os.replace``d over the target, so a reader never sees half a record and a failed write never
destroys the previous one. An interrupted run writes ``partial: true`` and ``interrupted``
(what stopped it), and is still a valid record.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = "conv3dt-report/1"
FINDING_KINDS = ("value-mismatch", "exactness", "accept-reject", "error-class", "crash",
                 "timeout", "shape", "dtype", "metamorphic", "accumulation-precision")
FINDING_STATUSES = ("new", "known", "baseline")   # baseline: present in --baseline record
VERDICTS = ("pass", "fail")
CASE_FIELDS = ("dtype", "data_format", "value_shape", "filter_shape", "output_shape", "strides",
               "dilations", "padding", "forms")


class RecordError(ValueError):
    """A run record is missing, unreadable, not JSON, of another schema, or malformed."""


# ---------------------------------------------------------------------------- building
def new_record(environment: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """An empty, valid record: no examples, no findings, verdict pass."""
    return {
        "schema": SCHEMA,
        "partial": False,
        "interrupted": None,
        "environment": dict(environment),
        "run": dict(run),
        "coverage": {"cells": {}, "examples": {}, "seconds": {}, "outcomes": {}},
        "matrix": {},
        "headroom": {},
        "findings": [],
        "ledger": {"entries": [], "matched": {}, "stale": [], "enabled": True},
        "baseline": None,
        "corpus": {"replayed": 0, "fixed": [], "still_failing": [], "known": [], "skipped": [],
                   "corrupt": []},
        "summary": {"verdict": "pass", "examples": 0, "examples_per_s": 0.0, "findings": 0,
                    "new": 0, "known": 0, "baselined": 0, "by_kind": {}, "by_target": {},
                    "worst_headroom": {}},
    }


def mark_interrupted(record: dict[str, Any], reason: str) -> dict[str, Any]:
    """Mark ``record`` as the partial result of a run stopped by ``reason`` (e.g. 'SIGINT')."""
    record["partial"] = True
    record["interrupted"] = {"reason": str(reason)}
    return record


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats so the record is strict JSON (inf → "inf", nan → None)."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def headroom_value(h: Any) -> float | None:
    """A record headroom (number, "inf" or None) as a float (or None)."""
    if h is None:
        return None
    if h == "inf":
        return math.inf
    if h == "-inf":
        return -math.inf
    return float(h)


# ---------------------------------------------------------------------------- validation
def _fail(where: str, msg: str) -> None:
    raise RecordError(f"{where}: {msg}")


def _need(obj: dict[str, Any], key: str, types: type | tuple[type, ...], where: str,
          nullable: bool = False) -> Any:
    if key not in obj:
        _fail(where, f"missing field {key!r}")
    value = obj[key]
    if value is None and nullable:
        return value
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        _fail(f"{where}.{key}", f"expected {_tname(types)}, got a boolean")
    if not isinstance(value, types):
        _fail(f"{where}.{key}", f"expected {_tname(types)}, got {type(value).__name__}")
    return value


def _tname(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


def _check_headroom(value: Any, where: str) -> None:
    if value is None or value == "inf":
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(where, f"expected a finite number, \"inf\" or null, got {value!r}")


def validate_finding(f: Any, where: str) -> None:
    if not isinstance(f, dict):
        _fail(where, f"expected an object, got {type(f).__name__}")
    for key in ("id", "kind", "target", "property", "expected", "observed", "repro", "status"):
        _need(f, key, str, where)
    if f["kind"] not in FINDING_KINDS:
        _fail(f"{where}.kind", f"{f['kind']!r} is not one of {', '.join(FINDING_KINDS)}")
    if f["status"] not in FINDING_STATUSES:
        _fail(f"{where}.status", f"{f['status']!r} is not one of {', '.join(FINDING_STATUSES)}")
    _need(f, "known_deviation", str, where, nullable=True)
    if "headroom" not in f:
        _fail(where, "missing field 'headroom'")
    _check_headroom(f["headroom"], f"{where}.headroom")
    case = _need(f, "case", dict, where)
    for key in CASE_FIELDS:
        if key not in case:
            _fail(f"{where}.case", f"missing field {key!r}")
    _need(f, "count", int, where)


def validate(record: Any, source: str = "record") -> dict[str, Any]:
    """Check ``record`` against ``conv3dt-report/1``; return it or raise ``RecordError``."""
    if not isinstance(record, dict):
        _fail(source, f"expected a JSON object, got {type(record).__name__}")
    schema = record.get("schema")
    if schema != SCHEMA:
        _fail(source, f"schema is {schema!r}, expected {SCHEMA!r} (not a conv3dt run record?)")
    _need(record, "partial", bool, source)
    interrupted = _need(record, "interrupted", dict, source, nullable=True)
    if record["partial"] and interrupted is None:
        _fail(f"{source}.interrupted", "a partial record must say what interrupted it")
    _need(record, "environment", dict, source)
    run = _need(record, "run", dict, source)
    for key, types in (("command", str), ("profile", str), ("targets", list),
                       ("duration_s", (int, float)), ("examples", int)):
        _need(run, key, types, f"{source}.run")
    _need(run, "seed", (int, str), f"{source}.run", nullable=True)
    coverage = _need(record, "coverage", dict, source)
    for key in ("cells", "examples", "seconds", "outcomes"):
        _need(coverage, key, dict, f"{source}.coverage")
    _need(record, "matrix", dict, source)
    headroom = _need(record, "headroom", dict, source)
    for target, per_dtype in headroom.items():
        if not isinstance(per_dtype, dict):
            _fail(f"{source}.headroom.{target}", "expected an object of dtypes")
        for dtype, cell in per_dtype.items():
            where = f"{source}.headroom.{target}.{dtype}"
            if not isinstance(cell, dict):
                _fail(where, "expected an object")
            _need(cell, "n", int, where)
            _check_headroom(cell.get("max"), f"{where}.max")
            _need(cell, "samples", list, where)
    findings = _need(record, "findings", list, source)
    for i, f in enumerate(findings):
        validate_finding(f, f"{source}.findings[{i}]")
    ledger = _need(record, "ledger", dict, source)
    _need(ledger, "matched", dict, f"{source}.ledger")
    _need(ledger, "stale", list, f"{source}.ledger")
    _need(record, "baseline", dict, source, nullable=True)
    summary = _need(record, "summary", dict, source)
    verdict = _need(summary, "verdict", str, f"{source}.summary")
    if verdict not in VERDICTS:
        _fail(f"{source}.summary.verdict", f"{verdict!r} is not one of {', '.join(VERDICTS)}")
    for key in ("examples", "findings", "new", "known"):
        _need(summary, key, int, f"{source}.summary")
    new = sum(1 for f in findings if f["status"] == "new")
    if summary["new"] != new:
        _fail(f"{source}.summary.new", f"says {summary['new']} but findings[] has {new} new")
    if (verdict == "pass") != (new == 0):
        _fail(f"{source}.summary.verdict", f"{verdict!r} contradicts {new} new finding(s)")
    return record


# ---------------------------------------------------------------------------- I/O
def dumps(record: dict[str, Any]) -> str:
    """Strict, sorted, stable JSON text (private ``_`` keys dropped)."""
    public = {k: v for k, v in record.items() if not k.startswith("_")}
    return json.dumps(json_safe(public), indent=1, sort_keys=True, allow_nan=False) + "\n"


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a record; every failure is one ``RecordError`` line naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise RecordError(f"{p}: is a directory, expected a report.json file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{p}: cannot read: {exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return validate(obj, source=str(p))


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)       # mkstemp's 0600 would make reports unreadable to others
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def write(path: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Validate, then atomically write ``record`` as strict JSON."""
    safe = json_safe({k: v for k, v in record.items() if not k.startswith("_")})
    validate(safe, source=str(path))
    return write_atomic(path, dumps(safe))
