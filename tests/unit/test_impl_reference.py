"""impl.conv3d_transpose against the exact loop reference under the rigorous error bound."""

from __future__ import annotations

import numpy as np
import pytest

from conv3dt import impl
import conv3dt.impl.kernel as kernel_module
from conv3dt.impl.kernel import transposed_conv_ndhwc
from tests.unit.loop_reference import (  # noqa: F401  (fresh_plan_caches: autouse fixture)
    DTYPES, error_bound, fresh_plan_caches, loop_conv3d_transpose, random_valid_case)


def _check_against_reference(kwargs, strides, dilations):
    result = impl.conv3d_transpose(**kwargs)
    value, filter = np.asarray(kwargs["value"]), kwargs["filter"]
    assert result.shape == tuple(kwargs["output_shape"])
    assert result.dtype == value.dtype
    y_star, magnitude = loop_conv3d_transpose(value, filter, kwargs["output_shape"], strides,
                                              dilations, kwargs["padding"],
                                              kwargs["data_format"])
    n_terms = filter.shape[4] * filter.shape[0] * filter.shape[1] * filter.shape[2]
    bound = error_bound(y_star, magnitude, value.dtype, n_terms)
    error = np.abs(result.astype(np.float64) - y_star)
    assert np.all(error <= bound), float(np.max(error - bound))
    return result


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_random_cases_within_bound(seed, dtype):
    rng = np.random.default_rng([seed, DTYPES.index(dtype)])
    kwargs, strides, dilations = random_valid_case(rng, dtype=dtype)
    _check_against_reference(kwargs, strides, dilations)


@pytest.mark.parametrize("seed", range(8))
def test_larger_channels_and_batch_within_bound(seed):
    rng = np.random.default_rng(1000 + seed)
    kwargs, strides, dilations = random_valid_case(rng, dtype=np.float32, max_in=4,
                                                   max_channels=6, max_batch=3,
                                                   allow_empty=False)
    _check_against_reference(kwargs, strides, dilations)


@pytest.mark.parametrize("seed", range(6))
def test_ncdhw_equals_transposed_ndhwc(seed):
    rng = np.random.default_rng(2000 + seed)
    kwargs, _, _ = random_valid_case(rng, dtype=np.float64, data_format="NDHWC")
    ndhwc = impl.conv3d_transpose(**kwargs)
    shape = kwargs["output_shape"]
    ncdhw = impl.conv3d_transpose(
        value=np.moveaxis(kwargs["value"], 4, 1), filter=kwargs["filter"],
        output_shape=[shape[0], shape[4], *shape[1:4]], strides=kwargs["strides"],
        padding=kwargs["padding"], data_format="NCDHW", dilations=kwargs["dilations"])
    np.testing.assert_array_equal(ncdhw, np.moveaxis(ndhwc, 4, 1))
    assert ncdhw.flags.c_contiguous


class _ArrayLike:
    """Something with ``__array__`` only (like a TF EagerTensor)."""

    def __init__(self, array):
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def _argument_forms(kwargs, strides, dilations):
    """Equivalent spellings of one call."""
    value, filter, shape = kwargs["value"], kwargs["filter"], kwargs["output_shape"]
    fmt = kwargs["data_format"]
    def five(triple):
        return [1, 1, *triple] if fmt == "NCDHW" else [1, *triple, 1]
    base = dict(output_shape=shape, padding=kwargs["padding"], data_format=fmt)
    yield dict(base, value=value, filter=filter, strides=strides, dilations=dilations)
    yield dict(base, input=value, filters=filter, strides=list(strides), dilations=tuple(dilations))
    yield dict(base, value=_ArrayLike(value), filter=_ArrayLike(filter),
               strides=five(strides), dilations=np.array(five(dilations)))
    yield dict(base, value=value, filter=filter, strides=np.array(strides, np.int64),
               dilations=five(dilations), output_shape=np.array(shape, np.int32))
    yield dict(base, value=value, filter=filter, strides=strides, dilations=dilations,
               output_shape=_ArrayLike(np.array(shape, np.int64)))
    yield dict(base, value=value, filter=filter, strides=strides, dilations=dilations,
               output_shape=tuple(np.array(shape, np.int64)))
    if len(set(strides)) == 1 and len(set(dilations)) == 1:
        yield dict(base, value=value, filter=filter, strides=strides[0], dilations=[dilations[0]])
        yield dict(base, value=value, filter=filter, strides=(np.int32(strides[0]),),
                   dilations=np.int64(dilations[0]))


