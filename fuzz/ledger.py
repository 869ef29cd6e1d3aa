"""The known-deviation ledger: narrow, named predicates over observed facts of a Finding.

An entry (``fuzz/ledger/*.json``, schema ``conv3dt-ledger/1``) has an ``id``, a ``reason`` and
predicate fields; *every* field given must match (absent fields match anything):

- ``kernels``      kernel families that ran the judged calls (``oracle.kernels.KERNEL_FAMILIES``:
                   ``onednn``, ``stock``, ``xla``, ``impl``, ``jax``, ``onnxruntime``,
                   ``openvino``, ``external``), as the oracle
                   observed them per call. A deviation of a kernel is keyed here, never by the
                   name of a target that happens to run that kernel on some CPU: every kernel the
                   Finding names must be listed.
- ``targets``      target-name globs, for what belongs to an API path rather than a kernel (the
                   v1 signature, v2's keywords, the tf-grad harness): ``tf-v2``, ``tf-grad``...
- ``tf_versions``  TF version globs (``2.21.*``); compared with the workers' TF version
- ``kinds``        Finding kinds (``accept-reject``, ``error-class``, ...)
- ``labels``       Case label globs (``valid``, ``invalid:channel-*``)
- ``properties``   property names (``differential``, ``invalid``, ``metamorphic-batch-split``...)
- ``error_class``  short class names of the observed exception
- ``message``      a regex searched in the observed message
- ``dtypes``       Case dtypes
- ``features``     ``{feature: value}`` over ``case_features(case)`` (layout, dilation>1, ...)

An entry must name kernels or targets, and one of kinds/labels/message: a blanket "ignore
target X" cannot be written. Every name an entry uses is checked when the ledger loads — an
unknown field, kernel family, finding kind, feature, dtype, label, property or target glob that
matches nothing (a misspelling) is an error naming the entry, not a silent non-match. Hits are
counted per run; entries that matched nothing are reported as possibly stale.

A ledger is one or more sources, each a JSON file or a directory of them (``*.json``, in name
order): the shipped directory ``fuzz/ledger/`` (``tf.json`` for TensorFlow, ``onnxruntime.json``
and ``openvino.json`` for the cross-framework targets) plus a vendor's overlay, say (``conv3dt gate
--ledger mine.json`` adds; ``--ledger-replace`` uses only the given ones). Entries are tried in
source order; an id may appear once across all sources. The user-facing schema:
``docs/ledger.md``.
"""
from __future__ import annotations

import fnmatch
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conv3dt.fuzz.findings import FINDING_KINDS, Finding
from conv3dt.fuzz.grad_invalid import GRAD_FAMILY_NAMES
from conv3dt.fuzz.invalid import FAMILY_NAMES
from conv3dt.oracle.case import spatial_dims, spatial_triple
from conv3dt.oracle.kernels import KERNEL_FAMILIES
from conv3dt.oracle.targets import KNOWN_TARGETS

#: The shipped ledger: every ``*.json`` in ``fuzz/ledger/`` (``tf.json``: TensorFlow's deviations;
#: ``onnxruntime.json``, ``openvino.json``: the cross-framework targets'), read in name order.
DEFAULT_LEDGER = Path(__file__).with_name("ledger")
FIELDS = ("id", "reason", "kernels", "targets", "tf_versions", "kinds", "labels", "properties",
          "error_class", "message", "dtypes", "features")
LEDGER_SCHEMA = "conv3dt-ledger/1"
KNOWN_DTYPES = ("float16", "bfloat16", "float32", "float64", "int32", "int64", "complex64")
KNOWN_PROPERTIES = ("differential", "exact", "invalid", "realistic", "corpus",
                    "grad_differential", "grad_exact", "grad_invalid", "grad_realistic") + tuple(
    f"metamorphic-{name}" for name in ("determinism", "power-of-two", "adjoint", "layout",
                                       "linearity-value", "linearity-filter", "batch-split"))


def _nonfinite_recipe(spec: dict[str, Any] | None) -> bool:
    """Whether an ArraySpec (JSON) can hold inf/nan: a special-values pool with one, or inline data."""
    if not spec:
        return False
    if spec.get("recipe") == "special":
        params = spec.get("params") or {}
        pool = (params if isinstance(params, dict) else dict(params)).get("pool") or []
        return any(not math.isfinite(float(x)) for x in pool)
    return spec.get("recipe") == "inline"


def _valid_output_below_kernel(case: dict[str, Any], fshape, dil) -> bool:
    """VALID with some output size O < the effective kernel (K - 1)·d + 1: where TF's truncating
    shape arithmetic differs from floor (docs: semantics.md)."""
    out = case.get("output_shape")
    if case.get("padding") != "VALID" or len(fshape) != 5 or len(dil) != 3 or not isinstance(out, list) \
            or len(out) != 5 or not all(isinstance(x, int) for x in out + list(dil)):
        return False
    sp = spatial_dims(out, case.get("data_format"))
    return any(o < (k - 1) * d + 1 for o, k, d in zip(sp, fshape[:3], dil))


