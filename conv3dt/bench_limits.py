"""``conv3dt bench oracle --spread R``: honest call-time spread, and the time-limit policy replayed.

What justifies ``oracle.timelimits``' constants. Per target (default tf-eager, tf-xla, impl
isolated), Cases of two tiers are drawn with the fuzz strategies the gate uses —
``tiny`` (``fuzz.strategies.valid_cases``, every dtype, layout and argument form), ``large``
(``fuzz.realistic.boundary_cases`` plus ``realistic_cases`` under the ci budget) and ``budget``
(:func:`budget_cases`: the ci budget's corners, 10⁶ outputs / 4·10⁷ products, every dtype and
layout) — and each structure is called ``R`` times with fresh values, all calls
in one shuffled order (a structure's first call — XLA's compile — lands among the others). The
wall time of each ``pool.run([case])`` is recorded (what a time limit is compared with) while the
pools enforce the default adaptive limits (a cut would be re-run by the confirm-once guard and
counted as ``spurious_cuts``).

Reported per target and tier: calls, the slowest call, per-structure spread (slowest / fastest
repeated call) and the first-call ratio, and the policy replayed offline on the recorded
sequence (``oracle.timelimits.TimeLimits``, ceiling 30 s) for the shipped constants and a few
alternatives: calls it would have cut (spurious timeouts), the smallest margin (limit / time),
and the median limit (what a hang of that tier would cost).
"""
from __future__ import annotations

import dataclasses
import random
import statistics
import time
from typing import Any

from conv3dt.oracle.case import Case, structure_key

SPREAD_TARGETS = ("tf-eager", "tf-xla", "impl")
ALTERNATIVES = ((5.0, 10.0), (2.0, 10.0), (1.0, 10.0), (5.0, 4.0), (0.5, 4.0))   # (floor, factor)


