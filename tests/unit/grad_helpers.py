"""Shared helpers of the gradient tests: drawing a Case with its upstream gradient, and judging a
``(dvalue, dfilter)`` pair against the exact loop reference under the rigorous bound.

Each gradient element is a sum of products: ``Cout * taps`` of them for dvalue, ``N * input
positions`` for dfilter (``loop_reference.gradient_terms``); the bound is
``loop_reference.rigorous_bound`` with that ``n``. ``accumulation`` is the precision a result is
held to: impl documents float32 for float16/bfloat16/float32 and float64 for float64 (the tight
bound); TF promises no accumulation precision, so TF is held to its dtype's (the contract's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.unit.loop_reference import (gradient_terms, loop_conv3d_transpose_grads,
                                       random_valid_case, rigorous_bound)

GRAD_KEYS = ("value", "filter", "output_shape", "grad_output", "strides", "padding",
             "data_format", "dilations")


def impl_accumulation(dtype: Any) -> np.dtype:
    """The accumulation precision impl documents for ``dtype``."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def draw_grad_case(rng: np.random.Generator, **draw: Any) -> tuple[dict, tuple, tuple]:
    """A random valid forward call (``random_valid_case(rng, **draw)``) plus ``grad_output``:
    standard normal data of the output's shape and dtype."""
    kwargs, strides, dilations = random_valid_case(rng, **draw)
    dtype = np.asarray(kwargs["value"]).dtype
    kwargs["grad_output"] = rng.standard_normal(kwargs["output_shape"]).astype(dtype)
    return kwargs, strides, dilations


def reference_grads(kwargs: dict, strides: tuple, dilations: tuple):
    """The loop reference's ``((dv*, A_dv), (df*, A_df))`` for a gradient Case."""
    return loop_conv3d_transpose_grads(kwargs["value"], kwargs["filter"], kwargs["output_shape"],
                                       kwargs["grad_output"], strides, dilations,
                                       kwargs["padding"], kwargs["data_format"])


def headrooms(kwargs: dict, reference, dvalue: np.ndarray, dfilter: np.ndarray,
              accumulation: Any = None) -> tuple[float, float]:
    """``max |result - exact| / bound`` for dvalue and dfilter (≤ 1: within the bound).

    Shapes and dtypes must be the Case's; a non-finite result is an infinite headroom.
    """
    value, filter = np.asarray(kwargs["value"]), np.asarray(kwargs["filter"])
    dtype = value.dtype
    assert dvalue.shape == value.shape and dfilter.shape == filter.shape
    assert dvalue.dtype == dtype and dfilter.dtype == dtype
    n_value, n_filter = gradient_terms(filter.shape, value.shape, kwargs["data_format"])
    ratios = []
    for result, (star, magnitude), n in ((dvalue, reference[0], n_value),
                                         (dfilter, reference[1], n_filter)):
        bound = rigorous_bound(star, magnitude, dtype, n, accumulation)
        error = np.abs(result.astype(np.float64) - star)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(error == 0, 0.0, error / bound)
        ratio = np.where(np.isfinite(result.astype(np.float64)), ratio, np.inf)
        ratios.append(float(ratio.max(initial=0.0)))
    return ratios[0], ratios[1]


def assert_within_bound(kwargs: dict, reference, dvalue: np.ndarray, dfilter: np.ndarray,
                        accumulation: Any = None) -> tuple[float, float]:
    """``headrooms`` asserted ≤ 1 for both gradients; returns them."""
    h_value, h_filter = headrooms(kwargs, reference, dvalue, dfilter, accumulation)
    assert h_value <= 1.0 and h_filter <= 1.0, (h_value, h_filter)
    return h_value, h_filter


def grad_call(kwargs: dict) -> dict:
    """The Case's keyword arguments of ``conv3d_transpose_grads``."""
    return {key: kwargs[key] for key in GRAD_KEYS}