def case_features(case: dict[str, Any]) -> dict[str, Any]:
    """Facts about a Case (JSON form) that ledger entries may name."""
    layout = case.get("data_format")
    dil = spatial_triple(case.get("dilations"), layout)
    vshape = (case.get("value") or {}).get("shape") or []
    fshape = (case.get("filter") or {}).get("shape") or []
    return {
        "layout": layout,
        "dilation>1": any(isinstance(d, int) and d > 1 for d in dil),
        "cout=0": len(fshape) == 5 and fshape[3] == 0,
        "cout=1": len(fshape) == 5 and fshape[3] == 1,
        "cin=0": len(fshape) == 5 and fshape[4] == 0,
        "valid-output<kernel": _valid_output_below_kernel(case, fshape, dil),
        "empty-grad-output": any(n == 0 for n in (case.get("grad_output") or {}).get("shape") or []),
        "nonfinite-input": any(_nonfinite_recipe(case.get(k)) for k in ("value", "filter", "grad_output")),
        "empty-value": 0 in vshape and isinstance(case.get("output_shape"), list)
        and all(isinstance(x, int) for x in case["output_shape"])
        and math.prod(case["output_shape"]) > 0,
        "zero-size": 0 in vshape or 0 in fshape or (isinstance(case.get("output_shape"), list)
                                                    and 0 in case["output_shape"]),
        "value_arg": case.get("value_arg"), "filter_arg": case.get("filter_arg"),
        "output_shape_form": case.get("output_shape_form"),
        "value_recipe": (case.get("value") or {}).get("recipe"),
        "filter_dtype": (case.get("filter") or {}).get("dtype"),
        "stride-or-dilation>=2^31-1": any(isinstance(x, int) and x >= 2**31 - 1 for x in (
            *spatial_triple(case.get("strides"), layout), *dil)),
        "zero-filter-spatial": len(fshape) == 5 and 0 in fshape[:3],
        "empty-output": isinstance(case.get("output_shape"), list)
        and all(isinstance(x, int) for x in case["output_shape"])
        and math.prod(case["output_shape"]) == 0,
        # the backward pass (fuzz.gradients): which gradient (None: the forward), and the two
        # geometries TF's gradient kernels get wrong (docs/gradients.md)
        "gradient": case.get("grad_wrt"),
        "same-negative-pad": _same_negative_pad(case),
        "dilation-h!=w": len(dil) == 3 and dil[1] != dil[2],
    }


def _same_negative_pad(case: dict[str, Any]) -> bool:
    from conv3dt.fuzz.gradients import negative_same_pad
    from conv3dt.oracle.case import CASE_SCHEMA, Case

    try:
        return negative_same_pad(Case.from_json({**case, "schema": CASE_SCHEMA}))
    except (ValueError, TypeError, KeyError):
        return False


FEATURE_NAMES = tuple(case_features({}))
LABELS = ("valid", *(f"invalid:{f}" for f in FAMILY_NAMES + GRAD_FAMILY_NAMES))


class LedgerError(ValueError):
    """A ledger that cannot be used: unreadable, or an entry naming something unknown."""


def _unknown(names, known, what: str, entry: str, globs: bool = False) -> None:
    """Raise LedgerError for names (or globs matching nothing) outside ``known``."""
    bad = [n for n in names if not (any(fnmatch.fnmatchcase(k, n) for k in known) if globs
                                    else n in known)]
    if bad:
        raise LedgerError(f"ledger entry {entry!r}: unknown {what} {bad}; known: {list(known)}")


