"""Realistic-size tier: the differential property at the sizes where optimised kernels change
code path (``fuzz.realistic``: channel counts around powers of two up to 129, extents up to 65,
batch up to 9, kernels up to 7, thousands of products per output, outputs up to the profile's
``SizeBudget``). One Case per example, judged on every selected target under the rigorous bound.

One search per dtype (``realistic`` examples each): Hypothesis's generation mutates earlier
examples, so a single search over all dtypes spends most of its examples in whichever dtype it
met first; each search has its own seed (``fuzz.realistic.tier_seed``). Explicit examples: ``fuzz.realistic.boundary_cases()`` of that dtype, one
deterministic Case per boundary class, so the tier's coverage never depends on luck."""
import pytest
from hypothesis import given

from conv3dt.fuzz import profiles
from conv3dt.fuzz.failures import every_failure, explicit
from conv3dt.fuzz.properties import check_valid_batch
from conv3dt.fuzz.realistic import BUDGETS, boundary_cases, realistic_cases, tier_seed
from conv3dt.fuzz.strategies import DTYPES


def tier_search(ctx, dtype: str, prop: str = "realistic"):
    """The tier's Hypothesis search for one dtype (the profile's examples and budget)."""
    domain = profiles.declared_domain()
    @profiles.settings_for(prop)
    @given(case=realistic_cases(BUDGETS[profiles.ACTIVE["profile"]], dtypes=(dtype,),
                                layouts=domain.layouts, paddings=domain.paddings))
    def search(case):
        check_valid_batch([case], ctx, prop)

    for case in boundary_cases(domain=domain):
        if case.dtype == dtype and profiles.shard().owns(case.case_id):   # fuzz.shard
            search = explicit(prop, case=case)(search)
    return profiles.seeded(search, tier_seed(dtype, profiles.ACTIVE["seed"]), always=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_realistic(ctx, dtype):
    if dtype not in profiles.declared_domain().dtypes:
        return   # no selected target declares it (oracle.capabilities): nothing to judge
    every_failure(tier_search(ctx, dtype), ctx.budget)
