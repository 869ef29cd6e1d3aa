"""The realistic-size tier's strategy: valid by construction, within its budget, at the
boundaries it claims, arguments validated, and the float32-accumulation judging of half
precision (a kernel that rounds every product to the dtype is caught; one that sums in float32
is not)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from conv3dt.fuzz.coverage import SIZE_CELLS, cells_of
from conv3dt.fuzz.judge import judge_value
from conv3dt.fuzz.realistic import (BUDGETS, CHANNELS, SizeBudget, boundary_cases, realistic_cases,
                            tier_seed)
from conv3dt.fuzz.truth import normalized, truth_of
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome

FAST = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
SMALL = SizeBudget(20_000, 400_000)


@FAST
@given(case=realistic_cases(SMALL))
def test_every_draw_is_valid_and_within_its_budget(case):
    call = normalized(case)                     # impl's validation: raises for an invalid Case
    outputs = math.prod(call.output_shape)
    work = math.prod(call.value.shape) * math.prod(call.filter.shape[:4])
    assert outputs <= SMALL.outputs and work <= SMALL.work, (outputs, work)


def test_boundary_cases_are_valid_and_hit_every_size_cell():
    hit = set()
    for case in boundary_cases():
        normalized(case)
        hit |= {c for c in cells_of(case) if c.startswith("size:")}
    assert set(SIZE_CELLS) <= hit, set(SIZE_CELLS) - hit


def test_channel_counts_straddle_every_power_of_two_up_to_128():
    for p in (4, 8, 16, 32, 64, 128):
        assert {p - 1, p, p + 1} <= set(CHANNELS), p


@pytest.mark.parametrize("kwargs, error", [
    (dict(budget=(10, 10)), TypeError),
    (dict(dtypes=()), ValueError),
    (dict(dtypes=("float8",)), ValueError),
    (dict(layouts=("NHWC",)), ValueError),
    (dict(paddings=("FULL",)), ValueError),
])
def test_bad_strategy_arguments_raise_naming_the_argument(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        realistic_cases(**kwargs)


@pytest.mark.parametrize("outputs, work", [(0, 10), (10, -1), (1.5, 10)])
def test_bad_budgets_raise(outputs, work):
    with pytest.raises(ValueError, match="SizeBudget"):
        SizeBudget(outputs, work)


def test_each_dtype_search_has_its_own_seed_and_the_run_seed_changes_them():
    seeds = {tier_seed(d, 0) for d in ("float32", "float64", "float16", "bfloat16")}
    assert len(seeds) == 4 and tier_seed("float32", 0) != tier_seed("float32", 1)
    assert BUDGETS["nightly"].work > BUDGETS["ci"].work and BUDGETS["nightly"].outputs > BUDGETS["ci"].outputs


def _half_case(dtype: str) -> Case:
    """Short sums (6 products per output) over 512 outputs: the dtype rounding of each product
    is then larger than the float32-accumulation bound allows somewhere."""
    return Case(value=ArraySpec(dtype, (1, 4, 4, 16, 2), "normal", 3, (("scale", 1.0),)),
                filter=ArraySpec(dtype, (1, 1, 3, 8, 2), "normal", 4, (("scale", 1.0),)),
                output_shape=[1, 4, 4, 16, 8], strides=[1, 1, 1], padding="SAME")


def _rounding_every_product(case: Case) -> np.ndarray:
    """The stock-TF behaviour (ledger stock-half-rounds-products): each product rounded to the
    dtype, summed in float32, the result rounded to the dtype. The 1 x 1 x 3 kernel of
    ``_half_case``, SAME: out[..., o, co] = sum_{i, ci} v[..., i, ci] · w[0, 0, o - i + 1, co, ci]."""
    call = normalized(case)
    v, w = call.value, call.filter
    out = np.zeros(call.output_shape, np.float32)
    for o in range(v.shape[3]):
        for i in range(max(0, o - 1), min(v.shape[3], o + 2)):
            prods = (v[:, :, :, i, None, :].astype(np.float64) * w[0, 0, o - i + 1].astype(np.float64))
            out[:, :, :, o] += prods.astype(call.dtype).astype(np.float32).sum(axis=-1)
    return out.astype(call.dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_rounding_every_product_is_an_accumulation_finding(dtype):
    case = _half_case(dtype)
    truth = truth_of(case)
    for y, kinds in ((truth.exact_value, []),                     # the correctly rounded sum
                     (_rounding_every_product(case), ["accumulation-precision"])):
        findings, _ = judge_value(case, Outcome.of_value(y), truth, "tf-eager", "realistic")
        assert [f.kind for f in findings] == kinds, (dtype, [f.observed for f in findings])
