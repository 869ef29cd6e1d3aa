"""Vendor-like kernels that implement part of the contract and say so (``oracle.capabilities``).

Each computes the op with impl inside what it declares and *aborts* (a crash, as a kernel
without that code path might) outside it, so a gate that ever calls one outside its declaration
fails loudly with a crash finding.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from conv3dt import impl

F32_F16_NDHWC = {"dtypes": ["float32", "float16"], "layouts": ["NDHWC"]}


def _guarded(declared: dict, args, kwargs):
    value = kwargs.get("value", kwargs.get("input", args[0] if args else None))
    layout = kwargs.get("data_format", args[5] if len(args) > 5 else "NDHWC")
    dtype = np.asarray(value).dtype.name if value is not None else None
    valid = dtype in ("float16", "bfloat16", "float32", "float64") and layout in ("NDHWC", "NCDHW")
    if valid and (dtype not in declared["dtypes"] or layout not in declared["layouts"]):
        sys.stderr.write(f"F0000 partial_targets.py:1] Check failed: no kernel for {dtype} {layout}\n")
        sys.stderr.flush()
        os.abort()
    return impl.conv3d_transpose(*args, **kwargs)   # invalid calls: impl's own rejection


def float32_float16_ndhwc(*args, **kwargs):
    """float32 / float16, NDHWC only — declared on the callable."""
    return _guarded(F32_F16_NDHWC, args, kwargs)


float32_float16_ndhwc.conv3dt_capabilities = F32_F16_NDHWC


def undeclared_float32_float16_ndhwc(*args, **kwargs):
    """The same kernel without the attribute: declared by the user (``--dtype`` / a file)."""
    return _guarded(F32_F16_NDHWC, args, kwargs)


def misdeclared(*args, **kwargs):
    return impl.conv3d_transpose(*args, **kwargs)


misdeclared.conv3dt_capabilities = {"dtypes": ["float128"]}
