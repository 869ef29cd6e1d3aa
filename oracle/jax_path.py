"""The ``jax`` target: ``jax.lax.conv_general_dilated`` mapped to TF's conv3d_transpose semantics.

Runs inside a worker (``JAX_PLATFORMS=cpu``); jax is imported lazily. jax has no
``conv3d_transpose`` with TF's argument conventions, so the Case's arguments are first
normalised and validated by ``impl.normalize_call`` (invalid Cases are therefore rejected
with impl's ``ValueError``: this target judges XLA's numerics, not argument checking).

The transposed convolution ``out[o] = Σ value[i]·filter[k]`` over ``o = i·s + k·d − P`` is a
correlation of the stride-dilated value (``lhs_dilation = s``) with the spatially flipped
filter (``rhs_dilation = d``), padded ``lo = eff − 1 − P`` before and
``hi = O − ((I − 1)·s + 1) − lo + eff − 1`` after (negative where VALID leaves slack, which
lax accepts). The filter ``[KD, KH, KW, Cout, Cin]`` has layout ``DHWOI``. float64 needs
``jax_enable_x64``, set at warm-up; results keep the input dtype (``precision=HIGHEST``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from conv3dt.oracle.case import Case


def warm_up() -> dict[str, Any]:
    import jax
    import jaxlib

    jax.config.update("jax_enable_x64", True)
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "jax_devices": [str(d) for d in jax.devices()]}


def transpose_padding(in_size: int, out_size: int, kernel: int, stride: int, dilation: int,
                      pad_before: int) -> tuple[int, int]:
    """(lo, hi) padding of the correlation that equals the transposed convolution on one axis."""
    eff = (kernel - 1) * dilation + 1
    lo = eff - 1 - pad_before
    # lax dilates an empty axis to length 0, not (0 - 1)·s + 1 < 0 (a zero-size value gave
    # a result one element long: found on the tf212 gate, where TF 2.12 installs jax)
    dilated = max(0, (in_size - 1) * stride + 1)
    hi = out_size - dilated - lo + eff - 1
    return lo, hi


def run(case: Case, arrays: tuple) -> np.ndarray:
    import jax.numpy as jnp
    from jax import lax

    from conv3dt.impl import normalize_call

    args, kwargs = case.call_args(tensor=lambda values, dt: np.asarray(values, dtype=dt), arrays=arrays)
    kwargs.pop("name", None)
    call = normalize_call(*args, **kwargs)
    spatial_in = call.value.shape[1:4] if call.data_format == "NDHWC" else call.value.shape[2:5]
    padding = [transpose_padding(i, o, k, s, d, p) for i, o, k, s, d, p in zip(
        spatial_in, call.output_spatial, call.filter.shape[:3], call.strides, call.dilations,
        call.pad_before)]
    lhs = call.data_format
    out = lax.conv_general_dilated(
        jnp.asarray(call.value), jnp.asarray(call.filter[::-1, ::-1, ::-1]),
        window_strides=(1, 1, 1), padding=padding, lhs_dilation=tuple(call.strides),
        rhs_dilation=tuple(call.dilations), dimension_numbers=(lhs, "DHWOI", lhs),
        precision=lax.Precision.HIGHEST)
    return np.asarray(out)
