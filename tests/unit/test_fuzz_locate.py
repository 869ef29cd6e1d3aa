"""fuzz.locate: where a value mismatch deviates — ranges, first/worst index and the patterns,
each true of every violation, on synthetic defects in both layouts; and through fuzz.judge."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from conv3dt.fuzz.judge import judge_value
from conv3dt.fuzz.locate import locate, ranges
from conv3dt.fuzz.truth import truth_of
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome

SHAPE = (2, 5, 6, 17, 11)            # NDHWC: batch, D, H, W, channel
REF = np.random.default_rng(0).standard_normal(SHAPE)
BOUND = np.full(SHAPE, 1e-6)
LAYOUTS = ["NDHWC", "NCDHW"]


def to_layout(a, layout):
    return a.transpose(0, 4, 1, 2, 3) if layout == "NCDHW" else a


def to_ndhwc_index(idx, layout):
    n, c, d, h, w = idx
    return [n, d, h, w, c] if layout == "NCDHW" else list(idx)


def located(y, layout, ref=REF, bound=BOUND, with_bound=True):
    """``locate`` on ``y`` (NDHWC) judged as fuzz.judge does, in ``layout``."""
    y, ref, bound = (to_layout(a, layout) for a in (y, ref, bound))
    err = np.where(np.isfinite(y) & np.isfinite(ref), np.abs(y - ref), np.inf)
    ratio = err / bound
    return locate(~(ratio <= 1), y, ref, ratio, layout, bound if with_bound else None)


def defect(fn):
    y = REF.copy()
    fn(y)
    return y


def assert_where(loc, batches, channels, d, h, w):
    assert (loc.batches, loc.channels, loc.axes) == (batches, channels, {"D": d, "H": h, "W": w})


@pytest.mark.parametrize("idx,n,text", [([0, 1, 2, 3, 7], None, "0-3, 7"), ([4], 9, "4"),
                                        ([2, 0, 1], 3, "all"), ([], 3, "none"),
                                        (range(0, 40, 2), None,
                                         "0, 2, 4, 6, 8, 10, 12, 14, … (20 ranges)")])
def test_ranges(idx, n, text):
    assert ranges(idx, n) == text


@pytest.mark.parametrize("layout", LAYOUTS)
def test_correct_result_has_no_violations(layout):
    loc = located(REF.copy(), layout)
    assert (loc.violations, loc.total, loc.patterns, loc.first) == (0, REF.size, [], [])
    assert loc.summary() == "no violations"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_zeroed_channels_are_a_zero_tail(layout):
    loc = located(defect(lambda y: y.__setitem__(np.s_[..., 8:], 0)), layout)
    assert loc.violations == 2 * 5 * 6 * 17 * 3
    assert_where(loc, "all", "8-10 of 11", "0-4 of 5", "0-5 of 6", "0-16 of 17")
    assert loc.patterns == ["channels 8-10 of 11 are 0",
                            "channels 8-10 of 11: the tail past 8, the last partial block of 8",
                            "y = 0 where y_ref ≠ 0 (dropped contributions)"]
    assert loc.summary() == ("channels 8-10 of 11 are 0; the tail past 8, the last partial block "
                             "of 8; y = 0 where y_ref ≠ 0 (dropped contributions); batches all")
    assert to_ndhwc_index(loc.first, layout) == [0, 0, 0, 0, 8]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_zeroed_last_w_position(layout):
    loc = located(defect(lambda y: y.__setitem__(np.s_[:, :, :, 16], 0)), layout)
    assert_where(loc, "all", "0-10 of 11", "0-4 of 5", "0-5 of 6", "16 of 17")
    assert loc.patterns[:2] == ["W 16 of 17 is 0",
                                "W 16 of 17: the tail past 16, the last partial block of 16"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_8th_w_position(layout):
    loc = located(defect(lambda y: y.__setitem__(np.s_[:, :, :, 7::8], y[:, :, :, 7::8] + 1)), layout)
    assert loc.axes["W"] == "7, 15 of 17"
    assert loc.patterns == ["every 8th W position (≡ 7 mod 8)"]
    assert loc.summary() == "every 8th W position (≡ 7 mod 8); batches all"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("w,pattern", [([1, 5, 13], "only W positions ≡ 1 (mod 4)"),
                                       (list(range(0, 17, 2)), "every 2nd W position (≡ 0 mod 2)"),
                                       (list(range(8)), "W 0-7 of 17: the head up to 7, "
                                                        "the first block of 8"),
                                       (list(range(4, 17)), "W 4-16 of 17: the tail past 4 "
                                                            "(a multiple of 4)")])
def test_w_structure(layout, w, pattern):
    loc = located(defect(lambda y: y.__setitem__(np.s_[:, :, :, w], y[:, :, :, w] * 3)), layout)
    assert loc.patterns[0] == pattern and loc.axes["W"] == f"{ranges(w)} of 17"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("with_bound", [True, False])
def test_mixed_up_batch_entry(layout, with_bound):
    loc = located(defect(lambda y: y.__setitem__(1, REF[0])), layout, with_bound=with_bound)
    how = " (within its bound)" if with_bound else ""
    assert loc.batches == "1 of 2"
    assert loc.patterns == [f"batch entry 1 equals batch entry 0's truth{how}: a mixed-up sample"]
    ref = np.random.default_rng(3).standard_normal((6, 3, 3, 3, 2))
    y = ref.copy()
    y[1], y[3] = ref[0], ref[5]
    loc = located(y, layout, ref, np.full(ref.shape, 1e-6), with_bound)
    assert loc.batches == "1, 3 of 6" and loc.patterns == [
        f"batch entry 1 equals batch entry 0's truth{how}, batch entry 3 equals batch entry 5's "
        f"truth{how}: mixed-up samples"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_bfloat16_rounding_is_proportional_error(layout):
    loc = located(REF.astype(ml_dtypes.bfloat16).astype(np.float64), layout)
    assert loc.patterns == ["error proportional to |y_ref|: relative error ~2^-10 (median), ≤ 2^-8: "
                            "bfloat16-like precision"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("value,kind", [(np.nan, ["y is nan where y_ref is finite"]), (None, [])])
def test_single_element(layout, value, kind):
    def spoil(y):
        y[1, 2, 3, 4, 5] = y[1, 2, 3, 4, 5] * 1.5 if value is None else value
    loc = located(defect(spoil), layout)
    assert loc.violations == 1 and to_ndhwc_index(loc.first, layout) == [1, 2, 3, 4, 5]
    assert loc.worst == loc.first
    assert_where(loc, "1 of 2", "5 of 11", "2 of 5", "3 of 6", "4 of 17")
    assert loc.patterns == [f"a single element at {loc.first}", *kind]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_zero_box_across_axes_and_only_strict_subsets(layout):
    loc = located(defect(lambda y: y.__setitem__(np.s_[1, ..., 3], 0)), layout)
    assert loc.patterns == ["batch 1 of 2, channel 3 of 11 are 0",
                            "y = 0 where y_ref ≠ 0 (dropped contributions)"]
    loc = located(defect(lambda y: y.__setitem__(np.s_[:, :, :, [3, 5, 6]], 7.0)), layout)
    assert loc.patterns == ["only W positions 3, 5-6 of 17"]
    assert loc.summary() == "only W positions 3, 5-6 of 17; batches all"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_worst_is_the_largest_finite_ratio(layout):
    def spoil(y):
        y[0, 1, 1, 1, 1] = np.inf
        y[0, 2, 2, 2, 2] += 1.0
        y[1, 3, 3, 3, 3] += 5.0
    loc = located(defect(spoil), layout)
    assert to_ndhwc_index(loc.first, layout) == [0, 1, 1, 1, 1]
    assert to_ndhwc_index(loc.worst, layout) == [1, 3, 3, 3, 3]
    assert loc.to_json()["worst"] == loc.worst and "mentioned" not in loc.to_json()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_through_judge_value(layout):
    v = ArraySpec("float64", to_layout(np.empty((2, 3, 3, 3, 4)), layout).shape, "normal", 1,
                  (("scale", 1.0),))
    case = Case(value=v, filter=ArraySpec("float64", (2, 2, 2, 11, 4), "normal", 2, (("scale", 1.0),)),
                output_shape=list(to_layout(np.empty((2, 6, 6, 6, 11)), layout).shape),
                strides=[2, 2, 2], padding="SAME", data_format=layout)
    truth = truth_of(case)
    y = truth.y_ref.copy()
    y[(slice(None), slice(8, None)) if layout == "NCDHW" else (Ellipsis, slice(8, None))] = 0
    (f,) = judge_value(case, Outcome.of_value(y), truth, "tf-eager", "differential")[0]
    where = f.details["where"]
    assert f.kind == "value-mismatch" and where["channels"] == "8-10 of 11"
    assert where["patterns"][0] == "channels 8-10 of 11 are 0" and where["batches"] == "all"
    assert f.details["worst_index"] == where["worst"]
    assert f.observed.startswith(f"{where['violations']} of {y.size} elements out of bound; at ")
    assert f.observed.endswith("; channels 8-10 of 11 are 0; the tail past 8, the last partial "
                               "block of 8; y = 0 where y_ref ≠ 0 (dropped contributions); batches all")
    again = judge_value(case, Outcome.of_value(y), truth, "tf-eager", "differential")[0][0]
    assert (again.id, again.observed) == (f.id, f.observed)
