"""Metamorphic identities on any target: no trust in a second implementation, only in the bound.

Each identity relates the target's results on a few *variants* of one Case. A variant is a
Case too (arrays inlined when they are derived), so a Finding's reproducer shows every call.
Every identity is two pure steps — ``variants(case)`` and ``judge(case, variants, outcomes,
target)`` — so that a property can run the variants of all identities in one batch per target;
``check(name, case, run, target)`` does both with ``run(list[Case]) -> list[Outcome]``.

Tolerances are rigorous, never an rtol. ``B`` below is ``fuzz.truth``'s per-element bound on
``|y − y_ref|`` (``bound_strict`` for ``impl``), and ``B* = B + e_ref`` the bound on
``|y − y*|`` against the *exact* result ``y*``
(``e_ref = γ_n(u_ref)·A_ref/(1 − γ_n(u_ref))``, the reference's own error). ``u`` is a dtype's
unit roundoff, ``η`` half its smallest subnormal. Each identity's module states its bound.

Only judged when every variant returns a finite result where the truth is finite and cannot
overflow, and all inputs are finite: non-finite handling is the differential property's
concern. If *every* variant is rejected nothing is judged (accept/reject is the differential
property's concern too); if only *some* are, an ``accept-reject`` Finding names the rejected
variant, so that the ledger's rules (e.g. ``cpu-ncdhw-unsupported``) decide whether it is known.
A crash or timeout is always a Finding.

Measured on TF 2.21 CPU (ci profile, 40 Cases × 9 default targets, ``stats["metamorphic"]``):
no adjoint, linearity, layout or power-of-two violation on any path. Batch-split is bit-identical
on XLA (31 of 32) and impl (all) but not on the stock kernel (12 of 32) nor oneDNN (21 of 32):
all within 2·B. Layout: XLA bit-identical (32 of 32); oneDNN computes NCDHW for float32 only
(6 of 16 bit-identical); the other CPU paths reject NCDHW (ledger ``cpu-ncdhw-unsupported``).
Batch-split found the stock kernel's N ≥ 2 nan from an unreached infinite filter tap (ledger
``stock-batched-unreached-inf-tap-nan``, ``onednn-fallback-batched-unreached-inf-tap-nan``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from conv3dt.fuzz.judge import kernels_of
from conv3dt.fuzz.metamorphic.adjoint import adjoint_judge, adjoint_probe, adjoint_sides, adjoint_variants
from conv3dt.fuzz.metamorphic.common import Verdict
from conv3dt.fuzz.metamorphic.exactness import (SCALE_EXP, determinism_judge, determinism_variants,
                                        power_of_two_judge, power_of_two_variants, scaled)
from conv3dt.fuzz.metamorphic.linearity import (linearity_filter_judge, linearity_filter_variants,
                                        linearity_value_judge, linearity_value_variants)
from conv3dt.fuzz.metamorphic.pairs import (batch_judge, batch_variants, layout_judge, layout_variants,
                                    with_layout)
from conv3dt.fuzz.metamorphic.strategy import metamorphic_cases, undilated
from conv3dt.oracle.case import Case

__all__ = ["CHECKS", "IDENTITIES", "SCALE_EXP", "Plan", "Verdict", "adjoint_probe", "adjoint_sides",
           "batch_variants", "check", "check_metamorphic", "layout_variants", "metamorphic_cases",
           "plan", "run_checks", "scaled", "undilated", "with_layout"]

IDENTITIES = ("determinism", "power-of-two", "adjoint", "layout", "linearity-value",
              "linearity-filter", "batch-split")

# ----------------------------------------------------------------------------- registry
CHECKS = {
    "determinism": (determinism_variants, determinism_judge),
    "power-of-two": (power_of_two_variants, power_of_two_judge),
    "adjoint": (adjoint_variants, adjoint_judge),
    "layout": (layout_variants, layout_judge),
    "linearity-value": (linearity_value_variants, linearity_value_judge),
    "linearity-filter": (linearity_filter_variants, linearity_filter_judge),
    "batch-split": (batch_variants, batch_judge),
}


def check(identity: str, case: Case, run, target: str, strict: bool | None = None) -> Verdict:
    """Run the variants of ``identity`` through ``run`` and judge them. ``strict`` (default:
    ``target == "impl"``) judges with the bound that allows no flush-to-zero."""
    variants, judge = CHECKS[identity]
    cases = variants(case)
    if not cases:
        return Verdict(identity)
    outs = run(cases)
    return _name_kernels(judge(case, cases, outs, target, target == "impl" if strict is None
                               else strict), outs)


def _name_kernels(verdict: Verdict, outs: list) -> Verdict:
    """Findings that compare several calls name every kernel that ran them."""
    kernels = kernels_of(*outs)
    verdict.findings[:] = [f if f.kernels else replace(f, kernels=kernels)
                           for f in verdict.findings]
    return verdict


@dataclass
class Plan:
    """The variants of several identities as one deduplicated batch (per target: one call)."""
    case: Case
    batch: list[Case]
    index: dict[str, list[int]]   # identity -> positions in ``batch`` of its variants

    def judge(self, outs: list, target: str, strict: bool | None = None) -> list[Verdict]:
        strict = target == "impl" if strict is None else strict
        return [_name_kernels(CHECKS[name][1](self.case, [self.batch[i] for i in idx],
                                              [outs[i] for i in idx], target, strict),
                              [outs[i] for i in idx]) for name, idx in self.index.items()]


def plan(case: Case, identities=tuple(CHECKS)) -> Plan:
    """Variants of every identity, equal Cases shared between identities (not within one:
    determinism's repeated call stays two calls)."""
    batch: list[Case] = []
    where: dict[str, list[int]] = {}
    index: dict[str, list[int]] = {}
    for name in identities:
        seen: dict[str, int] = {}
        idx = []
        for c in CHECKS[name][0](case):
            cid = c.case_id
            k = seen.get(cid, 0)
            seen[cid] = k + 1
            slots = where.setdefault(cid, [])
            if k == len(slots):
                slots.append(len(batch))
                batch.append(c)
            idx.append(slots[k])
        if idx:
            index[name] = idx
    return Plan(case, batch, index)


def run_checks(case: Case, run, target: str, identities=tuple(CHECKS),
               strict: bool | None = None) -> list[Verdict]:
    """Every identity on ``target`` with one ``run`` call."""
    p = plan(case, identities)
    return p.judge(run(p.batch) if p.batch else [], target, strict)




def check_metamorphic(case: Case, run, target: str) -> list:
    """Determinism and power-of-two Findings for ``target``;
    ``run(list[Case]) -> list[Outcome]``."""
    return [f for v in run_checks(case, run, target, ("determinism", "power-of-two"))
            for f in v.findings]

