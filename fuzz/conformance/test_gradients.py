"""The backward pass: every gradient target's dvalue and dfilter against the truth.

Gradient Cases (``fuzz.gradients``: both gradients of a forward Case, sharing one upstream
gradient ``g``) run on the gradient targets only (``Context.admitted``) and are judged like the
forward's, each gradient under its own rigorous bound (``fuzz.truth.gradient_truth``: ``n = Cout ·
ΠK`` products per dvalue element, ``N · ΠI`` per dfilter element):

- ``grad_differential``: bulk-float Cases (normal, uniform, special values), value mismatches,
  non-finite reach, dtype and shape; half precision also against the float32-accumulation bound
  (``accumulation-precision``). First the coverage floor: both gradients of every forward covering
  Case and the SAME-negative-pad Case (``fuzz.covering.floor_for``);
- ``grad_exact``: small-integer Cases whose every partial sum is exact: bit for bit;
- ``grad_invalid``: every forward near-miss (``fuzz.invalid``) asked for a gradient must be
  rejected with the forward's contract class, and a ``g`` of the wrong shape or dtype
  (``fuzz.grad_invalid``) with impl-grad's; each family once deterministically first;
- ``grad_metamorphic``: determinism (the same call twice, the same bits) and power-of-two (g·2^k
  gives the gradient·2^k exactly, both gradients being linear in g: ``fuzz.metamorphic``) on
  every gradient target, no second implementation trusted;
- ``grad_realistic``: the realistic-size tier (``fuzz.realistic``: channels past every block
  size, extents up to 65, thousands of products per element) for both gradients, one search per
  dtype, its boundary Cases first: dfilter's sums run over N·ΠI products there.

Without a gradient target selected these properties are skipped (fuzz/conformance/plugin.py).
A shard (``fuzz.shard``) judges the part of the deterministic Cases it owns (floor, families,
boundary Cases); the store's seed and HypoFuzz's key (``fuzz.profiles.seeded``,
``fuzz.continuous.share_key``) are applied after each property's definition, not as decorators:
decorator lines are part of the source Hypothesis hashes to seed a derandomized (ci) run."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conv3dt.fuzz import metamorphic, profiles
from conv3dt.fuzz.continuous import share_key
from conv3dt.fuzz.covering import floor_for
from conv3dt.fuzz.failures import every_failure
from conv3dt.fuzz.grad_invalid import grad_family_examples
from conv3dt.fuzz.gradients import (exact_gradient_batches, grad_output_for, gradient_batches,
                                    gradient_cases, invalid_gradient_cases)
from conv3dt.fuzz.invalid import family_examples
from conv3dt.fuzz.properties import check_identities, check_invalid, check_valid_batch
from conv3dt.fuzz.realistic import tier_search
from conv3dt.fuzz.strategies import DTYPES


@profiles.settings_for("grad_differential")
@given(cases=profiles.within_domain(gradient_batches))
def grad_differential(ctx, cases):
    check_valid_batch(cases, ctx, "grad_differential")


grad_differential = share_key("grad_differential")(profiles.seeded(grad_differential))


def test_grad_differential(ctx):
    floor = floor_for(ctx, "grad_differential")
    every_failure(grad_differential, ctx.budget, ctx,
                  first=lambda: [check_valid_batch([case], ctx, "grad_differential")
                                 for case in floor])


@profiles.settings_for("grad_exact")
@given(cases=profiles.within_domain(exact_gradient_batches))
def grad_exact(ctx, cases):
    check_valid_batch(cases, ctx, "grad_exact")


grad_exact = share_key("grad_exact")(profiles.seeded(grad_exact))


def test_grad_exact(ctx):
    every_failure(grad_exact, ctx.budget, ctx)


@profiles.settings_for("grad_invalid")
@given(case=profiles.within_domain(invalid_gradient_cases))
def grad_invalid(ctx, case):
    check_invalid(case, ctx, "grad_invalid")


def _family_gradients() -> list:
    """Both gradients of every forward family's example, then the backward's own families'
    examples (``fuzz.grad_invalid``), this shard's part (``fuzz.shard``: by family)."""
    domain = profiles.declared_domain()
    options = (domain.dtypes, domain.layouts, domain.paddings, domain.dilations,
               domain.argument_forms)
    cases = profiles.shard().take(family_examples(*options), key=lambda c: c.label)
    own = profiles.shard().take(grad_family_examples(*options), key=lambda c: c.label)
    return [c.gradient_of(wrt, grad_output_for(c)[0]) for c in cases
            for wrt in ("value", "filter")] + own


grad_invalid = share_key("grad_invalid")(profiles.seeded(grad_invalid))


def test_grad_invalid(ctx):
    every_failure(grad_invalid, ctx.budget, ctx,
                  first=lambda: [check_invalid(case, ctx, "grad_invalid")
                                 for case in _family_gradients()])


GRADIENT_IDENTITIES = ("determinism", "power-of-two")


def gradient_metamorphic_cases(**domain):
    """One gradient of a metamorphic Case (``fuzz.metamorphic.metamorphic_cases``)."""
    return st.tuples(metamorphic.metamorphic_cases(**domain), st.integers(0, 1)).map(
        lambda t: gradient_cases([t[0]])[t[1]])


@profiles.settings_for("grad_metamorphic")
@given(case=profiles.within_domain(gradient_metamorphic_cases))
def grad_metamorphic(ctx, case):
    check_identities(ctx, "grad_metamorphic", case, GRADIENT_IDENTITIES)


grad_metamorphic = share_key("grad_metamorphic")(profiles.seeded(grad_metamorphic))


def test_grad_metamorphic(ctx):
    every_failure(grad_metamorphic, ctx.budget, ctx)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_realistic(ctx, dtype):
    if dtype not in profiles.declared_domain().dtypes:
        return   # no selected target declares it (oracle.capabilities): nothing to judge
    every_failure(tier_search(ctx, dtype, "grad_realistic", lambda case: gradient_cases([case])),
                  ctx.budget)
