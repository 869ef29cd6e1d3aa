"""Invalid-call property: every target rejects each near-miss with the contract's error class.

Every family is also judged on one deterministic near-miss (``fuzz.invalid.family_examples``), as
its own parametrized test rather than as Hypothesis explicit examples: when several explicit
examples of one test fail at the same place, which one Hypothesis reports is not stable from run
to run, and each family's failure is a Finding of its own. A shard (``fuzz.shard``) runs the
families it owns."""
import pytest
from hypothesis import given

from conv3dt.fuzz import profiles
from conv3dt.fuzz.continuous import share_key
from conv3dt.fuzz.failures import every_failure
from conv3dt.fuzz.invalid import family_examples, invalid_cases
from conv3dt.fuzz.properties import check_invalid


@pytest.mark.parametrize("family", [c.label for c in family_examples()
                                    if profiles.shard().owns(c.label)])
def test_invalid_family(ctx, family):
    # built in the declared domain (oracle.capabilities): the family is judged whatever it is
    domain = profiles.declared_domain()
    (case,) = [c for c in family_examples(domain.dtypes, domain.layouts, domain.paddings,
                                          domain.dilations, domain.argument_forms)
               if c.label == family]
    check_invalid(case, ctx, "invalid")


@profiles.settings_for("invalid")
@given(case=profiles.within_domain(
    lambda dtypes, layouts, paddings, **_: invalid_cases(dtypes=dtypes, layouts=layouts,
                                                         paddings=paddings)))
def invalid(ctx, case):
    check_invalid(case, ctx, "invalid")


# The store's seed and HypoFuzz's key (fuzz.profiles.seeded, fuzz.continuous.share_key) are applied
# here, not as decorators: decorator lines are part of the source Hypothesis hashes to seed a
# derandomized (ci) run, whose examples would otherwise change.
invalid = share_key("invalid")(profiles.seeded(invalid))


def test_invalid(ctx):
    every_failure(invalid, ctx.budget, ctx)
