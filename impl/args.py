"""Argument normalisation and validation for ``conv3d_transpose`` (all checks live here).

``normalize_call`` turns the many accepted argument forms of ``tf.compat.v1.nn.conv3d_transpose``
into one ``NormalizedCall`` or raises before any arithmetic:

* ``TypeError`` for wrong *types* (padding/data_format not ``str``, strides/dilations/output_shape
  entries not integers, unsupported or mismatched array dtypes);
* ``ValueError`` for wrong *values* (ranks, channel/batch mismatches, lengths, entries < 1,
  batch/channel stride or dilation entries != 1, unknown padding/data_format, output_shape
  inconsistent with the input, missing or doubly given arguments).

Every message names the argument, the value received and what was expected.

Shape rule per spatial axis (input size ``I`` = value's, output size ``O`` = output_shape's,
``eff = (K - 1) * d + 1``)::

    SAME:  I == ceil(O / s),               P = max(0, (I - 1) * s + eff - O),  pad_before = P // 2
    VALID: I == trunc((O - eff + s) / s),  pad_before = pad_after = 0

``trunc`` is TensorFlow's C++ truncating division (not floor): for ``O < eff`` it accepts ``I = 0``
whenever ``-s < O - eff + s < 0`` (the result is then all zeros); a negative quotient is rejected.
For SAME, ``pad_after = P - pad_before`` (an odd extra pad goes after). For VALID the trailing
``O - ((I - 1) * s + eff)`` output positions (if any) are reached by no tap and are 0.

Dtype rule (``SUPPORTED_DTYPES`` = float16, bfloat16, float32, float64): an operand that carries a
dtype (anything but plain Python lists, tuples and scalars: NumPy arrays, tensors, objects with
``__array__``) must have a supported dtype,
and if both operands carry one they must be equal (TensorFlow silently casts ``value`` to
``filter``'s dtype when given NumPy arrays, even downcasting float64 to float16 - an
order-dependent rule we do not copy). A plain Python sequence or scalar of ints/floats takes the
other operand's dtype; if neither carries a dtype the result is float32 when any element is a float
(TF's rule) and integer-only data is rejected (TF makes it int32, which it rejects); boolean or
complex Python data is rejected.
"""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np

__all__ = ["NormalizedCall", "normalize_call", "SUPPORTED_DTYPES", "windowed_size", "same_padding"]

SUPPORTED_DTYPES = (
    np.dtype(np.float16),
    np.dtype(ml_dtypes.bfloat16),
    np.dtype(np.float32),
    np.dtype(np.float64),
)
_SUPPORTED_NAMES = "float16, bfloat16, float32, float64"
_PADDINGS = ("SAME", "VALID")
_FORMATS = ("NDHWC", "NCDHW")


@dataclasses.dataclass(slots=True)
class NormalizedCall:
    """One validated call. Tuples are plain ints; spatial triples are in (D, H, W) order.

    Read-only by convention: not ``frozen``, whose ``__init__`` costs ~1.7 µs of a ~10 µs call.
    """

    value: np.ndarray  # original layout (data_format), dtype == self.dtype
    filter: np.ndarray  # [KD, KH, KW, Cout, Cin], dtype == self.dtype
    output_shape: tuple  # 5 ints in data_format order
    strides: tuple
    dilations: tuple
    padding: str
    data_format: str
    pad_before: tuple
    pad_after: tuple
    dtype: np.dtype

    @property
    def output_spatial(self) -> tuple:
        """Output (D, H, W)."""
        return self.output_shape[1:4] if self.data_format == "NDHWC" else self.output_shape[2:5]


def _fail(kind, name, received, expected):
    return kind(f"conv3d_transpose: {name}={received!r} is invalid; expected {expected}")


def _as_int(item, name, whole):
    """A Python/NumPy integer (not bool) as ``int``, else TypeError naming ``name``."""
    if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
        raise _fail(TypeError, name, whole, "integers")
    return int(item)


_PLAIN_INT = {int}


