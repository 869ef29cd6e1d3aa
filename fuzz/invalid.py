"""Invalid Cases: one family per validation rule, each a near-miss of a valid Case.

Every family starts from a drawn valid Case (``fuzz.strategies``) and changes the one thing its
rule is about, so that exactly that rule is violated; the Case is labelled
``"invalid:<family>"``. ``DOC_RULES`` are the conditions the documentation itself names (it
promises ``ValueError``); the others are rules TensorFlow enforces (and ``impl`` mirrors), judged
against ``impl``'s error class.

Output-size near-misses use the shape rule of ``fuzz.strategies.output_range``: with the valid
range ``[lo, hi]`` for input size I, ``hi + 1`` always implies input size I + 1, and ``lo − 1``
implies I − 1 except for VALID with I = 0 (truncating division maps ``eff − s − 1`` back to 0),
which is therefore never used.
"""
from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from oracle.arrays import ArraySpec
from oracle.case import Case
from fuzz.strategies import (DTYPES, LAYOUTS, PADDINGS, VALUE_KINDS, Geometry, _decode_geometry,
                             _ints, build_case_from, output_range, spec_from)

DOC_RULES = ("channel-in", "channel-out", "padding-value")
CRASH_PRONE = ("output-shape-negative",)  # oneDNN aborts (ledger: onednn-negative-output-shape-abort)

FAMILIES = ("channel-in", "channel-out", "padding-value", "padding-type", "data-format",
            "strides-length", "strides-nonpositive", "strides-batch-channel",
            "dilations-length", "dilations-nonpositive", "dilations-batch-channel",
            "output-shape-spatial", "output-shape-batch", "output-shape-rank",
            "output-shape-negative", "value-rank", "filter-rank", "dtype-mismatch",
            "dtype-unsupported", "alias-both-value", "alias-both-filter", "missing-value",
            "missing-filter")


def _seq5(vals, layout):
    return [1, *vals, 1] if layout == "NDHWC" else [1, 1, *vals]


def _spatial_index(layout: str, axis: int) -> int:
    return (1 if layout == "NDHWC" else 2) + axis


def _resize(spec: ArraySpec, shape) -> ArraySpec:
    return replace(spec, shape=tuple(shape))


class _Picker:
    """Family parameters decoded from one integer (digit by digit; 0 = the first option)."""

    def __init__(self, x: int) -> None:
        self.x = x

    def one(self, options):
        self.x, r = divmod(self.x, len(options))
        return options[r]

    def flag(self) -> bool:
        return self.one((False, True))

    def int(self, lo: int, hi: int) -> int:
        return self.one(tuple(range(lo, hi + 1)))


def _base(t, dtypes=DTYPES, layouts=LAYOUTS, paddings=PADDINGS) -> tuple[Geometry, Case]:
    """A small valid Case (no zero-size dims, so that every rule is reachable)."""
    g, s_form, d_form = _decode_geometry(t, dtypes, layouts, paddings, False, lambda _d: None)
    vk, fk = divmod(t[7], VALUE_KINDS)
    case = build_case_from(g, s_form, d_form, t[9], spec_from(g.dtype, g.value_shape, vk, t[8]),
                           spec_from(g.dtype, g.filter_shape, fk, (t[8] + 1) % 2**32), False)
    if case.value_arg == "input":  # TF v1 mishandles input= alone (ledger): keep one violation
        case = case.with_(value_arg="value")
    return g, case


