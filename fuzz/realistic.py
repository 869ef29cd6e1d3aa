"""The realistic-size tier: valid Cases at the sizes where optimised kernels change code path.

Optimised kernels (oneDNN, XLA, vendor kernels) block channels by 4/8/16/32/64, tile spatial
axes, partition the batch across threads, pick im2col / direct / GEMM by size and split long
accumulations; their defects live at those boundaries, never at Cin, Cout ≤ 3. This tier draws:

- channel counts just below, at and just above every power of two 4 … 128 (``CHANNELS``);
- output extents per axis just below, at and above 8, 16, 32 and 64 (``EXTENTS``);
- batch 1 … 9 (``BATCHES``), kernels 1 … 7 (``KERNELS``), strides 1 … 4, dilations 1 … 3;
- so that ``Cin·ΠK`` (products per output) reaches the thousands and ``N·ΠO·Cout`` (the whole
  output) 10⁵ … 10⁶ elements,

combined with every other axis of ``fuzz.strategies`` (dtype, layout, padding, argument forms,
value recipes). Each choice is an index into an ascending tuple, so Hypothesis shrinks every one
toward the smallest size: a kernel wrong only for ``Cout % 8 ≠ 0, Cout > 8`` shrinks to Cout 9.

The input extent follows from the drawn output extent by TF's shape rule (``I = ceil(O/s)`` for
SAME, ``I = trunc((O − eff + s)/s)`` for VALID, with ``O`` raised to ``eff`` when smaller), so
every Case is valid by construction. A ``SizeBudget`` bounds outputs and products (work) per Case;
an over-budget draw is reduced deterministically — the largest spatial extent first, then the
batch, then the largest kernel, channels last — never rejected, so the channel counts that
matter survive the budget. ``boundary_cases`` lists deterministic Cases at each boundary class,
run as explicit examples so that the tier's coverage never depends on luck.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

from hypothesis import strategies as st

from conv3dt.fuzz.strategies import (DTYPES, LAYOUTS, PADDINGS, SEEDS, SEQ_FORMS, UNIFORM_FORMS,
                             UNIT_FORMS, VALUE_KINDS, ARG_SPAN, Axis, Geometry,
                             build_case_from, spec_from)
from conv3dt.oracle.case import Case

CHANNELS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129)
EXTENTS = (1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65)
BATCHES = (1, 2, 3, 4, 5, 7, 8, 9)
KERNELS = (1, 2, 3, 4, 5, 7)
STRIDES = (1, 2, 3, 4)
DILATIONS = (2, 3)


@dataclass(frozen=True)
class SizeBudget:
    """Per-Case limits: whole-output elements ``N·ΠO·Cout`` and products ``N·ΠI·Cin·Cout·ΠK``."""
    outputs: int
    work: int

    def __post_init__(self) -> None:
        if not (isinstance(self.outputs, int) and isinstance(self.work, int)
                and self.outputs >= 1 and self.work >= 1):
            raise ValueError(f"SizeBudget needs positive int outputs and work, got {self!r}")

    def fits(self, g: Geometry) -> bool:
        return g.outputs() <= self.outputs and g.work() <= self.work


# ci: a 10⁶-element output or 4·10⁷ products per Case (≈ 10 ms on TF's float32 kernels);
# nightly: 4·10⁶ outputs, 4·10⁸ products.
BUDGETS = {"dev": SizeBudget(200_000, 4_000_000), "ci": SizeBudget(1_000_000, 40_000_000),
           "nightly": SizeBudget(4_000_000, 400_000_000)}


def input_extent(o: int, k: int, s: int, d: int, padding: str) -> tuple[int, int]:
    """``(I, O')``: the input extent TF's shape rule gives for output ``o`` (``O' = o``), or, for
    VALID with ``o`` below the effective kernel ``eff``, ``O' = eff`` and its input extent."""
    eff = (k - 1) * d + 1
    if padding == "SAME":
        return -(-o // s), o
    o = max(o, eff)
    return (o - eff + s) // s, o


def _axis(o: int, k: int, s: int, d: int, padding: str) -> Axis:
    i, o = input_extent(o, k, s, d, padding)
    return Axis(k, s, d, i, o)


def _smaller(options: tuple[int, ...], value: int) -> int:
    """The next smaller option than ``value`` (``value`` itself when it is the smallest)."""
    lower = [x for x in options if x < value]
    return lower[-1] if lower else value


def reduce_to_budget(g: Geometry, budget: SizeBudget, out_targets: list[int]) -> Geometry:
    """Shrink ``g`` deterministically until ``budget.fits`` (see the module docstring);
    ``out_targets`` are the drawn output extents (VALID may have raised them to ``eff``)."""
    targets = list(out_targets)
    while not budget.fits(g):
        axes = list(g.axes)
        n, cin, cout = g.n, g.cin, g.cout
        shrinkable = [a for a in range(3) if _smaller(EXTENTS, targets[a]) < targets[a]]
        if shrinkable:
            j = max(shrinkable, key=lambda a: (axes[a].o, -a))
            targets[j] = _smaller(EXTENTS, targets[j])
        elif n > 1:
            n = _smaller(BATCHES, n)
        elif max(a.k for a in axes) > 1:
            j = max(range(3), key=lambda a: (axes[a].k, -a))
            axes[j] = Axis(_smaller(KERNELS, axes[j].k), axes[j].s, axes[j].d, 0, 0)
        elif max(cin, cout) > 1:
            cin, cout = (_smaller(CHANNELS, cin), cout) if cin >= cout else (cin, _smaller(CHANNELS, cout))
        else:
            break
        axes = [_axis(targets[a], x.k, x.s, x.d, g.padding) for a, x in enumerate(axes)]
        g = Geometry(g.dtype, g.layout, g.padding, n, cin, cout, tuple(axes))
    return g


def _uniform(values: list[int], form: str) -> list[int]:
    if form in UNIT_FORMS:
        return [1, 1, 1]
    return [values[0]] * 3 if form in UNIFORM_FORMS else list(values)


@st.composite
def _realistic_case(draw, budget: SizeBudget, dtypes, layouts, paddings) -> Case:
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(layouts))
    padding = draw(st.sampled_from(paddings))
    n = draw(st.sampled_from(BATCHES))
    cin = draw(st.sampled_from(CHANNELS))
    cout = draw(st.sampled_from(CHANNELS))
    s_form = draw(st.sampled_from(SEQ_FORMS))
    d_form = draw(st.sampled_from(SEQ_FORMS))
    ks = [draw(st.sampled_from(KERNELS)) for _ in range(3)]
    ss = _uniform([draw(st.sampled_from(STRIDES)) for _ in range(3)], s_form)
    dilated = draw(st.integers(0, 4)) == 4          # 1 in 5 geometries dilated (shrinks to not)
    ds = _uniform([draw(st.sampled_from(DILATIONS)) if dilated else 1 for _ in range(3)], d_form)
    outs = [draw(st.sampled_from(EXTENTS)) for _ in range(3)]
    axes = tuple(_axis(outs[a], ks[a], ss[a], ds[a], padding) for a in range(3))
    g = reduce_to_budget(Geometry(dtype, layout, padding, n, cin, cout, axes), budget, outs)
    kinds = draw(st.integers(0, VALUE_KINDS * VALUE_KINDS - 1))
    seed = draw(SEEDS)
    arg_i = draw(st.integers(0, ARG_SPAN - 1))
    vk, fk = divmod(kinds, VALUE_KINDS)
    return build_case_from(g, s_form, d_form, arg_i, spec_from(dtype, g.value_shape, vk, seed),
                           spec_from(dtype, g.filter_shape, fk, (seed + 1) % 2**32), False)


def realistic_cases(budget: SizeBudget | None = None, dtypes=DTYPES, layouts=LAYOUTS,
                    paddings=PADDINGS):
    """A valid Case of realistic size (see the module docstring) within ``budget``
    (default: the ci budget). Arguments are validated like ``hypothesis.extra.numpy``'s."""
    budget = BUDGETS["ci"] if budget is None else budget
    if not isinstance(budget, SizeBudget):
        raise TypeError(f"budget must be a SizeBudget, got {budget!r}")
    for name, given, allowed in (("dtypes", dtypes, DTYPES), ("layouts", layouts, LAYOUTS),
                                 ("paddings", paddings, PADDINGS)):
        bad = [x for x in given if x not in allowed]
        if not given or bad:
            raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {given!r}")
    return _realistic_case(budget, tuple(dtypes), tuple(layouts), tuple(paddings))


def tier_seed(dtype: str, run_seed: int | None) -> int:
    """The Hypothesis seed of the tier's search for ``dtype`` (``hypothesis.seed``): fixed per
    (dtype, run seed), so a run is reproducible, and different per dtype, so the per-dtype
    searches do not all walk the same geometries (a global seed or derandomize would give every
    search the same choice sequence)."""
    return zlib.crc32(f"realistic:{dtype}:{run_seed or 0}".encode())


# ----------------------------------------------------------------------------- boundary Cases
@dataclass(frozen=True)
class Boundary:
    """One deterministic geometry at a kernel path boundary, and why it is there."""
    why: str
    n: int
    cin: int
    cout: int
    outs: tuple[int, int, int]
    kernel: tuple[int, int, int] = (3, 3, 3)
    strides: tuple[int, int, int] = (1, 1, 1)
    dtype: str = "float32"
    layout: str = "NDHWC"
    padding: str = "SAME"

    def case(self, seed: int) -> Case:
        """The Case, strides in the length-5 form every declaration admits (``oracle.capabilities``)."""
        axes = tuple(_axis(o, k, s, 1, self.padding)
                     for o, k, s in zip(self.outs, self.kernel, self.strides))
        g = Geometry(self.dtype, self.layout, self.padding, self.n, self.cin, self.cout, axes)
        return build_case_from(g, "list5", "omitted", 0,
                               spec_from(self.dtype, g.value_shape, 0, seed),
                               spec_from(self.dtype, g.filter_shape, 0, seed + 1), False)


BOUNDARIES = (
    Boundary("output channels one past a block of 8", 2, 8, 9, (8, 8, 8), strides=(2, 2, 2)),
    Boundary("channels one past 16 and 32 (input blocks)", 1, 33, 17, (8, 8, 16)),
    Boundary("channels one past 64, 64-channel blocking", 1, 65, 65, (8, 8, 8), strides=(2, 2, 2)),
    Boundary("Cin 129: 3483 products per output", 1, 129, 5, (4, 8, 8)),
    Boundary("spatial extents one past 16 and 64 (tile edges)", 1, 4, 5, (5, 17, 65),
             strides=(1, 2, 2)),
    Boundary("batch 9: one past a partition of 8", 9, 4, 7, (4, 8, 9)),
    Boundary("whole output 5·10⁵ elements", 4, 8, 16, (16, 32, 15), strides=(2, 2, 1)),
    Boundary("kernel 7 on a strided deep input", 1, 3, 4, (33, 16, 16), kernel=(7, 5, 3),
             strides=(2, 2, 1), padding="VALID"),
    Boundary("bfloat16 64 → 64 (reduced-precision fast paths)", 2, 64, 64, (8, 8, 8),
             dtype="bfloat16", layout="NDHWC", strides=(2, 2, 2)),
    Boundary("NCDHW float64, 1.6·10⁵ outputs, remainders past 8 and 16", 2, 9, 9, (17, 16, 33),
             strides=(1, 1, 2), layout="NCDHW", dtype="float64"),
    Boundary("float16 extents past 16, 2·10⁵ outputs", 2, 5, 16, (16, 17, 24), dtype="float16"),
)


def boundary_cases(seed: int = 11, domain=None) -> list[Case]:
    """One deterministic Case per ``BOUNDARIES`` entry (the tier's explicit examples). Inside a
    declared ``domain`` (``oracle.capabilities.Capabilities``) an entry whose dtype, layout or
    padding is not declared keeps its geometry (its size class) and takes the domain's first."""
    out = []
    for j, b in enumerate(BOUNDARIES):
        if domain is not None:
            b = replace(b, dtype=b.dtype if b.dtype in domain.dtypes else domain.dtypes[0],
                        layout=b.layout if b.layout in domain.layouts else domain.layouts[0],
                        padding=b.padding if b.padding in domain.paddings else domain.paddings[0])
        out.append(b.case(seed + 2 * j))
    return out


def tier_search(ctx, dtype: str, prop: str = "realistic", cases_of=None):
    """The tier's Hypothesis search for one dtype (the profile's examples and budget): each
    drawn Case judged as ``cases_of(case)`` (default: itself; the gradient tier: both gradients,
    ``fuzz.gradients.gradient_cases``) on every target that runs them, the dtype's boundary
    Cases first as explicit examples; seeded per dtype and property (``tier_seed``)."""
    from hypothesis import example, given

    from conv3dt.fuzz import profiles
    from conv3dt.fuzz.failures import EXPLICIT_EXAMPLES, FailureBudget
    from conv3dt.fuzz.properties import check_valid_batch

    cases_of = cases_of or (lambda case: [case])
    domain = profiles.declared_domain()

    @profiles.settings_for(prop)
    @given(case=realistic_cases(BUDGETS[profiles.ACTIVE["profile"]], dtypes=(dtype,),
                                layouts=domain.layouts, paddings=domain.paddings))
    def search(case):
        check_valid_batch(cases_of(case), ctx, prop)

    for case in boundary_cases(domain=domain):
        # explicit: no shrink round (fuzz.failures.explicit); a shard judges those it owns
        if case.dtype == dtype and profiles.shard().owns(case.case_id):
            EXPLICIT_EXAMPLES.add(FailureBudget.example_key(prop, cases_of(case)))
            search = example(case=case)(search)
    offset = 0 if prop == "realistic" else 1   # the gradient tier searches its own stream
    return profiles.seeded(search, tier_seed(dtype, profiles.ACTIVE["seed"]) + offset, always=True)
