"""Adaptive per-call time limits (``oracle.timelimits``): the policy alone, then through a pool.

The pool tests use ``fixtures_targets:sleeps`` (sleeps value[0] seconds; negative: hangs), whose
call structure does not depend on the values: a hang after honest calls of the same structure.
"""
from __future__ import annotations

import json

import pytest

from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case, structure_key
from conv3dt.oracle.pool import TargetPool
from conv3dt.oracle.timelimits import (DTYPE_MARGIN, FACTOR, FLOOR_S, HANGING_FLOOR_S, CallShape, LimitPolicy,
                               TimeLimits, call_work)
from tests.unit.test_oracle_isolation import FIX, assert_fine, case


def shaped(n: int = 1, c: int = 2, dtype: str = "float32") -> dict:
    return Case(ArraySpec(dtype, (n, 2, 2, 2, c), "normal", seed=1),
                ArraySpec(dtype, (2, 2, 2, c, c), "normal", seed=2),
                output_shape=[n, 4, 4, 4, c], strides=[1, 2, 2, 2, 1]).to_json()


# ---------------------------------------------------------------------------- the policy alone
def test_structure_key_ignores_values_and_judging_metadata_only():
    a = Case.from_json(shaped())
    assert structure_key(a) == structure_key(a.with_(value=ArraySpec("float32", (1, 2, 2, 2, 2), "ones"),
                                                     label="invalid:x", exact=True))
    for change in (dict(strides=[1, 1, 1, 1, 1]), dict(strides_form="tuple"), dict(padding="VALID"),
                   dict(value=ArraySpec("float64", (1, 2, 2, 2, 2), "normal"))):
        assert structure_key(a.with_(**change)) != structure_key(a)
    assert structure_key(a) == structure_key(a.to_json())


def test_work_counts_products_and_outputs_and_never_raises():
    assert call_work(shaped()) == 16 * 16 + 128          # value 16 elements × (8 taps × Cout 2)
    assert call_work({"value": None, "filter": "junk", "output_shape": [2, -3, "x"]}) == 1
    assert call_work({"value": {"shape": [4]}, "filter": {"shape": [3]}, "output_shape": [2**62, 4]}) > 2**63


def test_nothing_seen_gets_the_ceiling_then_the_structure_its_own_limit():
    limits = TimeLimits(30.0)
    first = limits.limit(shaped())
    assert first.basis == "ceiling" and first.seconds == 30.0
    limits.observe(first, 0.01, shaped())
    again = limits.limit(shaped())
    assert again.basis == "structure" and again.seconds == FLOOR_S        # 10 × 0.01 s < floor
    limits.observe(again, 2.0)
    assert limits.limit(shaped()).seconds == 20.0                          # FACTOR × slowest
    limits.observe(again, 9.0)
    assert limits.limit(shaped()).seconds == 30.0                          # the ceiling caps it


def test_unseen_structures_scale_from_their_size_class():
    limits = TimeLimits(1e5, LimitPolicy(floor=0.0))
    seen = limits.limit(shaped(n=4, c=4))
    limits.observe(seen, 1.0, shaped(n=4, c=4))
    same_bucket = limits.limit(shaped(n=5, c=4))
    assert same_bucket.basis == "size" and same_bucket.seconds == FACTOR * 1.0 * 2
    bigger = limits.limit(shaped(n=32, c=4))                               # 8× the work: 3 buckets up
    assert bigger.basis == "size" and bigger.seconds == FACTOR * 1.0 * 2 ** 4
    smaller = limits.limit(shaped(n=1, c=1))
    assert smaller.basis == "size" and smaller.seconds == FACTOR * 1.0
    other = limits.limit(shaped(n=4, c=4, dtype="float16"))           # nothing of float16 yet
    assert other.basis == "other-dtype" and other.seconds == FACTOR * 1.0 * 2 * DTYPE_MARGIN
    assert TimeLimits(1000.0).limit(shaped()).basis == "ceiling"       # nothing at all yet


def test_floor_above_ceiling_and_fixed_policy_give_the_ceiling():
    tight = TimeLimits(1.0)
    tight.observe(tight.limit(shaped()), 0.001)
    assert tight.limit(shaped()).seconds == 1.0 and not tight.should_confirm(tight.limit(shaped()))
    fixed = TimeLimits(30.0, LimitPolicy(adaptive=False))
    fixed.observe(fixed.limit(shaped()), 0.001)
    assert fixed.limit(shaped()) .basis == "fixed" and fixed.limit(shaped()).seconds == 30.0


def test_confirm_once_guard_is_spent_only_by_a_confirmed_timeout():
    limits = TimeLimits(30.0)
    limits.observe(limits.limit(shaped()), 0.01)
    cut = limits.limit(shaped())
    assert limits.should_confirm(cut)
    limits.observe(limits.ceiling_limit(cut), 7.0)                     # the re-run completed: spurious
    assert limits.to_json()["confirm"]["spurious_cuts"] == 1 and limits.should_confirm(cut)
    limits.timed_out(limits.ceiling_limit(cut))                        # the re-run hung too
    assert limits.guard_spent and not limits.should_confirm(cut)
    assert not TimeLimits(30.0, LimitPolicy(confirm=False)).should_confirm(cut)


