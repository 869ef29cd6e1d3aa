"""The kernel's own contract (``impl.kernel.transposed_conv_ndhwc``), on each of its paths:
empty operands, one GEMM for all outputs, phase GEMMs, and the tap-wise sum (non-finite filter;
filter as large as the output). The result is in ``accum_dtype`` with ``accum_dtype``'s precision
(the truth of ``fuzz.truth`` sums float64 inputs in ``np.longdouble`` through this kernel), and
floating-point exceptions follow ``np.errstate`` as NumPy arithmetic does.
"""
import numpy as np
import pytest

from conv3dt.impl.kernel import transposed_conv_ndhwc

ACCUM = (np.float32, np.float64, np.longdouble)
ONE = (1, 1, 1)


def run(value, filt, out_spatial, strides=ONE, accum=np.float64):
    return transposed_conv_ndhwc(value, filt, out_spatial, strides, ONE, (0, 0, 0), accum)


PATHS = {
    "empty output": (np.ones((1, 2, 2, 2, 3)), np.ones((1, 1, 1, 0, 3)), (2, 2, 2), ONE),
    "empty input": (np.ones((1, 0, 2, 2, 3)), np.ones((1, 1, 1, 2, 3)), (0, 2, 2), ONE),
    "one GEMM": (np.ones((2, 2, 2, 2, 3)), np.ones((2, 2, 2, 2, 3)), (3, 3, 3), ONE),
    "phase GEMMs": (np.ones((1, 2, 2, 2, 3)), np.ones((2, 2, 2, 2, 3)), (4, 4, 4), (2, 2, 2)),
    "tap-wise (non-finite filter)": (np.ones((1, 2, 2, 2, 3)),
                                     np.where(np.arange(24).reshape(2, 2, 2, 1, 3) == 0, np.inf,
                                              np.ones((2, 2, 2, 2, 3))), (3, 3, 3), ONE),
    "tap-wise (large filter)": (np.ones((1, 1, 1, 1, 65)), np.ones((1, 1, 1, 256, 65)), (1, 1, 1),
                                ONE),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("accum", ACCUM)
@pytest.mark.parametrize("input_dtype", (np.float16, np.float64))
def test_result_is_in_the_accumulation_dtype_on_every_path(path, accum, input_dtype):
    value, filt, out_spatial, strides = PATHS[path]
    with np.errstate(all="ignore"):
        out = run(value.astype(input_dtype), filt.astype(input_dtype), out_spatial, strides, accum)
    assert out.dtype == np.dtype(accum)
    assert out.shape == (value.shape[0], *out_spatial, filt.shape[3])


@pytest.mark.parametrize("non_finite", (False, True), ids=("large filter", "non-finite filter"))
def test_tapwise_sum_keeps_the_accumulation_precision(non_finite):
    """y = 1 + eps(longdouble) needs the long-double accumulator: a float64 scratch or output
    would round it to 1. Both tap-wise triggers are exercised (the filter here is > 64 KiB of
    long doubles and larger than half the output; the non-finite one adds an unreached inf tap)."""
    eps = np.finfo(np.longdouble).eps
    cin, cout = 65, 128
    value = np.zeros((1, 1, 1, 1, cin), np.longdouble)
    value[..., 0], value[..., 1] = 1, eps
    filt = np.ones((1, 1, 1, cout, cin), np.longdouble)
    out_spatial = (1, 1, 1)
    if non_finite:  # a second tap, reaching no output (o = i + 1 >= 1), holding an inf
        filt = np.concatenate([filt, np.full_like(filt, np.inf)], axis=0)
    out = run(value, filt, out_spatial, accum=np.longdouble)
    assert out.dtype == np.dtype(np.longdouble)
    assert np.all(out == np.longdouble(1) + eps)


def test_floating_point_exceptions_follow_np_errstate_on_every_path():
    """Overflow on the GEMM paths and 0·inf on the tap-wise path raise under
    ``np.errstate(...='raise')`` and stay silent under ``'ignore'``, as NumPy arithmetic does."""
    big = np.full((1, 2, 2, 2, 2), 3e38, np.float32)
    inf_filter = np.ones((2, 2, 2, 2, 2), np.float32)
    inf_filter[0, 0, 0, 0, 0] = np.inf
    zero_value = np.zeros((1, 2, 2, 2, 2), np.float32)
    for value, filt in ((big, np.ones((2, 2, 2, 2, 2), np.float32)), (zero_value, inf_filter)):
        with np.errstate(all="raise"), pytest.raises(FloatingPointError):
            run(value, filt, (3, 3, 3), accum=np.float32)
        with np.errstate(all="ignore"):
            run(value, filt, (3, 3, 3), accum=np.float32)
