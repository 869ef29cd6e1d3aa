"""Metamorphic property: determinism and power-of-two scaling exactness on every target."""
from hypothesis import given

from fuzz import profiles
from fuzz.metamorphic import check_metamorphic
from fuzz.properties import FindingError
from fuzz.strategies import valid_cases


@profiles.settings_for("metamorphic")
@given(case=valid_cases(zero_dims=False))
def test_metamorphic(ctx, case):
    unknown = []
    for name in ctx.pools:
        ctx.recorder.example("metamorphic", name)
        unknown += ctx.settle(check_metamorphic(case, lambda cs: ctx.run(name, cs), name))
    if unknown:
        raise FindingError(unknown)