@pytest.mark.parametrize("seed", range(6))
def test_all_argument_forms_agree(seed):
    rng = np.random.default_rng(3000 + seed)
    kwargs, strides, dilations = random_valid_case(rng, dtype=np.float32, allow_empty=False)
    if seed % 2:  # make sure the scalar forms are exercised too
        strides, dilations = (strides[0],) * 3, (dilations[0],) * 3
        kwargs, strides, dilations = _respell(rng, kwargs, strides, dilations)
    expected = _check_against_reference(kwargs, strides, dilations)
    for form in _argument_forms(kwargs, strides, dilations):
        np.testing.assert_array_equal(impl.conv3d_transpose(**form), expected)


def _respell(rng, kwargs, strides, dilations):
    """Rebuild a valid case whose strides/dilations are uniform over D, H, W."""
    for _ in range(200):
        candidate, s, d = random_valid_case(rng, dtype=np.float32, allow_empty=False)
        if len(set(s)) == 1 and len(set(d)) == 1:
            return candidate, s, d
    candidate, s, d = random_valid_case(rng, dtype=np.float32, allow_empty=False, max_stride=1,
                                        max_dilation=1)
    return candidate, s, d


def test_python_lists_default_to_float32_and_follow_a_typed_partner():
    value = np.arange(8, dtype=np.float64).reshape(1, 2, 2, 2, 1)
    filter = np.ones((1, 1, 1, 1, 1))
    as_lists = impl.conv3d_transpose(value.tolist(), filter.tolist(), [1, 2, 2, 2, 1], 1)
    assert as_lists.dtype == np.float32
    np.testing.assert_array_equal(as_lists, value.astype(np.float32))
    typed_filter = impl.conv3d_transpose(value.astype(int).tolist(), filter, [1, 2, 2, 2, 1], 1)
    assert typed_filter.dtype == np.float64
    np.testing.assert_array_equal(typed_filter, value)


@pytest.mark.parametrize("shape", [(0, 2, 2, 2, 3), (1, 2, 2, 2, 0), (1, 0, 2, 2, 3)])
def test_zero_size_dims_give_zeros_of_the_requested_shape(shape):
    n, d, h, w, cin = shape
    value = np.ones(shape, np.float32)
    filter = np.ones((2, 2, 2, 4, cin), np.float32)
    output_shape = [n, 2 * d, 2 * h, 2 * w, 4]
    result = impl.conv3d_transpose(value, filter, output_shape, 2)
    assert result.shape == tuple(output_shape) and result.dtype == np.float32
    assert not np.any(result)


def test_zero_output_channels():
    result = impl.conv3d_transpose(np.ones((1, 2, 2, 2, 3)), np.ones((2, 2, 2, 0, 3)),
                                   [1, 4, 4, 4, 0], 2)
    assert result.shape == (1, 4, 4, 4, 0)


def test_valid_truncating_division_accepts_empty_input_and_returns_zeros():
    # O=1, eff=3, s=2: trunc((1-3+2)/2) = 0 == I (floor agrees here); O=1, eff=5, s=3:
    # trunc(-1/3) = 0 while floor would give -1 - TF's rule accepts I = 0.
    for kernel, stride in [(3, 2), (5, 3)]:
        result = impl.conv3d_transpose(np.ones((1, 0, 1, 1, 2)), np.ones((kernel, 1, 1, 3, 2)),
                                       [1, 1, 1, 1, 3], stride, "VALID")
        assert result.shape == (1, 1, 1, 1, 3) and not np.any(result)


