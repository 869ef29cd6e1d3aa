"""Cheap recovery: a lost NumPy-world worker is replaced by a fork of the zygote, not a new process.

Asserts on the mechanism (``info()["recovery"]`` counts how workers were started), never on
wall-clock thresholds (this machine is shared); ``conv3dt bench oracle --crash-recovery`` times it.
"""
from __future__ import annotations

import json
import os
import signal

import pytest

from conv3dt.oracle.pool import TargetPool
from tests.unit.test_oracle_isolation import FIX, assert_fine, case

CRASHES = 40


def test_crashes_in_a_row_each_get_a_forked_worker_not_a_new_process():
    with TargetPool(f"{FIX}:by_value", timeout=20) as pool:
        before = pool.info()["recovery"]
        assert before["launcher"] == "fork" and before["spawned"] == 1   # the zygote only
        outs = pool.run([case(1.0, seed=i) for i in range(CRASHES)])
        assert [o.kind for o in outs] == ["crashed"] * CRASHES
        assert {o.signal for o in outs} == {signal.SIGABRT}
        assert_fine(pool.run([case(0.0)])[0])
        after = pool.info()["recovery"]
        assert after["spawned"] == 1                    # no process was spawned for any crash
        assert after["lost"] == CRASHES and after["forked"] >= CRASHES + 1
        assert pool.counters["crashes"] == CRASHES and pool.counters["restarts"] == CRASHES
        assert pool.info()["worker"]["launcher"] == "fork"


def test_isolated_impl_is_forked_too_and_computes_the_same():
    with TargetPool("impl") as local, TargetPool("impl", isolate=True, timeout=20) as forked:
        assert forked.info()["recovery"]["launcher"] == "fork"
        a, b = local.run([case(seed=5)])[0], forked.run([case(seed=5)])[0]
    assert a.value.tobytes() == b.value.tobytes()


def test_spawn_launcher_still_available_and_counts_a_process_per_loss():
    with TargetPool(f"{FIX}:by_value", timeout=20, fork=False, spare=False) as pool:
        outs = pool.run([case(1.0), case(1.0), case(0.0)])
        assert [o.kind for o in outs] == ["crashed", "crashed", "value"]
        rec = pool.info()["recovery"]
        assert rec["launcher"] == "spawn" and rec["forked"] == 0 and rec["spawned"] == 3


def test_a_dead_zygote_is_replaced_and_keeps_its_targets():
    with TargetPool(f"{FIX}:by_value", timeout=20) as pool:
        zygote = pool._slot.server.zygote
        os.kill(zygote.pid, signal.SIGKILL)
        zygote.proc.wait()
        outs = pool.run([case(1.0), case(0.0)])
        assert outs[0].kind == "crashed" and outs[0].signal == signal.SIGABRT
        assert_fine(outs[1])
        rec = pool.info()["recovery"]
        assert rec["spawned"] == 2 and rec["launcher"] == "fork"   # one new zygote
        assert f"{FIX}:by_value" in pool._slot.worker.loaded


def test_a_target_that_starts_threads_falls_back_to_spawned_workers(tmp_path, monkeypatch):
    (tmp_path / "conv3dt_threaded_target.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=lambda: time.sleep(3600), daemon=True).start()\n"
        "from tests.unit.fixtures_targets import by_value\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with TargetPool("conv3dt_threaded_target:by_value", timeout=20) as pool:
        rec = pool.info()["recovery"]
        assert rec["launcher"] == "spawn" and "threads" in rec["fork_hazard"]
        outs = pool.run([case(1.0), case(0.0)])
        assert outs[0].kind == "crashed" and outs[0].signal == signal.SIGABRT
        assert_fine(outs[1])
        assert pool.info()["recovery"]["spawned"] >= 2 and pool._slot.server is None


@pytest.mark.parametrize("spare", [True, "always"])
def test_forked_spare_is_swapped_in(spare):
    with TargetPool(f"{FIX}:by_value", timeout=20, spare=spare) as pool:
        assert pool.run([case(1.0)])[0].kind == "crashed"
        assert_fine(pool.run([case(0.0)])[0])
        assert pool._slot.spare_swaps >= 1 and pool.info()["recovery"]["spawned"] == 1


def test_bench_crash_recovery_measures_both_launchers_side_by_side(capsys):
    from conv3dt import bench_oracle

    assert bench_oracle.main(["--targets", "impl", "--skip-single", "--crash-recovery", "2",
                              "--crash-burst", "3", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)["crash_recovery"]
    assert r["fork"]["recovery"]["spawned"] == 1 and r["spawn"]["recovery"]["forked"] == 0
    for row in r.values():
        assert row["outcomes"] == ["crashed:SIGABRT", "value"] and len(row["next_call_s"]) == 2


def test_tf_workers_are_forked_by_a_tf_zygote_and_crash_exactly_as_spawned_ones():
    """A crashed TF worker is replaced by a fork of a zygote that imported TF (no TF import per
    crash), and what the gate judges is the same as with spawned workers: the crash Outcome,
    the values, and the facts the kernel observer and the ledger key on."""
    from conv3dt.bench_oracle import _xla_crasher, tiny_case

    facts = ("tensorflow", "onednn_enabled", "onednn_dtypes", "tf_mkl_build", "xla_available",
             "onednn_notice", "tf_build_info")
    seen = {}
    for fork in (True, False):
        with TargetPool("tf-xla", fork=fork, spare=False) as xla, \
                TargetPool("tf-eager", fork=fork, spare=False) as eager:
            crashes = xla.run([_xla_crasher()] * 3)
            fine = eager.run([tiny_case(7)])[0]
            rec = xla.info()["recovery"]
            info = eager.info()["worker"]
            seen[fork] = ([(o.kind, o.signal, o.fatal_line) for o in crashes], fine.value.tobytes(),
                          {k: info.get(k) for k in facts})
        assert rec["lost"] == 3
        if fork:
            assert rec["launcher"] == "fork" and rec["spawned"] == 1 and rec["forked"] == 4
            assert info["launcher"] == "fork"
        else:
            assert rec["launcher"] == "spawn" and rec["forked"] == 0 and rec["spawned"] == 4
    assert seen[True] == seen[False]
    assert {k for k, *_ in seen[True][0]} == {"crashed"} and seen[True][2]["xla_available"]