def _ints(items, name, whole):
    """A sequence of Python/NumPy integers (not bools) as a tuple of ``int``."""
    if set(map(type, items)) == _PLAIN_INT:  # the common case, without a call per item
        return tuple(items)
    return tuple(_as_int(item, name, whole) for item in items)


def _spatial_triple(arg, name, channel_index):
    """strides/dilations -> (D, H, W) ints >= 1; accepts None, int, length 1, 3 or 5."""
    if arg is None:
        return (1, 1, 1)
    if isinstance(arg, (list, tuple)) or (isinstance(arg, np.ndarray) and arg.ndim == 1):
        items = _ints(arg, name, arg)
    else:
        items = (_as_int(arg, name, arg),)
    if len(items) == 1:
        items = items * 3
    elif len(items) == 5:
        if items[0] != 1 or items[channel_index] != 1:
            raise _fail(ValueError, name, arg,
                        "1 in the batch and channel entries of a length-5 list")
        items = items[2:] if channel_index == 1 else items[1:4]
    elif len(items) != 3:
        raise _fail(ValueError, name, arg, "an int or a list of length 1, 3 or 5")
    if min(items) < 1:
        raise _fail(ValueError, name, arg, "every spatial entry >= 1")
    return items


def _output_shape(arg):
    if arg is None:
        raise _fail(ValueError, "output_shape", None, "a 1-D integer sequence of length 5")
    if isinstance(arg, (list, tuple)):
        shape = _ints(arg, "output_shape", arg)
    else:
        array = np.asarray(arg)
        if array.dtype.kind not in ("i", "u"):
            raise _fail(TypeError, "output_shape", arg, "an integer sequence or int array")
        if array.ndim != 1:
            raise _fail(ValueError, "output_shape", arg, "a 1-D integer sequence of length 5")
        shape = tuple(int(item) for item in array)
    if len(shape) != 5:
        raise _fail(ValueError, "output_shape", arg, "a 1-D integer sequence of length 5")
    if min(shape) < 0:
        raise _fail(ValueError, "output_shape", arg, "non-negative entries")
    return shape


def _carries_dtype(obj):
    """Everything but plain Python data (lists, tuples, scalars) carries its own dtype."""
    return not isinstance(obj, (list, tuple, int, float, complex))


def _arrays(value, filter):
    """Convert both operands following the module's dtype rule."""
    if type(value) is np.ndarray and type(filter) is np.ndarray and value.dtype == filter.dtype \
            and value.dtype in SUPPORTED_DTYPES:  # the common case, unconverted
        return value, filter, value.dtype
    typed_value, typed_filter = _carries_dtype(value), _carries_dtype(filter)
    value = np.asarray(value)
    filter = np.asarray(filter)
    for name, array, typed in (("value", value, typed_value), ("filter", filter, typed_filter)):
        if typed and array.dtype not in SUPPORTED_DTYPES:
            raise _fail(TypeError, f"{name}.dtype", array.dtype.name, _SUPPORTED_NAMES)
        if not typed and array.dtype.kind not in ("i", "f"):
            raise _fail(TypeError, f"{name} element type", array.dtype.name, "real numbers")
    if typed_value and typed_filter:
        if value.dtype != filter.dtype:
            raise _fail(TypeError, "filter.dtype", filter.dtype.name,
                        f"the same dtype as value ({value.dtype.name}); cast one explicitly")
        dtype = value.dtype
    elif typed_value or typed_filter:
        dtype = value.dtype if typed_value else filter.dtype
    elif "f" in (value.dtype.kind, filter.dtype.kind):
        dtype = SUPPORTED_DTYPES[2]
    else:
        raise _fail(TypeError, "value and filter element types",
                    (value.dtype.name, filter.dtype.name),
                    "floating point data (integer-only lists are int32 in TF, which it rejects)")
    return np.asarray(value, dtype), np.asarray(filter, dtype), dtype


