"""What every metamorphic identity shares: the ``Verdict`` record, the bounds ``B`` and
``B* = B + e_ref`` (``e_ref = γ_n(u_ref)·A_ref/(1 − γ_n(u_ref))``, the reference's own error),
the accept/reject gate, derived variants (inlined arrays) and the multi-call reproducer."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from conv3dt.fuzz.bound import gamma, unit_roundoff_of
from conv3dt.fuzz.findings import Finding
from conv3dt.fuzz.judge import _process_failure, make_finding
from conv3dt.fuzz.recheck import identity_check_lines
from conv3dt.fuzz.truth import Truth
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.repro import render_calls

U64 = 2.0**-53


@dataclass
class Verdict:
    """What one identity found for one target on one Case."""
    identity: str
    findings: list[Finding] = field(default_factory=list)
    judged: bool = False              # every variant returned values and the identity was checked
    bit_identical: bool | None = None  # for layout / batch-split / determinism: the two sides' bits
    ratio: float | None = None        # max |lhs − rhs| / tolerance (≤ 1 holds)


# ----------------------------------------------------------------------------- helpers
def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return a.shape == b.shape and bool(np.all((a64 == b64) | (np.isnan(a64) & np.isnan(b64))))


def all_finite(*arrays) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(a, dtype=np.float64)))) for a in arrays)


def ref_type(dtype: str):
    return np.longdouble if dtype == "float64" else np.float64


def bound_of(truth: Truth, strict: bool) -> np.ndarray:
    return truth.bound_strict if strict else truth.bound


def bound_exact(truth: Truth, strict: bool) -> np.ndarray:
    """B* = B + e_ref: a bound on |y − y*| against the exact result."""
    g = gamma(max(truth.n_terms, 1), unit_roundoff_of(ref_type(truth.dtype)))
    return bound_of(truth, strict) + g * np.abs(truth.magnitude) / (1.0 - g)


def judgeable(truth: Truth, strict: bool) -> bool:
    return (all_finite(truth.y_ref, bound_of(truth, strict)) and not bool(np.any(truth.overflow)))


def inlined(case: Case, value: np.ndarray | None = None, filt: np.ndarray | None = None,
            **changes) -> Case:
    if value is not None:
        changes["value"] = ArraySpec.inline(value)
    if filt is not None:
        changes["filter"] = ArraySpec.inline(filt)
    return replace(case, label="valid", exact=False, **changes)


def other_array(spec: ArraySpec) -> ArraySpec:
    """A second array of the same dtype/shape and kind: the next seed, or seeded normals."""
    if spec.recipe in ("normal", "uniform", "integers", "special"):
        return replace(spec, seed=((spec.seed or 0) + 1) % 2**32)
    return ArraySpec(spec.dtype, spec.shape, "normal", 1, (("scale", 1.0),))


def identity_finding(identity: str, case: Case, target: str, cases: list[Case], relation: str,
             expected: str, observed: str, ratio: float | None = None, extra=(),
             **details) -> Finding:
    f = make_finding("metamorphic", case, target, f"metamorphic-{identity}", expected, observed,
                     headroom=ratio, identity=identity, **details)
    check = identity_check_lines(identity, case, target, f.kind, len(cases))
    return replace(f, repro=render_calls(cases, target, [*extra, f"print({relation})"],
                                         check=check))


def accept_reject_gate(identity: str, case: Case, cases: list[Case], outs: list,
                       target: str) -> Verdict | None:
    """The accept/reject part shared by every identity: a Verdict when judging must stop."""
    prop = f"metamorphic-{identity}"
    failures = [f for c, o in zip(cases, outs) for f in _process_failure(c, o, target, prop)]
    if failures:
        return Verdict(identity, failures)
    raised = [(c, o) for c, o in zip(cases, outs) if o.kind == "raised"]
    if len(raised) == len(cases):
        return Verdict(identity)
    if raised:
        return Verdict(identity, [make_finding(
            "accept-reject", c, target, prop, "a result (another variant of the identity "
            "returned one)", o.describe(), out=o, identity=identity, error_class=o.error_class,
            message=(o.message or "")[:1500]) for c, o in raised])
    return None


def values_fit(truth: Truth, outs) -> bool:
    return all(tuple(o.value.shape) == truth.shape for o in outs)

