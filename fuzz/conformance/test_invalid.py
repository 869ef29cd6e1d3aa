"""Invalid-call property: every target rejects each near-miss with the contract's error class.
Explicit examples: one deterministic near-miss per family (``fuzz.invalid.family_examples``)."""
from hypothesis import example, given

from fuzz import profiles
from fuzz.invalid import family_examples, invalid_cases
from fuzz.properties import check_invalid


def _with_examples(test):
    for case in family_examples():
        test = example(case=case)(test)
    return test


@profiles.settings_for("invalid")
@_with_examples
@given(case=invalid_cases())
def test_invalid(ctx, case):
    check_invalid(case, ctx, "invalid")
