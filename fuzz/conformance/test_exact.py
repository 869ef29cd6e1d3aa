"""Exactness property: small-integer Cases must be bit-identical to the once-rounded truth."""
from hypothesis import given

from fuzz import profiles
from fuzz.properties import check_valid
from fuzz.strategies import exact_cases


@profiles.settings_for("exact")
@given(case=exact_cases())
def test_exact(ctx, case):
    assert case.exact
    check_valid(case, ctx, "exact")
