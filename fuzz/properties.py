"""The properties as plain functions: one Case (or a metamorphic pair) → judged, recorded.

Each Case runs on every target in one ``oracle.pool.run_on_targets`` call (one round trip
per worker, the workers concurrently), so generation and the truth are paid once per Case for
all targets. ``Context`` holds the target pools, the ledger, the session recorder and an in-process
``impl`` pool (the reference for error classes). ``check_valid`` / ``check_invalid`` run one
Case on every target, judge each Outcome (``fuzz.judge``), classify Findings with the ledger —
known deviations are recorded and pass — and raise the unknown ones as ``FindingError``s, one
class per distinct failure (``fuzz.failures``), so that Hypothesis shrinks and reports each bug
on its own, within the cost limits of ``Context.budget``. The largest headroom is fed to ``hypothesis.target`` so the
search climbs toward bound violations.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from hypothesis import reject, target as hypothesis_target
from hypothesis.control import currently_in_test_context

from conv3dt.fuzz.coverage import cells_of
from conv3dt.fuzz.failures import FailureBudget, FindingError  # noqa: F401  (FindingError: re-exported)
from conv3dt.fuzz.findings import Finding
from conv3dt.fuzz.judge import STRICT_TARGETS, judge_rejection, judge_value
from conv3dt.fuzz.ledger import Ledger
from conv3dt.fuzz.session import Recorder
from conv3dt.fuzz.truth import truth_of
from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome
from conv3dt.oracle.pool import run_on_targets


@dataclass
class Context:
    pools: dict                      # target name -> TargetPool
    recorder: Recorder
    ledger: Ledger
    impl_pool: object = None         # in-process impl TargetPool (error-class reference)
    budget: FailureBudget = field(default_factory=FailureBudget)   # distinct failures, their cost
    #: target name -> ``oracle.capabilities.Capabilities`` (absent: the whole contract)
    capabilities: dict = field(default_factory=dict)
    impl_grad_pool: object = None    # in-process impl-grad TargetPool (the same, for gradient Cases)
    timings: dict = field(default_factory=lambda: {"oracle": 0.0, "truth": 0.0, "judge": 0.0})

    #: (property, dtype, target, kernel label) seen: the realistic tier steers toward new ones
    kernels_seen: set = field(default_factory=set)

    def novel_kernel(self, prop: str, dtype: str, target: str, kernel) -> bool:
        """Whether this (property, dtype, target) sees the kernel label for the first time.
        Per property and dtype, not per process: under xdist which tests a worker ran before
        varies from run to run, and a per-process novelty would steer the same seed's search
        differently (the same-seed test saw 606 vs 602 realistic examples)."""
        if kernel is None:
            return False
        key = (prop, dtype, target, kernel.label)
        if key in self.kernels_seen:
            return False
        self.kernels_seen.add(key)
        return True

    def __repr__(self) -> str:
        # Hypothesis prints every argument of a falsifying example: the targets say enough (the
        # dataclass repr printed the budget's memory of every judged example, ~10^4 lines)
        return f"Context(targets={list(self.pools)})"

    def run(self, target: str, cases: list[Case]) -> list[Outcome]:
        t0 = time.perf_counter()
        out = self.pools[target].run(cases)
        self.timings["oracle"] += time.perf_counter() - t0
        return out

    def admitted(self, cases: list[Case]) -> dict:
        """The pools of the targets whose declaration (``oracle.capabilities``) admits every one
        of ``cases``; each other target's decline is counted (``Recorder.declined``) and costs
        nothing: it is not called and judges nothing. Forward Cases go to the forward targets
        only and gradient Cases to the gradient targets only (``Case.is_gradient``,
        ``TargetSpec.gradient``): that is what a target is, not a decline."""
        pools = {}
        gradient = bool(cases) and cases[0].is_gradient
        for name, pool in self.pools.items():
            if pool.spec.gradient != gradient:
                continue
            caps = self.capabilities.get(name)
            reason = None if caps is None else next(
                (r for r in map(caps.admits, cases) if r is not None), None)
            if reason is None:
                pools[name] = pool
            else:
                self.recorder.declined(name, reason, len(cases))
        return pools

    def run_all(self, cases: list[Case], extra: dict | None = None,
                pools: dict | None = None) -> dict[str, list[Outcome]]:
        """``cases`` on every target (or the given ``pools``) at once
        (``oracle.pool.run_on_targets``: one round trip per worker, workers driven
        concurrently); ``extra`` pools ride along under their own keys."""
        pools = dict(self.pools if pools is None else pools)
        if extra:
            pools.update({k: v for k, v in extra.items() if k not in pools})
        t0 = time.perf_counter()
        out = run_on_targets(pools, cases)
        self.timings["oracle"] += time.perf_counter() - t0
        self.recorder.maybe_write()
        return out

    def settle(self, findings: list[Finding]) -> list[Finding]:
        """Apply the ledger: record known deviations, return the unknown ones."""
        unknown = []
        for f in findings:
            f = self.ledger.classify(f)
            if f.known_deviation:
                self.recorder.known(f)
            else:
                unknown.append(f)
        return unknown


def _matrix_cells(case: Case) -> list[str]:
    """The conformance matrix's columns a Case counts in (``stats["matrix"]``); a gradient Case
    also in ``gradient=value`` / ``gradient=filter``, so each gradient has its own cells."""
    cells = [f"dtype={case.dtype}", f"layout={case.data_format}", f"padding={case.padding}"]
    if case.is_gradient:
        cells.append(f"gradient={case.grad_wrt}")
        cells += [c for c in cells_of(case.forward()) if c.startswith(("dilation=", "zero="))]
        return cells
    return cells + [c for c in cells_of(case) if c.startswith(("dilation=", "zero="))]


STEERED_BY_KERNEL_PATHS = ("realistic",)


def _finish(ctx: Context, prop: str, cases: list[Case], unknown: list[Finding],
            headroom: float | None, new_kernel_paths: int | None = None) -> None:
    """Steer the search (``hypothesis.target``): toward larger headroom, and for the
    ``STEERED_BY_KERNEL_PATHS`` properties toward Cases that reach a kernel implementation or
    blocking (``oracle.kernels`` label) no earlier example of this process reached. Then raise
    the unknown Findings as their distinct failure (``fuzz.failures.FailureBudget.fail``)."""
    if headroom is not None and currently_in_test_context():
        hypothesis_target(min(float(headroom), 1e6), label="headroom")
    if new_kernel_paths is not None and currently_in_test_context():
        hypothesis_target(float(new_kernel_paths), label="new-kernel-paths")
    ctx.budget.fail(prop, cases, unknown)


def check_valid(case: Case, ctx: Context, prop: str = "differential") -> None:
    """Differential (and, for ``case.exact``, exactness) property on every target."""
    check_valid_batch([case], ctx, prop)


def no_target_admits(ctx: Context, prop: str, cases: list[Case]) -> None:
    """Every target declined the Cases (``Context.admitted``): nothing is judged. A generated
    example is rejected (``hypothesis.reject``: it does not count toward max_examples); an
    explicit one is skipped. Its coverage cells are recorded as declined, not as hit."""
    for case in cases:
        ctx.recorder.cover_declined(cells_of(case))
    if currently_in_test_context() and ctx.budget.phase(prop, cases) != "explicit":
        reject()


def check_valid_batch(cases: list[Case], ctx: Context, prop: str = "differential") -> None:
    """``check_valid`` for several Cases in one ``run_on_targets`` call (the strategies' batches
    share one call structure, so tf.function / XLA trace and compile once per batch). Only the
    targets whose declaration admits the Cases are called and judged (``Context.admitted``)."""
    if not ctx.budget.before_example(prop, cases):
        return
    pools = ctx.admitted(list(cases))
    if not pools:
        return no_target_admits(ctx, prop, list(cases))
    rec = ctx.recorder
    t0 = time.perf_counter()
    truths = [truth_of(c) for c in cases]
    ctx.timings["truth"] += time.perf_counter() - t0
    unknown, best, new_paths = [], None, 0
    outs = ctx.run_all(list(cases), pools=pools)
    phase = ctx.budget.phase(prop, cases)
    for j, (case, truth) in enumerate(zip(cases, truths)):
        rec.cover(cells_of(case))
        for name in pools:
            out = outs[name][j]
            t1 = time.perf_counter()
            rec.example(prop, name, phase)
            rec.outcome(name, out.kind)
            rec.kernel(name, out.kernel)
            new_paths += ctx.novel_kernel(prop, case.dtype, name, out.kernel)
            if out.kind == "raised":
                rec.error(name, case.label, out.short_class)
            findings, head = judge_value(case, out, truth, name, prop,
                                         strict=name in STRICT_TARGETS)
            unknown_here = ctx.settle(findings)
            # A known deviation neither steers the search nor enters the headroom statistics:
            # its values can be run-to-run garbage (Cin = 0), which would make a seed's run
            # differ from itself.
            if head is not None and not case.exact and (unknown_here or not findings):
                rec.add_headroom(name, case.dtype, head)
                best = head if best is None else max(best, head)
            rec.matrix_cells(name, _matrix_cells(case), bool(findings))
            unknown += unknown_here
            ctx.timings["judge"] += time.perf_counter() - t1
    _finish(ctx, prop, list(cases), unknown, best,
            new_paths if prop in STEERED_BY_KERNEL_PATHS else None)


def check_invalid(case: Case, ctx: Context, prop: str = "invalid") -> None:
    """Every target must reject a near-miss Case with the contract's error class."""
    if not ctx.budget.before_example(prop, [case]):
        return
    pools = ctx.admitted([case])
    if not pools:
        return no_target_admits(ctx, prop, [case])
    rec = ctx.recorder
    rec.cover(cells_of(case))
    reference = ctx.impl_grad_pool if case.is_gradient else ctx.impl_pool
    ref = next((k for k, p in ctx.pools.items() if p is reference), "\0impl-reference")
    outs = ctx.run_all([case], {ref: reference}, pools=pools)
    (impl_out,) = outs[ref]
    unknown = []
    phase = ctx.budget.phase(prop, [case])
    if impl_out.kind != "raised":  # the family itself (or impl) is wrong: never silent
        from conv3dt.fuzz.judge import make_finding
        impl_name = "impl-grad" if case.is_gradient else "impl"
        unknown.append(make_finding("accept-reject", case, impl_name, prop, f"{impl_name} rejects the Case",
                                    impl_out.describe(), out=impl_out, family=case.label))
    for name in pools:
        (out,) = outs[name]
        t1 = time.perf_counter()
        rec.example(prop, name, phase)
        rec.outcome(name, out.kind)
        rec.kernel(name, out.kernel)
        if out.kind == "raised":
            rec.error(name, case.label, out.short_class)
        findings = judge_rejection(case, out, impl_out, name, prop)
        rec.matrix_cells(name, [case.label], bool(findings))
        unknown += ctx.settle(findings)
        ctx.timings["judge"] += time.perf_counter() - t1
    _finish(ctx, prop, [case], unknown, None)


