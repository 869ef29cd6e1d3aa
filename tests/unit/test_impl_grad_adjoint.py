"""The gradients are the adjoints of the forward's Jacobians, checked with the forward impl.

``y = conv3d_transpose(value, filter)`` is bilinear, so its Jacobians are the forward itself:
``J_value·u = conv3d_transpose(u, filter)`` and ``J_filter·w = conv3d_transpose(value, w)``. The
gradients must satisfy ``⟨g, J_value·u⟩ = ⟨dvalue, u⟩`` and ``⟨g, J_filter·w⟩ = ⟨dfilter, w⟩``
for every ``u``, ``w``; and since ``⟨g, y⟩`` is linear along any line through ``(value, filter)``
up to an ``h²`` term that the central difference cancels, ``(F(h) − F(−h)) / 2h`` with
``F(h) = ⟨g, conv3d_transpose(value + h·u, filter + h·w)⟩`` equals ``⟨dvalue, u⟩ + ⟨dfilter, w⟩``
exactly in exact arithmetic, for any ``h``. Both are checked in float64 under a tolerance derived
from the number of products each side sums (``tolerance``), not a guessed rtol.
"""

from __future__ import annotations

import numpy as np
import pytest

from conv3dt import impl
from tests.unit.grad_helpers import draw_grad_case, grad_call
from tests.unit.loop_reference import fresh_plan_caches, gradient_terms  # noqa: F401  (autouse)

U64 = 2.0 ** -53


def forward(kwargs, value, filter):
    return impl.conv3d_transpose(value, filter, kwargs["output_shape"], kwargs["strides"],
                                 kwargs["padding"], kwargs["data_format"],
                                 dilations=kwargs["dilations"])


def grads(kwargs, value, filter, g):
    return impl.conv3d_transpose_grads(**dict(grad_call(kwargs), value=value, filter=filter,
                                              grad_output=g))


def tolerance(kwargs, n_products, *magnitudes):
    """``2·γ_n(2⁻⁵³)·Σ magnitudes``: each magnitude is an inner product of absolute values
    (``⟨|g|, |value| ⊛ |filter|⟩``-like) bounding the terms one side sums, ``n`` the longest
    chain of roundings (products per element + elements in the inner product)."""
    n = n_products + 2
    return 2 * n * U64 / (1 - n * U64) * sum(magnitudes)


def float64_case(seed, data_format):
    """A float64 Case in which some product reaches the output (geometries where every tap
    lands in the padding make y ≡ 0: true but vacuous identities), with directions u, w."""
    rng = np.random.default_rng([seed, 4013, len(data_format)])
    while True:
        kwargs, _, _ = draw_grad_case(rng, dtype=np.float64, data_format=data_format,
                                      allow_empty=False, max_channels=4)
        if np.any(forward(kwargs, np.abs(kwargs["value"]), np.abs(kwargs["filter"]))):
            break
    u = rng.standard_normal(np.shape(kwargs["value"]))
    w = rng.standard_normal(np.shape(kwargs["filter"]))
    return kwargs, u, w


def chain_length(kwargs):
    n_value, n_filter = gradient_terms(np.shape(kwargs["filter"]), np.shape(kwargs["value"]),
                                       kwargs["data_format"])
    # forward products per output element (Cin * taps) + the sizes of the inner products
    taps_cin = int(np.prod(np.shape(kwargs["filter"])[:3])) * np.shape(kwargs["filter"])[4]
    return max(n_value, n_filter, taps_cin) + max(np.size(kwargs["grad_output"]),
                                                  np.size(kwargs["value"]),
                                                  np.size(kwargs["filter"]))


@pytest.mark.parametrize("data_format", ["NDHWC", "NCDHW"])
@pytest.mark.parametrize("seed", range(12))
def test_gradients_are_the_adjoints_of_the_jacobians(seed, data_format):
    kwargs, u, w = float64_case(seed, data_format)
    value, filter, g = kwargs["value"], kwargs["filter"], kwargs["grad_output"]
    dvalue, dfilter = grads(kwargs, value, filter, g)
    abs_dvalue, abs_dfilter = grads(kwargs, np.abs(value), np.abs(filter), np.abs(g))
    n = chain_length(kwargs)
    left, right = np.vdot(g, forward(kwargs, u, filter)), np.vdot(dvalue, u)
    magnitude = np.vdot(np.abs(g), forward(kwargs, np.abs(u), np.abs(filter)))
    assert abs(left - right) <= tolerance(kwargs, n, magnitude, np.vdot(abs_dvalue, np.abs(u)))
    left, right = np.vdot(g, forward(kwargs, value, w)), np.vdot(dfilter, w)
    magnitude = np.vdot(np.abs(g), forward(kwargs, np.abs(value), np.abs(w)))
    assert abs(left - right) <= tolerance(kwargs, n, magnitude, np.vdot(abs_dfilter, np.abs(w)))


@pytest.mark.parametrize("h", [1.0, 2.0 ** -10])
@pytest.mark.parametrize("seed", range(10))
def test_central_difference_is_the_directional_derivative(seed, h):
    kwargs, u, w = float64_case(seed, ("NDHWC", "NCDHW")[seed % 2])
    value, filter, g = kwargs["value"], kwargs["filter"], kwargs["grad_output"]
    dvalue, dfilter = grads(kwargs, value, filter, g)
    def objective(step):
        return np.vdot(g, forward(kwargs, value + step * u, filter + step * w))
    numeric = (objective(h) - objective(-h)) / (2 * h)
    analytic = np.vdot(dvalue, u) + np.vdot(dfilter, w)
    # F(±h) each sum terms bounded by <|g|, (|value| + h|u|) ⊛ (|filter| + h|w|)>; their
    # rounding errors are divided by 2h. The analytic side is bounded by the |.| gradients.
    abs_dvalue, abs_dfilter = grads(kwargs, np.abs(value), np.abs(filter), np.abs(g))
    big = np.vdot(np.abs(g), forward(kwargs, np.abs(value) + h * np.abs(u),
                                     np.abs(filter) + h * np.abs(w)))
    n = chain_length(kwargs)
    allowed = tolerance(kwargs, n, 2 * big / (2 * h), np.vdot(abs_dvalue, np.abs(u)),
                        np.vdot(abs_dfilter, np.abs(w)))
    assert abs(numeric - analytic) <= allowed, (numeric, analytic, allowed)
    # teeth: an error of 1e-9 of the terms' scale would exceed the tolerance
    assert allowed < 1e-9 * (np.vdot(abs_dvalue, np.abs(u)) + np.vdot(abs_dfilter, np.abs(w)))