def windowed_size(size, effective, stride, padding):
    """Number of windows of a strided (dilated) convolution over ``size`` input elements.

    SAME: ``ceil(size / stride)``; VALID: ``trunc((size - effective + stride) / stride)``, TF's
    truncating division (towards zero, unlike floor; exact here since sizes are far below 2**52).
    For the transposed op, ``size`` is the output size and the result the input size.
    """
    if padding == "SAME":
        return -(-size // stride)
    return int((size - effective + stride) / stride)


def same_padding(size, windows, effective, stride):
    """TF's SAME padding ``(before, after)``: total ``max(0, (windows-1)*stride + effective -
    size)``, the odd extra element after."""
    total = max((windows - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def normalize_call(value=None, filter=None, output_shape=None, strides=None, padding="SAME",
                   data_format="NDHWC", input=None, filters=None, dilations=None,
                   name=None) -> NormalizedCall:
    """Validate a ``conv3d_transpose`` call and return its ``NormalizedCall``.

    ``name`` is accepted and ignored (it only names a TF graph node).
    """
    if value is not None and input is not None:
        raise ValueError("conv3d_transpose: value and input were both given; expected only one "
                         "of 'value' and its alias 'input'")
    if filter is not None and filters is not None:
        raise ValueError("conv3d_transpose: filter and filters were both given; expected only "
                         "one of 'filter' and its alias 'filters'")
    value = input if value is None else value
    filter = filters if filter is None else filter
    if value is None:
        raise _fail(ValueError, "value", None, "a 5-D array (or its alias 'input')")
    if filter is None:
        raise _fail(ValueError, "filter", None, "a 5-D array (or its alias 'filters')")
    if not isinstance(padding, str):
        raise _fail(TypeError, "padding", padding, "the string 'SAME' or 'VALID'")
    if padding not in _PADDINGS:
        raise _fail(ValueError, "padding", padding, "exactly 'SAME' or 'VALID'")
    if not isinstance(data_format, str):
        raise _fail(TypeError, "data_format", data_format, "the string 'NDHWC' or 'NCDHW'")
    if data_format not in _FORMATS:
        raise _fail(ValueError, "data_format", data_format, "exactly 'NDHWC' or 'NCDHW'")
    channel_index = 4 if data_format == "NDHWC" else 1
    strides = _spatial_triple(strides, "strides", channel_index)
    dilations = _spatial_triple(dilations, "dilations", channel_index)
    out_shape = _output_shape(output_shape)
    value, filter, dtype = _arrays(value, filter)
    if value.ndim != 5:
        raise _fail(ValueError, "value.shape", value.shape, "a 5-D shape")
    if filter.ndim != 5:
        raise _fail(ValueError, "filter.shape", filter.shape, "a 5-D shape [KD, KH, KW, Cout, Cin]")
    if value.shape[channel_index] != filter.shape[4]:
        raise _fail(ValueError, "filter.shape", filter.shape,
                    f"in_channels (last entry) == value's channel count "
                    f"{value.shape[channel_index]} ({data_format})")
    if out_shape[channel_index] != filter.shape[3]:
        raise _fail(ValueError, "output_shape", out_shape,
                    f"channel entry (index {channel_index}) == filter's out_channels "
                    f"{filter.shape[3]}")
    if out_shape[0] != value.shape[0]:
        raise _fail(ValueError, "output_shape", out_shape,
                    f"batch entry == value's batch {value.shape[0]}")
    first = 1 if channel_index == 4 else 2
    pad_before, pad_after = [], []
    for axis in range(3):
        out_size, in_size = out_shape[first + axis], value.shape[first + axis]
        eff = (filter.shape[axis] - 1) * dilations[axis] + 1
        expected = windowed_size(out_size, eff, strides[axis], padding)
        if in_size != expected:
            raise _fail(ValueError, "output_shape", out_shape,
                        f"spatial axis {axis} (size {out_size}) consistent with value's size "
                        f"{in_size} for stride {strides[axis]}, effective kernel {eff} and "
                        f"{padding} (value's size would have to be {expected})")
        before, after = (same_padding(out_size, in_size, eff, strides[axis])
                         if padding == "SAME" else (0, 0))
        pad_before.append(before)
        pad_after.append(after)
    return NormalizedCall(value, filter, out_shape, strides, dilations, padding, data_format,
                          tuple(pad_before), tuple(pad_after), dtype)
