"""``conv3dt bench fuzz``: judged differential examples/s against a target, and where time goes.

Runs the differential property (``fuzz.properties.check_valid`` on ``fuzz.strategies.valid_cases``)
for a fixed number of examples in each of ``--jobs`` processes (like pytest-xdist ``-n``), and
prints examples/s summed over the processes plus the per-example time split into generation
(Hypothesis draws + materialising the arrays), oracle round trip, truth, judging, and the rest.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time


def _one(args: tuple[str, int, int]) -> dict:
    target, n, seed, zero_dims = args
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    from fuzz.ledger import Ledger
    from fuzz.properties import Context, FindingError, check_valid
    from fuzz.session import Recorder
    from fuzz.strategies import valid_cases
    from oracle.pool import TargetPool

    pool = TargetPool(target)
    ctx = Context({target: pool}, Recorder(None), Ledger.load(), TargetPool("impl"))
    pool.run([])  # warm
    stats = {"examples": 0, "findings": 0, "check": 0.0}

    @hseed(seed)
    @settings(max_examples=n, deadline=None, database=None, phases=("generate",),
              suppress_health_check=list(HealthCheck))
    @given(case=valid_cases(zero_dims=zero_dims))
    def prop(case):
        t0 = time.perf_counter()
        try:
            check_valid(case, ctx, "differential")
        except FindingError:
            stats["findings"] += 1
        stats["check"] += time.perf_counter() - t0
        stats["examples"] += 1

    t0 = time.perf_counter()
    prop()
    wall = time.perf_counter() - t0
    restarts = pool.counters.get("crashes", 0)
    pool.close()
    return {**stats, "wall": wall, "restarts": restarts, **ctx.timings}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="conv3dt bench fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="tf-eager")
    ap.add_argument("--examples", type=int, default=2000, help="examples per process")
    ap.add_argument("--jobs", type=int, default=2, help="processes (like xdist -n)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-zero-dims", action="store_true",
                    help="leave out zero-size dimensions (on TF 2.21 some crash the worker, and "
                         "each crash costs a ~4 s TF re-import)")
    a = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    with ctx.Pool(a.jobs) as p:
        res = p.map(_one, [(a.target, a.examples, 1000 + i, not a.no_zero_dims) for i in range(a.jobs)])
    ex = sum(r["examples"] for r in res)
    wall = max(r["wall"] for r in res)
    parts = {k: sum(r[k] for r in res) for k in ("oracle", "truth", "judge")}
    check = sum(r["check"] for r in res)
    total = sum(r["wall"] for r in res)
    parts["generate+hypothesis"] = total - check
    parts["other (coverage, recording)"] = check - parts["oracle"] - parts["truth"] - parts["judge"]
    out = {"target": a.target, "jobs": a.jobs, "examples": ex, "wall_s": round(wall, 2),
           "examples_per_s": round(ex / wall, 1),
           "per_example_ms": {k: round(1000 * v / ex, 3) for k, v in parts.items()},
           "known_or_new_deviating_examples": sum(r["findings"] for r in res),
           "worker_crash_restarts": sum(r.get("restarts", 0) for r in res)}
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"{ex} judged differential examples vs {a.target} in {wall:.1f}s with {a.jobs} "
              f"processes: {ex / wall:.0f} examples/s")
        print(f"  worker crashes (each a TF re-import): {out['worker_crash_restarts']}")
        for k, v in out["per_example_ms"].items():
            print(f"  {k:30s} {v:7.3f} ms/example (per process)")
    return 0
