"""Worker isolation: targets that abort, segfault, raise SIGFPE, exit, hang, leak or hog memory.

Each misbehaving ``module:function`` target lives in ``tests/unit/fixtures_targets.py``. The
pool must give the right Outcome each time, replace the worker, keep working afterwards and
never lose an Outcome in a mixed batch.
"""
from __future__ import annotations

import signal

import numpy as np
import pytest

from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.pool import TargetPool, TargetUnavailable
from conv3dt.oracle.targets import UnknownTarget

FIX = "tests.unit.fixtures_targets"


def case(first: float = 0.0, seed: int = 0) -> Case:
    """A small valid Case whose first value element picks fixtures_targets.by_value's behaviour."""
    value = np.random.default_rng(seed).standard_normal((1, 2, 2, 2, 1)).astype(np.float32)
    value.flat[0] = first
    return Case(ArraySpec.inline(value), ArraySpec("float32", (2, 2, 2, 1, 1), "ones"),
                output_shape=[1, 4, 4, 4, 1], strides=[1, 2, 2, 2, 1])


def assert_fine(outcome, shape=(1, 4, 4, 4, 1)):
    assert outcome.kind == "value", outcome.describe()
    assert outcome.value.shape == shape and outcome.value.dtype == np.float32
    assert not outcome.value.any()


def test_abort_is_crashed_with_sigabrt_and_check_line_then_worker_replaced():
    with TargetPool(f"{FIX}:abort", timeout=10) as pool:
        out = pool.run([case()])[0]
        assert out.kind == "crashed" and out.signal == signal.SIGABRT and out.signal_name == "SIGABRT"
        assert "Check failed: deliberate abort" in out.stderr_tail
        assert "Check failed" in out.describe()
        assert pool.counters["crashes"] == 1
        again = pool.run([case(), case()])
        assert [o.kind for o in again] == ["crashed", "crashed"]
        assert pool.counters["crashes"] == 3 and pool.counters["restarts"] >= 2


@pytest.mark.parametrize("fixture, sig", [("segfault", signal.SIGSEGV), ("fpe", signal.SIGFPE)])
def test_fatal_signals_are_crashed_with_their_signal(fixture, sig):
    with TargetPool(f"{FIX}:{fixture}", timeout=10) as pool:
        out = pool.run([case()])[0]
    assert out.kind == "crashed" and out.signal == sig and out.exit_code is None


def test_exit_code_is_recorded():
    with TargetPool(f"{FIX}:exit3", timeout=10) as pool:
        out = pool.run([case()])[0]
    assert out.kind == "crashed" and out.signal is None and out.exit_code == 3


def test_hang_times_out_and_worker_is_replaced():
    with TargetPool(f"{FIX}:by_value", timeout=1.0) as pool:
        outs = pool.run([case(3.0), case(0.0)])
        assert outs[0].kind == "timeout" and 1.0 <= outs[0].seconds < 5.0
        assert_fine(outs[1])
        assert pool.counters["timeouts"] == 1 and pool.counters["restarts"] == 1


def test_mixed_batch_loses_nothing_and_keeps_order():
    behaviours = [0, 1, 0, 4, 2, 0, 3, 0, 0, 1, 4, 0]
    with TargetPool(f"{FIX}:by_value", timeout=1.0) as pool:
        outs = pool.run([case(float(b), seed=i) for i, b in enumerate(behaviours)])
        assert len(outs) == len(behaviours)
        expected = {0: "value", 1: "crashed", 2: "crashed", 3: "timeout", 4: "raised"}
        assert [o.kind for o in outs] == [expected[b] for b in behaviours]
        for b, o in zip(behaviours, outs):
            if b == 0:
                assert_fine(o)
            elif b == 1:
                assert o.signal == signal.SIGABRT
            elif b == 2:
                assert o.signal == signal.SIGSEGV
            elif b == 4:
                assert o.error_class == "builtins.ValueError" and o.is_instance_of("Exception")
                assert "rejects every call" in o.message
        assert pool.counters == {"calls": 12, "crashes": 3, "timeouts": 1, "recycles": 0,
                                 "memory_kills": 0, "restarts": 4}
        assert_fine(pool.run([case()])[0])  # later calls fine


def test_leak_recycles_the_worker_and_keeps_every_outcome():
    with TargetPool(f"{FIX}:leak", timeout=10, rss_limit_mb=250, rss_kill_mb=2000) as pool:
        outs = pool.run([case(seed=i) for i in range(8)])
        assert [o.kind for o in outs] == ["value"] * 8
        assert pool.counters["recycles"] >= 2 and pool.counters["crashes"] == 0


