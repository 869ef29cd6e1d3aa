"""A rigorous floating-point error bound for conv3d_transpose — no magic rtol.

Every output element is a dot product of ``n = Cin · taps`` terms. For a result ``y``
computed from dtype-rounded inputs by any summation order in a precision with unit
roundoff ``u`` (rounding once to the dtype at the end), with exact result ``y*``::

    |y − y*| ≤ u·|y*| + γ_n(u) · A + F,      γ_n(u) = n·u / (1 − n·u),
    A = Σ |value_i · filter_k|  (the same transposed convolution on absolute values)

and ``F`` the underflow allowance (the ``ftz_term`` argument): with gradual underflow every
product and the final rounding may add an absolute error of up to half the smallest subnormal
``η`` (the standard model ``fl(x·y) = x·y·(1 + δ) + η``; additions of subnormals are exact), so
``F ≥ (n + 1)·η`` always (``underflow_term``); paths that flush subnormals need more
(``fuzz.truth`` derives that per product).
Using the dtype's own ``u`` for accumulation covers kernels that accumulate in the dtype.

The truth is not exact: it is ``y_ref``, computed in a wider precision ``u_ref`` with
``|y_ref − y*| ≤ e_ref = γ_n(u_ref) · A`` — and ``A`` itself is computed as ``A_ref`` with
``A ≤ A_ref / (1 − γ_n(u_ref))``. By the triangle inequality the checked bound is::

    |y − y_ref| ≤ u·(|y_ref| + e_ref) + γ_n(u)·A + e_ref + F

Half precision (float16, bfloat16) has a second, narrower bound: the same formula with the
accumulation in float32, ``u_acc = 2^-24`` in place of the dtype's ``u`` in ``γ_n`` (the final
rounding stays ``u·|y|``; a product of two half values is exact in float32: 11 + 11 and 8 + 8
significand bits ≤ 24, and float32 has bfloat16's exponent range). The contract does not name an
accumulation precision, so only the dtype-accumulation bound is a ``value-mismatch``; exceeding
the float32-accumulation one is the distinct finding ``accumulation-precision`` (the kernel keeps
less than float32 precision in its sums). At realistic sizes it is the only bound with teeth:
``γ_n(2^-8)`` is infinite from n = 256 products, ``γ_n(2^-11)`` from n = 2048.

``headroom = max |y − y_ref| / bound`` over the elements: ≤ 1 means within the bound;
its size says how much slack an implementation leaves.
"""
from __future__ import annotations

import numpy as np

UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}
SMALLEST_NORMAL = {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126,
                   "float64": 2.0**-1022}
# Accumulation precision of the narrower half-precision bound (see the module docstring).
WIDE_ACCUMULATION = {"float16": "float32", "bfloat16": "float32"}
LARGEST_FINITE = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38,
                  "float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max)}


def unit_roundoff_of(dtype: np.dtype | str) -> float:
    """Unit roundoff (half the machine epsilon) of a float dtype, np.longdouble included."""
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name in UNIT_ROUNDOFF:
        return UNIT_ROUNDOFF[name]
    return float(np.finfo(np.dtype(dtype)).eps) / 2.0


def smallest_subnormal(dtype: str) -> float:
    """The smallest positive subnormal of a dtype (2^-24 float16, 2^-133 bfloat16, ...)."""
    bits = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}[dtype]
    return SMALLEST_NORMAL[dtype] * 2.0 ** -(bits - 1)


def underflow_term(dtype: str, n_terms: int) -> float:
    """(n + 1)·η, η = half the smallest subnormal: gradual underflow in n products + 1 rounding."""
    return (max(int(n_terms), 1) + 1) * smallest_subnormal(dtype) / 2.0


def gamma(n: int, u: float) -> float:
    """γ_n = n·u / (1 − n·u); infinite when n·u ≥ 1 (no useful bound exists)."""
    nu = n * u
    return float("inf") if nu >= 1.0 else nu / (1.0 - nu)


def error_bound(dtype: str, y_ref: np.ndarray, magnitude: np.ndarray, n_terms: int,
                ref_unit_roundoff: float, ftz_term: np.ndarray | float = 0.0,
                accumulation: str | None = None) -> np.ndarray:
    """Per-element bound on |y − y_ref| for a result of ``dtype`` (see module docstring).

    ``magnitude`` is ``A_ref`` (|value| ⊛ |filter| in the reference precision), ``n_terms``
    the number of products per output element (Cin × kernel taps, before dilation), and
    ``ref_unit_roundoff`` the unit roundoff in which ``y_ref`` and ``magnitude`` were summed.
    ``accumulation`` is the precision the sums are assumed to keep (default: ``dtype``).
    """
    u = UNIT_ROUNDOFF[dtype]
    u_acc = UNIT_ROUNDOFF[accumulation or dtype]
    n = max(int(n_terms), 1)
    g_ref = gamma(n, ref_unit_roundoff)
    a = np.abs(np.asarray(magnitude, dtype=np.float64)) / (1.0 - g_ref)
    e_ref = g_ref * a
    y = np.abs(np.asarray(y_ref, dtype=np.float64))
    return u * (y + e_ref) + gamma(n, u_acc) * a + e_ref + ftz_term


def headroom(observed: np.ndarray, y_ref: np.ndarray, bound: np.ndarray) -> float:
    """max |observed − y_ref| / bound over finite elements (0 for empty; inf if bound is 0 and
    the error is not). Non-finite elements are judged separately by the caller."""
    obs = np.asarray(observed, dtype=np.float64)
    ref = np.asarray(y_ref, dtype=np.float64)
    finite = np.isfinite(obs) & np.isfinite(ref)
    if not finite.any():
        return 0.0
    err = np.abs(obs[finite] - ref[finite])
    b = np.asarray(np.broadcast_to(bound, ref.shape))[finite]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / b)
    return float(np.max(ratio))
