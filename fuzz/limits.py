"""Valid calls at the limits: the counterparts of ``fuzz.invalid``'s limits families.

A stride or dilation at the integer limits is a valid call whenever the output does not grow with
it: along an axis with one input element, SAME accepts any output size ``O ∈ [1, s]`` (so a stride
of 2³¹ − 1 with ``O = 2``), and SAME outputs do not depend on the kernel at all (a dilation of
2³¹ − 1 with ``K = 3``: the middle tap reaches the output across a leading pad of about 2³¹; the
outer taps land in the padding). A kernel of one tap makes any dilation harmless, SAME or VALID.
A zero extent is valid on the value's batch and every spatial axis (SAME: that output axis is 0),
on the channels, and on every spatial axis of the filter (SAME: the output does not depend on K;
it is all zeros). Each of these is one deterministic Case, judged by the differential property as
an explicit example (``limit_cases``), so the gate reaches every one in every run.

The truth is impl's: its phases and taps are bounded by the outputs and inputs, not by ``s`` or
``(K − 1)·d`` (``impl.kernel``). The Cases are tiny: what is at the limit is a number, not a size.
"""
from __future__ import annotations

from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case

from conv3dt.fuzz.invalid import INT32_MAX, INT64_MAX

#: Stride values of the valid limit Cases: the largest int32, the first value past it; dilation
#: values: the largest int32 (3 taps, SAME) and the largest int64 (one tap, VALID). Few on
#: purpose: each crashes every oneDNN path of TF 2.21, and a crash costs a TF re-import per path.
STRIDE_LIMITS = (INT32_MAX, INT32_MAX + 1)
DILATION_LIMITS = ((INT32_MAX, "same"), (INT64_MAX, "k1"))


def _spec(shape, seed: int) -> ArraySpec:
    return ArraySpec("float32", tuple(shape), "normal", seed=seed)


def _case(value_shape, filter_shape, output_shape, **kwargs) -> Case:
    """A valid float32 Case (no ``name``: a Case's name is the op's name argument, passed to TF)."""
    kwargs.setdefault("strides", [1, 1, 1, 1, 1])
    return Case(_spec(value_shape, 11), _spec(filter_shape, 12), output_shape=list(output_shape),
                label="valid", **kwargs)


def limit_cases() -> list[Case]:
    """One valid Case per limit: strides at and past the int32 limit, dilations at the int32
    and the int64 limit, and a zero extent on every axis of the value and the filter."""
    out: list[Case] = []
    for s in STRIDE_LIMITS:
        out.append(_case((2, 1, 2, 2, 3), (2, 2, 2, 4, 3), (2, 2, 4, 4, 4),
                         strides=[1, s, 2, 2, 1]))
    for d, kind in DILATION_LIMITS:
        if kind == "same":
            out.append(_case((1, 1, 2, 2, 3), (3, 2, 1, 4, 3), (1, 3, 2, 2, 4),
                             strides=[1, 3, 1, 1, 1],
                             dilations=[1, d, 1, 1, 1], dilations_form="list"))
        else:
            out.append(_case((1, 2, 2, 2, 3), (1, 2, 2, 4, 3), (1, 2, 3, 3, 4),
                             padding="VALID", dilations=[1, d, 1, 1, 1], dilations_form="list"))
    for axis in range(3):              # a zero extent on the value's and the filter's D, H, W
        value = [1, 2, 2, 2, 3]
        value[1 + axis] = 0
        output = [1, 4, 4, 4, 2]
        output[1 + axis] = 0
        out.append(_case(value, (2, 2, 2, 2, 3), output,
                         strides=[1, 2, 2, 2, 1]))
        kernel = [2, 2, 2, 2, 3]
        kernel[axis] = 0
        out.append(_case((1, 2, 2, 2, 3), kernel, (1, 4, 4, 4, 2),
                         strides=[1, 2, 2, 2, 1]))
    # a zero batch, zero input channels, zero output channels
    out.append(_case((0, 2, 2, 2, 3), (2, 2, 2, 2, 3), (0, 4, 4, 4, 2),
                     strides=[1, 2, 2, 2, 1]))
    out.append(_case((1, 2, 2, 2, 0), (2, 2, 2, 2, 0), (1, 4, 4, 4, 2),
                     strides=[1, 2, 2, 2, 1]))
    out.append(_case((1, 2, 2, 2, 3), (2, 2, 2, 0, 3), (1, 4, 4, 4, 0),
                     strides=[1, 2, 2, 2, 1]))
    return out
