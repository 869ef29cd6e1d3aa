"""Invalid-call property: every target rejects each near-miss with the contract's error class."""
from hypothesis import given

from fuzz import profiles
from fuzz.invalid import invalid_cases
from fuzz.properties import check_invalid


@profiles.settings_for("invalid")
@given(case=invalid_cases())
def test_invalid(ctx, case):
    check_invalid(case, ctx, "invalid")
