"""Metamorphic identities on any target (no truth needed beyond the bound of ``fuzz.truth``).

- determinism: the same Case twice gives the same bits (nan equal to nan);
- power-of-two scaling: value·2^k gives result·2^k exactly when every nonzero product is
  normal (min|v|·min|w| ≥ 2·smallest normal; partial sums that cancel into the subnormal range
  are exact in both runs) and nothing overflows (A·2^k < largest finite / 2);
(Layout, linearity, adjoint and batch-split identities are not implemented yet.)
Only Cases every variant of which the target accepts are compared: accept/reject is the
differential property's concern.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from fuzz.bound import LARGEST_FINITE, SMALLEST_NORMAL
from fuzz.judge import make_finding
from fuzz.truth import truth_of
from oracle.arrays import ArraySpec
from oracle.case import Case

SCALE_EXP = 3


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return a.shape == b.shape and bool(np.all((a64 == b64) | (np.isnan(a64) & np.isnan(b64))))


def scaled(case: Case, k: int = SCALE_EXP) -> Case | None:
    """The Case with value·2^k (inline), or None when the scaling could leave the normal range."""
    v = case.value.materialize()
    if not np.all(np.isfinite(v.astype(np.float64))) or v.size > 4096:
        return None
    return replace(case, value=ArraySpec.inline((v.astype(np.float64) * 2.0**k).astype(v.dtype)),
                   label="valid")


def check_metamorphic(case: Case, run, target: str, prop: str = "metamorphic") -> list:
    """Findings for ``target``; ``run(list[Case]) -> list[Outcome]``."""
    findings = []
    twice = run([case, case])
    if all(o.kind == "value" for o in twice) and not _same(twice[0].value, twice[1].value):
        findings.append(make_finding("metamorphic", case, target, prop,
                                     "the same bits on a repeated call", "results differ",
                                     identity="determinism"))
    base = twice[0]
    if base.kind != "value" or base.value.size == 0:
        return findings
    dt = case.dtype
    truth = truth_of(case)
    s = scaled(case)
    v, w = (np.abs(a.materialize().astype(np.float64)) for a in (case.value, case.filter))
    vmin, wmin = (float(np.min(x[x > 0], initial=np.inf)) for x in (v, w))
    fine = (s is not None and bool(np.all(np.isfinite(truth.y_ref)))
            and vmin * wmin >= 2 * SMALLEST_NORMAL[dt]          # every nonzero product normal
            and float(np.max(truth.magnitude, initial=0.0)) * 2.0**SCALE_EXP < LARGEST_FINITE[dt] / 2)
    if fine:
        (o,) = run([s])
        if o.kind == "value" and not _same(o.value.astype(np.float64),
                                           base.value.astype(np.float64) * 2.0**SCALE_EXP):
            findings.append(make_finding("metamorphic", s, target, prop,
                                         f"result of value*2^{SCALE_EXP} == result*2^{SCALE_EXP}",
                                         "not exactly scaled", identity="power-of-two"))
    return findings
