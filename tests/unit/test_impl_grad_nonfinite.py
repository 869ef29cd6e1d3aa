"""Non-finite entries reach exactly the gradient elements the definition says.

``dvalue[n, i, ci]`` sums ``g[n, o, co] * filter[k, co, ci]`` and ``dfilter[k, co, ci]`` sums
``value[n, i, ci] * g[n, o, co]`` over the real pairs ``o = i*s + k*d - P`` only. A formulation
that multiplied zero padding by every entry (an im2col of a padded ``g``) would turn ``0 * inf``
into nan where the definition has no term. Expected values come from the loop reference alone:
an element is reached iff one of its terms has a non-finite factor (counted by the loop reference
on indicator arrays); reached elements must be non-finite, the others must equal the exact sum
with the non-finite entries zeroed, within the rigorous bound.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conv3dt import impl
from tests.unit.grad_helpers import (assert_within_bound, draw_grad_case, grad_call,
                                     impl_accumulation)
from tests.unit.loop_reference import fresh_plan_caches, loop_conv3d_transpose_grads  # noqa: F401

SPECIALS = (np.inf, -np.inf, np.nan)


def _spoil(rng, array):
    """A copy with about an eighth of the entries (at least one) set to inf, -inf or nan."""
    spoiled = np.array(array, copy=True)
    flat = spoiled.reshape(-1)
    bad = rng.choice(flat.size, size=max(1, flat.size // 8), replace=False)
    flat[bad] = rng.choice(SPECIALS, size=bad.size)
    return spoiled


def _reach(kwargs, strides, dilations, bad, ones):
    """Per gradient, how many terms have a non-finite factor (loop reference on indicators)."""
    def grads(value, filter, g):
        return loop_conv3d_transpose_grads(value, filter, kwargs["output_shape"], g, strides,
                                           dilations, kwargs["padding"], kwargs["data_format"])
    by_g = grads(ones["value"], ones["filter"], bad["grad_output"])
    by_filter = grads(ones["value"], bad["filter"], ones["grad_output"])
    by_value = grads(bad["value"], ones["filter"], ones["grad_output"])
    return by_g[0][0] + by_filter[0][0], by_g[1][0] + by_value[1][0]


@pytest.mark.parametrize("spoiled", [("grad_output",), ("filter",), ("value",),
                                     ("value", "filter", "grad_output")], ids="+".join)
@pytest.mark.parametrize("seed", range(10))
def test_non_finite_entries_reach_only_their_terms(seed, spoiled):
    rng = np.random.default_rng([seed, 9013])
    kwargs, strides, dilations = draw_grad_case(rng, dtype=(np.float32, np.float64)[seed % 2],
                                                max_in=3, max_kernel=4, allow_empty=False)
    for name in spoiled:
        kwargs[name] = _spoil(rng, kwargs[name])
    arrays = {name: np.asarray(kwargs[name]) for name in ("value", "filter", "grad_output")}
    bad = {name: (~np.isfinite(a)).astype(np.float64) for name, a in arrays.items()}
    ones = {name: np.ones(a.shape) for name, a in arrays.items()}
    reach_value, reach_filter = _reach(kwargs, strides, dilations, bad, ones)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # inf - inf, 0 * inf: NumPy reports
        dvalue, dfilter = impl.conv3d_transpose_grads(**grad_call(kwargs))
    clean = dict(kwargs, **{name: np.where(np.isfinite(a), a, 0).astype(a.dtype)
                            for name, a in arrays.items()})
    reference = loop_conv3d_transpose_grads(clean["value"], clean["filter"],
                                            kwargs["output_shape"], clean["grad_output"], strides,
                                            dilations, kwargs["padding"], kwargs["data_format"])
    for result, reach in ((dvalue, reach_value), (dfilter, reach_filter)):
        assert not np.any(np.isfinite(result[reach > 0]))
        assert np.all(np.isfinite(result[reach == 0]))
    # Elsewhere: the exact sum without the non-finite entries (reached elements set aside).
    masked = tuple(tuple(np.where(reach > 0, 0.0, part) for part in pair)
                   for pair, reach in zip(reference, (reach_value, reach_filter)))
    dtype = arrays["value"].dtype
    assert_within_bound(clean, masked, np.where(reach_value > 0, 0, dvalue).astype(dtype),
                        np.where(reach_filter > 0, 0, dfilter).astype(dtype),
                        impl_accumulation(dtype))