@pytest.mark.parametrize("accum", [np.float32, np.float64, np.longdouble])
def test_kernel_accumulates_in_the_requested_dtype(accum):
    rng = np.random.default_rng(7)
    # float32-representable inputs, so converting them to accum is exact
    value = rng.standard_normal((2, 3, 2, 3, 2)).astype(np.float32).astype(np.float64)
    filter = rng.standard_normal((3, 2, 2, 3, 2)).astype(np.float32).astype(np.float64)
    result = transposed_conv_ndhwc(value, filter, (5, 3, 6), (2, 1, 2), (1, 2, 1), (1, 0, 0),
                                   accum)
    assert result.dtype == np.dtype(accum) and result.shape == (2, 5, 3, 6, 3)
    y_star, magnitude = loop_conv3d_transpose(value, filter, (2, 5, 3, 6, 3), (2, 1, 2),
                                              (1, 2, 1), "SAME")
    unit = float(np.finfo(accum).eps) / 2
    n_terms = 2 * 3 * 2 * 2
    bound = unit * np.abs(y_star) + n_terms * unit / (1 - n_terms * unit) * magnitude
    # longdouble results are compared after rounding to float64 (one more rounding of y_star).
    slack = 2.0 ** -53 * np.abs(y_star) if accum is np.longdouble else 0.0
    assert np.all(np.abs(result.astype(np.float64) - y_star) <= bound + slack)


@pytest.mark.parametrize("geometry", [
    # (value shape, filter shape, output spatial, strides, dilations, pad_before)
    ((2, 6, 5, 4, 3), (3, 3, 3, 2, 3), (6, 5, 4), (1, 1, 1), (1, 1, 1), (1, 1, 1)),  # padded
    ((2, 5, 4, 4, 3), (2, 2, 2, 2, 3), (10, 8, 8), (2, 2, 2), (1, 1, 1), (0, 0, 0)),  # in place
    ((1, 4, 6, 3, 2), (3, 2, 2, 3, 2), (7, 11, 6), (2, 2, 2), (1, 2, 1), (1, 1, 0)),
], ids=["stride1-27taps", "stride2-in-place", "mixed"])
@pytest.mark.parametrize("budget", [0, 600, 4000], ids=lambda b: f"budget{b}")
def test_kernel_chunking_matches_the_loops(geometry, budget, monkeypatch):
    """Tiny budgets force chunking by sample, depth and height rows; results must not change."""
    value_shape, filter_shape, out_spatial, strides, dilations, pads = geometry
    monkeypatch.setattr(kernel_module, "_MIN_BUDGET", budget)
    monkeypatch.setattr(kernel_module, "_BUDGET_FRACTION", 0.0)
    kernel_module._geometry_plan.cache_clear()
    rng = np.random.default_rng(11)
    value = rng.standard_normal(value_shape)
    filter = rng.standard_normal(filter_shape)
    try:
        result = transposed_conv_ndhwc(value, filter, out_spatial, strides, dilations, pads,
                                       np.float64)
        plan = kernel_module._geometry_plan(value_shape[0], value_shape[1:4], value_shape[4],
                                            out_spatial, filter_shape[3], filter_shape[:3],
                                            strides, dilations, pads, 8)
    finally:
        kernel_module._geometry_plan.cache_clear()
    if budget < 4000:
        assert max(len(phase[2]) for phase in plan) > value_shape[0]  # really chunked
    output_shape = (value_shape[0], *out_spatial, filter_shape[3])
    # the loop reference derives SAME padding itself; these pads are TF's SAME pads
    y_star, _ = loop_conv3d_transpose(value, filter, output_shape, strides, dilations, "SAME")
    np.testing.assert_allclose(result, y_star, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, accum", [(np.float16, np.float32), (DTYPES[1], np.float32),
                                          (np.float32, np.float32), (np.float64, np.float64)],
                         ids=["float16", "bfloat16", "float32", "float64"])
