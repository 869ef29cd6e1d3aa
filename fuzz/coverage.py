"""Coverage cells: what the drawn Cases exercised, so a green run cannot be a silent one.

``cells_of(case)`` names the cells one Case hits: single axis values (dtype, layout, padding,
kernel/stride/dilation values on any axis, zero-size N/Cin/Cout/spatial, argument forms, value
recipes), key pairs (dtype×layout, dtype×dilation>1, padding×odd total pad / VALID slack,
stride>kernel, kernel>output), the realistic tier's size classes (``size_cells``) and the
invalid family; a gradient Case hits its own cells (``fuzz.gradients.gradient_cells``).
``REQUIRED`` lists every cell the ci
profile must hit; ``missing(counts)`` is the tripwire.
"""
from __future__ import annotations

import math

from conv3dt.oracle.case import Case, spatial_dims, spatial_triple
from conv3dt.fuzz.grad_invalid import GRAD_FAMILY_NAMES
from conv3dt.fuzz.gradients import GRADIENT_CELLS, gradient_cells
from conv3dt.fuzz.invalid import FAMILY_NAMES, family_of
from conv3dt.fuzz.strategies import DTYPES, LAYOUTS, output_range

AXIS_CELLS = ([f"dtype={d}" for d in DTYPES] + [f"layout={l}" for l in LAYOUTS]
              + ["padding=SAME", "padding=VALID"]
              + [f"kernel={k}" for k in range(1, 6)] + [f"stride={s}" for s in range(1, 5)]
              + [f"dilation={d}" for d in range(1, 4)]
              + [f"zero={z}" for z in ("N", "Cin", "Cout", "spatial")] + ["size=1"]
              + [f"strides_form={f}" for f in ("omitted", "none", "int", "list", "tuple")]
              + [f"strides_len={n}" for n in (1, 3, 5)] + [f"dilations_len={n}" for n in (1, 3, 5)]
              + [f"value_arg={a}" for a in ("value", "input", "positional")]
              + [f"filter_arg={a}" for a in ("filter", "filters", "positional")]
              + [f"output_shape_form={f}" for f in ("list", "tuple", "ndarray-int32",
                                                    "ndarray-int64", "tensor-int32", "tensor-int64")]
              + [f"values={r}" for r in ("normal", "uniform", "special", "integers", "ones")])
PAIR_CELLS = ([f"dtype×layout={d}×{l}" for d in DTYPES for l in LAYOUTS]
              + [f"dtype×dilation>1={d}" for d in DTYPES]
              + ["padding×pad=SAME×odd", "padding×pad=SAME×even", "padding×pad=VALID×slack",
                 "stride>kernel", "kernel>output"])
INVALID_CELLS = [f"invalid:{f}" for f in FAMILY_NAMES]
# The realistic tier's boundary classes (fuzz.realistic) and "large" (≥ 10⁵ outputs or ≥ 1000
# products per output) crossed with every dtype and layout.
SIZE_CELLS = (["size:cout-past-block-of-8", "size:cin-past-block-of-16", "size:channels>=64",
               "size:extent-past-tile-of-16", "size:extent>=64", "size:batch>=8", "size:kernel=7",
               "size:terms>=1000", "size:outputs>=1e5", "size:strided-deep"]
              + [f"size:large×{d}" for d in DTYPES] + [f"size:large×{l}" for l in LAYOUTS])
# The backward pass's cells (fuzz.gradients), required where a gradient target runs.
GRADIENT_REQUIRED = GRADIENT_CELLS + ("grad-invalid",) + tuple(
    f"grad-invalid:{f}" for f in GRAD_FAMILY_NAMES)
REQUIRED = tuple(AXIS_CELLS + PAIR_CELLS + INVALID_CELLS + SIZE_CELLS) + GRADIENT_REQUIRED


