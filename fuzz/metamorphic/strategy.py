"""The Cases the metamorphic property draws."""
from __future__ import annotations

from conv3dt.oracle.case import Case, spatial_triple
from conv3dt.fuzz.strategies import DTYPES, LAYOUTS, PADDINGS


def undilated(case: Case) -> Case:
    """The Case with every dilation 1 (in the same argument form) and each output size moved to
    the nearest one the contract accepts without dilation (``fuzz.strategies.output_range``)."""
    from conv3dt.fuzz.strategies import output_range

    first = 1 if case.data_format == "NDHWC" else 2
    strides = spatial_triple(case.strides, case.data_format)
    out = list(case.output_shape)
    for a in range(3):
        lo, hi = output_range(case.value.shape[first + a], case.filter.shape[a], strides[a], 1,
                              case.padding)
        out[first + a] = min(max(out[first + a], lo), hi)
    dil = case.dilations
    dil = 1 if isinstance(dil, int) else ([1] * len(dil) if isinstance(dil, list) else dil)
    return case.with_(dilations=dil, output_shape=out)


def metamorphic_cases(dtypes=DTYPES, layouts=LAYOUTS, paddings=PADDINGS, zero_dims=False,
                      dilations=True, argument_forms=True):
    """Valid NDHWC Cases for the identities (the layout identity derives NCDHW), without zero
    sizes. Three of four have dilation 1 (``undilated``), and ``value=`` replaces ``input=``, so
    that the TF CPU paths (which reject dilation > 1 and v1's ``input=`` alone — both in the
    ledger) compute most examples instead of rejecting every variant. The arguments narrow the
    draw to a declared domain (``fuzz.profiles.within_domain``); zero sizes are never drawn."""
    from hypothesis import strategies as st

    from conv3dt.fuzz.strategies import valid_cases

    @st.composite
    def cases(draw):
        c = draw(valid_cases(dtypes, ("NDHWC",) if "NDHWC" in layouts else layouts, paddings,
                             zero_dims=False, dilations=dilations, argument_forms=argument_forms))
        if draw(st.integers(0, 3)):
            c = undilated(c)
        return c.with_(value_arg="value") if c.value_arg == "input" else c
    return cases()
