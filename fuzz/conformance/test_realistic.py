"""Realistic-size tier: the differential property at the sizes where optimised kernels change
code path (``fuzz.realistic``: channel counts around powers of two up to 129, extents up to 65,
batch up to 9, kernels up to 7, thousands of products per output, outputs up to the profile's
``SizeBudget``). One Case per example, judged on every selected target under the rigorous bound.

One search per dtype (``realistic`` examples each): Hypothesis's generation mutates earlier
examples, so a single search over all dtypes spends most of its examples in whichever dtype it
met first; each search has its own seed (``fuzz.realistic.tier_seed``). Explicit examples: ``fuzz.realistic.boundary_cases()`` of that dtype, one
deterministic Case per boundary class, so the tier's coverage never depends on luck."""
import pytest

from conv3dt.fuzz import profiles
from conv3dt.fuzz.failures import every_failure
from conv3dt.fuzz.realistic import tier_search
from conv3dt.fuzz.strategies import DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
def test_realistic(ctx, dtype):
    if dtype not in profiles.declared_domain().dtypes:
        return   # no selected target declares it (oracle.capabilities): nothing to judge
    every_failure(tier_search(ctx, dtype), ctx.budget)
