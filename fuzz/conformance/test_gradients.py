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
  rejected with the forward's contract class; each family once deterministically first.

Without a gradient target selected these properties judge nothing and are skipped."""
import pytest
from hypothesis import given

from conv3dt.fuzz import profiles
from conv3dt.fuzz.covering import floor_for
from conv3dt.fuzz.failures import every_failure
from conv3dt.fuzz.gradients import (exact_gradient_batches, gradient_batches, grad_output_for,
                                    invalid_gradient_cases)
from conv3dt.fuzz.invalid import family_examples
from conv3dt.fuzz.properties import check_invalid, check_valid_batch


def _need_gradient_target(ctx) -> None:
    if not any(pool.spec.gradient for pool in ctx.pools.values()):
        pytest.skip("no gradient target selected (tf-grad-*, impl-grad, grad:module:function)")


@profiles.settings_for("grad_differential")
@given(cases=profiles.within_domain(gradient_batches))
def grad_differential(ctx, cases):
    check_valid_batch(cases, ctx, "grad_differential")


def test_grad_differential(ctx):
    _need_gradient_target(ctx)
    floor = floor_for(ctx, "grad_differential")
    every_failure(grad_differential, ctx.budget, ctx,
                  first=lambda: [check_valid_batch([case], ctx, "grad_differential")
                                 for case in floor])


@profiles.settings_for("grad_exact")
@given(cases=profiles.within_domain(exact_gradient_batches))
def grad_exact(ctx, cases):
    check_valid_batch(cases, ctx, "grad_exact")


def test_grad_exact(ctx):
    _need_gradient_target(ctx)
    every_failure(grad_exact, ctx.budget, ctx)


@profiles.settings_for("grad_invalid")
@given(case=profiles.within_domain(invalid_gradient_cases))
def grad_invalid(ctx, case):
    check_invalid(case, ctx, "grad_invalid")


def _family_gradients() -> list:
    domain = profiles.declared_domain()
    cases = family_examples(domain.dtypes, domain.layouts, domain.paddings, domain.dilations,
                            domain.argument_forms)
    return [c.gradient_of(wrt, grad_output_for(c)[0]) for c in cases for wrt in ("value", "filter")]


def test_grad_invalid(ctx):
    _need_gradient_target(ctx)
    every_failure(grad_invalid, ctx.budget, ctx,
                  first=lambda: [check_invalid(case, ctx, "grad_invalid")
                                 for case in _family_gradients()])
