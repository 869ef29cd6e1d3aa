"""The coverage floor, by construction: deterministic Cases that hit every reachable cell.

The coverage tripwire (``fuzz.coverage``) must not depend on luck, nor on the target: the
search is steered by what the targets return (``hypothesis.target``, failures that end a
round), so which cells random draws reach differs from kernel to kernel. These Cases are judged
before every search, whatever the targets return, so a required cell can be missing only when
no Case inside the targets' declarations (``oracle.capabilities``) can hit it, and then the
tripwire names it *unreachable* instead of failing.

``covering_cases(declarations)``: for each distinct declaration, candidates decoded from the
strategies' own integer tuples (``fuzz.strategies``) by a fixed-seed RNG — bulk-float Cases for
the differential property, small-integer ones for the exact property (the ``values=integers`` /
``values=ones`` cells), plus the zero-size rare cells — then a greedy set cover of the required
valid cells (``coverage.AXIS_CELLS`` + ``PAIR_CELLS``): the candidate hitting most uncovered
cells first, ties to the earlier. The same declarations give the same Cases on every run.
``unreachable(declarations)``: the required cells no target's declaration admits
(invalid families and realistic sizes included), from the cell names alone.
"""
from __future__ import annotations

import functools
import random
from typing import NamedTuple

from conv3dt.fuzz import strategies as S
from conv3dt.fuzz.coverage import AXIS_CELLS, PAIR_CELLS, REQUIRED, cells_of
from conv3dt.oracle.capabilities import FULL, Capabilities
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case

CANDIDATES = 2000          # bulk-float candidates per declaration (+ a quarter exact)
SEED = 20261206
VALID_CELLS = frozenset(AXIS_CELLS + PAIR_CELLS)
FORM_CELLS = frozenset(c for c in VALID_CELLS if c in {
    "value_arg=input", "filter_arg=filters", "strides_form=none", "strides_form=int",
    "strides_len=1", "strides_len=3", "dilations_len=1", "dilations_len=3"}
    or c.startswith(("output_shape_form=ndarray", "output_shape_form=tensor")))


class CoveringCase(NamedTuple):
    """One Case of the floor and the property that judges it (differential or exact)."""
    prop: str
    case: Case


def _random_tuple(r: random.Random, caps: Capabilities) -> tuple:
    n_head = len(caps.dtypes) * 3 * len(caps.paddings)
    return (r.randrange(n_head), r.randrange(S.ZERO_SPAN), r.randrange(18),
            r.randrange(S.AXIS_SPAN), r.randrange(S.AXIS_SPAN), r.randrange(S.AXIS_SPAN),
            r.randrange(3 * len(S.SEQ_FORMS) ** 2), r.randrange(S.VALUE_KINDS ** 2),
            r.randrange(2**32), r.randrange(S.ARG_SPAN))