def _family(draw, family: str, g: Geometry, c: Case) -> Case:
    spatial_s = [a.s for a in g.axes]
    spatial_d = [a.d for a in g.axes]
    cidx = 4 if g.layout == "NDHWC" else 1
    if family == "channel-in":
        cin = g.cin + draw.one(((1, 2, -1)))
        shape = list(g.filter_shape)
        shape[4] = cin if cin >= 1 else g.cin + 1
        return c.with_(filter=_resize(c.filter, shape))
    if family == "channel-out":
        out = list(g.output_shape)
        out[cidx] = g.cout + draw.one(((1, 2))) if draw.flag() or g.cout == 1 \
            else g.cout - 1
        return c.with_(output_shape=out)
    if family == "padding-value":
        return c.with_(padding=draw.one((
            (g.padding.lower(), "FULL", "EXPLICIT", "", g.padding + " ", "CAUSAL"))))
    if family == "padding-type":
        return c.with_(padding=draw.one(((None, 1, [g.padding]))))
    if family == "data-format":
        return c.with_(data_format=draw.one((
            (g.layout.lower(), "NHWC", "NCHW", "NWC", "DHWCN"))))
    if family in ("strides-length", "dilations-length"):
        key, vals = ("strides", spatial_s) if family[0] == "s" else ("dilations", spatial_d)
        length = draw.one(((2, 4, 6)))
        seq = (vals + [1, 1, 1])[:length] if length < 6 else _seq5(vals, g.layout) + [1]
        return c.with_(**{key: seq, key + "_form": "list"})
    if family in ("strides-nonpositive", "dilations-nonpositive"):
        key, vals = ("strides", spatial_s) if family[0] == "s" else ("dilations", spatial_d)
        vals = list(vals)
        vals[draw.int(0, 2)] = draw.one(((0, -1)))
        return c.with_(**{key: vals, key + "_form": "list"})
    if family in ("strides-batch-channel", "dilations-batch-channel"):
        key, vals = ("strides", spatial_s) if family[0] == "s" else ("dilations", spatial_d)
        seq = _seq5(vals, g.layout)
        seq[draw.one(((0, cidx)))] = draw.one(((2, 3)))
        return c.with_(**{key: seq, key + "_form": "list"})
    if family == "output-shape-spatial":
        axis = draw.int(0, 2)
        a = g.axes[axis]
        lo, hi = output_range(a.i, a.k, a.s, a.d, g.padding)
        out = list(g.output_shape)
        out[_spatial_index(g.layout, axis)] = lo - 1 if (draw.flag() and lo >= 1) else hi + 1
        return c.with_(output_shape=out)
    if family == "output-shape-batch":
        out = list(g.output_shape)
        out[0] = g.n + draw.one(((1, 2)))
        return c.with_(output_shape=out)
    if family == "output-shape-rank":
        out = list(g.output_shape)
        out = out[:-1] if draw.flag() else out + [1]
        return c.with_(output_shape=out)
    if family == "output-shape-negative":
        out = list(g.output_shape)
        out[_spatial_index(g.layout, draw.int(0, 2))] = -draw.int(1, 4)
        return c.with_(output_shape=out)
    if family == "value-rank":
        shape = list(g.value_shape)
        shape = shape[1:] if draw.flag() else [1, *shape]
        return c.with_(value=_resize(c.value, shape))
    if family == "filter-rank":
        shape = list(g.filter_shape)
        shape = shape[1:] if draw.flag() else [1, *shape]
        return c.with_(filter=_resize(c.filter, shape))
    if family == "dtype-mismatch":
        other = draw.one((tuple(d for d in DTYPES if d != g.dtype)))
        return c.with_(filter=replace(c.filter, dtype=other))
    if family == "dtype-unsupported":
        dt = draw.one((("int32", "int64", "complex64")))
        return c.with_(value=replace(c.value, dtype=dt), filter=replace(c.filter, dtype=dt))
    if family == "alias-both-value":
        return c.with_(value_arg="both", filter_arg="filter" if c.filter_arg == "positional"
                       else c.filter_arg)
    if family == "alias-both-filter":
        return c.with_(filter_arg="both")
    if family == "missing-value":
        return c.with_(value_arg="missing", filter_arg="filter" if c.filter_arg == "positional"
                       else c.filter_arg)
    if family == "missing-filter":
        return c.with_(filter_arg="missing")
    raise ValueError(f"unknown invalid family {family!r}; expected one of {FAMILIES}")


def invalid_cases(families=FAMILIES, dtypes=DTYPES, layouts=LAYOUTS, paddings=PADDINGS):
    """A near-miss Case violating exactly one rule; ``label == "invalid:<family>"``. Drawn as
    the family index, the base Case's integers (``fuzz.strategies``) and one integer for the
    family's own choices — no nested draws."""
    # A family that crashes a TF 2.21 worker (CRASH_PRONE) is drawn a third as often as the
    # others: every crash costs a TF re-import (the warm spare hides the wait, not the CPU).
    fams = tuple(f for f in families for _ in range(1 if f in CRASH_PRONE else 3))

    def build(t):
        fi, base_t, pick = t
        family = fams[fi]
        g, base = _base(base_t, dtypes, layouts, paddings)
        return replace(_family(_Picker(pick), family, g, base), label=f"invalid:{family}",
                       exact=False)
    return st.tuples(st.sampled_from(range(len(fams))), _ints(dtypes, layouts, paddings),
                     st.sampled_from(range(2**12))).map(build)


def family_examples() -> list[Case]:
    """One deterministic near-miss per family (a small float32 NDHWC base, the family's first
    choices): explicit examples of the invalid property, so that every family is judged in
    every run whatever the random draws hit (Hypothesis's draws cluster; the coverage tripwire
    must not depend on luck)."""
    base_t = (0, 0, 4, 0, 1, 2, 0, 0, 7, 0)
    out = []
    for family in FAMILIES:
        g, base = _base(base_t)
        out.append(replace(_family(_Picker(0), family, g, base), label=f"invalid:{family}",
                           exact=False))
    return out


def family_of(case: Case) -> str | None:
    return case.label.split(":", 1)[1] if case.label.startswith("invalid:") else None
