"""Definition-level loop reference for conv3d_transpose (test helper; shares no code with impl/).

For every output element it evaluates the defining sum directly with explicit Python loops::

    y[n, o, co] = sum over taps k (3-D) and ci of value[n, i, ci] * filter[k, co, ci],
    where i = (o + P - k*d) / s must be an integer inside [0, I) on every axis,

using exact rational arithmetic (``fractions.Fraction``: every product and the sum are exact) and
returns ``y_star`` (the exact sum rounded once to float64 - correctly rounded for float64 inputs,
and within 2**-53 relative of exact for the narrower dtypes) and ``A = sum |value * filter|``
(the magnitude term of the error bound). Padding ``P`` is re-derived here from TF's rule.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

UNIT_ROUNDOFF = {
    np.dtype(np.float16): 2.0 ** -11,
    np.dtype(ml_dtypes.bfloat16): 2.0 ** -8,
    np.dtype(np.float32): 2.0 ** -24,
    np.dtype(np.float64): 2.0 ** -53,
}


def leading_pad(in_size, out_size, kernel, stride, dilation, padding):
    """TF's leading pad for one axis of the transposed conv (odd extra pad goes after)."""
    if padding == "VALID":
        return 0
    effective = (kernel - 1) * dilation + 1
    return max(0, (in_size - 1) * stride + effective - out_size) // 2


def loop_conv3d_transpose(value, filter, output_shape, strides, dilations, padding,
                          data_format="NDHWC"):
    """Return ``(y_star, magnitude)`` as float64 arrays of ``output_shape`` (data_format order)."""
    value = np.asarray(value)
    filter = np.asarray(filter)
    if data_format == "NCDHW":
        value = np.moveaxis(value, 1, 4)
        out_shape = (output_shape[0], output_shape[2], output_shape[3], output_shape[4],
                     output_shape[1])
    else:
        out_shape = tuple(output_shape)
    n_batch, in_d, in_h, in_w, cin = value.shape
    kd, kh, kw, cout, _ = filter.shape
    in_sizes = (in_d, in_h, in_w)
    kernels = (kd, kh, kw)
    pads = [leading_pad(in_sizes[a], out_shape[1 + a], kernels[a], strides[a], dilations[a],
                        padding) for a in range(3)]
    exact_value = [[Fraction(float(v)) for v in row]
                   for row in value.astype(np.float64).reshape(-1, cin)]
    exact_filter = [[[Fraction(float(f)) for f in row] for row in tap]
                    for tap in filter.astype(np.float64).reshape(-1, cout, cin)]
    y_star = np.zeros(out_shape, np.float64)
    magnitude = np.zeros(out_shape, np.float64)
    for n, od, oh, ow in itertools.product(range(n_batch), *(range(s) for s in out_shape[1:4])):
        outputs = (od, oh, ow)
        sums = [Fraction(0)] * cout
        abs_sums = [Fraction(0)] * cout
        for tap_index, taps in enumerate(itertools.product(range(kd), range(kh), range(kw))):
            source = []
            for a in range(3):
                shifted = outputs[a] + pads[a] - taps[a] * dilations[a]
                if shifted % strides[a] != 0:
                    break
                i = shifted // strides[a]
                if not 0 <= i < in_sizes[a]:
                    break
                source.append(i)
            else:
                row = exact_value[((n * in_d + source[0]) * in_h + source[1]) * in_w + source[2]]
                for co in range(cout):
                    weights = exact_filter[tap_index][co]
                    for ci in range(cin):
                        product = row[ci] * weights[ci]
                        sums[co] += product
                        abs_sums[co] += abs(product)
        for co in range(cout):
            y_star[n, od, oh, ow, co] = float(sums[co])
            magnitude[n, od, oh, ow, co] = float(abs_sums[co])
    if data_format == "NCDHW":
        return np.moveaxis(y_star, 4, 1), np.moveaxis(magnitude, 4, 1)
    return y_star, magnitude


def error_bound(y_star, magnitude, dtype, n_terms):
    """Rigorous bound ``u*|y*| + gamma_n * A`` with ``gamma_n = n*u / (1 - n*u)``."""
    u = UNIT_ROUNDOFF[np.dtype(dtype)]
    gamma = n_terms * u / (1 - n_terms * u)
    return u * np.abs(y_star) + gamma * magnitude


def _exact(array):
    """Every element of ``array`` as an exact ``Fraction`` (nested lists, same shape)."""
    return np.vectorize(lambda x: Fraction(float(x)), otypes=[object])(
        np.asarray(array).astype(np.float64))


