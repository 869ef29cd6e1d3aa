"""Non-finite filter taps reach only the outputs the definition says they reach.

``y[n, o, co]`` sums only the real products ``value[n, i, ci] * filter[k, co, ci]`` with
``o = i*s + k*d - P``. A formulation that multiplies zero padding by every tap would turn
``0 * inf`` / ``0 * nan`` into nan in outputs an infinite or nan tap never reaches (TF 2.21's stock
CPU kernel does exactly that for batch >= 2: see the ledger). Expected values here come from the
loop reference only: the reach of the non-finite taps is the loop reference applied to
``ones(value) ⊛ indicator(filter non-finite)``, and every other output must equal the exact sum with
those taps zeroed (they contribute nothing there) within the rigorous bound.
"""
import numpy as np
import pytest

from conv3dt import impl
from tests.unit.loop_reference import (error_bound, fresh_plan_caches, loop_conv3d_transpose,  # noqa: F401
                                       random_valid_case)

SPECIALS = (np.inf, -np.inf, np.nan)


@pytest.mark.parametrize("seed", range(40))
def test_non_finite_filter_taps_reach_only_their_outputs(seed):
    rng = np.random.default_rng(1000 + seed)
    kwargs, strides, dilations = random_valid_case(rng, dtype=(np.float32, np.float64)[seed % 2],
                                                   max_in=3, max_kernel=4, allow_empty=False)
    filt = kwargs["filter"].copy()
    flat = filt.reshape(-1)
    bad = rng.choice(flat.size, size=max(1, flat.size // 8), replace=False)
    flat[bad] = rng.choice(SPECIALS, size=bad.size)
    kwargs["filter"] = filt
    result = impl.conv3d_transpose(**kwargs).astype(np.float64)

    geometry = dict(output_shape=kwargs["output_shape"], strides=strides, dilations=dilations,
                    padding=kwargs["padding"], data_format=kwargs["data_format"])
    non_finite = ~np.isfinite(filt)
    reach, _ = loop_conv3d_transpose(np.ones_like(kwargs["value"]), non_finite.astype(filt.dtype),
                                     **geometry)
    reached = reach > 0
    clean = np.where(non_finite, 0, filt).astype(filt.dtype)
    y_star, magnitude = loop_conv3d_transpose(kwargs["value"], clean, **geometry)
    n_terms = kwargs["value"].shape[1 if kwargs["data_format"] == "NCDHW" else 4] * filt[..., 0, 0].size

    assert not np.isfinite(result[reached]).any(), "a reached output lost its non-finite term"
    unreached = ~reached
    assert np.isfinite(result[unreached]).all(), \
        "a non-finite tap leaked into an output it never reaches"
    bound = error_bound(y_star, magnitude, filt.dtype, n_terms)
    assert (np.abs(result - y_star)[unreached] <= bound[unreached]).all()


def test_filter_as_large_as_the_output_matches_the_reference():
    """The memory-saving tap-wise path (filter bytes > output bytes / 2) is the same sum."""
    rng = np.random.default_rng(7)
    value = rng.standard_normal((2, 2, 2, 2, 6)).astype(np.float32)
    filt = rng.standard_normal((3, 3, 3, 5, 6)).astype(np.float32)
    shape = [2, 4, 4, 4, 5]
    assert 2 * filt.nbytes > 4 * np.prod(shape)
    result = impl.conv3d_transpose(value, filt, shape, strides=2, padding="SAME")
    y_star, magnitude = loop_conv3d_transpose(value, filt, shape, (2, 2, 2), (1, 1, 1), "SAME")
    assert (np.abs(result - y_star) <= error_bound(y_star, magnitude, filt.dtype, 6 * 27)).all()


def test_tap_whose_inputs_all_land_before_the_output_is_skipped():
    """SAME, stride 2, dilation 2, K = 5 over 2 inputs and 3 outputs: pad_before = 4, so tap 0's
    targets ``o = 2i - 4`` are negative for both inputs — its input range is empty exactly at
    the input's end. The tap-wise path (a nan tap forces it; the nan tap 4 reaches nothing) must
    skip it, not pair an empty input box with a non-empty output slice."""
    value = np.array([1.0, 2.0]).reshape(1, 2, 1, 1, 1)
    filt = np.ones((5, 1, 1, 1, 1))
    filt[4] = np.nan
    geometry = dict(output_shape=[1, 3, 1, 1, 1], strides=[1, 2, 1, 1, 1], padding="SAME",
                    dilations=[1, 2, 1, 1, 1])
    result = impl.conv3d_transpose(value, filt, **geometry)
    expected, _ = loop_conv3d_transpose(value, np.where(np.isnan(filt), 0.0, filt),
                                        **dict(geometry, strides=(2, 1, 1), dilations=(2, 1, 1)))
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(result.ravel(), [3.0, 0.0, 3.0])
