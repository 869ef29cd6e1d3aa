"""``conv3dt bench oracle``: calls/s per target on tiny cases, through the oracle's workers.

Each target gets a warm pool (worker start and the first trace are not timed), then
``--calls`` tiny valid Cases (float32, value [1,2,2,2,2], filter [2,2,2,2,2], stride 1,
SAME; fresh seeds, so every call materialises new arrays) are run in ``pool.run`` batches
of each ``--batch`` size. Reported: calls/s = calls / wall time of the ``run`` calls, and
whether the goal (≥ 1,000 calls/s on tf-eager with batching) is met.

``--all N`` adds the row the fuzz properties need: ONE case on EVERY target (``--targets``),
N times; calls/s counts (case, target) pairs; sequential (one ``pool.run([case])`` per target)
vs ``oracle.pool.run_on_targets`` (one message per worker environment, environments driven
concurrently). ``--recovery N`` measures the crash-recovery latency: after a real SIGFPE on
``tf-xla`` (filter with Cout = 0), the wall time of the next call (``tf-eager``, same worker
environment), N times per recovery mode (``measure_recovery``: a TF re-import, a warm spawned
spare, a worker forked by the TF zygote — the default), then ``--crash-burst`` crashes in a row
per mode; plus the RSS of a warm TF worker.
``--crash-recovery N``: the same for a crashing ``module:function`` target, spawned workers
(before the fork server) vs forked ones, side by side (``conv3dt.bench_crashes``).
``--spread R``: honest call-time spread per call structure, and the adaptive time-limit policy
replayed on it (``conv3dt.bench_limits``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case

GOAL_TARGET, GOAL_CALLS_PER_S = "tf-eager", 1000.0
DEFAULT_TARGETS = ("tf-eager", "tf-eager-stock", "tf-eager-onednn", "tf-graph", "tf-function", "tf-xla",
                   "tf-v2", "tf-grad", "impl")


def tiny_case(seed: int) -> Case:
    return Case(value=ArraySpec("float32", (1, 2, 2, 2, 2), "normal", seed=seed),
                filter=ArraySpec("float32", (2, 2, 2, 2, 2), "normal", seed=seed + 1),
                output_shape=[1, 2, 2, 2, 2], strides=[1, 1, 1, 1, 1], padding="SAME")


def measure(target: str, calls: int, batches: list[int], timeout: float = 30.0) -> dict:
    from conv3dt.oracle.pool import TargetPool

    out: dict = {"target": target, "calls_per_s": {}}
    with TargetPool(target, timeout=timeout) as pool:
        warm = pool.run([tiny_case(s) for s in range(4)])
        out["warm_outcomes"] = sorted({o.kind for o in warm})
        for batch in batches:
            cases = [tiny_case(1000 + i) for i in range(calls)]
            start = time.perf_counter()
            outcomes = []
            for i in range(0, calls, batch):
                outcomes += pool.run(cases[i:i + batch])
            wall = time.perf_counter() - start
            kinds = {o.kind for o in outcomes}
            out["calls_per_s"][str(batch)] = round(calls / wall, 1)
            out.setdefault("outcome_kinds", {})[str(batch)] = sorted(kinds)
            out.setdefault("median_call_s", {})[str(batch)] = sorted(o.seconds for o in outcomes)[calls // 2]
        out["counters"] = dict(pool.counters)
    return out


def open_pools(targets: list[str], timeout: float = 30.0, **kwargs) -> dict:
    """Pools for every target, the worker environments started in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    from conv3dt.oracle.pool import TargetPool

    with ThreadPoolExecutor(4) as ex:
        return dict(zip(targets, ex.map(lambda t: TargetPool(t, timeout=timeout, **kwargs), targets)))