def loop_conv3d_transpose_grads(value, filter, output_shape, grad_output, strides, dilations,
                                padding, data_format="NDHWC"):
    """Both gradients of ``<g, conv3d_transpose(value, filter)>`` by explicit loops, exactly.

    Returns ``((dvalue_star, dvalue_magnitude), (dfilter_star, dfilter_magnitude))``, float64
    arrays of value's shape (data_format order) and filter's shape. Derived from the forward's
    definition alone: every ``(n, i, k)`` with ``o = i*s + k*d - P`` inside the output on all
    three axes contributes ``g[n, o, co] * filter[k, co, ci]`` to ``dvalue[n, i, ci]`` and
    ``value[n, i, ci] * g[n, o, co]`` to ``dfilter[k, co, ci]``; the sums and the magnitudes
    ``sum |term|`` are exact (``Fraction``) and rounded once to float64.
    """
    value = np.asarray(value)
    grad_output = np.asarray(grad_output)
    if data_format == "NCDHW":
        value = np.moveaxis(value, 1, 4)
        grad_output = np.moveaxis(grad_output, 1, 4)
    n_batch, in_d, in_h, in_w, cin = value.shape
    kd, kh, kw, cout, _ = np.shape(filter)
    in_sizes, kernels = (in_d, in_h, in_w), (kd, kh, kw)
    out_sizes = grad_output.shape[1:4]
    pads = [leading_pad(in_sizes[a], out_sizes[a], kernels[a], strides[a], dilations[a],
                        padding) for a in range(3)]
    v, w, g = _exact(value), _exact(filter), _exact(grad_output)
    zero = Fraction(0)
    dv = np.full(value.shape, zero, object)
    dv_abs = np.full(value.shape, zero, object)
    dw = np.full(np.shape(filter), zero, object)
    dw_abs = np.full(np.shape(filter), zero, object)
    for n, i_d, i_h, i_w in itertools.product(range(n_batch), *(range(s) for s in in_sizes)):
        inputs = (i_d, i_h, i_w)
        for k in itertools.product(range(kd), range(kh), range(kw)):
            o = tuple(inputs[a] * strides[a] + k[a] * dilations[a] - pads[a] for a in range(3))
            if not all(0 <= o[a] < out_sizes[a] for a in range(3)):
                continue
            for co in range(cout):
                upstream = g[(n, *o, co)]
                for ci in range(cin):
                    term_v = upstream * w[(*k, co, ci)]
                    dv[(n, *inputs, ci)] += term_v
                    dv_abs[(n, *inputs, ci)] += abs(term_v)
                    term_w = v[(n, *inputs, ci)] * upstream
                    dw[(*k, co, ci)] += term_w
                    dw_abs[(*k, co, ci)] += abs(term_w)
    as_float = np.vectorize(float, otypes=[np.float64])
    dv, dv_abs = as_float(dv).reshape(value.shape), as_float(dv_abs).reshape(value.shape)
    dw, dw_abs = as_float(dw).reshape(np.shape(filter)), as_float(dw_abs).reshape(np.shape(filter))
    if data_format == "NCDHW":
        dv, dv_abs = np.moveaxis(dv, 4, 1), np.moveaxis(dv_abs, 4, 1)
    return (dv, dv_abs), (dw, dw_abs)


def gradient_terms(filter_shape, value_shape, data_format="NDHWC"):
    """Products per element: ``(Cout * taps, N * input positions)`` for (dvalue, dfilter)."""
    kd, kh, kw, cout, _ = filter_shape
    spatial = value_shape[1:4] if data_format == "NDHWC" else value_shape[2:5]
    return cout * kd * kh * kw, value_shape[0] * int(np.prod(spatial))


_SMALLEST_SUBNORMAL = {
    np.dtype(np.float16): 2.0 ** -24,
    np.dtype(ml_dtypes.bfloat16): 2.0 ** -133,
    np.dtype(np.float32): 2.0 ** -149,
    np.dtype(np.float64): 2.0 ** -1074,
}


