"""Invalid Cases: one family per validation rule, each a near-miss of a valid Case.

Every family starts from a drawn valid Case (``fuzz.strategies``) and changes the one thing its
rule is about, so that exactly that rule is violated; the Case is labelled
``"invalid:<family>"``. Families are declared once, as ``InvalidFamily`` records (in the manner
of PyTorch OpInfo's ``ErrorInput(sample, error_type, error_regex)``, ``fuzz.error_inputs``): the near-miss, the error
class the documentation promises for it (``promise``: the doc's own rules; the others are rules
TensorFlow enforces, judged against ``impl``'s error class), the class and message ``impl``
raises (meta-tested in ``tests/unit/test_fuzz_invalid.py``), and whether TF crashes on it.

Families at the **limits** (``limits=True``) put values where kernels overflow: ``output_shape``
of every wrong length (0-D, 1-D of 0-3 or 7 entries, 2-D), entries at and past the int32 and
int64 limits (``INT_LIMITS``), element counts that overflow int64 with every entry in range,
strides and dilations at the integer limits, and a zero extent on every axis of every operand.
Their valid counterparts (a stride of 2³¹ − 1 is valid when the input has one element along
that axis) are ``fuzz.limits``.

Output-size near-misses use the shape rule of ``fuzz.strategies.output_range``: with the valid
range ``[lo, hi]`` for input size I, ``hi + 1`` always implies input size I + 1, and ``lo − 1``
implies I − 1 except for VALID with I = 0 (truncating division maps ``eff − s − 1`` back to 0),
which is therefore never used.
"""
from __future__ import annotations

import functools
from dataclasses import replace

from hypothesis import strategies as st

from conv3dt.fuzz.error_inputs import Breaker, InvalidFamily, Picker, declare  # noqa: F401
from conv3dt.fuzz.strategies import (DTYPES, LAYOUTS, PADDINGS, VALUE_KINDS, Geometry, _decode_geometry,
                             _ints, build_case_from, output_range, spec_from)
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case

INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1
#: Values at and past the integer limits a kernel meets: int32 and int64, signed and unsigned.
INT_LIMITS = (INT32_MAX, INT32_MAX + 1, 2**32, INT64_MAX, INT64_MAX + 1, 2**64,
              -INT32_MAX - 1, -INT32_MAX - 2, -INT64_MAX - 1)
#: Spatial ``output_shape`` entries whose element count overflows int64 (each entry fits).
OVERFLOWING_SPATIAL = ((2**21, 2**21, 2**21), (INT32_MAX, INT32_MAX, INT32_MAX),
                       (2**62, 2, 2), (INT64_MAX, 2, 1))
_FORM_RANGE = {"int32": (-INT32_MAX - 1, INT32_MAX), "int64": (-INT64_MAX - 1, INT64_MAX)}


_REGISTRY: list[InvalidFamily] = []
#: ``@family(name, impl_raises, impl_says, **flags)``: declare a forward family (``declare``)
family = functools.partial(declare, _REGISTRY)


def _seq5(vals, layout):
    return [1, *vals, 1] if layout == "NDHWC" else [1, 1, *vals]


def _spatial_index(layout: str, axis: int) -> int:
    return (1 if layout == "NDHWC" else 2) + axis


def _channel_index(layout: str) -> int:
    return 4 if layout == "NDHWC" else 1


def _resize(spec: ArraySpec, shape) -> ArraySpec:
    return replace(spec, shape=tuple(shape))


def _with_dim(spec: ArraySpec, index: int, size: int) -> ArraySpec:
    shape = list(spec.shape)
    shape[index] = size
    return _resize(spec, shape)


def _output_entries(c: Case, out: list, values=()) -> Case:
    """``c`` with ``output_shape`` = ``out``; a form that cannot hold ``values`` (an int32 array
    given 2³¹) becomes a list, so the value reaches the target rather than NumPy's overflow."""
    form = c.output_shape_form
    kind = form.split("-")[-1]
    if form == "omitted" or kind == "float64" or (kind in _FORM_RANGE and not all(
            _FORM_RANGE[kind][0] <= v <= _FORM_RANGE[kind][1] for v in values)):
        form = "list"
    return c.with_(output_shape=out, output_shape_form=form)


# ---------------------------------------------------------------- the documentation's rules
@family("channel-in", ValueError, r"filter\.shape=.*in_channels", promise="ValueError")
def _channel_in(pick, g, c):
    cin = g.cin + pick.one((1, 2, -1))
    return c.with_(filter=_with_dim(c.filter, 4, cin if cin >= 1 else g.cin + 1))