def measure_all(targets: list[str], n: int) -> dict:
    """One case on every target, n times: (case, target) pairs/s, sequential vs run_on_targets."""
    from conv3dt.oracle.pool import run_on_targets

    pools = open_pools(targets)
    try:
        for t, p in pools.items():  # warm: first trace / compile per target not timed
            p.run([tiny_case(s) for s in range(2)])
        out: dict = {"targets": list(pools), "cases": n, "pairs": n * len(pools)}
        start = time.perf_counter()
        seq_kinds = set()
        for i in range(n):
            for p in pools.values():
                seq_kinds.update(o.kind for o in p.run([tiny_case(5000 + i)]))
        out["sequential_pairs_per_s"] = round(n * len(pools) / (time.perf_counter() - start), 1)
        start = time.perf_counter()
        multi_kinds = set()
        for i in range(n):
            for outs in run_on_targets(pools, [tiny_case(9000 + i)]).values():
                multi_kinds.update(o.kind for o in outs)
        out["run_on_targets_pairs_per_s"] = round(n * len(pools) / (time.perf_counter() - start), 1)
        out["outcome_kinds"] = {"sequential": sorted(seq_kinds), "run_on_targets": sorted(multi_kinds)}
        out["environments"] = len({id(p._slot) for p in pools.values() if p._slot is not None})
    finally:
        for p in pools.values():
            p.close()
    return out


def _xla_crasher() -> Case:
    return Case(value=ArraySpec("float32", (1, 2, 2, 2, 3), "normal", seed=1),
                filter=ArraySpec("float32", (2, 2, 2, 0, 3), "normal", seed=2),
                output_shape=[1, 4, 4, 4, 0], strides=[1, 2, 2, 2, 1], padding="SAME")


#: How a lost TF worker is replaced: (fork, spare) as ``TargetPool`` takes them.
RECOVERY_MODES = {"respawn": (False, False), "spawned spare": (False, True), "fork": (True, True)}