def check_identities(ctx: Context, prop: str, case: Case, identities: tuple | None = None) -> None:
    """Property ``prop``'s metamorphic example: the variants of ``identities`` (default: every
    identity of ``fuzz.metamorphic``) of ``case``, run on the targets that run such a Case, in
    groups by what their declarations admit (``identity_groups``), judged, and the unknown
    Findings raised (``FailureBudget.fail``)."""
    from conv3dt.fuzz import metamorphic

    if not ctx.budget.before_example(prop, [case]):
        return
    full = metamorphic.plan(case) if identities is None else metamorphic.plan(case, identities)
    groups = identity_groups(ctx, full)   # identities each target declares every variant of
    if not groups:
        return no_target_admits(ctx, prop, [case])
    unknown = []
    for kept, pools in groups.items():
        plan = full if kept == tuple(full.index) else metamorphic.plan(case, kept)
        unknown += judge_identities(ctx, prop, plan, pools)
    ctx.budget.fail(prop, [case], unknown)


def judge_identities(ctx: Context, prop: str, plan, pools: dict) -> list[Finding]:
    """A metamorphic ``plan`` (``fuzz.metamorphic.plan``: every variant of its identities as one
    batch) run on ``pools`` at once and judged per target; counts the example, the outcomes, the
    kernels and per identity and target ``{"judged", "bit_identical"}`` (``stats["metamorphic"]``).
    Returns the unknown Findings (the ledger applied)."""
    t0 = time.perf_counter()
    results = run_on_targets(pools, plan.batch)   # the targets at once, concurrently
    ctx.timings["oracle"] += time.perf_counter() - t0
    ctx.recorder.maybe_write()
    stats = ctx.recorder.extra.setdefault("metamorphic", {})
    phase = ctx.budget.phase(prop, [plan.case])
    unknown = []
    for name in pools:
        ctx.recorder.example(prop, name, phase)
        outs = results[name]
        for o in outs:
            ctx.recorder.outcome(name, o.kind)
            ctx.recorder.kernel(name, o.kernel)
        for v in plan.judge(outs, name, strict=name in STRICT_TARGETS):
            cell = stats.setdefault(v.identity, {}).setdefault(name, {"judged": 0, "bit_identical": 0})
            cell["judged"] += int(v.judged)
            cell["bit_identical"] += int(bool(v.judged and v.bit_identical))
            unknown += ctx.settle(v.findings)
    return unknown


def identity_groups(ctx: Context, plan) -> dict:
    """``{identities: {target: pool}}``: targets grouped by the identities whose every variant
    their declaration admits (``oracle.capabilities``; an NDHWC-only kernel is judged on every
    identity but the layout one). A declined identity is counted (``Recorder.declined``)."""
    groups: dict = {}
    for name, pool in ctx.pools.items():
        if pool.spec.gradient != plan.case.is_gradient:   # forward Cases to forward targets only
            continue
        caps = ctx.capabilities.get(name)
        kept = []
        for identity, idx in plan.index.items():
            reason = None if caps is None else next(
                (r for r in (caps.admits(plan.batch[i]) for i in idx) if r is not None), None)
            if reason is None:
                kept.append(identity)
            else:
                ctx.recorder.declined(name, reason, len(idx))
        if kept:
            groups.setdefault(tuple(kept), {})[name] = pool
    return groups
