"""A vendor kernel as a first gate run meets it: correct, except that it crashes, hangs and is
wrong on common classes of input. ``vendor_kernel`` (TF's v1 signature) validates like TF, then

- **aborts** (SIGABRT) on bfloat16 with batch ≥ 2;
- **segfaults** (SIGSEGV) on float64 with VALID padding;
- **hangs** on float16 with NCDHW and VALID padding;
- returns **wrong values**: output channel 2 onwards is zero when Cout ≥ 3 (float32, NDHWC);
- returns the **wrong dtype**: float16 NDHWC results come back as float32 (a forgotten cast).

Five independent defects, each on a common input class. The gate must report each as a
distinct failure with its own minimal reproducer, within a bounded time, and leave a valid
record when it is stopped (``test_gate_hostile_target.py``). Every defect sits behind impl's
validation, so invalid calls get impl's own errors (the invalid property finds nothing).
"""
from __future__ import annotations

import ctypes
import os
import time

import numpy as np

from conv3dt import impl
from conv3dt.impl import normalize_call

DEFECTS = ("abort bfloat16 N>=2", "segfault float64 VALID", "hang float16 NCDHW VALID",
           "zero channels >= 2 (float32 NDHWC, Cout >= 3)", "float32 result for float16 NDHWC")


def vendor_kernel(*args, **kwargs):
    """impl with the five defects of the module docstring."""
    kw = {k: v for k, v in kwargs.items() if k != "name"}
    call = normalize_call(*args, **kw)            # TF-like validation first: ValueError as impl
    dtype, layout, padding = call.dtype, call.data_format, call.padding
    if dtype == "bfloat16" and call.value.shape[0] >= 2:
        os.abort()
    if dtype == "float64" and padding == "VALID":
        ctypes.string_at(0)                       # SIGSEGV
    if dtype == "float16" and layout == "NCDHW" and padding == "VALID":
        time.sleep(3600)
    y = impl.conv3d_transpose(*args, **kw)
    if dtype == "float32" and layout == "NDHWC" and y.shape[4] >= 3:
        y = y.copy()
        y[..., 2:] = 0
    if dtype == "float16" and layout == "NDHWC":
        y = y.astype(np.float32)
    return y


SLOW_CALL_S = 0.025


def slow_kernel(*args, **kwargs):
    """impl, correct but taking at least ``SLOW_CALL_S`` per call: a ci gate against it needs
    minutes on any CPU (thousands of calls), so a short ``--max-time`` always cuts it short."""
    time.sleep(SLOW_CALL_S)
    return impl.conv3d_transpose(*args, **{k: v for k, v in kwargs.items() if k != "name"})