@family("channel-out", ValueError, r"output_shape=.*channel entry", promise="ValueError")
def _channel_out(pick, g, c):
    out = list(g.output_shape)
    out[_channel_index(g.layout)] = (g.cout + pick.one((1, 2)) if pick.flag() or g.cout == 1
                                     else g.cout - 1)
    return c.with_(output_shape=out)


@family("padding-value", ValueError, r"padding=.*exactly 'SAME' or 'VALID'", promise="ValueError")
def _padding_value(pick, g, c):
    return c.with_(padding=pick.one((g.padding.lower(), "FULL", "EXPLICIT", "", g.padding + " ",
                                     "CAUSAL")))


# ---------------------------------------------------------------- TensorFlow's own rules
@family("padding-type", TypeError, r"padding=.*the string", doc_also="ValueError")
def _padding_type(pick, g, c):
    return c.with_(padding=pick.one((None, 1, [g.padding])))


@family("data-format", (TypeError, ValueError), r"data_format=.*'NDHWC' or 'NCDHW'")
def _data_format(pick, g, c):
    return c.with_(data_format=pick.one((g.layout.lower(), "NHWC", "NCHW", "NWC", "DHWCN")))


def _sequence(g, key):
    return ("strides", [a.s for a in g.axes]) if key == "strides" else (
        "dilations", [a.d for a in g.axes])


def _length(key):
    def breaks(pick, g, c):
        key_, vals = _sequence(g, key)
        length = pick.one((2, 4, 6))
        seq = (vals + [1, 1, 1])[:length] if length < 6 else _seq5(vals, g.layout) + [1]
        return c.with_(**{key_: seq, key_ + "_form": "list"})
    return breaks


def _nonpositive(pick_values):
    def make(key):
        def breaks(pick, g, c):
            key_, vals = _sequence(g, key)
            vals = list(vals)
            vals[pick.int(0, 2)] = pick.one(pick_values)
            return c.with_(**{key_: vals, key_ + "_form": "list"})
        return breaks
    return make


def _batch_channel(key):
    def breaks(pick, g, c):
        key_, vals = _sequence(g, key)
        seq = _seq5(vals, g.layout)
        seq[pick.one((0, _channel_index(g.layout)))] = pick.one((2, 3))
        return c.with_(**{key_: seq, key_ + "_form": "list"})
    return breaks


for _key in ("strides", "dilations"):
    family(f"{_key}-length", ValueError, rf"{_key}=.*length 1, 3 or 5")(_length(_key))
    family(f"{_key}-nonpositive", ValueError, rf"{_key}=.*>= 1")(_nonpositive((0, -1))(_key))
    family(f"{_key}-batch-channel", ValueError,
           rf"{_key}=.*batch and channel")(_batch_channel(_key))


@family("output-shape-spatial", ValueError, r"output_shape=.*spatial axis")
def _output_shape_spatial(pick, g, c):
    axis = pick.int(0, 2)
    a = g.axes[axis]
    lo, hi = output_range(a.i, a.k, a.s, a.d, g.padding)
    out = list(g.output_shape)
    out[_spatial_index(g.layout, axis)] = lo - 1 if (pick.flag() and lo >= 1) else hi + 1
    return c.with_(output_shape=out)


@family("output-shape-batch", ValueError, r"output_shape=.*batch entry")
def _output_shape_batch(pick, g, c):
    out = list(g.output_shape)
    out[0] = g.n + pick.one((1, 2))
    return c.with_(output_shape=out)


@family("output-shape-rank", ValueError, r"output_shape=.*length 5")
def _output_shape_rank(pick, g, c):
    out = list(g.output_shape)
    return c.with_(output_shape=out[:-1] if pick.flag() else out + [1])


@family("output-shape-negative", ValueError, r"output_shape=.*non-negative", crash_prone=True)
def _output_shape_negative(pick, g, c):   # oneDNN aborts: ledger onednn-negative-output-shape-abort
    out = list(g.output_shape)
    out[_spatial_index(g.layout, pick.int(0, 2))] = -pick.int(1, 4)
    return c.with_(output_shape=out)


@family("value-rank", ValueError, r"value\.shape=.*5-D")
def _value_rank(pick, g, c):
    shape = list(g.value_shape)
    return c.with_(value=_resize(c.value, shape[1:] if pick.flag() else [1, *shape]))


@family("filter-rank", ValueError, r"filter\.shape=.*5-D")
def _filter_rank(pick, g, c):
    shape = list(g.filter_shape)
    return c.with_(filter=_resize(c.filter, shape[1:] if pick.flag() else [1, *shape]))


