"""Deliberately broken conv3d_transpose callables (TF's v1 signature), each impl with one bug.

The meta-tests (test_fuzz_teeth.py) run the fuzz properties against each through the
``module:function`` target (``tests.unit.broken_targets:wrong_pad_split``) and require a Finding.
"""
from __future__ import annotations

import numpy as np

from conv3dt import impl
from conv3dt.impl import normalize_call
from conv3dt.impl.kernel import transposed_conv_ndhwc
from conv3dt.impl.transpose import accum_dtype_for


def _run(call, *, filter=None, pad_before=None, dilations=None, accum=None, value=None):
    ncdhw = call.data_format == "NCDHW"
    v = call.value if value is None else value
    v = v.transpose(0, 2, 3, 4, 1) if ncdhw else v
    f = call.filter if filter is None else filter
    spatial = tuple(call.output_shape[1:4] if not ncdhw else call.output_shape[2:5])
    out = transposed_conv_ndhwc(v, f, spatial, call.strides,
                                call.dilations if dilations is None else dilations,
                                call.pad_before if pad_before is None else pad_before,
                                accum or accum_dtype_for(call.dtype))
    out = out.transpose(0, 4, 1, 2, 3) if ncdhw else out
    return np.ascontiguousarray(out).astype(call.dtype)


def _call(*args, **kwargs):
    kwargs.pop("name", None)
    return normalize_call(*args, **kwargs)


def wrong_pad_split(*args, **kwargs):
    """SAME: puts the odd extra pad *before* instead of after."""
    c = _call(*args, **kwargs)
    return _run(c, pad_before=tuple(a for a in c.pad_after))


def flipped_kernel(*args, **kwargs):
    """Correlates with the spatially flipped filter (the classic transposed-conv slip)."""
    c = _call(*args, **kwargs)
    return _run(c, filter=np.ascontiguousarray(c.filter[::-1, ::-1, ::-1]))


def lost_dilation(*args, **kwargs):
    """Ignores dilations (computes as if all were 1, keeping the dilated padding)."""
    c = _call(*args, **kwargs)
    return _run(c, dilations=(1, 1, 1))


def precision_loss(*args, **kwargs):
    """Accumulates in float16 whatever the dtype."""
    c = _call(*args, **kwargs)
    v = c.value.astype(np.float16).astype(np.float32)
    f = c.filter.astype(np.float16).astype(np.float32)
    return _run(c, value=v, filter=f, accum=np.float32)


def skipped_channel_validation(value=None, filter=None, output_shape=None, strides=None,
                               padding="SAME", data_format="NDHWC", name=None, input=None,
                               filters=None, dilations=None):
    """Skips the in-channel check: a filter with more in_channels is silently truncated."""
    v = np.asarray(input if value is None else value)
    f = np.asarray(filters if filter is None else filter)
    cidx = 4 if data_format == "NDHWC" else 1
    if v.ndim == 5 and f.ndim == 5 and f.shape[4] > v.shape[cidx]:
        f = np.ascontiguousarray(f[..., : v.shape[cidx]])
    return impl.conv3d_transpose(value=v, filter=f, output_shape=output_shape, strides=strides,
                                 padding=padding, data_format=data_format, dilations=dilations)


def wrong_channel_order(*args, **kwargs):
    """Reads the filter as [.., Cin, Cout] when Cin == Cout (swaps the last two axes)."""
    c = _call(*args, **kwargs)
    f = c.filter
    if f.shape[3] == f.shape[4]:
        f = np.ascontiguousarray(f.swapaxes(3, 4))
    return _run(c, filter=f)


def ignores_batch(*args, **kwargs):
    """Computes sample 0 and repeats it for the whole batch."""
    c = _call(*args, **kwargs)
    out = _run(c)
    if out.shape[0] > 1:
        out[1:] = out[:1]
    return out


def wrong_dtype(*args, **kwargs):
    """Returns float32 for every input dtype."""
    return impl.conv3d_transpose(*args, **kwargs).astype(np.float32)


def correct(*args, **kwargs):
    """impl itself, through the module:function route (must yield no Finding)."""
    return impl.conv3d_transpose(*args, **kwargs)


def nonlinear(*args, **kwargs):
    """Adds 2^-6·y² to the correct result y (not linear, not homogeneous)."""
    out = impl.conv3d_transpose(*args, **kwargs)
    y = out.astype(np.float64)
    return (y + 2.0**-6 * y * y).astype(out.dtype)


def nondeterministic(*args, **kwargs):
    """Adds one unseeded ulp-scale perturbation per call (a racy reduction's signature)."""
    out = impl.conv3d_transpose(*args, **kwargs).astype(np.float64)
    rng = np.random.default_rng()
    return (out * (1 + rng.choice([-1.0, 1.0], out.shape) * 2.0**-20)).astype(
        impl.conv3d_transpose(*args, **kwargs).dtype)


def ncdhw_scaled(*args, **kwargs):
    """Correct in NDHWC; in NCDHW the result is 2^-10 (relatively) too large."""
    out = impl.conv3d_transpose(*args, **kwargs)
    c = _call(*args, **kwargs)
    if c.data_format == "NCDHW":
        out = (out.astype(np.float64) * (1 + 2.0**-10)).astype(out.dtype)
    return out