def test_conv3d_transpose_accumulates_in_float32_or_float64(dtype, accum, monkeypatch):
    import conv3dt.impl.transpose as transpose_module

    seen = []

    def recording_kernel(*args):
        seen.append(np.dtype(args[-1]))
        return transposed_conv_ndhwc(*args)

    monkeypatch.setattr(transpose_module, "transposed_conv_ndhwc", recording_kernel)
    result = impl.conv3d_transpose(np.ones((1, 2, 2, 2, 1), dtype), np.ones((1, 1, 1, 1, 1), dtype),
                                   [1, 2, 2, 2, 1], 1)
    assert seen == [np.dtype(accum)] and result.dtype == np.dtype(dtype)


def test_window_that_overruns_only_the_end_is_padded():
    # Axis D: I=6, K=5, s=4, d=3, SAME, O=24: a phase whose window starts inside the input but
    # runs past its end (must be zero-extended, not read in place).
    rng = np.random.default_rng(21)
    value = rng.standard_normal((2, 6, 2, 2, 2))
    filter = rng.standard_normal((5, 1, 1, 3, 2))
    kwargs = dict(value=value, filter=filter, output_shape=[2, 24, 2, 2, 3], strides=[4, 1, 1],
                  padding="SAME", data_format="NDHWC", dilations=[3, 1, 1])
    _check_against_reference(kwargs, (4, 1, 1), (3, 1, 1))


def test_kernel_equal_to_stride_reads_the_input_in_place():
    # U-Net up-sampling (K = s = 2, SAME): every phase is one GEMM on the input itself.
    plan = kernel_module._geometry_plan(2, (4, 4, 4), 8, (8, 8, 8), 4, (2, 2, 2), (2, 2, 2),
                                        (1, 1, 1), (0, 0, 0), 4)
    assert len(plan) == 8
    assert all(chunk[0] is None for phase in plan for chunk in phase[2])


def _chunk_cost(chunk, cout, itemsize):
    slab_spec, _, shape, _, _, _, width = chunk
    samples, depth, height, width_out, taps_d, taps_h, taps_w, cin = shape
    taps = taps_d * taps_h * taps_w
    gemm = samples * depth * height * width_out * (cout + (taps * cin if taps > 1 else 0))
    slab = int(np.prod(slab_spec[0])) if slab_spec is not None else 0
    return (gemm + slab) * itemsize, slab * itemsize