@family("dtype-mismatch", TypeError, r"filter\.dtype=.*same dtype as value")
def _dtype_mismatch(pick, g, c):
    other = pick.one(tuple(d for d in DTYPES if d != g.dtype))
    return c.with_(filter=replace(c.filter, dtype=other))


@family("dtype-unsupported", TypeError, r"value\.dtype=.*float16, bfloat16, float32, float64")
def _dtype_unsupported(pick, g, c):
    dt = pick.one(("int32", "int64", "complex64"))
    return c.with_(value=replace(c.value, dtype=dt), filter=replace(c.filter, dtype=dt))


def _named_filter(c):
    return "filter" if c.filter_arg == "positional" else c.filter_arg


@family("alias-both-value", ValueError, r"value and input were both given")
def _alias_both_value(pick, g, c):
    return c.with_(value_arg="both", filter_arg=_named_filter(c))


@family("alias-both-filter", ValueError, r"filter and filters were both given")
def _alias_both_filter(pick, g, c):
    return c.with_(filter_arg="both")


@family("missing-value", ValueError, r"value=None")
def _missing_value(pick, g, c):
    return c.with_(value_arg="missing", filter_arg=_named_filter(c))


@family("missing-filter", ValueError, r"filter=None")
def _missing_filter(pick, g, c):
    return c.with_(filter_arg="missing")


# ---------------------------------------------------------------- at the limits
@family("output-shape-length", (ValueError, TypeError), r"output_shape=.*(length 5|integers)",
        limits=True)
def _output_shape_length(pick, g, c):
    """0-D, 1-D of 0–3 or 7 entries, or 2-D (lengths 4 and 6 are ``output-shape-rank``)."""
    out = list(g.output_shape)
    shape = pick.one(("0-D", [], 1, 2, 3, 7, "2-D"))
    if shape == "0-D":
        return c.with_(output_shape=out[_spatial_index(g.layout, 0)])
    if shape == "2-D":
        return c.with_(output_shape=[out])
    return c.with_(output_shape=(out + [1, 1])[:shape] if shape else [])


@family("output-shape-int-limits", ValueError,
        r"output_shape=.*(batch entry|spatial axis|channel entry|non-negative)", limits=True,
        crash_prone=True)
def _output_shape_int_limits(pick, g, c):
    """One entry — batch, a spatial axis or the channels — at or past an integer limit, or the
    right value plus 2³² (it wraps to the right value in int32: a kernel that narrows the
    entries computes the valid call instead of rejecting this one)."""
    out = list(g.output_shape)
    where = pick.one(("batch", 0, 1, 2, "channel"))
    index = 0 if where == "batch" else (_channel_index(g.layout) if where == "channel"
                                        else _spatial_index(g.layout, where))
    limit = pick.one(INT_LIMITS + ("wraps-to-valid",))
    out[index] = out[index] + 2**32 if limit == "wraps-to-valid" else limit
    return _output_entries(c, out, (out[index],))


@family("output-shape-overflow", ValueError, r"output_shape=.*spatial axis", limits=True,
        crash_prone=True)
def _output_shape_overflow(pick, g, c):
    """Spatial entries whose product with N·Cout overflows int64, every entry within int64."""
    out = list(g.output_shape)
    spatial = pick.one(OVERFLOWING_SPATIAL)
    for axis, size in enumerate(spatial):
        out[_spatial_index(g.layout, axis)] = size
    return _output_entries(c, out, spatial)


def _int_limit(key):
    """A stride (dilation) entry at an integer limit on an axis made long enough that the given
    ``output_shape`` cannot fit: input ≥ 2 for a stride; VALID, kernel ≥ 2 for a dilation (SAME
    outputs do not depend on the kernel: a huge dilation there is valid, ``fuzz.limits``)."""
    def breaks(pick, g, c):
        key_, vals = _sequence(g, key)
        axis = pick.int(0, 2)
        vals = list(vals)
        vals[axis] = pick.one(INT_LIMITS)
        c = c.with_(**{key_: vals, key_ + "_form": "list"})
        if key == "strides":
            return c.with_(value=_with_dim(c.value, _spatial_index(g.layout, axis),
                                           max(g.axes[axis].i, 2)))
        return c.with_(padding="VALID", filter=_with_dim(c.filter, axis, max(g.axes[axis].k, 2)))
    return breaks


for _key in ("strides", "dilations"):
    family(f"{_key}-int-limits", ValueError, rf"output_shape=.*spatial axis|{_key}=.*>= 1",
           limits=True, crash_prone=True)(_int_limit(_key))


@family("zero-extent", ValueError,
        r"output_shape=.*(batch entry|channel entry|spatial axis)|filter\.shape=.*in_channels",
        limits=True,
        crash_prone=True)
