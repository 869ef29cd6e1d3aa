"""TensorFlow for the suite's own tests, always through the oracle's isolated workers.

No test calls TF in the pytest process on an input that can kill it: a oneDNN CHECK abort or a
stock-kernel segfault there would take the pytest-xdist worker down with it. Tests that need TF's
answer build a :class:`oracle.case.Case` (``case_of``) and run it on a ``TargetPool``.

Kernel-dependent tests run on both kinds of CPU whatever this one is: the as-shipped paths are
forced to oneDNN off and on (``forced_as_shipped_onednn``), and ``tf-eager-stock`` /
``tf-eager-onednn`` are the eager path with oneDNN explicitly off / on. Their expectations key
on the kernel the oracle observed running each call (``Outcome.kernel``), never on a target name.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np

from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.targets import AS_SHIPPED_ONEDNN_VAR

#: The eager path with oneDNN forced off and on: both kernel families on any CPU.
EAGER_BOTH_WAYS = ("tf-eager-stock", "tf-eager-onednn")


@contextlib.contextmanager
def forced_as_shipped_onednn(value: str | None):
    """Pools created inside run the as-shipped TF paths with oneDNN forced to ``value``."""
    before = os.environ.get(AS_SHIPPED_ONEDNN_VAR)
    if value is None:
        os.environ.pop(AS_SHIPPED_ONEDNN_VAR, None)
    else:
        os.environ[AS_SHIPPED_ONEDNN_VAR] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(AS_SHIPPED_ONEDNN_VAR, None)
        else:
            os.environ[AS_SHIPPED_ONEDNN_VAR] = before


def _form(arg: Any) -> str:
    if arg is None:
        return "none"
    if isinstance(arg, int):
        return "int"
    return "tuple" if isinstance(arg, tuple) else "list"


def _array_spec(array: Any) -> ArraySpec | None:
    """An array argument as a recipe: ``ones`` keeps any dtype (int, complex: invalid calls);
    other values are inlined (float dtypes). Python lists are given as the NumPy array TF
    converts them to."""
    if array is None:
        return None
    arr = np.asarray(array)
    if arr.dtype == np.int64 and not isinstance(array, np.ndarray):
        arr = arr.astype(np.int32)   # tf.constant of Python ints
    if arr.size and np.all(arr == 1):
        name = "bfloat16" if arr.dtype.name == "bfloat16" else arr.dtype.name
        return ArraySpec(name, arr.shape, "ones")
    return ArraySpec.inline(arr)


def case_of(kwargs: dict[str, Any], label: str = "valid") -> Case:
    """The Case of a keyword call ``conv3d_transpose(**kwargs)`` (``input``/``filters`` given
    beside ``value``/``filter`` are the 'both' forms), every argument passed as given."""
    out = kwargs.get("output_shape")
    if isinstance(out, np.ndarray):
        out_form, out = f"ndarray-{out.dtype.name}", out.tolist()
    else:
        out_form = "tuple" if isinstance(out, tuple) else "list"
        out = list(out) if isinstance(out, (list, tuple)) else out
    strides, dilations = kwargs.get("strides"), kwargs.get("dilations")
    return Case(
        _array_spec(kwargs.get("value")), _array_spec(kwargs.get("filter")),
        value_arg="both" if "input" in kwargs else "value",
        filter_arg="both" if "filters" in kwargs else "filter",
        output_shape=out, output_shape_form=out_form,
        strides=list(strides) if isinstance(strides, tuple) else strides, strides_form=_form(strides),
        dilations=list(dilations) if isinstance(dilations, tuple) else dilations,
        dilations_form="omitted" if "dilations" not in kwargs else _form(dilations),
        padding=kwargs.get("padding", "SAME"), data_format=kwargs.get("data_format", "NDHWC"),
        label=label)