def draw_cases(tier: str, n: int, seed: int) -> list[Case]:
    """``n`` Cases of one tier, drawn reproducibly with the gate's strategies."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    from conv3dt.fuzz.realistic import BUDGETS, boundary_cases, realistic_cases
    from conv3dt.fuzz.strategies import valid_cases

    if tier == "budget":
        return budget_cases()[:n]
    out: list[Case] = boundary_cases()[:n] if tier == "large" else []
    strategy = realistic_cases(BUDGETS["ci"]) if tier == "large" else valid_cases()

    @hseed(seed)
    @settings(max_examples=max(n - len(out), 1) * 3, deadline=None, database=None,
              phases=("generate",), suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def collect(case: Case) -> None:
        out.append(case)

    collect()
    seen: dict[str, Case] = {}
    for case in out:
        seen.setdefault(structure_key(case), case)
    return list(seen.values())[:n]


def budget_cases() -> list[Case]:
    """The ci budget's corners, every dtype and layout: 4·10⁷ products with 10⁶ outputs (strided),
    4·10⁷ products at stride 1, 10⁶ outputs with few products."""
    from conv3dt.fuzz.realistic import Boundary

    shapes = [dict(n=1, cin=12, cout=30, outs=(32, 32, 32), strides=(2, 2, 2)),
              dict(n=1, cin=19, cout=19, outs=(16, 16, 16)),
              dict(n=1, cin=4, cout=4, outs=(64, 64, 61), kernel=(1, 1, 1))]
    return [Boundary("budget", dtype=dtype, layout=layout, **shape).case(3 + i)
            for i, shape in enumerate(shapes) for dtype in ("float32", "float64", "float16", "bfloat16")
            for layout in ("NDHWC", "NCDHW")]


def reseeded(case: Case, k: int) -> Case:
    """The same call structure with fresh values (inline arrays stay as they are)."""
    def fresh(spec):
        if spec is None or spec.recipe in ("inline", "ones"):
            return spec
        return dataclasses.replace(spec, seed=(spec.seed + 7919 * k) % 2**32)

    return case.with_(value=fresh(case.value), filter=fresh(case.filter))


def measure_spread(targets: list[str], repeats: int, n_tiny: int = 24, n_large: int = 16,
                   n_budget: int = 24, seed: int = 5) -> dict[str, Any]:
    from conv3dt.oracle.pool import TargetPool

    tiers = {"tiny": draw_cases("tiny", n_tiny, seed), "large": draw_cases("large", n_large, seed + 1),
             "budget": draw_cases("budget", n_budget, seed)}
    calls = [(tier, j, reseeded(c, k)) for tier, cs in tiers.items() for j, c in enumerate(cs)
             for k in range(repeats)]
    random.Random(seed).shuffle(calls)
    out: dict[str, Any] = {"repeats": repeats, "structures": {t: len(cs) for t, cs in tiers.items()},
                           "targets": {}}
    for target in targets:
        records = []
        with TargetPool(target, timeout=30.0, isolate=True) as pool:
            pool.run([tiers["tiny"][0]])   # worker warm; not recorded
            for tier, j, case in calls:
                start = time.perf_counter()
                outcome = pool.run([case])[0]
                records.append((tier, j, case, time.perf_counter() - start, outcome.kind))
            limits = pool.time_limits()
        out["targets"][target] = {"tiers": {t: _tier_stats([r for r in records if r[0] == t])
                                            for t in tiers},
                                  "replay": _replay(records), "enforced": limits["confirm"],
                                  "timeouts": limits["timeouts"]}
    return out


def _tier_stats(records: list) -> dict[str, Any]:
    by_structure: dict[int, list[float]] = {}
    for _, j, _, seconds, _ in records:
        by_structure.setdefault(j, []).append(seconds)
    spreads = [max(ts) / max(min(ts), 1e-9) for ts in by_structure.values() if len(ts) > 1]
    firsts = [ts[0] / max(min(ts[1:]), 1e-9) for ts in by_structure.values() if len(ts) > 1]
    times = [r[3] for r in records]
    by_dtype: dict[str, float] = {}
    for _, _, case, seconds, _ in records:
        by_dtype[str(case.dtype)] = max(by_dtype.get(str(case.dtype), 0.0), round(seconds, 4))
    return {"calls": len(records), "slowest_s": round(max(times), 4), "slowest_by_dtype": by_dtype,
            "median_s": round(statistics.median(times), 4),
            "spread_max": round(max(spreads, default=1.0), 1),
            "spread_median": round(statistics.median(spreads) if spreads else 1.0, 1),
            "first_call_ratio_max": round(max(firsts, default=1.0), 1),
            "kinds": sorted({r[4] for r in records})}


def _replay(records: list) -> dict[str, Any]:
    """The policy on the recorded sequence: would-be cuts, smallest margin, median limit per tier."""
    from conv3dt.oracle.timelimits import LimitPolicy, TimeLimits

    out = {}
    for floor, factor in ALTERNATIVES:
        limits = TimeLimits(30.0, LimitPolicy(floor=floor, factor=factor))
        cuts, margins, per_tier = 0, [], {}
        for tier, _, case, seconds, kind in records:
            case_json = case.to_json()
            limit = limits.limit(case_json)
            cuts += seconds > limit.seconds
            margins.append((limit.seconds / seconds, limit.basis))
            per_tier.setdefault(tier, []).append(limit.seconds)
            if kind in ("value", "raised"):
                limits.observe(limit, seconds, case_json)
        tightest = min(margins)
        out[f"floor={floor:g},factor={factor:g}"] = {
            "cuts": cuts, "min_margin": round(tightest[0], 1), "min_margin_basis": tightest[1],
            "median_limit_s": {t: round(statistics.median(v), 2) for t, v in per_tier.items()}}
    return out


def print_spread(result: dict[str, Any]) -> None:
    print(f"honest call times: {result['structures']} structures × {result['repeats']} calls, "
          "shuffled (wall time of pool.run per call)")
    for target, row in result["targets"].items():
        for tier, s in row["tiers"].items():
            print(f"  {target:<10} {tier:<6} calls {s['calls']:>4}  median {s['median_s']:.4f} s  "
                  f"slowest {s['slowest_s']:.3f} s  spread max {s['spread_max']}× "
                  f"(median {s['spread_median']}×)  first-call ratio max {s['first_call_ratio_max']}×  "
                  f"slowest by dtype {s['slowest_by_dtype']}")
        print(f"  {target:<10} enforced during the run: timeouts {row['timeouts']}, guard {row['enforced']}")
        for name, r in row["replay"].items():
            print(f"  {target:<10} replay {name:<22} cuts {r['cuts']}  min margin {r['min_margin']}× "
                  f"({r['min_margin_basis']})  median limit {r['median_limit_s']}")