def _zero_extent(pick, g, c):
    """One extent of one operand set to 0 where that makes the call invalid: the output's batch,
    channels or a spatial axis (the value is not empty); the value's channels or a spatial axis
    (the output is not empty); the filter's Cin or Cout. (A filter with a spatial extent 0 and
    the value's batch 0 can be valid: ``fuzz.limits``.)"""
    out = list(g.output_shape)
    cidx = _channel_index(g.layout)
    where = pick.one(("output-batch", "output-channel", "output-spatial", "value-channel",
                      "value-spatial", "filter-cin", "filter-cout"))
    axis = pick.int(0, 2)
    if where == "output-batch":
        out[0] = 0
    elif where == "output-channel":
        out[cidx] = 0
    elif where == "output-spatial":
        out[_spatial_index(g.layout, axis)] = 0
    elif where == "value-channel":
        return c.with_(value=_with_dim(c.value, cidx, 0))
    elif where == "value-spatial":
        return c.with_(value=_with_dim(c.value, _spatial_index(g.layout, axis), 0))
    else:
        return c.with_(filter=_with_dim(c.filter, 4 if where == "filter-cin" else 3, 0))
    return c.with_(output_shape=out)


FAMILIES: tuple[InvalidFamily, ...] = tuple(_REGISTRY)
FAMILY_NAMES: tuple[str, ...] = tuple(f.name for f in FAMILIES)
BY_NAME: dict[str, InvalidFamily] = {f.name: f for f in FAMILIES}


def _base(t, dtypes=DTYPES, layouts=LAYOUTS, paddings=PADDINGS, dilations=True,
          argument_forms=True) -> tuple[Geometry, Case]:
    """A small valid Case (no zero-size dims, so that every rule is reachable)."""
    g, s_form, d_form = _decode_geometry(t, dtypes, layouts, paddings, False, lambda _d: None,
                                         dilations, argument_forms)
    vk, fk = divmod(t[7], VALUE_KINDS)
    case = build_case_from(g, s_form, d_form, t[9], spec_from(g.dtype, g.value_shape, vk, t[8]),
                           spec_from(g.dtype, g.filter_shape, fk, (t[8] + 1) % 2**32), False,
                           argument_forms)
    if case.value_arg == "input":  # TF v1 mishandles input= alone (ledger): keep one violation
        case = case.with_(value_arg="value")
    return g, case


def near_miss(fam: InvalidFamily, pick: int, g: Geometry, base: Case) -> Case:
    """The valid ``base`` broken by ``fam`` (its choices decoded from ``pick``), labelled."""
    return replace(fam.breaks(Picker(pick), g, base), label=fam.label, exact=False)


def family_named(name: str) -> InvalidFamily:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown invalid family {name!r}; expected one of {FAMILY_NAMES}"
                         ) from None


def invalid_cases(families=FAMILY_NAMES, dtypes=DTYPES, layouts=LAYOUTS, paddings=PADDINGS):
    """A near-miss Case violating exactly one rule; ``label == "invalid:<family>"``. Drawn as
    the family index, the base Case's integers (``fuzz.strategies``) and one integer for the
    family's own choices — no nested draws. A crash-prone family is drawn a third as often."""
    chosen = [family_named(name) for name in families]
    fams = tuple(f for f in chosen for _ in range(1 if f.crash_prone else 3))

    def build(t):
        fi, base_t, pick = t
        g, base = _base(base_t, dtypes, layouts, paddings)
        return near_miss(fams[fi], pick, g, base)
    return st.tuples(st.sampled_from(range(len(fams))), _ints(dtypes, layouts, paddings),
                     st.sampled_from(range(2**12))).map(build)


def family_examples(dtypes=DTYPES, layouts=LAYOUTS, paddings=PADDINGS, dilations=True,
                    argument_forms=True) -> list[Case]:
    """One deterministic near-miss per family (a small base of the first of ``dtypes``,
    ``layouts`` and ``paddings`` — float32 NDHWC SAME by default, a declared domain's otherwise
    — and the family's first choices): explicit examples of the invalid property, so that every
    family is judged in every run whatever the random draws hit (Hypothesis's draws cluster;
    the coverage tripwire must not depend on luck)."""
    base_t = (0, 0, 4, 0, 1, 2, 0, 0, 7, 0)
    return [near_miss(fam, 0, *_base(base_t, dtypes, layouts, paddings, dilations, argument_forms))
            for fam in FAMILIES]


def family_of(case: Case) -> str | None:
    return case.label.split(":", 1)[1] if case.label.startswith("invalid:") else None
