"""The gradient kernel's memory and chunking: working memory stays under twice the largest operand
(in the accumulation dtype), and however finely the boxes are chunked the results stay within the
exact reference's bound."""

from __future__ import annotations

import tracemalloc

import ml_dtypes
import numpy as np
import pytest

from conv3dt import impl
import conv3dt.impl.gradients as gradients_module
from tests.unit.grad_helpers import (assert_within_bound, draw_grad_case, grad_call,
                                     impl_accumulation, reference_grads)
from tests.unit.loop_reference import fresh_plan_caches  # noqa: F401  (autouse fixture)


def working_memory_ratio(value_shape, filter_shape, output_shape, strides, dtype, data_format):
    """(peak bytes NumPy allocates during the call − the two results) / largest operand's bytes
    in the accumulation dtype."""
    rng = np.random.default_rng(0)
    value = rng.standard_normal(value_shape).astype(dtype)
    filter = rng.standard_normal(filter_shape).astype(dtype)
    g = rng.standard_normal(output_shape).astype(dtype)
    impl.conv3d_transpose_grads(value, filter, output_shape, g, strides, "SAME", data_format)
    tracemalloc.start()
    try:
        dvalue, dfilter = impl.conv3d_transpose_grads(value, filter, output_shape, g, strides,
                                                      "SAME", data_format)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    largest = max(value.size, filter.size, g.size) * impl_accumulation(dtype).itemsize
    return (peak - dvalue.nbytes - dfilter.nbytes) / largest


@pytest.mark.parametrize("shapes", [
    ((2, 8, 8, 8, 16), (3, 3, 3, 8, 16), (2, 16, 16, 16, 8), 2),        # U-Net up, k3 s2
    ((2, 16, 16, 16, 16), (3, 3, 3, 16, 16), (2, 16, 16, 16, 16), 1),   # refine, k3 s1
    ((4, 8, 8, 8, 64), (2, 2, 2, 32, 64), (4, 16, 16, 16, 32), 2),      # decoder, k2 s2
    ((1, 8, 8, 8, 64), (3, 3, 3, 64, 64), (1, 8, 8, 8, 64), 1),         # filter ~ operands
], ids=["unet-k3s2", "refine-k3s1", "decoder-k2s2", "big-filter"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16, np.float64],
                         ids=lambda d: np.dtype(d).name)
def test_working_memory_is_under_twice_the_largest_operand(shapes, dtype):
    value_shape, filter_shape, output_shape, strides = shapes
    assert working_memory_ratio(value_shape, filter_shape, output_shape, strides, dtype,
                                "NDHWC") <= 2.0


def test_ncdhw_working_memory_is_under_twice_the_largest_operand():
    assert working_memory_ratio((2, 16, 8, 8, 8), (3, 3, 3, 8, 16), (2, 8, 16, 16, 16), 2,
                                np.float16, "NCDHW") <= 2.0


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("fraction", [0.0, 0.02], ids=["one-row-chunks", "small-chunks"])
def test_forced_chunking_stays_within_the_bound(seed, fraction, monkeypatch):
    monkeypatch.setattr(gradients_module, "_MIN_BUDGET", 0)
    monkeypatch.setattr(gradients_module, "_BUDGET_FRACTION", fraction)
    rng = np.random.default_rng([seed, 8013])
    kwargs, strides, dilations = draw_grad_case(rng, max_in=4, max_batch=3, allow_empty=False)
    dvalue, dfilter = impl.conv3d_transpose_grads(**grad_call(kwargs))
    dtype = np.asarray(kwargs["value"]).dtype
    assert_within_bound(kwargs, reference_grads(kwargs, strides, dilations), dvalue, dfilter,
                        impl_accumulation(dtype))


def test_chunks_cover_every_box_exactly_once():
    from conv3dt.impl.kernel import tap_ranges

    plan = tap_ranges((5, 3, 4), (10, 3, 8), (3, 2, 2), (2, 1, 2), (1, 2, 1), (1, 1, 0))
    for budget_rows in (1, 5, 12, 60, 10 ** 6):
        chunks = gradients_module._chunked_boxes(plan, 3, budget_rows)
        for tap, in_index, out_index in plan:
            covered = np.zeros((3, 5, 3, 4), int)
            targets = np.zeros((3, 10, 3, 8), int)
            for chunk in (c for c in chunks if c[0] == tap):
                covered[chunk[1]] += 1
                targets[chunk[2]] += 1
                assert chunk[3] <= max(budget_rows, 12)      # one depth row may exceed it
            expected = np.zeros_like(covered)
            expected[in_index] = 1
            np.testing.assert_array_equal(covered, expected)
            reached = np.zeros_like(targets)
            reached[out_index] = 1
            np.testing.assert_array_equal(targets, reached)
