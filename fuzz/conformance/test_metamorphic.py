"""Metamorphic identities on every selected target (``fuzz.metamorphic``): determinism,
power-of-two scaling, adjoint with conv3d, layout, linearity in value and in filter, batch
split. One drawn Case → the variants of every identity, deduplicated, as one batch per target.

Stats: ``examples["metamorphic"][target]`` counts drawn Cases; ``stats["metamorphic"]`` holds
per identity and target ``{"judged": n, "bit_identical": n}`` (how often the identity could be
judged, i.e. every variant returned finite values, and how often both sides were bit-identical
— measured for determinism, power-of-two, layout and batch-split)."""
import time

from hypothesis import given, settings

from conv3dt.fuzz import metamorphic, profiles
from conv3dt.fuzz.continuous import share_key
from conv3dt.fuzz.failures import every_failure
from conv3dt.fuzz.properties import no_target_admits
from conv3dt.oracle.pool import run_on_targets

# One example runs 7 identities (~11 calls per target), so a third of the profile's
# "metamorphic" count keeps the property within its share of the ci budget.
SETTINGS = profiles.settings_for("metamorphic")
SETTINGS = settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 3))


@SETTINGS
@given(case=profiles.within_domain(metamorphic.metamorphic_cases))
def metamorphic_identities(ctx, case):
    if not ctx.budget.before_example("metamorphic", [case]):
        return
    full = metamorphic.plan(case)
    groups = identity_groups(ctx, full)   # identities each target declares every variant of
    if not groups:
        return no_target_admits(ctx, "metamorphic", [case])
    stats = ctx.recorder.extra.setdefault("metamorphic", {})
    unknown = []
    phase = ctx.budget.phase("metamorphic", [case])
    for identities, pools in groups.items():
        plan = full if identities == tuple(full.index) else metamorphic.plan(case, identities)
        t0 = time.perf_counter()
        results = run_on_targets(pools, plan.batch)  # the group's targets at once, concurrently
        ctx.timings["oracle"] += time.perf_counter() - t0
        ctx.recorder.maybe_write()
        for name in pools:
            ctx.recorder.example("metamorphic", name, phase)
            outs = results[name]
            for o in outs:
                ctx.recorder.outcome(name, o.kind)
                ctx.recorder.kernel(name, o.kernel)
            for v in plan.judge(outs, name):
                cell = stats.setdefault(v.identity, {}).setdefault(name, {"judged": 0, "bit_identical": 0})
                cell["judged"] += int(v.judged)
                cell["bit_identical"] += int(bool(v.judged and v.bit_identical))
                unknown += ctx.settle(v.findings)
    ctx.budget.fail("metamorphic", [case], unknown)


# The store's seed and HypoFuzz's key (fuzz.profiles.seeded, fuzz.continuous.share_key) are applied
# here, not as decorators: decorator lines are part of the source Hypothesis hashes to seed a
# derandomized (ci) run, whose examples would otherwise change.
metamorphic_identities = share_key("metamorphic")(profiles.seeded(metamorphic_identities))


def identity_groups(ctx, plan) -> dict:
    """``{identities: {target: pool}}``: targets grouped by the identities whose every variant
    their declaration admits (``oracle.capabilities``; an NDHWC-only kernel is judged on every
    identity but the layout one). A declined identity is counted (``Recorder.declined``)."""
    groups: dict = {}
    for name, pool in ctx.pools.items():
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


def test_metamorphic(ctx):
    every_failure(metamorphic_identities, ctx.budget, ctx)
