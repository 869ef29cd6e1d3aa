"""``run_on_targets`` (one message per worker carrying (target, case) items) and the warm spare.

Misbehaving targets come from ``tests/unit/fixtures_targets.py``; they all share one worker
environment, so a crash on one target's item must be pinned on that item only while the other
targets' items of the same message still get their own outcomes.
"""
from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from conv3dt.oracle.pool import TargetPool, run_on_targets
from conv3dt.oracle.targets import default_targets, resolve
from tests.unit.test_oracle_isolation import FIX, assert_fine, case

# 0 fine, 1 abort, 2 segfault, 3 hang, 4 raise (fixtures_targets.by_value)
BEHAVIOURS = [0, 1, 0, 3, 4, 0, 2, 0]
KIND = {0: "value", 1: "crashed", 2: "crashed", 3: "timeout", 4: "raised"}


def test_multi_target_batch_with_crash_and_hang_in_the_middle():
    cases = [case(float(b), seed=i) for i, b in enumerate(BEHAVIOURS)]
    with TargetPool(f"{FIX}:fine", timeout=10) as fine, \
            TargetPool(f"{FIX}:by_value", timeout=1.0) as bad, \
            TargetPool(f"{FIX}:rejecting", timeout=10) as rejecting, \
            TargetPool("impl") as impl:
        assert fine._slot is bad._slot is rejecting._slot  # one worker, one message per round
        pools = {"fine": fine, "bad": bad, "rejecting": rejecting, "impl": impl}
        out = run_on_targets(pools, cases)
        assert list(out) == list(pools)
        assert all(len(v) == len(cases) for v in out.values())
        # the crash / hang is pinned on exactly one (target, case): the other targets' items of
        # the same case (fine ignores value; rejecting always raises) are untouched
        assert [o.kind for o in out["bad"]] == [KIND[b] for b in BEHAVIOURS]
        assert out["bad"][1].signal == signal.SIGABRT and out["bad"][6].signal == signal.SIGSEGV
        assert 1.0 <= out["bad"][3].seconds < 5.0
        for o in out["fine"]:
            assert_fine(o)
        assert [o.kind for o in out["rejecting"]] == ["raised"] * len(cases)
        assert all("rejects every call" in o.message for o in out["rejecting"])
        # order per target: impl's values are those of each case run alone
        alone = [impl.run([c])[0] for c in cases]
        assert [o.value.tobytes() for o in out["impl"]] == [o.value.tobytes() for o in alone]
        assert bad.counters["crashes"] == 2 and bad.counters["timeouts"] == 1
        assert fine.counters["crashes"] == rejecting.counters["crashes"] == 0
        assert fine.counters["calls"] == bad.counters["calls"] == len(cases)
        # TargetPool.run is the one-pool case of the same path
        assert [o.kind for o in bad.run(cases)] == [KIND[b] for b in BEHAVIOURS]


def test_multi_target_edge_cases():
    with TargetPool(f"{FIX}:fine", timeout=10) as fine, TargetPool("impl") as impl:
        assert run_on_targets({"a": fine, "b": impl}, []) == {"a": [], "b": []}
        assert run_on_targets({}, [case()]) == {}
        same = run_on_targets({"x": fine, "y": fine}, [case(seed=1), case(seed=2)])  # one pool twice
        assert [len(v) for v in same.values()] == [2, 2]
    with pytest.raises(RuntimeError, match="closed"):
        run_on_targets({"a": fine}, [case()])


def _wait_spare(slot, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not slot.spare_ready():
        assert time.monotonic() < deadline, f"no spare after {seconds}s: {slot.spare_error}"
        time.sleep(0.05)


def test_spare_is_swapped_in_after_a_crash_and_the_next_call_is_fast():
    with TargetPool(f"{FIX}:by_value", timeout=10, spare=True) as pool:
        slot = pool._slot
        assert slot.spare is None  # lazy: no spare before the first lost worker
        assert pool.run([case(1.0)])[0].kind == "crashed"
        _wait_spare(slot)  # started in the background after the crash
        spare_pid = slot.spare.pid
        start = time.perf_counter()
        assert_fine(pool.run([case(0.0)])[0])
        fast = time.perf_counter() - start
        assert slot.worker.pid == spare_pid and slot.spare_swaps == 1
        assert fast < 1.0, fast  # no worker start on the caller's time
        _wait_spare(slot)  # a new spare is started in the background after the swap
        spare_pid = slot.spare.pid
        assert spare_pid != slot.worker.pid
        assert f"{FIX}:by_value" in slot.spare.loaded  # with the slot's targets loaded
        # a crash in the middle of a batch: the rest goes to the spare at once
        outs = pool.run([case(1.0), case(0.0)])
        assert outs[0].kind == "crashed" and slot.worker.pid == spare_pid and slot.spare_swaps == 2
        assert_fine(outs[1])
        info = pool.info()["spare"]
        assert info["mode"] is True and info["swaps"] == 2 and info["error"] is None


def test_spare_policies():
    with TargetPool(f"{FIX}:by_value", timeout=10, spare=False) as pool:
        assert pool.run([case(1.0), case(0.0)])[1].kind == "value"
        time.sleep(0.2)
        assert pool._slot.spare is None and pool._slot._spare_thread is None
    with TargetPool(f"{FIX}:fine", timeout=10, spare="always") as pool:
        _wait_spare(pool._slot)  # from the start, without any crash
        assert pool._slot.spare.pid != pool._slot.worker.pid
        slot = pool._slot
    assert slot.spare is None and slot.worker is None  # closing the pool closes the spare too
    with TargetPool("impl", spare="always") as local:  # in-process: no worker, so no spare
        assert local._slot is None
        assert local.run([case()])[0].kind == "value"
    with pytest.raises(ValueError, match="spare"):
        TargetPool("impl", spare="sometimes")


def test_default_targets_include_the_onednn_eager_path():
    defaults = default_targets()
    assert defaults[:9] == ["tf-eager", "tf-eager-stock", "tf-eager-onednn", "tf-graph", "tf-function",
                            "tf-xla", "tf-v2", "tf-grad", "impl"]
    envs = {resolve(t).env_key for t in defaults if t.startswith("tf-")}
    assert len(envs) == 3  # shipped, oneDNN off, oneDNN on
    assert {dict(e)["TF_ENABLE_ONEDNN_OPTS"] for e in envs} == {None, "0", "1"}


def test_results_are_arrays_not_views_of_a_shared_buffer():
    with TargetPool("impl") as impl, TargetPool("impl", isolate=True, timeout=20) as iso:
        out = run_on_targets({"local": impl, "isolated": iso}, [case(seed=3), case(seed=4)])
    for a, b in zip(out["local"], out["isolated"]):
        assert a.value.flags.owndata or a.value.base is not None
        np.testing.assert_array_equal(a.value, b.value)