def rigorous_bound(y_star, magnitude, dtype, n_terms, accumulation=None):
    """Bound on ``|y - y_exact|`` measured against the float64-rounded ``y_star``.

    A sum of ``n`` products accumulated (any order) with unit roundoff ``u_acc`` and rounded once
    to ``dtype`` (``u``): ``u*|y*| + (1 + u)*gamma_n(u_acc)*A`` (products of two values of a
    half dtype are exact in float32, so only the additions round), plus ``(n + 1)*eta`` for
    gradual underflow (``eta`` half the dtype's smallest subnormal, which is at least the
    accumulation's), plus ``2**-53*|y*|`` because ``y_star`` is the exact sum rounded to float64,
    and ``A`` rounded to float64 is enlarged by ``1 + 2**-52``. ``accumulation`` defaults to
    ``dtype`` (a kernel summing in the dtype itself).
    """
    dtype = np.dtype(dtype)
    u = UNIT_ROUNDOFF[dtype]
    u_acc = UNIT_ROUNDOFF[np.dtype(accumulation if accumulation is not None else dtype)]
    n = max(int(n_terms), 1)
    gamma = n * u_acc / (1 - n * u_acc) if n * u_acc < 1 else np.inf
    eta = _SMALLEST_SUBNORMAL[dtype] / 2
    y = np.abs(y_star)
    return (u + 2.0 ** -53) * y + (1 + u) * gamma * magnitude * (1 + 2.0 ** -52) + (n + 1) * eta


DTYPES = tuple(UNIT_ROUNDOFF)


def random_valid_case(rng, dtype=None, data_format=None, max_in=3, max_kernel=3, max_stride=3,
                      max_dilation=2, max_batch=2, max_channels=3, allow_empty=True):
    """A random valid call as a dict of ``conv3d_transpose`` keyword arguments.

    Also returns the canonical ``(strides3, dilations3)``. Covers: sizes 1, empty batch/spatial
    (when ``allow_empty``), kernel larger than output, stride larger than kernel, dilation, SAME
    with odd total padding and VALID with trailing slack, including TF's truncating-division rule.
    """
    dtype = np.dtype(dtype if dtype is not None else DTYPES[rng.integers(len(DTYPES))])
    data_format = data_format or ("NDHWC", "NCDHW")[rng.integers(2)]
    padding = ("SAME", "VALID")[rng.integers(2)]
    low = 0 if allow_empty else 1
    batch = int(rng.integers(low, max_batch + 1))
    cin = int(rng.integers(1, max_channels + 1))
    cout = int(rng.integers(1, max_channels + 1))
    kernels, strides, dilations, in_sizes, out_sizes = [], [], [], [], []
    for _ in range(3):
        kernel = int(rng.integers(1, max_kernel + 1))
        stride = int(rng.integers(1, max_stride + 1))
        dilation = int(rng.integers(1, max_dilation + 1))
        effective = (kernel - 1) * dilation + 1
        in_size = int(rng.integers(1, max_in + 1)) if rng.random() > 0.05 or not allow_empty else 0
        if padding == "SAME":
            out_size = int(rng.integers((in_size - 1) * stride + 1, in_size * stride + 1)) \
                if in_size else 0
        elif in_size:
            base = (in_size - 1) * stride + effective
            out_size = int(rng.integers(base, base + stride))
        else:  # truncating division: I = 0 needs -s < O - eff + s < s, O >= 0
            out_size = int(rng.integers(max(0, effective - 2 * stride + 1), effective))
        kernels.append(kernel)
        strides.append(stride)
        dilations.append(dilation)
        in_sizes.append(in_size)
        out_sizes.append(out_size)
    scale = 2.0 if dtype.itemsize > 2 else 1.0
    value = (rng.standard_normal((batch, *in_sizes, cin)) * scale).astype(dtype)
    filter = rng.standard_normal((*kernels, cout, cin)).astype(dtype)
    if data_format == "NCDHW":
        value = np.ascontiguousarray(np.moveaxis(value, 4, 1))
        output_shape = [batch, cout, *out_sizes]
    else:
        output_shape = [batch, *out_sizes, cout]
    kwargs = dict(value=value, filter=filter, output_shape=output_shape, strides=list(strides),
                  padding=padding, data_format=data_format, dilations=list(dilations))
    return kwargs, tuple(strides), tuple(dilations)


@pytest.fixture(autouse=True)
def fresh_plan_caches():
    """Clear impl's geometry caches around each test (import this fixture into a test module).

    The caches are correct in normal use; clearing them makes every test exercise the planning
    code, which matters under mutation testing where forked runs inherit a warm cache.
    """
    from conv3dt import impl  # noqa: F811  (impl.kernel below)
    import conv3dt.impl.kernel  # noqa: F401

    impl.kernel.axis_phases.cache_clear()
    impl.kernel._geometry_plan.cache_clear()
    impl.kernel.tap_ranges.cache_clear()
    impl.kernel._useful_workers.cache_clear()
    impl.cost.choose.cache_clear()
    impl.stationary.stationary_plan.cache_clear()
    yield