def _candidates(caps: Capabilities) -> list[CoveringCase]:
    r = random.Random(SEED)
    args = (caps.dtypes, caps.layouts, caps.paddings, caps.zero_size)
    out = [CoveringCase("differential", c) for c in S.rare_cell_cases() if caps.admits(c) is None]
    for _ in range(CANDIDATES):
        out.append(CoveringCase("differential", S._valid_from(
            _random_tuple(r, caps), *args, None, caps.dilations, caps.argument_forms)))
    for _ in range(CANDIDATES // 4):
        out.append(CoveringCase("exact", S._exact_from(
            _random_tuple(r, caps), *args, caps.dilations, caps.argument_forms)))
    return [c for c in out if caps.admits(c.case) is None]


@functools.lru_cache(maxsize=8)
def _covering(declarations: tuple[Capabilities, ...]) -> tuple[CoveringCase, ...]:
    return tuple(covering_cases(list(declarations)))


def floor_for(ctx, prop: str) -> list[Case]:
    """The covering Cases of property ``prop`` for a session's targets (``Context``), each
    registered as an explicit example (``fuzz.failures.EXPLICIT_EXAMPLES``): a failure one shows
    is reported with it, not shrunk (it is small and deterministic already). The gradient
    property ``grad_differential`` takes both gradients of every forward covering Case inside
    the gradient targets' declarations, plus ``gradient_floor_extras``. A shard
    (``fuzz.shard``) judges the part it owns; the merge checks the union's coverage."""
    from conv3dt.fuzz import profiles
    from conv3dt.fuzz.failures import EXPLICIT_EXAMPLES, FailureBudget
    from conv3dt.fuzz.gradients import gradient_cases
    from conv3dt.oracle.targets import is_gradient_target

    gradient = prop == "grad_differential"
    decls = tuple(dict.fromkeys(ctx.capabilities.get(n, FULL) for n in ctx.pools
                                if is_gradient_target(n) == gradient))
    if not decls:
        return []
    if gradient:
        cases = gradient_cases([c.case for c in _covering(decls)]) + gradient_floor_extras(decls)
    else:
        cases = [c.case for c in _covering(decls) if c.prop == prop]
    cases = profiles.shard().take(cases, key=lambda c: c.case_id)
    for case in cases:
        EXPLICIT_EXAMPLES.add(FailureBudget.example_key(prop, [case]))
    return cases


def gradient_floor_extras(declarations) -> list[Case]:
    """The gradient cell no forward covering Case need hit: ``grad-value×SAME-negative-pad``
    (docs/gradients.md's reproducer: W = 4 inputs, a 1-tap kernel, stride 3, O = 12), in the
    first dtype and layout each declaration admits, where it admits SAME."""
    from conv3dt.fuzz.gradients import gradient_cases

    out = []
    for caps in declarations:
        if "SAME" not in caps.paddings:
            continue
        dtype, layout = caps.dtypes[0], caps.layouts[0]
        def shaped(ndhwc):   # noqa: E306 - NDHWC dims in the declared layout
            return list(ndhwc) if layout == "NDHWC" else [ndhwc[0], ndhwc[4], *ndhwc[1:4]]
        case = Case(value=ArraySpec(dtype, tuple(shaped((1, 1, 1, 4, 1))), "normal", 0,
                                    (("scale", 1.0),)),
                    filter=ArraySpec(dtype, (1, 1, 1, 1, 1), "normal", 1, (("scale", 1.0),)),
                    output_shape=shaped((1, 1, 1, 12, 1)), strides=shaped((1, 1, 1, 3, 1)),
                    padding="SAME", data_format=layout)
        out += [c for c in gradient_cases([case]) if caps.admits(c) is None]
    return out


def covering_cases(declarations: list[Capabilities] | None = None) -> list[CoveringCase]:
    """Deterministic Cases hitting every required valid cell some declaration admits."""
    declarations = list(dict.fromkeys(declarations or [FULL]))
    chosen: list[CoveringCase] = []
    wanted = set(VALID_CELLS) - unreachable(declarations)
    for caps in declarations:
        pool = [(c, set(cells_of(c.case)) & wanted) for c in _candidates(caps)]
        while wanted:
            best, hit = max(pool, key=lambda p: len(p[1] & wanted), default=(None, set()))
            if best is None or not hit & wanted:
                break
            chosen.append(best)
            wanted -= hit
    return chosen


def _reaches(cell: str, caps: Capabilities) -> bool:
    """Whether some Case inside ``caps`` can hit ``cell`` (read from the cell's name)."""
    if cell.startswith("invalid:"):   # its deterministic example, built inside the declaration
        return any(c.label == cell and caps.admits(c) is None for c in _family_examples(caps))
    key, _, value = cell.partition("=")
    parts = value.split("×")
    needs = {"dtype": caps.dtypes, "layout": caps.layouts, "padding": caps.paddings}
    for part in parts + [key.removeprefix("size:large×")]:
        for axis, allowed in needs.items():
            universe = {"dtype": S.DTYPES, "layout": S.LAYOUTS, "padding": S.PADDINGS}[axis]
            if part in universe and part not in allowed:
                return False
    if ("dilation" in key and value not in ("1",)) and not caps.dilations:
        return False
    if key == "zero" and not caps.zero_size:
        return False
    if cell in FORM_CELLS and not caps.argument_forms:
        return False
    return True


@functools.lru_cache(maxsize=16)
def _family_examples(caps: Capabilities) -> tuple[Case, ...]:
    from conv3dt.fuzz.invalid import family_examples

    return tuple(family_examples(caps.dtypes, caps.layouts, caps.paddings, caps.dilations,
                                 caps.argument_forms))


def unreachable(declarations: list[Capabilities] | None = None,
                gradient_declarations: list[Capabilities] = ()) -> set[str]:
    """Required cells no declaration admits: the tripwire names them and does not fail. The
    gradient cells (``fuzz.gradients``) are reached through the gradient targets' declarations
    only: with none, none of them is required."""
    declarations = [FULL] if declarations is None else declarations
    out = set()
    for cell in REQUIRED:
        op, sep, rest = cell.partition("×")
        if cell == "grad-invalid" or cell.startswith("grad-invalid:") or (
                sep and op.startswith("grad-")):
            if not any(_reaches_gradient(rest, caps) for caps in gradient_declarations):
                out.add(cell)
        elif not any(_reaches(cell, caps) for caps in declarations):
            out.add(cell)
    return out


def _reaches_gradient(cell: str, caps: Capabilities) -> bool:
    """Whether a gradient Case inside ``caps`` can hit ``grad-…×cell``."""
    if cell == "dilation>1":
        return caps.dilations
    if cell == "SAME-negative-pad":
        return "SAME" in caps.paddings
    return cell in ("", "stride>kernel", "exact") or _reaches(cell, caps)


def declarations_of(target_facts: dict, gradient: bool = False) -> list[Capabilities]:
    """The forward (or, with ``gradient``, the gradient) targets' declarations as a session
    recorded them (``target_facts[name]["capabilities"]["declared"]``; a target without one
    implements the whole contract). No forward target: the whole contract; no gradient one: []."""
    from conv3dt.oracle.targets import is_gradient_target

    out = []
    for name, facts in sorted((target_facts or {}).items()):
        if is_gradient_target(name) != gradient:
            continue
        declared = ((facts or {}).get("capabilities") or {}).get("declared")
        out.append(FULL if declared is None else Capabilities.from_mapping(declared, f"target {name}"))
    if out or gradient or any(map(is_gradient_target, target_facts or {})):
        return out   # a gradient-only session has no forward declaration at all
    return [FULL]


def tripwire(counts: dict[str, int], target_facts: dict) -> tuple[list[str], list[str]]:
    """``(gaps, unreachable)``: required cells never hit that some target's declaration admits
    (a failure), and those no declaration admits (named, not failed)."""
    from conv3dt.fuzz.coverage import missing

    out_of_reach = unreachable(declarations_of(target_facts),
                               declarations_of(target_facts, gradient=True))
    never = missing(counts)
    return ([c for c in never if c not in out_of_reach],
            sorted(c for c in never if c in out_of_reach))
