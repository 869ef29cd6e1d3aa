"""``conv3d``: the forward 3-D convolution (tf.nn.conv3d conventions), for the adjoint identity.

With filter ``w`` of shape ``[KD, KH, KW, Cin, Cout]`` and, per spatial axis, stride ``s``,
dilation ``d``, ``eff = (K - 1) * d + 1``::

    out[n, m, co] = sum_{k, ci} x[n, m*s + k*d - P, ci] * w[k, ci, co]    (x = 0 outside)

    SAME:  M = ceil(I / s),               P = max(0, (M - 1) * s + eff - I) // 2
    VALID: M = trunc((I - eff + s) / s),  P = 0   (negative M is an error)

This is the exact adjoint of ``conv3d_transpose`` with the same strides/dilations/padding and the
*same* filter array (conv3d's ``[K, Cin, Cout]`` is conv3d_transpose's ``[K, Cout, Cin]``):
``<conv3d(y, w), x> == <y, conv3d_transpose(x, w, output_shape=y.shape)>``.
It builds one strided window view of the zero-padded input and contracts it with ``tensordot``
(an im2col copy: written for clarity and tests, not for speed). Accumulates in the input dtype.
"""

from __future__ import annotations

import numpy as np

from conv3dt.impl.args import _fail, _spatial_triple, same_padding, windowed_size

__all__ = ["conv3d"]


def _output_and_pad(in_size, kernel, stride, dilation, padding):
    """``(output size, leading pad)`` of one axis, by the same rules as the transposed op."""
    effective = (kernel - 1) * dilation + 1
    out_size = windowed_size(in_size, effective, stride, padding)
    if out_size < 0:
        raise _fail(ValueError, "input.shape", in_size,
                    f"a spatial size >= {effective - stride} for VALID with effective kernel "
                    f"{effective}")
    # VALID needs no pad: with out_size >= 1 the SAME formula gives 0; with out_size == 0 the
    # result is empty whatever the pad.
    return out_size, same_padding(in_size, out_size, effective, stride)[0]


def conv3d(input, filters, strides, padding, data_format="NDHWC", dilations=None):
    """Forward 3-D convolution of ``input`` (5-D) with ``filters`` ``[KD, KH, KW, Cin, Cout]``."""
    if padding not in ("SAME", "VALID"):
        raise _fail(ValueError, "padding", padding, "exactly 'SAME' or 'VALID'")
    if data_format not in ("NDHWC", "NCDHW"):
        raise _fail(ValueError, "data_format", data_format, "exactly 'NDHWC' or 'NCDHW'")
    channel_index = 4 if data_format == "NDHWC" else 1
    strides = _spatial_triple(strides, "strides", channel_index)
    dilations = _spatial_triple(dilations, "dilations", channel_index)
    x = np.asarray(input)
    w = np.asarray(filters)
    if x.ndim != 5:
        raise _fail(ValueError, "input.shape", x.shape, "a 5-D shape")
    if w.ndim != 5:
        raise _fail(ValueError, "filters.shape", w.shape, "a 5-D shape [KD, KH, KW, Cin, Cout]")
    if data_format == "NCDHW":
        x = x.transpose(0, 2, 3, 4, 1)
    if x.shape[4] != w.shape[3]:
        raise _fail(ValueError, "filters.shape", w.shape,
                    f"in_channels (entry 3) == input's channel count {x.shape[4]}")
    plans = [_output_and_pad(x.shape[1 + a], w.shape[a], strides[a], dilations[a], padding)
             for a in range(3)]
    out_spatial = [p[0] for p in plans]
    # Zero-pad so that every index m*s + k*d - P read below is inside the padded array.
    widths = [(0, 0)]
    for a, (out_size, pad) in enumerate(plans):
        last = (out_size - 1) * strides[a] + (w.shape[a] - 1) * dilations[a] - pad
        widths.append((pad, max(last + 1 - x.shape[1 + a], 0)))
    widths.append((0, 0))
    padded = np.pad(x, widths)
    sn, sd, sh, sw, sc = padded.strides
    window = np.lib.stride_tricks.as_strided(
        padded,
        (x.shape[0], *out_spatial, *w.shape[:3], x.shape[4]),
        (sn, sd * strides[0], sh * strides[1], sw * strides[2],
         sd * dilations[0], sh * dilations[1], sw * dilations[2], sc))
    out = np.tensordot(window, w, axes=([4, 5, 6, 7], [0, 1, 2, 3]))
    return out.transpose(0, 4, 1, 2, 3) if data_format == "NCDHW" else out
