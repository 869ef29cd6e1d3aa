"""Metamorphic identities on every selected target (``fuzz.metamorphic``): determinism,
power-of-two scaling, adjoint with conv3d, layout, linearity in value and in filter, batch
split. One drawn Case → the variants of every identity, deduplicated, as one batch per target.

Stats: ``examples["metamorphic"][target]`` counts drawn Cases; ``stats["metamorphic"]`` holds
per identity and target ``{"judged": n, "bit_identical": n}`` (how often the identity could be
judged, i.e. every variant returned finite values, and how often both sides were bit-identical
— measured for determinism, power-of-two, layout and batch-split)."""
from hypothesis import given, settings

from conv3dt.fuzz import metamorphic, profiles
from conv3dt.fuzz.continuous import share_key
from conv3dt.fuzz.failures import every_failure
from conv3dt.fuzz.properties import check_identities

# One example runs 7 identities (~11 calls per target), so a third of the profile's
# "metamorphic" count keeps the property within its share of the ci budget.
SETTINGS = profiles.settings_for("metamorphic")
SETTINGS = settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 3))


@SETTINGS
@given(case=profiles.within_domain(metamorphic.metamorphic_cases))
def metamorphic_identities(ctx, case):
    check_identities(ctx, "metamorphic", case)


# The store's seed and HypoFuzz's key (fuzz.profiles.seeded, fuzz.continuous.share_key) are applied
# here, not as decorators: decorator lines are part of the source Hypothesis hashes to seed a
# derandomized (ci) run, whose examples would otherwise change.
metamorphic_identities = share_key("metamorphic")(profiles.seeded(metamorphic_identities))


def test_metamorphic(ctx):
    every_failure(metamorphic_identities, ctx.budget, ctx)