def measure_recovery(n: int, burst: int = 10) -> dict:
    """Wall time of the call after a real crash, per TF recovery mode (``RECOVERY_MODES``):

    - ``respawn``: no spare, the next call waits for a TF import;
    - ``spawned spare``: a spawned warm spare, given time to warm up before each crash;
    - ``fork``: the default, a zygote with TF imported forks the next worker.

    Then ``burst`` crashes in a row per mode (what a Case that crashes every oneDNN path costs:
    a spawned spare has no time to warm up between them)."""
    from conv3dt.oracle.pool import TargetPool
    from conv3dt.oracle.worker import rss_bytes

    out: dict = {}
    for mode, (fork, spare) in RECOVERY_MODES.items():
        times, kinds = [], set()
        with TargetPool("tf-xla", spare=spare, fork=fork) as xla, \
                TargetPool("tf-eager", spare=spare, fork=fork) as eager:
            eager.run([tiny_case(0)])
            out.setdefault("tf_worker_rss_mb", round(rss_bytes(eager._slot.worker.pid) / 2**20))
            for i in range(n + (1 if spare else 0)):
                if spare:  # a spare exists after the first lost worker: wait until it is warm
                    deadline = time.monotonic() + 300
                    while i and not xla._slot.spare_ready() and time.monotonic() < deadline:
                        time.sleep(0.1)
                kinds.update(o.kind for o in xla.run([_xla_crasher()]))
                start = time.perf_counter()
                eager.run([tiny_case(100 + i)])
                if not spare or i:
                    times.append(time.perf_counter() - start)
            start = time.perf_counter()
            kinds.update(o.kind for o in xla.run([_xla_crasher()] * burst))
            eager.run([tiny_case(1)])
            per_crash = (time.perf_counter() - start) / burst
            out[mode] = {"next_call_s": [round(t, 3) for t in times],
                         "median_s": round(sorted(times)[len(times) // 2], 3),
                         "burst_crashes": burst, "burst_per_crash_s": round(per_crash, 3),
                         "crash_outcomes": sorted(kinds), "recovery": xla.info()["recovery"]}
    return out


def print_recovery(r: dict) -> None:
    print(f"call after a tf-xla SIGFPE (TF worker RSS {r.get('tf_worker_rss_mb')} MB):")
    for mode in RECOVERY_MODES:
        row = r[mode]
        print(f"  {mode:<14} next call median {row['median_s']:.3f} s {row['next_call_s']}; "
              f"{row['burst_crashes']} crashes in a row: {row['burst_per_crash_s']:.3f} s each; "
              f"{row['recovery']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conv3dt bench oracle", description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                        help="comma-separated target names (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=1000, help="calls per batch size")
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (default 1 and 64)")
    parser.add_argument("--all", type=int, default=0, metavar="N",
                        help="also run ONE case on ALL --targets, N times: sequential vs run_on_targets")
    parser.add_argument("--recovery", type=int, default=0, metavar="N",
                        help="also measure the call after a real tf-xla crash, N times without/with a spare")
    parser.add_argument("--crash-recovery", type=int, default=0, metavar="N",
                        help="also measure the call after a module:function crash, N rounds, spawn vs fork")
    parser.add_argument("--crash-burst", type=int, default=20, metavar="M",
                        help="with --recovery or --crash-recovery: M crashes in a row per pool (default %(default)s)")
    parser.add_argument("--spread", type=int, default=0, metavar="R",
                        help="also measure honest call-time spread (R calls per structure) and replay the limits")
    parser.add_argument("--spread-targets", default="tf-eager,tf-xla,impl",
                        help="targets of --spread (default: %(default)s)")
    parser.add_argument("--skip-single", action="store_true", help="skip the per-target rows")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    batches = args.batch or [1, 64]
    from conv3dt.oracle.pool import TargetUnavailable

    results: list = []
    targets = [t for t in args.targets.split(",") if t]
    extra: dict = {}
    if args.all:
        extra["all_targets"] = measure_all(targets, args.all)
        if not args.json:
            a = extra["all_targets"]
            print(f"one case on all {len(a['targets'])} targets ({a['environments']} worker environments), "
                  f"{a['pairs']} (case, target) pairs: sequential {a['sequential_pairs_per_s']:,.0f} pairs/s, "
                  f"run_on_targets {a['run_on_targets_pairs_per_s']:,.0f} pairs/s  outcomes {a['outcome_kinds']}")
            sys.stdout.flush()
    if args.recovery:
        extra["recovery"] = measure_recovery(args.recovery, args.crash_burst)
        if not args.json:
            print_recovery(extra["recovery"])
            sys.stdout.flush()
    if args.crash_recovery:
        from conv3dt.bench_crashes import measure_crash_recovery, print_crash_recovery

        extra["crash_recovery"] = measure_crash_recovery(args.crash_recovery, args.crash_burst)
        if not args.json:
            print_crash_recovery(extra["crash_recovery"])
            sys.stdout.flush()
    if args.spread:
        from conv3dt.bench_limits import measure_spread, print_spread

        extra["spread"] = measure_spread([t for t in args.spread_targets.split(",") if t], args.spread)
        if not args.json:
            print_spread(extra["spread"])
            sys.stdout.flush()
    for target in ([] if args.skip_single else targets):
        try:
            results.append(measure(target, args.calls, batches))
        except TargetUnavailable as exc:
            results.append({"target": target, "unavailable": str(exc)[-300:]})
        if not args.json:
            _print_row(results[-1], batches, header=len(results) == 1)
    goal = next((r for r in results if r["target"] == GOAL_TARGET and "calls_per_s" in r), None)
    best = max((v for k, v in goal["calls_per_s"].items() if k != "1"), default=None) if goal else None
    met = best is not None and best >= GOAL_CALLS_PER_S
    if args.json:
        print(json.dumps({"results": results, **extra, "goal": {"target": GOAL_TARGET, "calls_per_s": GOAL_CALLS_PER_S,
                                                       "best_batched": best, "met": met}}, indent=2))
    else:
        verdict = "MET" if met else ("NOT MET" if best is not None else "not measured")
        print(f"\ngoal: >= {GOAL_CALLS_PER_S:,.0f} calls/s on {GOAL_TARGET} with batching: {verdict}"
              + (f" ({best:,.0f} calls/s)" if best is not None else ""))
    return 0


def _print_row(r: dict, batches: list[int], header: bool) -> None:
    if header:
        cols = "".join(f"{'batch ' + str(b):>14}" for b in batches)
        print(f"{'target':<18}{cols}   (calls/s; median seconds in-worker per call)")
    if "unavailable" in r:
        print(f"{r['target']:<18}unavailable: {r['unavailable']}")
        return
    cells = "".join(f"{r['calls_per_s'][str(b)]:>14,.0f}" for b in batches)
    med = r["median_call_s"][str(batches[-1])]
    print(f"{r['target']:<18}{cells}   {med * 1e3:.3f} ms  outcomes {r['outcome_kinds'][str(batches[-1])]}")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
