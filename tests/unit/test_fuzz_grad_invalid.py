"""The backward's own invalid families (``fuzz.grad_invalid``): each keeps the forward call valid,
breaks ``grad_output`` alone, and is rejected by impl-grad with the class and message it
declares; its explicit examples reach every family, the spatial one where TF's kernels cannot
tell (Conv3D's shape rule maps g's size back to the value's); the coverage tripwire requires each
family exactly when a gradient target runs."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings

from conv3dt import impl
from conv3dt.fuzz.coverage import GRADIENT_REQUIRED, cells_of
from conv3dt.fuzz.covering import unreachable
from conv3dt.fuzz.grad_invalid import (BY_NAME, GRAD_FAMILIES, GRAD_FAMILY_NAMES,
                                       grad_family_examples, grad_output_cases)
from conv3dt.fuzz.gradients import GRADIENTS, invalid_gradient_cases
from conv3dt.fuzz.invalid import FAMILY_NAMES
from conv3dt.oracle.capabilities import FULL
from conv3dt.oracle.case import spatial_dims, spatial_triple


def _arrays(value, dtype):
    return np.asarray(value, dtype)


def assert_declared_rejection(case):
    """impl accepts the forward call; impl-grad rejects g as the family declares."""
    fam = BY_NAME[case.label.split(":", 1)[1]]
    assert case.grad_wrt in GRADIENTS
    args, kwargs = case.call_args(tensor=_arrays)
    with np.errstate(all="ignore"):
        impl.conv3d_transpose(*args, **kwargs)                  # the forward call is valid
    with pytest.raises(fam.impl_raises) as exc:
        impl.conv3d_transpose_grads(*args, grad_output=case.grad_array(), **kwargs)
    assert re.search(fam.impl_says, str(exc.value)), (fam.name, str(exc.value))
    g = case.grad_output
    assert tuple(g.shape) != tuple(case.output_shape) or g.dtype != case.dtype


@pytest.mark.parametrize("case", grad_family_examples(),
                         ids=lambda c: f"{c.label}-{c.grad_wrt}")
def test_each_familys_examples_are_its_declared_rejection_on_both_gradients(case):
    assert_declared_rejection(case)


def test_the_examples_cover_every_family_on_both_gradients():
    seen = {(c.label, c.grad_wrt) for c in grad_family_examples()}
    assert seen == {(f"invalid:{f}", w) for f in GRAD_FAMILY_NAMES for w in GRADIENTS}


@pytest.mark.parametrize("name", GRAD_FAMILY_NAMES)
def test_every_drawn_near_miss_is_its_declared_rejection(name):
    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=grad_output_cases(families=(name,)))
    def check(case):
        assert case.label == f"invalid:{name}"
        assert_declared_rejection(case)
    check()


def test_an_unknown_family_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown grad_output families \\['grad-output-size'\\]"):
        grad_output_cases(families=("grad-output-size",))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(case=grad_output_cases())
def test_the_strategy_draws_only_declared_rejections(case):
    assert case.label.split(":", 1)[1] in GRAD_FAMILY_NAMES
    assert_declared_rejection(case)


def test_the_spatial_example_is_one_tfs_kernels_cannot_tell():
    """Its g size O' maps back to the value's size I under Conv3D's SAME rule (ceil(O'/s) = I)
    while differing from y's: the case TF accepts (ledger grad-output-shape-unchecked-...)."""
    case = next(c for c in grad_family_examples() if c.label == "invalid:grad-output-spatial")
    assert case.padding == "SAME"
    ins = spatial_dims(case.value.shape, case.data_format)
    outs = spatial_dims(list(case.output_shape), case.data_format)
    gs = spatial_dims(list(case.grad_output.shape), case.data_format)
    strides = spatial_triple(case.strides, case.data_format)
    assert gs != outs
    assert all(math.ceil(g / s) == i for g, s, i in zip(gs, strides, ins))


def test_families_are_distinct_from_the_forwards_and_declared_once():
    assert len(set(GRAD_FAMILY_NAMES)) == len(GRAD_FAMILIES)
    assert not set(GRAD_FAMILY_NAMES) & set(FAMILY_NAMES)
    assert {f.impl_raises for f in GRAD_FAMILIES} == {(ValueError,), (TypeError,)}


def test_invalid_gradient_cases_draw_forward_near_misses_and_the_backwards_own():
    strategy = invalid_gradient_cases()
    own = find(strategy, lambda c: c.label.removeprefix("invalid:") in GRAD_FAMILY_NAMES,
               settings=settings(database=None, max_examples=500))
    forward = find(strategy, lambda c: c.label.removeprefix("invalid:") in FAMILY_NAMES,
                   settings=settings(database=None, max_examples=500))
    assert own.is_gradient and forward.is_gradient


def test_each_family_is_a_coverage_cell_required_only_with_a_gradient_target():
    cells = {f"grad-invalid:{f}" for f in GRAD_FAMILY_NAMES}
    assert cells <= set(GRADIENT_REQUIRED)
    for case in grad_family_examples():
        assert cells_of(case) == ["grad-invalid", f"grad-{case.label}"]
    assert cells <= unreachable([FULL])                         # no gradient target: not required
    assert not cells & unreachable([FULL], [FULL])