@dataclass
class Entry:
    id: str
    reason: str
    kernels: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    tf_versions: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    error_class: list[str] = field(default_factory=list)
    message: str | None = None
    dtypes: list[str] = field(default_factory=list)
    features: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("kernels", "targets", "tf_versions", "kinds", "labels", "properties",
                     "error_class", "dtypes"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise LedgerError(f"ledger entry {self.id!r}: {name} must be a list of strings, "
                                  f"got {value!r}")
        if not isinstance(self.id, str) or not isinstance(self.reason, str) or not (
                self.message is None or isinstance(self.message, str)) or not isinstance(
                self.features, dict):
            raise LedgerError(f"ledger entry {self.id!r}: id, reason and message are strings, "
                              f"features an object")
        if not (self.kernels or self.targets) or not (self.kinds or self.labels or self.message):
            raise LedgerError(f"ledger entry {self.id!r} is too broad: it needs kernels or target "
                              f"globs, and at least one of kinds/labels/message")
        _unknown(self.kernels, KERNEL_FAMILIES, "kernel families", self.id)
        _unknown([t for t in self.targets if ":" not in t], tuple(KNOWN_TARGETS), "target globs",
                 self.id, globs=True)
        _unknown(self.kinds, FINDING_KINDS, "finding kinds", self.id)
        _unknown(self.labels, LABELS, "label globs", self.id, globs=True)
        _unknown(self.properties, KNOWN_PROPERTIES, "properties", self.id)
        _unknown(self.dtypes, KNOWN_DTYPES, "dtypes", self.id)
        _unknown(list(self.features), FEATURE_NAMES, "features", self.id)
        bad_versions = [v for v in self.tf_versions if not re.fullmatch(r"\d+\.[\d*]+(\.[\d*]+)?", v)]
        if bad_versions:
            raise LedgerError(f"ledger entry {self.id!r}: tf_versions {bad_versions} are not "
                              f"version globs like '2.21.*'")
        try:
            self._rx = re.compile(self.message) if self.message else None
        except re.error as exc:
            raise LedgerError(f"ledger entry {self.id!r}: message is not a valid regex: {exc}") from None

    def matches(self, f: Finding, tf_version: str | None) -> bool:
        globs = lambda value, pats: not pats or any(fnmatch.fnmatchcase(str(value), p) for p in pats)  # noqa: E731
        if not globs(f.target, self.targets) or not globs(f.case.get("label"), self.labels):
            return False
        if self.kernels and not (f.kernel_families and f.kernel_families <= set(self.kernels)):
            return False
        if self.tf_versions and (tf_version is None or not globs(tf_version, self.tf_versions)):
            return False
        if self.kinds and f.kind not in self.kinds:
            return False
        if self.properties and f.property not in self.properties:
            return False
        cls = (f.details.get("error_class") or "").rsplit(".", 1)[-1]
        if self.error_class and cls not in self.error_class:
            return False
        if self._rx is not None and not self._rx.search(
                str(f.details.get("message") or "") + "\n" + f.observed):
            return False
        if self.dtypes and (f.case_summary.get("dtype") not in self.dtypes):
            return False
        feats = case_features(f.case) if self.features else {}
        return all(feats.get(k) == v for k, v in self.features.items())


def ledger_files(spec: str | Path | list | tuple) -> list[Path]:
    """The ledger JSON files a spec names, in order (see ``Ledger.load``)."""
    parts = [Path(p) for p in (spec if isinstance(spec, (list, tuple))
                               else str(spec).split(os.pathsep)) if str(p)]
    files: list[Path] = []
    for part in parts:
        if part.is_dir():
            found = sorted(part.glob("*.json"))
            if not found:
                raise LedgerError(f"{part}: a ledger directory without any *.json file")
            files += found
        else:
            files.append(part)
    if not files:
        raise LedgerError("no ledger file given")
    return files


def _read_entries(path: Path) -> list[Entry]:
    """One ledger file's entries, every name in them checked (``LedgerError`` naming the file)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LedgerError(f"{path}: cannot read the ledger: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise LedgerError(f"{path}: not a ledger: expected an object with an 'entries' list")
    if data.get("schema", LEDGER_SCHEMA) != LEDGER_SCHEMA:
        raise LedgerError(f"{path}: schema {data.get('schema')!r}; expected {LEDGER_SCHEMA!r}")
    entries = []
    for i, e in enumerate(data["entries"]):
        if not isinstance(e, dict) or "id" not in e or "reason" not in e:
            raise LedgerError(f"{path}: entries[{i}] needs at least 'id' and 'reason'")
        unknown = sorted(k for k in e if k not in FIELDS)
        if unknown:
            raise LedgerError(f"{path}: ledger entry {e['id']!r}: unknown fields {unknown}; "
                              f"known: {FIELDS}")
        try:
            entries.append(Entry(**e))
        except LedgerError as exc:
            raise LedgerError(f"{path}: {exc}") from None
    return entries


class Ledger:
    """Loaded entries plus this run's hit counts."""

    def __init__(self, entries: list[Entry], tf_version: str | None = None) -> None:
        ids = [e.id for e in entries]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate ledger ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        self.entries, self.tf_version = entries, tf_version
        self.hits: dict[str, int] = {e.id: 0 for e in entries}

    @classmethod
    def load(cls, spec: str | Path | list | tuple | None = DEFAULT_LEDGER,
             tf_version: str | None = None) -> "Ledger":
        """The entries of every source in ``spec`` (a path, a sequence of paths, or paths joined
        by ``os.pathsep``; each a JSON file or a directory of them). ``None`` or ``"none"``: an
        empty ledger (every deviation is new)."""
        if spec is None or str(spec) == "none":
            return cls([], tf_version)
        entries: list[Entry] = []
        where: dict[str, Path] = {}
        for path in ledger_files(spec):
            for entry in _read_entries(path):
                if entry.id in where:
                    raise LedgerError(f"{path}: ledger entry {entry.id!r} is already defined in "
                                      f"{where[entry.id]}; an overlay adds entries under ids "
                                      f"of its own")
                where[entry.id] = path
                entries.append(entry)
        return cls(entries, tf_version)

    def classify(self, finding: Finding) -> Finding:
        """The finding with ``known_deviation`` set to the first matching entry (counted)."""
        for e in self.entries:
            if e.matches(finding, self.tf_version):
                self.hits[e.id] += 1
                return finding.with_known_deviation(e.id)
        return finding

    def stale(self) -> list[str]:
        return [i for i, n in self.hits.items() if n == 0]
