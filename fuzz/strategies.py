"""Hypothesis strategies for valid ``conv3d_transpose`` Cases.

A Case is drawn in three independent parts, each cheap to generate and to shrink:

1. ``geometries()`` — the *shape* of one call: dtype, layout, padding, N, Cin, Cout and per
   spatial axis the kernel size K ∈ 1..5, stride s ∈ 1..4, dilation d ∈ 1..3, input size
   I ∈ 0..3 and the output size O. With ``eff = (K − 1)·d + 1`` the output size is drawn from
   exactly the set the contract accepts (TF's shape rule, truncating division)::

       SAME:   I = ceil(O / s)              →  O ∈ [(I − 1)·s + 1, I·s]   (O = 0 when I = 0)
       VALID:  I = trunc((O − eff + s) / s) →  O ∈ [(I − 1)·s + eff, I·s + eff − 1]
                                               (I = 0: O ∈ [max(0, eff − s), eff − 1])

   so ``O − min(O)`` is the VALID trailing slack, and under SAME the total padding
   ``max(0, (I − 1)·s + eff − O)`` is odd as often as even. A work budget keeps every example
   fast: N·ΠO·Cout ≤ ``OUT_BUDGET`` outputs and N·ΠI·Cin·Cout·ΠK ≤ ``WORK_BUDGET`` products;
   an over-budget draw is reduced deterministically (input size, then dilation, then kernel),
   never rejected.
2. ``argument forms`` — how each argument is passed: value/input and filter/filters aliases or
   positional; strides and dilations as None / omitted / int / length 1, 3 or 5 (batch and
   channel entries 1, in data_format order); output_shape as list, tuple, NumPy int32/int64
   array or int32/int64 tensor.
3. ``values`` — never element by element: a recipe and a seed (``oracle.arrays.ArraySpec``):
   seeded normal / uniform bulk floats at a dtype-safe scale, special values (±0, subnormals,
   magnitudes near overflow, ±inf, nan) mixed in with probability p, or — for exact Cases —
   small integers whose every partial sum is exactly representable (``exact_cases``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import strategies as st

from oracle.arrays import ArraySpec
from oracle.case import Case
from fuzz.bound import LARGEST_FINITE, SMALLEST_NORMAL

DTYPES = ("float32", "float64", "float16", "bfloat16")
LAYOUTS = ("NDHWC", "NCDHW")
PADDINGS = ("SAME", "VALID")
OUT_BUDGET = 768
WORK_BUDGET = 20000
MANTISSA_BITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}
# Scales keep |products| far from overflow in every dtype (special values test overflow).
SCALES = {"float16": (1.0, 2.0**-4, 8.0), "bfloat16": (1.0, 2.0**-4, 64.0, 1e3),
          "float32": (1.0, 2.0**-4, 64.0, 1e3), "float64": (1.0, 2.0**-4, 64.0, 1e3)}
SEEDS = st.integers(0, 2**32 - 1)
ZERO_DIMS = ("N", "Cin", "Cout", "D", "H", "W")


@dataclass(frozen=True)
class Axis:
    """One spatial axis: kernel K, stride s, dilation d, input size I, output size O."""
    k: int
    s: int
    d: int
    i: int
    o: int

    @property
    def eff(self) -> int:
        return (self.k - 1) * self.d + 1

    def total_pad(self, padding: str) -> int:
        return max(0, (self.i - 1) * self.s + self.eff - self.o) if padding == "SAME" else 0


def output_range(i: int, k: int, s: int, d: int, padding: str) -> tuple[int, int]:
    """The inclusive range of output sizes O the contract accepts for input size ``i``."""
    eff = (k - 1) * d + 1
    if padding == "SAME":
        return (0, 0) if i == 0 else ((i - 1) * s + 1, i * s)
    if i == 0:
        return max(0, eff - s), eff - 1
    return (i - 1) * s + eff, i * s + eff - 1


def make_axis(i: int, k: int, s: int, d: int, slack: int, padding: str) -> Axis:
    lo, hi = output_range(i, k, s, d, padding)
    return Axis(k, s, d, i, min(lo + slack, hi))


@dataclass(frozen=True)
class Geometry:
    dtype: str
    layout: str
    padding: str
    n: int
    cin: int
    cout: int
    axes: tuple[Axis, Axis, Axis]

    @property
    def value_shape(self) -> tuple[int, ...]:
        sp = tuple(a.i for a in self.axes)
        return (self.n, *sp, self.cin) if self.layout == "NDHWC" else (self.n, self.cin, *sp)

    @property
    def filter_shape(self) -> tuple[int, ...]:
        return (*(a.k for a in self.axes), self.cout, self.cin)

    @property
    def output_shape(self) -> list[int]:
        sp = [a.o for a in self.axes]
        return [self.n, *sp, self.cout] if self.layout == "NDHWC" else [self.n, self.cout, *sp]

    @property
    def n_terms(self) -> int:
        """Products per output element (before dilation/stride sparsity): Cin × ΠK."""
        return self.cin * math.prod(a.k for a in self.axes)

    def outputs(self) -> int:
        return self.n * self.cout * math.prod(a.o for a in self.axes)

    def work(self) -> int:
        return self.n * math.prod(a.i for a in self.axes) * self.cout * self.n_terms


def _fits(g: Geometry, max_terms: int | None) -> bool:
    return (g.outputs() <= OUT_BUDGET and g.work() <= WORK_BUDGET
            and (max_terms is None or g.n_terms <= max_terms))


def _reduce(g: Geometry, slacks: list[int], max_terms: int | None) -> Geometry:
    """Shrink an over-budget geometry deterministically until it fits."""
    axes = list(g.axes)
    while not _fits(Geometry(g.dtype, g.layout, g.padding, g.n, g.cin, g.cout, tuple(axes)),
                    max_terms):
        j = max(range(3), key=lambda a: (axes[a].o * axes[a].k, -a))
        a = axes[j]
        if a.i > 1:
            i, k, d = a.i - 1, a.k, a.d
        elif a.d > 1:
            i, k, d = a.i, a.k, a.d - 1
        elif a.k > 1:
            i, k, d = a.i, a.k - 1, a.d
        elif g.cin > 1 or g.cout > 1 or g.n > 1:
            g = Geometry(g.dtype, g.layout, g.padding, max(1, g.n - 1) if g.n else 0,
                         max(1, g.cin - 1) if g.cin else 0, max(1, g.cout - 1) if g.cout else 0,
                         tuple(axes))
            continue
        else:
            break
        axes[j] = make_axis(i, k, a.s, d, slacks[j], g.padding)
    return Geometry(g.dtype, g.layout, g.padding, g.n, g.cin, g.cout, tuple(axes))


@st.composite
def geometries(draw, dtypes=DTYPES, layouts=LAYOUTS, paddings=PADDINGS, zero_dims: bool = True,
               max_terms: int | None = None) -> Geometry:
    """A valid call geometry (see the module docstring); shrinks toward 1-sized everything."""
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(layouts))
    padding = draw(st.sampled_from(paddings))
    # A zero-size dimension in ~1 of 8 examples (shrinks toward none).
    zero = draw(st.sampled_from((None,) * 6 + ZERO_DIMS)) if zero_dims else None
    n = 0 if zero == "N" else draw(st.integers(1, 2))
    cin = 0 if zero == "Cin" else draw(st.integers(1, 3))
    cout = 0 if zero == "Cout" else draw(st.integers(1, 3))
    axes, slacks = [], []
    for name in "DHW":
        k = draw(st.integers(1, 5))
        s = draw(st.integers(1, 4))
        d = draw(st.integers(1, 3))
        i = 0 if zero == name else draw(st.integers(1, 3))
        slack = draw(st.integers(0, 3 if i else 12))
        slacks.append(slack)
        axes.append(make_axis(i, k, s, d, slack, padding))
    return _reduce(Geometry(dtype, layout, padding, n, cin, cout, tuple(axes)), slacks, max_terms)


# ----------------------------------------------------------------------------- argument forms
@st.composite
def sequence_arg(draw, values: tuple[int, int, int], layout: str) -> tuple[object, str]:
    """(value, form) for strides/dilations: every accepted spelling of the same three ints."""
    options = ["list3", "tuple3", "list5", "tuple5"]
    if len(set(values)) == 1:
        options += ["int", "list1", "tuple1"]
        if values[0] == 1:
            options += ["none", "omitted"]
    choice = draw(st.sampled_from(options))
    if choice in ("none", "omitted"):
        return None, choice
    if choice == "int":
        return values[0], "int"
    form, length = choice[:-1], int(choice[-1])
    seq = ([values[0]] if length == 1 else list(values) if length == 3 else
           [1, *values, 1] if layout == "NDHWC" else [1, 1, *values])
    return seq, form


def arg_forms():
    """(value_arg, filter_arg, output_shape_form) — every accepted way of passing them."""
    return st.tuples(
        st.sampled_from(("value", "input", "positional")),
        st.sampled_from(("filter", "filters")),
        st.sampled_from(("list", "tuple", "ndarray-int32", "ndarray-int64",
                         "tensor-int32", "tensor-int64")))


# ----------------------------------------------------------------------------- values
def special_pool(dtype: str) -> tuple[float, ...]:
    """±0, the smallest and largest subnormal, the smallest normal, near-overflow, ±inf, nan."""
    tiny = SMALLEST_NORMAL[dtype]
    sub_min = tiny * 2.0 ** -(MANTISSA_BITS[dtype] - 1)
    big = LARGEST_FINITE[dtype]
    return (0.0, -0.0, sub_min, -(tiny - sub_min), tiny, -tiny, big / 2, -big, float("inf"),
            float("-inf"), float("nan"))


@st.composite
def float_spec(draw, dtype: str, shape: tuple[int, ...]) -> ArraySpec:
    """A bulk-float recipe: seeded normal/uniform at a dtype-safe scale, or special values."""
    seed = draw(SEEDS)
    kind = draw(st.sampled_from(("normal", "normal", "uniform", "special")))
    if kind == "normal":
        scale = draw(st.sampled_from(SCALES[dtype]))
        return ArraySpec(dtype, shape, "normal", seed, (("scale", scale),))
    if kind == "uniform":
        low = draw(st.sampled_from((-1.0, 0.0)))
        return ArraySpec(dtype, shape, "uniform", seed, (("low", low), ("high", 1.0)))
    pool = draw(st.lists(st.sampled_from(special_pool(dtype)), min_size=1, max_size=4,
                         unique_by=lambda x: repr(x)))
    p = draw(st.sampled_from((0.05, 0.3, 1.0)))
    return ArraySpec(dtype, shape, "special", seed, (("pool", tuple(pool)), ("p", p),
                                                       ("scale", 1.0)))


def exact_limits(dtype: str, n_terms: int) -> tuple[int, int] | None:
    """Largest integer magnitudes (mv, mw) ≤ 3 with n_terms·mv·mw ≤ 2^p (p = significand bits):
    then every partial sum of integer products is an integer ≤ 2^p, exactly representable."""
    cap = 2 ** MANTISSA_BITS[dtype]
    for mv, mw in ((3, 3), (3, 2), (2, 2), (2, 1), (1, 1)):
        if max(n_terms, 1) * mv * mw <= cap:
            return mv, mw
    return None


# ----------------------------------------------------------------------------- Cases
def build_case(draw, g: Geometry, value: ArraySpec, filt: ArraySpec, exact: bool) -> Case:
    strides, s_form = draw(sequence_arg(tuple(a.s for a in g.axes), g.layout))
    dil, d_form = draw(sequence_arg(tuple(a.d for a in g.axes), g.layout))
    value_arg, filter_arg, os_form = draw(arg_forms())
    if value_arg == "positional" and draw(st.booleans()):
        filter_arg = "positional"
    return Case(value=value, filter=filt, output_shape=g.output_shape, strides=strides,
                dilations=dil, padding=g.padding, data_format=g.layout, value_arg=value_arg,
                filter_arg=filter_arg, output_shape_form=os_form, strides_form=s_form,
                dilations_form=d_form, label="valid", exact=exact)


@st.composite
def valid_cases(draw, **geometry_kwargs) -> Case:
    """A valid Case with bulk float values (the differential property's input)."""
    g = draw(geometries(**geometry_kwargs))
    value = draw(float_spec(g.dtype, g.value_shape))
    filt = draw(float_spec(g.dtype, g.filter_shape))
    return build_case(draw, g, value, filt, exact=False)


@st.composite
def exact_cases(draw, **geometry_kwargs) -> Case:
    """A valid Case of small integers (or all ones) whose result is exact in its dtype."""
    dtype = draw(st.sampled_from(geometry_kwargs.pop("dtypes", DTYPES)))
    g = draw(geometries(dtypes=(dtype,), max_terms=2 ** MANTISSA_BITS[dtype], **geometry_kwargs))
    mv, mw = exact_limits(dtype, g.n_terms)
    if draw(st.integers(0, 3)) == 0:
        value, filt = ArraySpec(dtype, g.value_shape, "ones"), ArraySpec(dtype, g.filter_shape, "ones")
    else:
        value = ArraySpec(dtype, g.value_shape, "integers", draw(SEEDS), (("low", -mv), ("high", mv)))
        filt = ArraySpec(dtype, g.filter_shape, "integers", draw(SEEDS), (("low", -mw), ("high", mw)))
    return build_case(draw, g, value, filt, exact=True)
