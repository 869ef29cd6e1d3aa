"""``conv3dt bench oracle``: calls/s per target on tiny cases, through the oracle's workers.

Each target gets a warm pool (worker start and the first trace are not timed), then
``--calls`` tiny valid Cases (float32, value [1,2,2,2,2], filter [2,2,2,2,2], stride 1,
SAME; fresh seeds, so every call materialises new arrays) are run in ``pool.run`` batches
of each ``--batch`` size. Reported: calls/s = calls / wall time of the ``run`` calls, and
whether the goal (≥ 1,000 calls/s on tf-eager with batching) is met.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from oracle.arrays import ArraySpec
from oracle.case import Case

GOAL_TARGET, GOAL_CALLS_PER_S = "tf-eager", 1000.0
DEFAULT_TARGETS = ("tf-eager", "tf-eager-stock", "tf-graph", "tf-function", "tf-xla", "tf-v2",
                   "tf-grad", "impl")


def tiny_case(seed: int) -> Case:
    return Case(value=ArraySpec("float32", (1, 2, 2, 2, 2), "normal", seed=seed),
                filter=ArraySpec("float32", (2, 2, 2, 2, 2), "normal", seed=seed + 1),
                output_shape=[1, 2, 2, 2, 2], strides=[1, 1, 1, 1, 1], padding="SAME")


def measure(target: str, calls: int, batches: list[int], timeout: float = 30.0) -> dict:
    from oracle.pool import TargetPool

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conv3dt bench oracle", description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                        help="comma-separated target names (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=1000, help="calls per batch size")
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (default 1 and 64)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    batches = args.batch or [1, 64]
    from oracle.pool import TargetUnavailable

    results = []
    for target in [t for t in args.targets.split(",") if t]:
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
        print(json.dumps({"results": results, "goal": {"target": GOAL_TARGET, "calls_per_s": GOAL_CALLS_PER_S,
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
