"""Exactness property: small-integer Cases must be bit-identical to the once-rounded truth.
Drawn in batches of one call structure (``fuzz.strategies.exact_batches``), judged on every
selected target at once."""
from hypothesis import given

from conv3dt.fuzz import profiles
from conv3dt.fuzz.continuous import share_key
from conv3dt.fuzz.covering import floor_for
from conv3dt.fuzz.failures import every_failure
from conv3dt.fuzz.properties import check_valid_batch
from conv3dt.fuzz.strategies import exact_batches


@profiles.settings_for("exact")
@given(cases=profiles.within_domain(exact_batches))
def exact(ctx, cases):
    assert all(c.exact for c in cases)
    check_valid_batch(cases, ctx, "exact")


# The store's seed and HypoFuzz's key (fuzz.profiles.seeded, fuzz.continuous.share_key) are applied
# here, not as decorators: decorator lines are part of the source Hypothesis hashes to seed a
# derandomized (ci) run, whose examples would otherwise change.
exact = share_key("exact")(profiles.seeded(exact))


def test_exact(ctx):
    # the coverage floor (fuzz.covering): every reachable required cell, whatever the targets return
    floor = [[case] for case in floor_for(ctx, "exact")]
    every_failure(exact, ctx.budget, ctx,
                  first=lambda: [check_valid_batch(cases, ctx, "exact") for cases in floor])
