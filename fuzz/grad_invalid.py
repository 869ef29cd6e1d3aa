"""Invalid gradient Cases of the backward's own rule: ``grad_output`` is not an array of y's shape
and dtype.

A gradient Case asks for ``∂⟨g, y⟩/∂value`` or ``∂⟨g, y⟩/∂filter``: the inner product needs ``g``
of exactly ``y``'s shape (``output_shape`` in ``data_format`` order) and, like every operand, of
the call's dtype. The forward's rules are ``fuzz.invalid``'s (asked for a gradient by
``fuzz.gradients.invalid_gradient_cases``); the families here keep the forward call valid and
break ``g`` alone, one way each, declared as ``fuzz.error_inputs.InvalidFamily`` records (the
near-miss, and the class and message ``impl.conv3d_transpose_grads`` raises; declared with
``fuzz.error_inputs.declare`` into a registry of this module's own: meta-tested in
``tests/unit/test_fuzz_grad_invalid.py``):

- ``grad-output-spatial``: one spatial size of ``g`` off by +1, −1 or +stride. Some of these
  still map to the value's size under Conv3D's shape rule (SAME: ``ceil(O'/s) = I``), which is
  all TF's backward kernels check;
- ``grad-output-batch`` / ``grad-output-channels``: the batch or the channel size off by ±1;
- ``grad-output-rank``: ``g`` of rank 4 (one axis dropped), 6 (a unit axis appended) or 0;
- ``grad-output-dtype``: ``g`` of another of the four float dtypes than the call's.

There is no documented class for these (the documentation is the forward's): a target must
reject with ``impl``'s class, ValueError for a shape and TypeError for a dtype.
"""
from __future__ import annotations

import functools
from dataclasses import replace

from hypothesis import strategies as st

from conv3dt.fuzz.gradients import GRADIENTS, grad_output_for
from conv3dt.fuzz.error_inputs import InvalidFamily, Picker, declare
from conv3dt.fuzz.invalid import _base, _channel_index, _resize, _spatial_index
from conv3dt.fuzz.strategies import DTYPES, LAYOUTS, PADDINGS, _ints, spec_from
from conv3dt.oracle.case import Case, spatial_triple

_SHAPE_SAYS = r"grad_output\.shape=.* is invalid; expected the output shape"
_DTYPE_SAYS = r"grad_output\.dtype='\w+' is invalid; expected the dtype of value and filter"
_DECLARED: list[InvalidFamily] = []


_declare = functools.partial(declare, _DECLARED)


def _with_g(case: Case, shape=None, dtype: str | None = None) -> Case:
    """The gradient Case ``case`` with its ``g`` given ``shape`` and/or ``dtype`` instead of
    y's (same recipe and seed; another dtype takes that dtype's normal recipe)."""
    g = case.grad_output
    if dtype is not None:
        g = spec_from(dtype, g.shape, 0, g.seed or 0)
    if shape is not None:
        g = _resize(g, shape)
    return replace(case, grad_output=g)


def _y_shape(case: Case) -> list[int]:
    return list(case.grad_output.shape)


@_declare("grad-output-spatial", ValueError, _SHAPE_SAYS)
def _spatial(pick, g, c):
    shape, axis = _y_shape(c), pick.int(0, 2)
    stride = spatial_triple(c.strides, c.data_format)
    step = pick.one((1, -1, stride[axis] if len(stride) == 3 else 2))
    index = _spatial_index(c.data_format, axis)
    shape[index] = shape[index] + step if shape[index] + step >= 0 else shape[index] + 1
    return _with_g(c, shape=shape)


def _off_by_one(index_of):
    """A near-miss with the size at ``index_of(layout)`` one larger or one smaller."""
    def breaks(pick, g, c):
        shape, index = _y_shape(c), index_of(c.data_format)
        shape[index] += 1 if pick.flag() or shape[index] == 0 else -1
        return _with_g(c, shape=shape)
    return breaks


_declare("grad-output-batch", ValueError, _SHAPE_SAYS)(_off_by_one(lambda layout: 0))
_declare("grad-output-channels", ValueError, _SHAPE_SAYS)(_off_by_one(_channel_index))


@_declare("grad-output-rank", ValueError, _SHAPE_SAYS)
def _rank(pick, g, c):
    shape = _y_shape(c)
    how = pick.one(("drop-first", "drop-last", "append", "scalar"))
    new = {"drop-first": shape[1:], "drop-last": shape[:-1], "append": shape + [1],
           "scalar": []}[how]
    return _with_g(c, shape=new)


@_declare("grad-output-dtype", TypeError, _DTYPE_SAYS)
def _dtype(pick, g, c):
    return _with_g(c, dtype=pick.one(tuple(d for d in DTYPES if d != c.dtype)))


GRAD_FAMILIES: tuple[InvalidFamily, ...] = tuple(_DECLARED)
GRAD_FAMILY_NAMES: tuple[str, ...] = tuple(f.name for f in GRAD_FAMILIES)
BY_NAME: dict[str, InvalidFamily] = {f.name: f for f in GRAD_FAMILIES}


def near_miss(fam: InvalidFamily, pick: int, base_t, dtypes=DTYPES, layouts=LAYOUTS,
              paddings=PADDINGS, **base_options) -> Case:
    """A small valid base Case (``fuzz.invalid._base``) asked for a gradient (the pick's first
    choice) with ``g`` broken by ``fam`` (its further choices), labelled ``invalid:<family>``."""
    g, base = _base(base_t, dtypes, layouts, paddings, **base_options)
    choices = Picker(pick)
    wrt = choices.one(GRADIENTS)
    gradient = base.gradient_of(wrt, grad_output_for(base)[0])
    return replace(fam.breaks(choices, g, gradient), label=fam.label, exact=False)


def grad_output_cases(dtypes=DTYPES, layouts=LAYOUTS, paddings=PADDINGS,
                      families=GRAD_FAMILY_NAMES):
    """A gradient Case of a valid call whose ``g`` violates one of ``families``' rules. Drawn as
    in ``fuzz.invalid.invalid_cases``: the family index, the base Case's integers and one integer
    of the family's own choices."""
    unknown = [name for name in families if name not in BY_NAME]
    if unknown or not families:
        raise ValueError(f"unknown grad_output families {unknown}; expected some of "
                         f"{GRAD_FAMILY_NAMES}")
    chosen = tuple(BY_NAME[name] for name in families)
    return st.tuples(st.sampled_from(range(len(chosen))), _ints(dtypes, layouts, paddings),
                     st.sampled_from(range(2**12))).map(
        lambda t: near_miss(chosen[t[0]], t[2], t[1], dtypes, layouts, paddings))


def grad_family_examples(dtypes=DTYPES, layouts=LAYOUTS, paddings=PADDINGS, dilations=True,
                         argument_forms=True) -> list[Case]:
    """Each family's first choices, for each gradient, on a small base with a stride-2 SAME
    depth axis (I = 2, K = 2, O = 3: its first spatial near-miss, O' = 4, still fits Conv3D's
    shape rule): explicit examples, so that every family is judged in every run."""
    base_t = (0, 0, 4, 26, 1, 2, 0, 0, 7, 0)
    return [near_miss(fam, wrt, base_t, dtypes, layouts, paddings, dilations=dilations,
                      argument_forms=argument_forms)
            for fam in GRAD_FAMILIES for wrt in range(len(GRADIENTS))]
