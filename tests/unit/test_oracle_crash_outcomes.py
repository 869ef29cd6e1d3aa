"""A crash in a forked worker: the Outcome carries the signal or exit code and the stderr of
exactly the call that crashed (its CHECK line, or faulthandler's report with the Python frame)."""
from __future__ import annotations

import signal

import numpy as np
import pytest

from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.pool import TargetPool
from tests.unit.test_oracle_isolation import FIX, case


def tagged(aborts: bool, tag: int) -> Case:
    value = np.zeros((1, 2, 2, 2, 1), dtype=np.float32)
    value.flat[0], value.flat[1] = float(aborts), float(tag)
    return Case(ArraySpec.inline(value), ArraySpec("float32", (2, 2, 2, 1, 1), "ones"),
                output_shape=[1, 4, 4, 4, 1], strides=[1, 2, 2, 2, 1])


def test_each_crash_tail_is_its_own_call_s():
    aborts = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
    with TargetPool(f"{FIX}:abort_tagged", timeout=20) as pool:
        outs = pool.run([tagged(bool(a), tag) for tag, a in enumerate(aborts)])
    assert [o.kind for o in outs] == ["crashed" if a else "value" for a in aborts]
    for tag, (a, o) in enumerate(zip(aborts, outs)):
        if not a:
            continue
        assert o.signal == signal.SIGABRT and o.exit_code is None
        assert o.fatal_line.endswith(f"Check failed: call {tag} aborts")
        assert f"crashed (SIGABRT): F0000" in o.describe()
        others = [t for t in range(len(aborts)) if t != tag]
        assert not any(f"call {t} " in o.stderr_tail for t in others), o.stderr_tail
        assert "Fatal Python error: Aborted" in o.stderr_tail   # faulthandler: the Python stack
        assert "in abort_tagged" in o.stderr_tail


def test_segfault_names_the_innermost_python_frame():
    with TargetPool(f"{FIX}:segfault", timeout=20) as pool:
        out = pool.run([case()])[0]
    assert out.kind == "crashed" and out.signal == signal.SIGSEGV
    assert out.fatal_line.startswith("Fatal Python error: Segmentation fault")
    assert "in string_at" in out.fatal_line               # the innermost frame: ctypes' read
    assert "fixtures_targets.py" in out.stderr_tail and "in segfault" in out.stderr_tail


@pytest.mark.parametrize("fixture, sig, code", [("fpe", signal.SIGFPE, None), ("exit3", None, 3)])
def test_signal_or_exit_code_of_a_forked_worker(fixture, sig, code):
    with TargetPool(f"{FIX}:{fixture}", timeout=20) as pool:
        out = pool.run([case()])[0]
        assert pool.info()["recovery"]["launcher"] == "fork"
    assert out.kind == "crashed" and out.signal == sig and out.exit_code == code
