"""Broken conv3d_transpose callables whose defect shows only at realistic sizes.

Each is ``impl`` (TF's v1 signature) with one defect of the kind optimised kernels have at the
boundaries where they change code path: correct for every Case of the toy tiers (Cin, Cout ≤ 3,
extents ≤ 3 per axis, ≤ 768 outputs), wrong above a threshold. The meta-tests
(``test_fuzz_teeth_sizes.py``) require the realistic tier to catch every one and to shrink to the
smallest geometry that still shows the defect; ``conv3dt gate --target
tests.unit.broken_size_targets:NAME`` must exit 1 for each.

Defect classes (threshold → what goes wrong):

- ``cout_block_remainder``: Cout > 8, Cout % 8 ≠ 0 → the remainder channels past the last full
  block of 8 are 0;
- ``cin_block_truncation``: Cin > 16 → the input channels past the first block of 16 are ignored;
- ``spatial_tile_edge``: output W > 16, W % 16 ≠ 0 → the partial last tile of 16 along W is 0;
- ``batch_partition_mixup``: N ≥ 5 → the last sample gets the previous sample's result;
- ``reduced_precision_large``: ≥ 10⁵ outputs in float32 → inputs rounded to bfloat16 first;
- ``accumulation_reset``: Cin·ΠK > 1024 products per output → the accumulator restarts for every
  block of input channels that fits 1024 products, and only the last block counts;
- ``skipped_tap_large_kernel``: a kernel extent ≥ 6 → the last tap along that axis is dropped;
- ``strided_deep_edge``: a stride > 1 on an axis whose input extent ≥ 8 → the last input slice
  along that axis is ignored.
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from conv3dt.impl import normalize_call
from tests.unit.broken_targets import _run


def _call(*args, **kwargs):
    kwargs.pop("name", None)
    return normalize_call(*args, **kwargs)


def _channel_axis(call) -> int:
    return 4 if call.data_format == "NDHWC" else 1


def _spatial_axes(call) -> tuple[int, int, int]:
    return (1, 2, 3) if call.data_format == "NDHWC" else (2, 3, 4)


def _along(a: np.ndarray, axis: int, index) -> tuple:
    return (slice(None),) * axis + (index,)


def cout_block_remainder(*args, **kwargs):
    """Output channels past the last full block of 8 stay 0 when Cout > 8 and Cout % 8 != 0."""
    c = _call(*args, **kwargs)
    y = _run(c)
    cout = c.filter.shape[3]
    if cout > 8 and cout % 8:
        y[_along(y, _channel_axis(c), slice(cout - cout % 8, None))] = 0
    return y


def cin_block_truncation(*args, **kwargs):
    """Input channels past the first block of 16 are ignored when Cin > 16."""
    c = _call(*args, **kwargs)
    if c.filter.shape[4] <= 16:
        return _run(c)
    v = c.value.copy()
    v[_along(v, _channel_axis(c), slice(16, None))] = 0
    return _run(c, value=v)


def spatial_tile_edge(*args, **kwargs):
    """The partial last tile of 16 along W stays 0 when W > 16 and W % 16 != 0."""
    c = _call(*args, **kwargs)
    y = _run(c)
    w_axis = _spatial_axes(c)[2]
    w = y.shape[w_axis]
    if w > 16 and w % 16:
        y[_along(y, w_axis, slice(w - w % 16, None))] = 0
    return y


def batch_partition_mixup(*args, **kwargs):
    """With N >= 5 the last sample gets the result of the one before it."""
    c = _call(*args, **kwargs)
    y = _run(c)
    if y.shape[0] >= 5:
        y[-1] = y[-2]
    return y


def reduced_precision_large(*args, **kwargs):
    """float32 with >= 10^5 outputs: the inputs are rounded to bfloat16 (a fast path)."""
    c = _call(*args, **kwargs)
    if c.dtype != np.float32 or math.prod(c.output_shape) < 100_000:
        return _run(c)
    bf = lambda a: a.astype(ml_dtypes.bfloat16).astype(np.float32)  # noqa: E731
    return _run(c, value=bf(c.value), filter=bf(c.filter))


def accumulation_reset(*args, **kwargs):
    """Past 1024 products per output the accumulator restarts per block of input channels that
    fits 1024 products; only the last block's partial sum is returned."""
    c = _call(*args, **kwargs)
    cin, taps = c.filter.shape[4], math.prod(c.filter.shape[:3])
    if cin * taps <= 1024:
        return _run(c)
    block = max(1, 1024 // taps)
    last = (cin - 1) // block * block
    v = c.value.copy()
    v[_along(v, _channel_axis(c), slice(0, last))] = 0
    return _run(c, value=v)


def skipped_tap_large_kernel(*args, **kwargs):
    """A kernel extent >= 6 loses its last tap along that axis."""
    c = _call(*args, **kwargs)
    f = c.filter.copy()
    for axis in range(3):
        if f.shape[axis] >= 6:
            f[_along(f, axis, -1)] = 0
    return _run(c, filter=f)


def strided_deep_edge(*args, **kwargs):
    """A stride > 1 on an axis whose input extent is >= 8 ignores the last input slice there."""
    c = _call(*args, **kwargs)
    v = c.value.copy()
    for j, axis in enumerate(_spatial_axes(c)):
        if c.strides[j] > 1 and v.shape[axis] >= 8:
            v[_along(v, axis, -1)] = 0
    return _run(c, value=v)


BROKEN = ("cout_block_remainder", "cin_block_truncation", "spatial_tile_edge",
          "batch_partition_mixup", "reduced_precision_large", "accumulation_reset",
          "skipped_tap_large_kernel", "strided_deep_edge")