@pytest.mark.parametrize("geometry", [
    # (batch, in spatial, cin, out spatial, cout, kernel, strides, dilations, pads)
    (2, (8, 8, 8), 16, (8, 8, 8), 8, (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    (2, (8, 8, 8), 64, (10, 10, 10), 64, (3, 3, 3), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    (1, (16, 16, 16), 8, (32, 32, 32), 8, (3, 3, 3), (2, 2, 2), (1, 1, 1), (0, 0, 0)),
    (3, (6, 6, 6), 32, (18, 18, 18), 16, (4, 4, 4), (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    (1, (12, 12, 12), 16, (12, 12, 12), 16, (3, 3, 3), (1, 1, 1), (2, 2, 2), (2, 2, 2)),
    (2, (6, 9, 12), 16, (6, 9, 12), 8, (2, 3, 4), (1, 1, 1), (1, 1, 1), (0, 1, 1)),
    (1, (9, 5, 7), 8, (18, 10, 7), 8, (3, 4, 2), (2, 2, 1), (1, 1, 2), (1, 1, 1)),
])
@pytest.mark.parametrize("fraction, minimum", [(0.75, 64 * 1024), (0.0, 4096), (0.1, 20000)])
def test_chunk_plan_tiles_the_output_within_the_budget_and_maximally(geometry, fraction, minimum,
                                                                     monkeypatch):
    monkeypatch.setattr(kernel_module, "_BUDGET_FRACTION", fraction)
    monkeypatch.setattr(kernel_module, "_MIN_BUDGET", minimum)
    batch, in_spatial, cin, out_spatial, cout, kernel, strides, dilations, pads = geometry
    itemsize = 4
    plan = kernel_module._plan_geometry(*geometry, itemsize)
    out_bytes = batch * int(np.prod(out_spatial)) * cout * itemsize
    filter_bytes = int(np.prod(kernel)) * cin * cout * itemsize
    budget = max(int(out_bytes * fraction) - filter_bytes, minimum)
    covered = np.zeros((batch, *out_spatial), np.int64)
    for filter_index, out_index, chunks in plan:
        phase_view = covered[out_index]
        for position, chunk in enumerate(chunks):
            cost, slab = _chunk_cost(chunk, cout, itemsize)
            samples, depth, height = chunk[2][:3]
            assert cost <= budget or (samples, depth, height) == (1, 1, 1)
            phase_view[chunk[4]] += 1
            whole_rows = height == phase_view.shape[2]
            first_of_sample = chunk[4][1].start == 0 and chunk[4][2].start == 0
            if len(chunks) > 1 and first_of_sample and whole_rows:
                # one more depth row would not have fitted (or the sample is complete)
                gemm = cost - slab
                slab_rows = chunk[0][0][1] if chunk[0] is not None else 1
                bigger = gemm * (depth + 1) // depth + slab * (slab_rows + 1) // slab_rows
                assert bigger > budget or depth == phase_view.shape[1]
            if len(chunks) > 1 and first_of_sample and not whole_rows:
                # one more output row would not have fitted
                gemm = cost - slab
                slab_rows = chunk[0][0][2] if chunk[0] is not None else 1
                bigger = gemm * (height + 1) // height + slab * (slab_rows + 1) // slab_rows
                assert bigger > budget
        assert len(chunks) == 1 or cost > 0
    # every output position reached by some tap is written exactly once
    reached = np.zeros_like(covered)
    for _, out_index, chunks in plan:
        reached[out_index] = 1
    assert np.array_equal(covered[reached == 1], np.ones(int(reached.sum()), np.int64))
    assert np.all(covered <= 1)


@pytest.mark.parametrize("shape", [
    # (batch, size, cin, cout, kernel, stride, padding)
    (1, 16, 16, 8, 3, 1, "SAME"),
    (2, 6, 32, 16, 2, 2, "SAME"),
    (1, 6, 16, 16, 3, 2, "VALID"),
    (4, 6, 16, 16, 4, 2, "SAME"),
])
def test_peak_memory_stays_within_twice_the_output(shape):
    """Steady-state peak, for outputs well above the 64 KiB minimum chunk and filters well below
    the output (the phase filter matrix is a copy: when the filter outweighs the output, so does
    the peak). The first call of a geometry also builds and caches its plan (Python objects)."""
    import tracemalloc

    batch, size, cin, cout, kernel, stride, padding = shape
    out = size * stride if padding == "SAME" else (size - 1) * stride + kernel
    rng = np.random.default_rng(5)
    value = rng.standard_normal((batch, size, size, size, cin), dtype=np.float32)
    filter = rng.standard_normal((kernel,) * 3 + (cout, cin), dtype=np.float32)
    arguments = (value, filter, [batch, out, out, out, cout], stride, padding)
    impl.conv3d_transpose(*arguments)  # steady state: the geometry's plan is cached (and kept)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = impl.conv3d_transpose(*arguments)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 2 * result.nbytes


def test_chunks_that_see_only_padding_are_skipped_not_the_rest(monkeypatch):
    # D axis: I=1, K=2, s=2, d=3, VALID, O=4: with one-row chunks a phase's first chunk reads only
    # padding (dropped: its outputs stay 0) while later chunks do read the input.
    monkeypatch.setattr(kernel_module, "_BUDGET_FRACTION", 0.0)
    monkeypatch.setattr(kernel_module, "_MIN_BUDGET", 0)
    rng = np.random.default_rng(8)
    value = rng.standard_normal((2, 1, 2, 3, 2))
    filter = rng.standard_normal((2, 2, 1, 3, 2))
    result = transposed_conv_ndhwc(value, filter, (4, 3, 3), (2, 1, 1), (3, 1, 1), (0, 0, 0),
                                   np.float64)
    y_star, _ = loop_conv3d_transpose(value, filter, (2, 4, 3, 3, 3), (2, 1, 1), (3, 1, 1),
                                      "VALID")
    np.testing.assert_allclose(result, y_star, rtol=1e-13, atol=1e-13)
    assert np.any(result[:, 3])  # the row after the dropped chunk was computed