def test_memory_hog_is_killed_as_a_crash_before_it_takes_the_machine():
    with TargetPool(f"{FIX}:hog", timeout=30, rss_limit_mb=150, rss_kill_mb=300) as pool:
        out = pool.run([case()])[0]
        assert out.kind == "crashed" and out.signal == signal.SIGKILL
        assert "rss_kill_mb=300" in out.stderr_tail
        assert pool.counters["memory_kills"] == 1
    with TargetPool(f"{FIX}:fine", timeout=10, rss_limit_mb=150) as pool:
        assert_fine(pool.run([case()])[0])


def test_stdout_noise_does_not_corrupt_the_protocol():
    with TargetPool(f"{FIX}:prints", timeout=10) as pool:
        outs = pool.run([case(seed=i) for i in range(3)])
    for o in outs:
        assert_fine(o)


def test_returned_non_array_is_recorded_not_fatal():
    with TargetPool(f"{FIX}:returns_object", timeout=10) as pool:
        out = pool.run([case()])[0]
    assert out.kind == "raised" and out.short_class == "BadReturn"


def test_shared_worker_per_environment():
    """Two module targets share one worker (same environment); a crash on one is seen by neither."""
    with TargetPool(f"{FIX}:fine", timeout=10) as fine, TargetPool(f"{FIX}:abort", timeout=10) as bad:
        assert fine._slot is bad._slot
        pid = fine.info()["worker"]["pid"]
        assert bad.run([case()])[0].kind == "crashed"
        assert_fine(fine.run([case()])[0])
        assert fine.info()["worker"]["pid"] != pid
        assert fine.counters["crashes"] == 0 and bad.counters["crashes"] == 1


def test_unavailable_and_unknown_targets():
    with pytest.raises(TargetUnavailable, match="No module named"):
        TargetPool("no_such_module_conv3dt:fn", timeout=5)
    with pytest.raises(TargetUnavailable, match="has no attribute"):
        TargetPool(f"{FIX}:no_such_function", timeout=5)
    with pytest.raises(UnknownTarget):
        TargetPool("tf-nonsense")


def test_target_whose_import_hangs_or_dies_is_unavailable(tmp_path, monkeypatch):
    (tmp_path / "conv3dt_hangs_at_import.py").write_text("import time\nwhile True:\n    time.sleep(0.05)\n")
    (tmp_path / "conv3dt_dies_at_import.py").write_text("import os\nos.abort()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TargetUnavailable, match="did not answer"):
        TargetPool("conv3dt_hangs_at_import:fn", startup_timeout=2)
    with pytest.raises(TargetUnavailable, match="died loading"):
        TargetPool("conv3dt_dies_at_import:fn", startup_timeout=20)
    with TargetPool(f"{FIX}:fine", timeout=10) as pool:  # the shared slot recovers
        assert_fine(pool.run([case()])[0])


def test_impl_runs_in_process_or_isolated_with_the_same_outcomes():
    cases = [case(seed=1), case(seed=2).with_(padding="same")]
    with TargetPool("impl") as local, TargetPool("impl", isolate=True, timeout=20) as isolated:
        assert local._slot is None and isolated._slot is not None
        a, b = local.run(cases), isolated.run(cases)
    assert [o.kind for o in a] == [o.kind for o in b] == ["value", "raised"]
    assert a[0].value.tobytes() == b[0].value.tobytes()
    assert a[1].error_class == b[1].error_class and a[1].message == b[1].message


def test_crash_tail_keeps_the_fatal_line_before_a_long_stack():
    from conv3dt.oracle.outcome import Outcome
    from conv3dt.oracle.pool import crash_tail

    text = "noise\n" * 50 + "F0000 00:00:1.0 1 op.cc:610] Check failed: x is OK\n" + "    @ frame\n" * 2000
    tail = crash_tail(text, limit=4000)
    assert len(tail) <= 4000 and tail.startswith("F0000") and tail.endswith("    @ frame\n")
    assert crash_tail("short", 4000) == "short"
    crashed = Outcome.of_crash(signal=6, stderr_tail=tail)
    assert crashed.fatal_line.startswith("F0000") and "Check failed" in crashed.describe()
    assert Outcome.of_crash(signal=11, stderr_tail="a\nlast line\n\n").fatal_line == "last line"
    assert Outcome.of_crash(signal=11).describe() == "crashed (SIGSEGV)"


def test_closed_pool_refuses_work():
    pool = TargetPool(f"{FIX}:fine", timeout=10)
    pool.close()
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.run([case()])