def test_once_a_target_really_hangs_its_floor_drops_and_hung_structures_get_it():
    limits = TimeLimits(30.0)
    hangs, fine = CallShape("hangs", "float16", 64), CallShape("fine", "float16", 64)
    limits.observe(limits.limit(fine), 0.01)
    first = limits.limit(hangs)
    assert first.seconds == FLOOR_S
    limits.timed_out(first)
    assert limits.limit(hangs).seconds == FLOOR_S                      # the guard is not spent yet
    limits.timed_out(limits.ceiling_limit(first))                      # confirmed: it really hangs
    again = limits.limit(hangs)
    assert (again.seconds, again.basis) == (HANGING_FLOOR_S, "hung-before")
    assert limits.limit(fine).seconds == HANGING_FLOOR_S               # 10 x 0.01 s, the lower floor


def test_structures_are_remembered_least_recently_used():
    limits = TimeLimits(30.0, LimitPolicy(memory=2))
    for n in (1, 2, 3):
        limits.observe(limits.limit(shaped(n=n)), 0.01, shaped(n=n))
    assert len(limits.to_json()["structures"]) == 2
    assert limits.limit(shaped(n=1)).basis == "size"                   # forgotten: its size class


def test_report_is_json_with_per_structure_counts():
    limits = TimeLimits(30.0)
    for t in (0.01, 0.02, 0.5):
        limits.observe(limits.limit(shaped()), t, shaped())
    report = json.loads(json.dumps(limits.to_json()))
    assert (report["floor_s"], report["ceiling_s"], report["factor"]) == (FLOOR_S, 30.0, FACTOR)
    [(sid, row)] = report["structures"].items()
    assert len(sid) == 12 and row["calls"] == 3 and row["slowest_s"] == 0.5
    assert row["limit_s"] == 5.0 and row["timeouts"] == 0 and "float32" in row["summary"]


# ---------------------------------------------------------------------------- through a pool
def test_hang_is_cut_at_the_floor_once_the_structure_is_seen_not_at_the_ceiling():
    with TargetPool(f"{FIX}:sleeps", timeout=60, limits=LimitPolicy(confirm=False)) as pool:
        first = pool.run([case(0.0)])[0]
        assert_fine(first)
        outs = pool.run([case(0.0, seed=1), case(-1.0), case(0.0, seed=2)])
        assert [o.kind for o in outs] == ["value", "timeout", "value"]
        assert FLOOR_S <= outs[1].seconds < FLOOR_S + 5 < 60
        assert f"time limit of {FLOOR_S:g} s (structure" in outs[1].stderr_tail
        report = pool.time_limits()
        [row] = report["structures"].values()
        assert row["calls"] == 3 and row["timeouts"] == 1 and report["timeouts"] == 1
        assert pool.info()["time_limits"]["structures"] == report["structures"]


def test_first_timeout_is_confirmed_with_the_ceiling_later_ones_trust_the_limit():
    with TargetPool(f"{FIX}:sleeps", timeout=6, limits=LimitPolicy(floor=1.0)) as pool:
        pool.run([case(0.0)])
        hung = pool.run([case(-1.0)])[0]
        assert hung.kind == "timeout" and hung.seconds >= 6.0          # the re-run had the ceiling
        again = pool.run([case(-1.0), case(0.0)])
        # the target really hangs now: the floor drops to HANGING_FLOOR_S (0.5 s < 1 s)
        assert again[0].kind == "timeout" and HANGING_FLOOR_S <= again[0].seconds < 4.0
        assert_fine(again[1])
        assert pool.time_limits()["confirm"] == {"enabled": True, "spent": True, "reruns": 1,
                                                 "spurious_cuts": 0, "confirmed_timeouts": 1}
        assert pool.counters["timeouts"] == 2


def test_honest_slow_calls_are_not_cut():
    with TargetPool(f"{FIX}:sleeps", timeout=20, limits=LimitPolicy(floor=1.0)) as pool:
        pool.run([case(0.2)])                                          # limit now ≈ 10 × 0.2 s
        assert_fine(pool.run([case(1.0)])[0])                          # slower, within the limit
        assert pool.time_limits()["confirm"]["reruns"] == 0
        # another structure, seen fast (limit: the 1 s floor); a 2.5 s call is cut, but the
        # guard's re-run with the ceiling lets it finish, and the structure's limit grows
        other = case(0.0).with_(strides_form="tuple")
        pool.run([other])
        assert_fine(pool.run([other.with_(value=case(2.5).value)])[0])
        confirm = pool.time_limits()["confirm"]
        assert confirm["reruns"] == 1 and confirm["spurious_cuts"] == 1 and not confirm["spent"]
        rows = sorted(pool.time_limits()["structures"].values(), key=lambda r: r["slowest_s"])
        assert rows[1]["slowest_s"] >= 2.5 and rows[1]["limit_s"] == 20.0 and rows[1]["timeouts"] == 0
        assert pool.counters["timeouts"] == 0


@pytest.mark.parametrize("isolate", [False, True])
def test_impl_reports_its_limits(isolate):
    with TargetPool("impl", isolate=isolate, timeout=20) as pool:
        pool.run([case()])
        report = pool.time_limits()
    assert report["enforced"] is isolate and report["calls"] == (1 if isolate else 0)


def test_bench_replay_counts_cuts_and_margins():
    from conv3dt.bench_limits import _replay

    small = Case.from_json(shaped())
    records = [("tiny", 0, small, 0.01, "value"), ("tiny", 0, small, 0.02, "value"),
               ("tiny", 0, small, 1.5, "value")]                     # 1.5 s > the 1 s floor
    replay = _replay(records)
    assert replay["floor=5,factor=10"]["cuts"] == 0
    assert replay["floor=1,factor=10"]["cuts"] == 1
    assert replay["floor=5,factor=10"]["median_limit_s"] == {"tiny": 5.0}