def cells_of(case: Case) -> list[str]:
    if case.is_gradient:    # its own cells: a gradient run does not count as forward coverage
        fam = family_of(case)
        if fam is not None:   # the backward's own families (fuzz.grad_invalid) by name too
            return ["grad-invalid"] + ([f"grad-invalid:{fam}"] if fam in GRAD_FAMILY_NAMES else [])
        return gradient_cells(case, cells_of(case.forward()))
    fam = family_of(case)
    if fam is not None:
        return [f"invalid:{fam}"]
    layout, dtype = case.data_format, case.dtype
    vs, fs, os_ = case.value.shape, case.filter.shape, case.output_shape
    ins, outs = spatial_dims(vs, layout), spatial_dims(os_, layout)
    cin, n, cout = vs[4 if layout == "NDHWC" else 1], vs[0], fs[3]
    k, s, d = list(fs[:3]), spatial_triple(case.strides, layout), spatial_triple(case.dilations, layout)
    cells = [f"dtype={dtype}", f"layout={layout}", f"padding={case.padding}",
             f"dtype×layout={dtype}×{layout}", f"values={case.value.recipe}",
             f"value_arg={case.value_arg}", f"filter_arg={case.filter_arg}",
             f"output_shape_form={case.output_shape_form}", f"strides_form={case.strides_form}"]
    cells += sorted({f"kernel={x}" for x in k} | {f"stride={x}" for x in s}
                    | {f"dilation={x}" for x in d})
    for name, arg, form in (("strides", case.strides, case.strides_form),
                            ("dilations", case.dilations, case.dilations_form)):
        if form in ("list", "tuple"):
            cells.append(f"{name}_len={len(arg)}")
    if max(d) > 1:
        cells.append(f"dtype×dilation>1={dtype}")
    for z, size in (("N", n), ("Cin", cin), ("Cout", cout)):
        if size == 0:
            cells.append(f"zero={z}")
    if 0 in ins:
        cells.append("zero=spatial")
    if 1 in ins:
        cells.append("size=1")
    cells += size_cells(case.dtype, layout, n, cin, cout, ins, outs, k, s)
    for a in range(3):
        eff = (k[a] - 1) * d[a] + 1
        if case.padding == "SAME" and ins[a] > 0:
            total = max(0, (ins[a] - 1) * s[a] + eff - outs[a])
            cells.append("padding×pad=SAME×odd" if total % 2 else "padding×pad=SAME×even")
        elif case.padding == "VALID" and outs[a] > output_range(ins[a], k[a], s[a], d[a], "VALID")[0]:
            cells.append("padding×pad=VALID×slack")
        if s[a] > k[a]:
            cells.append("stride>kernel")
        if k[a] > outs[a]:
            cells.append("kernel>output")
    return sorted(set(cells))


def size_cells(dtype, layout, n, cin, cout, ins, outs, k, s) -> list[str]:
    """The ``SIZE_CELLS`` a valid geometry hits (see ``fuzz.realistic`` for why these)."""
    outputs = n * cout * math.prod(outs)
    terms = cin * math.prod(k)
    hits = {"size:cout-past-block-of-8": cout > 8 and cout % 8 != 0,
            "size:cin-past-block-of-16": cin > 16 and cin % 16 != 0,
            "size:channels>=64": max(cin, cout) >= 64,
            "size:extent-past-tile-of-16": any(o > 16 and o % 16 for o in outs),
            "size:extent>=64": max(outs) >= 64, "size:batch>=8": n >= 8,
            "size:kernel=7": 7 in k, "size:terms>=1000": terms >= 1000,
            "size:outputs>=1e5": outputs >= 100_000,
            "size:strided-deep": any(st > 1 and i >= 8 for st, i in zip(s, ins))}
    cells = [c for c, hit in hits.items() if hit]
    if outputs >= 100_000 or terms >= 1000:
        cells += [f"size:large×{dtype}", f"size:large×{layout}"]
    return cells


def missing(counts: dict[str, int], required=REQUIRED) -> list[str]:
    """Required cells with a zero count: the coverage tripwire."""
    return [c for c in required if not counts.get(c)]
