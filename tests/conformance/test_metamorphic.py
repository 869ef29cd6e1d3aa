"""Metamorphic identities on every selected target (``fuzz.metamorphic``): determinism,
power-of-two scaling, adjoint with conv3d, layout, linearity in value and in filter, batch
split. One drawn Case → the variants of every identity, deduplicated, as one batch per target.

Stats: ``examples["metamorphic"][target]`` counts drawn Cases; ``stats["metamorphic"]`` holds
per identity and target ``{"judged": n, "bit_identical": n}`` (how often the identity could be
judged, i.e. every variant returned finite values, and how often both sides were bit-identical
— measured for determinism, power-of-two, layout and batch-split)."""
from hypothesis import given

from fuzz import metamorphic, profiles
from fuzz.properties import FindingError


@profiles.settings_for("metamorphic")
@given(case=metamorphic.metamorphic_cases())
def test_metamorphic(ctx, case):
    plan = metamorphic.plan(case)
    stats = ctx.recorder.extra.setdefault("metamorphic", {})
    unknown = []
    for name in ctx.pools:
        ctx.recorder.example("metamorphic", name)
        outs = ctx.run(name, plan.batch)
        for o in outs:
            ctx.recorder.outcome(name, o.kind)
        for v in plan.judge(outs, name):
            cell = stats.setdefault(v.identity, {}).setdefault(name, {"judged": 0, "bit_identical": 0})
            cell["judged"] += int(v.judged)
            cell["bit_identical"] += int(bool(v.judged and v.bit_identical))
            unknown += ctx.settle(v.findings)
    if unknown:
        raise FindingError(unknown)
