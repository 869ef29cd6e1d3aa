"""impl's per-call thread policy (``impl.threads``): the BLAS is limited to one thread during a
large call and restored after it (also after an error, also with concurrent calls), impl never
runs more workers than the BLAS was allowed threads, work items run exactly once wherever they
run, errors and ``np.errstate`` reach the caller from helper threads, and the parallel kernel
agrees with the loop reference. No timings are asserted (speed: ``conv3dt bench impl``)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from conv3dt import impl
from conv3dt.impl import kernel as kernel_module
from conv3dt.impl import threads
from conv3dt.impl.kernel import transposed_conv_ndhwc

from tests.unit.loop_reference import loop_conv3d_transpose

BLAS = ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    return BLAS.lib_controllers[0].get_num_threads()


@pytest.fixture
def two_blas_threads():
    """The BLAS at two threads for the test (one CPU is enough: only settings are compared)."""
    with BLAS.limit(limits=2):
        yield


def test_a_large_call_runs_its_gemms_on_one_blas_thread_and_restores_the_setting(two_blas_threads):
    seen = []
    with threads.plan(threads.SMALL_FLOPS) as workers:
        seen.append((blas_threads(), workers))
    assert seen == [(1, 1)] and blas_threads() == 2   # below PARALLEL_FLOPS: one worker


def test_a_small_call_leaves_the_blas_alone(two_blas_threads):
    with threads.plan(threads.SMALL_FLOPS / 2) as workers:
        assert blas_threads() == 2 and workers == 1


def test_the_setting_is_restored_after_an_error(two_blas_threads):
    with pytest.raises(RuntimeError):
        with threads.plan(threads.PARALLEL_FLOPS):
            raise RuntimeError("in the kernel")
    assert blas_threads() == 2


def test_overlapping_calls_restore_the_users_setting_not_each_others(two_blas_threads):
    first = threads.plan(threads.PARALLEL_FLOPS)
    second = threads.plan(threads.PARALLEL_FLOPS)
    first.__enter__()
    second.__enter__()          # entered while the BLAS is at 1 for the first call
    first.__exit__(None, None, None)
    assert blas_threads() == 1  # the second call is still running
    second.__exit__(None, None, None)
    assert blas_threads() == 2


def test_workers_never_exceed_the_blas_threads_the_user_allowed(monkeypatch):
    monkeypatch.delenv("CONV3DT_IMPL_THREADS", raising=False)
    monkeypatch.setattr(threads, "_cpus", lambda: 8)
    for allowed in (1, 2, 3):
        with BLAS.limit(limits=allowed):
            with threads.plan(threads.PARALLEL_FLOPS) as workers:
                assert workers == allowed
    monkeypatch.setenv("CONV3DT_IMPL_THREADS", "1")
    with BLAS.limit(limits=3):
        with threads.plan(threads.PARALLEL_FLOPS) as workers:
            assert workers == 1


def test_every_item_runs_exactly_once_and_helpers_are_used():
    counts = [0] * 40
    names = set()
    gate = threading.Barrier(2, timeout=10)

    def item(j):
        if j == 0:
            gate.wait()            # only passes when a second thread runs an item concurrently
        if j == 1:
            gate.wait()
        counts[j] += 1
        names.add(threading.current_thread().name)

    threads.run([lambda j=j: item(j) for j in range(40)], 2)
    assert counts == [1] * 40 and len(names) == 2


def test_an_error_in_a_helper_reaches_the_caller():
    def boom():
        raise ValueError("item failed")

    with pytest.raises(ValueError, match="item failed"):
        threads.run([lambda: None, boom] * 8, 2)


def test_errstate_of_the_caller_applies_in_helper_threads():
    big = np.full((4, 4), 3e38, np.float32)
    gate = threading.Barrier(2, timeout=10)
    raised = {}

    def overflow(j):
        if j < 2:
            gate.wait()            # items 0 and 1 run on two different threads
        try:
            big * np.float32(10)
            raised[threading.current_thread().name] = False
        except FloatingPointError:
            raised.setdefault(threading.current_thread().name, True)

    with np.errstate(over="raise"):
        threads.run([lambda j=j: overflow(j) for j in range(8)], 2)
    assert len(raised) == 2 and all(raised.values()), raised


@pytest.mark.parametrize("geometry", [
    # (value shape, filter shape, output spatial, strides, dilations, pad_before, padding)
    ((2, 6, 5, 4, 3), (3, 3, 3, 2, 3), (6, 5, 4), (1, 1, 1), (1, 1, 1), (1, 1, 1), "SAME"),
    ((3, 5, 4, 4, 3), (2, 2, 2, 2, 3), (10, 8, 8), (2, 2, 2), (1, 1, 1), (0, 0, 0), "SAME"),
    ((1, 4, 6, 3, 2), (3, 2, 2, 3, 2), (7, 11, 6), (2, 2, 2), (1, 2, 1), (1, 1, 0), "SAME"),
    ((3, 3, 3, 3, 4), (3, 3, 3, 40, 4), (5, 5, 5), (1, 1, 1), (1, 1, 1), (0, 0, 0), "VALID"),
], ids=["stride1", "stride2-in-place", "mixed", "tapwise"])
def test_the_parallel_kernel_matches_the_loops(geometry, monkeypatch):
    value_shape, filter_shape, out_spatial, strides, dilations, pads, padding = geometry
    monkeypatch.setattr(threads, "SMALL_FLOPS", 0)
    monkeypatch.setattr(threads, "PARALLEL_FLOPS", 0)
    monkeypatch.setattr(kernel_module, "_MIN_ITEM_FLOPS", 0)
    kernel_module._useful_workers.cache_clear()
    monkeypatch.setenv("CONV3DT_IMPL_THREADS", "2")
    monkeypatch.setattr(kernel_module, "_MIN_BUDGET", 0 if padding == "SAME" else 64 * 1024)
    if padding == "VALID":   # force the tap-wise path (the filter outweighs the output)
        monkeypatch.setattr(kernel_module, "_prefers_tapwise", lambda f, b: True)
    kernel_module._geometry_plan.cache_clear()
    rng = np.random.default_rng(3)
    value = rng.standard_normal(value_shape)
    filter = rng.standard_normal(filter_shape)
    calls = []
    real_run = threads.run
    monkeypatch.setattr(threads, "run", lambda items, n: (calls.append((len(items), n)),
                                                          real_run(items, n))[1])
    try:
        result = transposed_conv_ndhwc(value, filter, out_spatial, strides, dilations, pads,
                                       np.float64)
    finally:
        kernel_module._geometry_plan.cache_clear()
        kernel_module._useful_workers.cache_clear()
    assert calls and all(n == 2 for _, n in calls) and max(k for k, _ in calls) >= 2
    output_shape = (value_shape[0], *out_spatial, filter_shape[3])
    y_star, _ = loop_conv3d_transpose(value, filter, output_shape, strides, dilations, padding)
    np.testing.assert_allclose(result, y_star, rtol=1e-12, atol=1e-12)


def test_impl_describes_its_policy():
    assert "BLAS thread" in impl.threads.describe() or "serial" in impl.threads.describe()


def test_items_too_small_to_pay_for_a_thread_run_on_one_worker():
    # N1 16^3 16->16 K3 d2: the memory budget cuts the one phase into one-row chunks
    geometry = (1, (16, 16, 16), 16, (16, 16, 16), 16, (3, 3, 3), (1, 1, 1), (2, 2, 2), (2, 2, 2), 4)
    assert kernel_module._useful_workers(geometry, 2) == 1
    # N2 16^3 32->32 K3: ~2.6 MFLOP per chunk, two workers
    geometry = (2, (16, 16, 16), 32, (16, 16, 16), 32, (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 4)
    assert kernel_module._useful_workers(geometry, 2) == 2
