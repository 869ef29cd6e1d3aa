"""A worked example of gating your own kernel with conv3dt (docs/vendors.md).

``native_deconv3d`` stands for a vendor's kernel: its own signature (NCDHW, weights
``[Cin, Cout, KD, KH, KW]``, explicit begin padding, float32 only, no dilation), its own
arithmetic (a scatter of each input voxel's products, accumulated in float32). It is a real,
independent implementation, not conv3dt's reference.

``conv3d_transpose`` is the wrapper the gate calls: TF's v1 signature mapped exactly onto the
native call. It validates with TF's rules first (``conv3dt.impl.args.normalize_call``, the
error classes the doc promises), then translates layouts and padding:

    y[n, co, o] = Σ_{ci, i, k : o = i·s + k − pad_before} x[n, ci, i] · w[ci, co, k]   (per axis)

and declares what it implements in ``conv3dt_capabilities`` (oracle/capabilities.py), so the
gate gives it nothing else. Gate it with::

    PYTHONPATH=examples conv3dt gate --target vendor_kernel:conv3d_transpose --target impl \\
        --ledger examples/vendor_ledger.json
"""
from __future__ import annotations

import numpy as np

from conv3dt.impl.args import normalize_call


def native_deconv3d(x: np.ndarray, w: np.ndarray, out_spatial: tuple[int, int, int],
                    strides: tuple[int, int, int], pad_before: tuple[int, int, int]) -> np.ndarray:
    """The vendor's kernel: x ``[N, Cin, D, H, W]`` float32, w ``[Cin, Cout, KD, KH, KW]``;
    returns ``[N, Cout, *out_spatial]`` float32."""
    if x.dtype != np.float32 or w.dtype != np.float32:
        raise TypeError(f"native_deconv3d: float32 only, got {x.dtype} and {w.dtype}")
    n, cin, *ins = x.shape
    _, cout, *ks = w.shape
    y = np.zeros((n, cout, *out_spatial), np.float32)
    for kd in range(ks[0]):
        for kh in range(ks[1]):
            for kw in range(ks[2]):
                # every input voxel i lands at o = i·s + k − pad; keep those inside the output
                lo, hi, src = [], [], []
                for i_n, s, k, p, o_n in zip(ins, strides, (kd, kh, kw), pad_before, out_spatial):
                    first = max(0, -(-(p - k) // s))                 # smallest i with o ≥ 0
                    last = min(i_n, (o_n - 1 + p - k) // s + 1)     # one past the largest o < O
                    lo.append(first * s + k - p), hi.append(last), src.append(slice(first, last))
                if any(sl.start >= sl.stop for sl in src):
                    continue
                contrib = np.einsum("ncdhw,co->nodhw", x[:, :, src[0], src[1], src[2]],
                                    w[:, :, kd, kh, kw])
                dst = tuple(slice(l, l + (sl.stop - sl.start - 1) * s + 1, s)
                            for l, sl, s in zip(lo, src, strides))
                y[:, :, dst[0], dst[1], dst[2]] += contrib
    return y


def conv3d_transpose(value=None, filter=None, output_shape=None, strides=None, padding="SAME",
                     data_format="NDHWC", name=None, input=None, filters=None, dilations=None):
    """``tf.compat.v1.nn.conv3d_transpose`` on ``native_deconv3d``."""
    call = normalize_call(value, filter, output_shape, strides, padding, data_format,
                          input=input, filters=filters, dilations=dilations, name=name)
    if call.dtype != np.float32 or any(d != 1 for d in call.dilations):
        raise NotImplementedError("vendor_kernel: float32 and dilation 1 only (declared)")
    x = call.value if data_format == "NCDHW" else np.moveaxis(call.value, 4, 1)
    w = np.transpose(call.filter, (4, 3, 0, 1, 2))                 # [Cin, Cout, KD, KH, KW]
    shape = call.output_shape
    out_spatial = tuple(shape[2:5] if data_format == "NCDHW" else shape[1:4])
    y = native_deconv3d(np.ascontiguousarray(x), np.ascontiguousarray(w), out_spatial,
                        call.strides, call.pad_before)
    return y if data_format == "NCDHW" else np.moveaxis(y, 1, 4)


# What this kernel implements (oracle/capabilities.py): float32, no dilation, no zero sizes.
conv3d_transpose.conv3dt_capabilities = {"dtypes": ["float32"], "dilations": False,
                                         "zero_size": False}
