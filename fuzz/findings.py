"""Finding: one judged deviation, ready for the run record.

A Finding names *what* is wrong (``kind``), *where* (``target``, ``property``, and ``kernels``:
the kernel(s) the oracle observed running the judged calls), on *which* call (the full Case JSON), what the contract expected and what the target did, how far a
numeric result was from the bound (``headroom`` = error / bound, > 1 is a violation), which
known-deviation ledger entry (if any) covers it, and a standalone reproducer.

``id`` is stable across runs: a hash of kind, target, property and the Case, so the same
seed yields the same ids and a regression diff can say "new" and "fixed".
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

FindingKind = Literal["value-mismatch", "exactness", "accept-reject", "error-class", "crash",
                      "timeout", "shape", "dtype", "metamorphic", "accumulation-precision"]
FINDING_KINDS: tuple[str, ...] = ("value-mismatch", "exactness", "accept-reject", "error-class",
                                  "crash", "timeout", "shape", "dtype", "metamorphic",
                                  "accumulation-precision")


def finding_id(kind: str, target: str, prop: str, case_json: dict[str, Any]) -> str:
    text = json.dumps([kind, target, prop, case_json], sort_keys=True, separators=(",", ":"))
    return "F" + hashlib.sha256(text.encode()).hexdigest()[:11]


@dataclass(frozen=True)
class Finding:
    kind: str
    target: str
    property: str
    case: dict[str, Any]              # Case.to_json()
    case_summary: dict[str, Any]      # Case.summary(): what a report table shows
    expected: str
    observed: str
    repro: str
    headroom: float | None = None
    known_deviation: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    kernels: list[dict[str, Any]] = field(default_factory=list)  # KernelObservation JSON, per kernel that ran

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS:
            raise ValueError(f"Finding.kind must be one of {FINDING_KINDS}, got {self.kind!r}")
        if not self.id:
            object.__setattr__(self, "id", finding_id(self.kind, self.target, self.property, self.case))

    def with_known_deviation(self, ledger_id: str | None) -> "Finding":
        return replace(self, known_deviation=ledger_id)

    @property
    def kernel_families(self) -> set[str]:
        """The kernel families (``oracle.kernels.KERNEL_FAMILIES``) that produced the Outcomes
        judged here: observed per call by the oracle."""
        return {k["family"] for k in self.kernels}

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.headroom is not None and self.headroom != self.headroom:  # nan is not JSON
            out["headroom"] = None
        elif self.headroom == float("inf"):
            out["headroom"] = "inf"
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Finding":
        try:
            data = dict(obj)
            if data.get("headroom") == "inf":
                data["headroom"] = float("inf")
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"not a valid Finding JSON object: {exc}") from exc
