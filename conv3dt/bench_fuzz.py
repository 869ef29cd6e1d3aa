"""``conv3dt bench fuzz``: judged examples/s per tier, and where the time goes.

An *example* is one judged (Case, target) pair — what the gate counts. Each process (``--jobs``,
like pytest-xdist ``-n``) draws Cases with a tier's strategy — ``differential``
(``fuzz.strategies.valid_batches``: 8 Cases of one call structure per Hypothesis example) or
``realistic`` (``fuzz.realistic.realistic_cases`` under the ci budget, one Case per example) —
and judges each one on every selected target at once
(``fuzz.properties.check_valid``: the truth once per Case, one ``oracle.pool.run_on_targets``
round trip per worker), exactly as the conformance session does. Default targets: the gate's
(``oracle.targets.default_targets()``). Printed: examples/s summed over the processes, Cases/s,
and the per-Case time split into generation (Hypothesis draws + materialising the arrays), oracle
(all targets, concurrently), truth, judging and the rest, then the worker crashes (and timeouts)
and the batches with a deviation; as a table per tier by default, as JSON with ``--json``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time


def _one(args: tuple) -> dict:
    targets, n, seed, zero_dims, tier = args
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    from conv3dt.fuzz.ledger import Ledger
    from conv3dt.fuzz.properties import Context, FindingError, check_valid_batch
    from conv3dt.fuzz.session import Recorder
    from conv3dt.fuzz.realistic import BUDGETS, realistic_cases
    from conv3dt.fuzz.strategies import valid_batches
    from conv3dt.oracle.pool import TargetPool, run_on_targets

    pools = {t: TargetPool(t) for t in targets}
    impl = pools.get("impl") or TargetPool("impl")
    tf_version = None
    for p in pools.values():
        tf_version = (p.info().get("worker") or {}).get("tensorflow") or tf_version
    ctx = Context(pools, Recorder(None), Ledger.load(tf_version=tf_version), impl)
    run_on_targets(pools, [])  # warm
    stats = {"cases": 0, "deviating": 0, "check": 0.0}

    strategy = (valid_batches(zero_dims=zero_dims) if tier == "differential"
                else realistic_cases(BUDGETS["ci"]).map(lambda c: [c]))

    @hseed(seed)
    @settings(max_examples=n, deadline=None, database=None, phases=("generate",),
              suppress_health_check=list(HealthCheck))
    @given(cases=strategy)
    def prop(cases):
        t0 = time.perf_counter()
        try:
            check_valid_batch(cases, ctx, tier)
        except FindingError:
            stats["deviating"] += 1
        stats["check"] += time.perf_counter() - t0
        stats["cases"] += len(cases)

    t0 = time.perf_counter()
    prop()
    wall = time.perf_counter() - t0
    judged = sum(sum(v.values()) for v in ctx.recorder.examples.values())
    lost = sum(p.counters.get("crashes", 0) + p.counters.get("timeouts", 0) for p in pools.values())
    for p in pools.values():
        p.close()
    return {**stats, "examples": judged, "wall": wall, "crashes": lost, **ctx.timings}


def _bench(targets, a, tier: str) -> dict:
    ctx = mp.get_context("spawn")
    with ctx.Pool(a.jobs) as p:
        res = p.map(_one, [(targets, a.batches, 1000 + i, not a.no_zero_dims, tier)
                           for i in range(a.jobs)])
    ex = sum(r["examples"] for r in res)
    cases = sum(r["cases"] for r in res)
    wall = max(r["wall"] for r in res)
    parts = {k: sum(r[k] for r in res) for k in ("oracle", "truth", "judge")}
    check = sum(r["check"] for r in res)
    parts["generate+hypothesis"] = sum(r["wall"] for r in res) - check
    parts["other (coverage, recording)"] = check - parts["oracle"] - parts["truth"] - parts["judge"]
    return {"tier": tier, "targets": targets, "jobs": a.jobs, "cases": cases, "examples": ex,
            "example": "one judged (Case, target) pair", "wall_s": round(wall, 2),
            "examples_per_s": round(ex / wall, 1), "cases_per_s": round(cases / wall, 1),
            "per_case_ms": {k: round(1000 * v / max(cases, 1), 3) for k, v in parts.items()},
            "deviating_batches": sum(r["deviating"] for r in res),
            "worker_crashes": sum(r["crashes"] for r in res)}


def format_result(r: dict) -> str:
    """One tier's result (``_bench``) as the human-readable table ``main`` prints."""
    processes = f"{r['jobs']} process{'es' if r['jobs'] != 1 else ''}"
    lines = [f"tier {r['tier']}: {', '.join(r['targets'])} ({processes}, "
             f"{r['wall_s']:.2f} s wall)",
             f"  {'examples/s':<30}{r['examples_per_s']:>12,.1f}   ({r['examples']} examples: "
             f"{r['example']}, summed over the processes)",
             f"  {'Cases/s':<30}{r['cases_per_s']:>12,.1f}   ({r['cases']} Cases)",
             "  per Case (ms):"]
    lines += [f"    {part:<28}{ms:>12.3f}" for part, ms in r["per_case_ms"].items()]
    lines += [f"  {'worker crashes + timeouts':<30}{r['worker_crashes']:>12}",
              f"  {'deviating batches':<30}{r['deviating_batches']:>12}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="conv3dt bench fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--target", action="append", default=None,
                    help="target (repeatable; default: the gate's default targets)")
    ap.add_argument("--batches", type=int, default=100,
                    help="Hypothesis examples per process and tier; each is a batch judged on "
                         "every target: differential, 8 Cases of one call structure (1 when a "
                         "dimension is zero-size); realistic, 1 Case (default %(default)s)")
    ap.add_argument("--jobs", type=int, default=2, help="processes (like xdist -n)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--no-zero-dims", action="store_true",
                    help="leave out zero-size dimensions (drawn in 2%% of Cases: on TF 2.21 some "
                         "crash a worker; the warm spare replaces it)")
    ap.add_argument("--tier", choices=("differential", "realistic", "both"), default="both",
                    help="which tier's strategy to draw from (both: one after the other, side by "
                         "side in one run)")
    a = ap.parse_args(argv)
    if a.batches < 1:
        ap.error("--batches must be >= 1")
    if a.jobs < 1:
        ap.error("--jobs must be >= 1")
    from conv3dt.oracle.targets import default_targets
    targets = list(dict.fromkeys(a.target or default_targets()))
    tiers = ("differential", "realistic") if a.tier == "both" else (a.tier,)
    results = []
    for tier in tiers:
        results.append(_bench(targets, a, tier))
        if not a.json:
            print(format_result(results[-1]), flush=True)
    if a.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=1))
    return 0
