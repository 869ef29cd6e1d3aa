"""``conv3d_transpose``: TF's v1 signature on top of ``normalize_call`` and the kernel.

For output element ``y[n, o, co]`` (``o`` a spatial triple) the result is::

    y[n, o, co] = round_dtype( sum_{i, k, ci : o = i*s + k*d - pad_before} value[n, i, ci]
                                                                     * filter[k, co, ci] )

accumulated in float32 for float16/bfloat16/float32 inputs and in float64 for float64, rounded once
to the input dtype. NCDHW is computed as NDHWC on transposed views and returned C-contiguous.
"""

from __future__ import annotations

import numpy as np

from conv3dt.impl.args import normalize_call
from conv3dt.impl.kernel import transposed_conv_ndhwc

__all__ = ["conv3d_transpose", "accum_dtype_for"]

_FLOAT64 = np.dtype(np.float64)


def accum_dtype_for(dtype) -> np.dtype:
    """float64 for float64 inputs, float32 for float16, bfloat16 and float32."""
    return _FLOAT64 if np.dtype(dtype) == _FLOAT64 else np.dtype(np.float32)


def conv3d_transpose(value=None, filter=None, output_shape=None, strides=None, padding="SAME",
                     data_format="NDHWC", name=None, input=None, filters=None, dilations=None):
    """NumPy equivalent of ``tf.compat.v1.nn.conv3d_transpose`` (returns an ndarray).

    Raises TypeError/ValueError before computing anything; see ``impl.args``.
    """
    call = normalize_call(value=value, filter=filter, output_shape=output_shape, strides=strides,
                          padding=padding, data_format=data_format, input=input, filters=filters,
                          dilations=dilations)
    ncdhw = call.data_format == "NCDHW"
    source = call.value.transpose(0, 2, 3, 4, 1) if ncdhw else call.value
    result = transposed_conv_ndhwc(source, call.filter, call.output_spatial, call.strides,
                                   call.dilations, call.pad_before, accum_dtype_for(call.dtype))
    if ncdhw:
        result = np.ascontiguousarray(result.transpose(0, 4, 1, 2, 3))
    return result if result.dtype == call.dtype else result.astype(call.dtype)
