"""fuzz.coverage: the cells one Case hits, and the tripwire naming the cells never hit."""
from __future__ import annotations

from conv3dt.fuzz.coverage import INVALID_CELLS, REQUIRED, cells_of, missing
from conv3dt.fuzz.invalid import FAMILY_NAMES
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case


def case(**changes):
    # D: I=2, K=3, s=2, O=3 → SAME total pad (2-1)*2+3-3 = 2 (even); H: I=1, K=1, s=3, O=3 → pad 0
    # (even), stride > kernel; W: I=2, K=4, s=1, O=2 → pad 3 (odd), kernel > output.
    base = Case(value=ArraySpec("bfloat16", (1, 2, 1, 2, 2), "uniform", 1, (("low", -1.0), ("high", 1.0))),
                filter=ArraySpec("bfloat16", (3, 1, 4, 4, 2), "normal", 2, (("scale", 1.0),)),
                output_shape=[1, 3, 3, 2, 4], strides=(2, 3, 1), strides_form="tuple",
                padding="SAME", data_format="NDHWC", value_arg="input", filter_arg="filters",
                output_shape_form="tensor-int64")
    return base.with_(**changes)


def test_cells_of_a_valid_case():
    cells = set(cells_of(case()))
    assert cells == {
        "dtype=bfloat16", "layout=NDHWC", "padding=SAME", "dtype×layout=bfloat16×NDHWC",
        "values=uniform", "value_arg=input", "filter_arg=filters",
        "output_shape_form=tensor-int64", "strides_form=tuple", "strides_len=3",
        "kernel=3", "kernel=1", "kernel=4", "stride=2", "stride=3", "stride=1", "dilation=1",
        "size=1", "padding×pad=SAME×even", "padding×pad=SAME×odd", "stride>kernel",
        "kernel>output"}
    assert cells <= set(REQUIRED)


def test_dilation_zero_size_and_valid_slack_cells():
    c = case(value=ArraySpec("float16", (0, 1, 1, 1, 2), "normal", 1, (("scale", 1.0),)),
             filter=ArraySpec("float16", (2, 1, 1, 4, 2), "normal", 2, (("scale", 1.0),)),
             output_shape=[0, 4, 1, 1, 4], strides=[1, 1, 1, 1, 1], strides_form="list",
             dilations=[2, 1, 1], dilations_form="list", padding="VALID")
    cells = set(cells_of(c))
    # D: VALID, K=2, d=2 → eff 3, s=1, I=1: O ∈ [3, 3]; O=4 lies above the minimum → slack cell
    assert {"zero=N", "dilation=2", "dtype×dilation>1=float16", "dilations_len=3",
            "strides_len=5", "padding×pad=VALID×slack"} <= cells
    assert "padding×pad=SAME×odd" not in cells


def test_invalid_case_hits_only_its_family_cell():
    assert cells_of(case(label="invalid:channel-in")) == ["invalid:channel-in"]
    assert set(INVALID_CELLS) == {f"invalid:{f}" for f in FAMILY_NAMES}


def test_tripwire_names_the_missing_cells():
    counts = {c: 1 for c in REQUIRED}
    assert missing(counts) == []
    counts["layout=NCDHW"] = 0
    del counts["invalid:missing-filter"]
    assert missing(counts) == ["layout=NCDHW", "invalid:missing-filter"]
    assert missing({}) == list(REQUIRED)
