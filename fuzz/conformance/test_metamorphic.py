"""Metamorphic identities on every selected target (``fuzz.metamorphic``): determinism,
power-of-two scaling, adjoint with conv3d, layout, linearity in value and in filter, batch
split. One drawn Case → the variants of every identity, deduplicated, as one batch per target.

Stats: ``examples["metamorphic"][target]`` counts drawn Cases; ``stats["metamorphic"]`` holds
per identity and target ``{"judged": n, "bit_identical": n}`` (how often the identity could be
judged, i.e. every variant returned finite values, and how often both sides were bit-identical
— measured for determinism, power-of-two, layout and batch-split)."""
from hypothesis import given, settings

from conv3dt.fuzz import metamorphic, profiles
from conv3dt.fuzz.failures import every_failure
from conv3dt.fuzz.properties import identity_groups, judge_identities, no_target_admits

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
    unknown = []
    for identities, pools in groups.items():
        plan = full if identities == tuple(full.index) else metamorphic.plan(case, identities)
        unknown += judge_identities(ctx, "metamorphic", plan, pools)
    ctx.budget.fail("metamorphic", [case], unknown)


def test_metamorphic(ctx):
    every_failure(metamorphic_identities, ctx.budget, ctx)
