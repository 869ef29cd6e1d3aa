"""Conformance session plumbing: options, profiles, target pools, Finding capture, tripwire.

Options (docs/architecture.md): ``--target`` (repeatable; default ``default_targets()``),
``--conv3dt-out DIR``, ``--examples N``, ``--seed S``, ``--ledger PATH|none``, plus
``--conv3dt-corpus DIR`` (replayed, and where new shrunk Findings are saved; default: replay the
shipped ``fuzz/corpus``, save into ``<conv3dt-out>/corpus``) and Hypothesis's ``--hypothesis-profile``
(default here: ``ci``), and ``--conv3dt-shard I/N`` (``fuzz.shard``: this session's part of
the deterministic work). Each process writes ``findings-<wid>.jsonl`` / ``stats-<wid>.json``;
the controller merges the stats at the end and fails the session when a required coverage cell
is zero (the tripwire), since under xdist no single worker sees every cell. A shard of several
does not fail it: it writes the required cells for the merge (``deferred_tripwire``).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from conv3dt.fuzz import corpus, profiles
from conv3dt.fuzz.covering import tripwire
from conv3dt.fuzz.coverage import REQUIRED
from conv3dt.fuzz.shard import Shard, ShardError
from conv3dt.fuzz.failures import DEFAULT_SHRINK_SECONDS, FailureBudget, findings_in, signature
from conv3dt.fuzz.ledger import DEFAULT_LEDGER, Ledger
from conv3dt.fuzz.properties import Context
from conv3dt.fuzz.session import Recorder, merge_stats, worker_id

profiles.register_profiles()
REQUIRED_PROPERTIES = {"differential", "exact", "invalid", "realistic"}
GRADIENT_PROPERTIES = {"grad_differential", "grad_exact", "grad_invalid", "grad_realistic"}
STATE: dict = {"recorder": None, "corpus_dir": corpus.DEFAULT_DIR, "ctx": None}


def pytest_addoption(parser):
    g = parser.getgroup("conv3dt", "conv3d_transpose conformance")
    g.addoption("--target", action="append", default=None, dest="conv3dt_targets",
                help="target to test (repeatable; default: oracle.targets.default_targets())")
    g.addoption("--conv3dt-out", default=None, help="directory for findings-*/stats-* files")
    g.addoption("--examples", type=int, default=None, dest="conv3dt_examples",
                help="base max_examples per property (overrides the profile)")
    g.addoption("--seed", type=int, default=None, dest="conv3dt_seed", help="Hypothesis seed")
    g.addoption("--ledger", default=str(DEFAULT_LEDGER), dest="conv3dt_ledger",
                help="known-deviation ledger JSON, or 'none'")
    g.addoption("--conv3dt-corpus", default=None, help="regression corpus directory")
    g.addoption("--conv3dt-capabilities", default=None,
                help="capability declarations (oracle.capabilities: the gate's file, or a TOML/JSON "
                     "of your own); replaces the callables' conv3dt_capabilities attributes")
    g.addoption("--conv3dt-deadline", type=float, default=None,
                help="wall-clock deadline (a time.time() value): past it no example is judged, "
                     "the session winds down and its stats say it was cut short")
    g.addoption("--conv3dt-shard", default=None, metavar="I/N",
                help="run shard I of N (fuzz.shard): a disjoint slice of the corpus, explicit "
                     "examples and coverage floor, and a search seed of its own; the coverage "
                     "tripwire is deferred to 'conv3dt report merge'")
    g.addoption("--conv3dt-shrink-seconds", type=float, default=DEFAULT_SHRINK_SECONDS,
                help="how long Hypothesis may keep shrinking one distinct failure "
                     f"(fuzz.failures; default {DEFAULT_SHRINK_SECONDS:g})")


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")


def _stop_on(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def pytest_configure(config):
    # SIGTERM (a CI timeout: ``timeout`` signals the whole process group) and SIGHUP end the
    # session as Ctrl-C does, so every process still writes what it judged (sessionfinish) and
    # the gate can build a partial record; by default they would kill pytest on the spot.
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            signal.signal(getattr(signal, name), _stop_on)
    profile = config.getoption("hypothesis_profile", default=None)
    try:
        shard = Shard.parse(config.getoption("conv3dt_shard", default=None))
    except ShardError as exc:
        raise pytest.UsageError(str(exc)) from None
    profiles.configure(profile, config.getoption("conv3dt_examples", default=None),
                       config.getoption("conv3dt_seed", default=None), shard)
    out = config.getoption("conv3dt_out", default=None)
    if out is None:  # chosen once by the controller; xdist hands the option to the workers
        out = tempfile.mkdtemp(prefix="conv3dt-out-")
        config.option.conv3dt_out = out
    if _is_controller(config):
        for stale in list(Path(out).glob("stats-*.json")) + list(Path(out).glob("findings-*.jsonl")):
            stale.unlink()
    # the controller is "main" even where PYTEST_XDIST_WORKER leaked in from an outer xdist run
    STATE["recorder"] = Recorder(out, "main" if _is_controller(config) else worker_id())
    # Replay the given corpus (default: the shipped one). Save new shrunk Findings into the given
    # corpus only when one is named; otherwise into this run's own output directory, so that a run
    # never rewrites the installed package and the same seed replays the same corpus (reproducible).
    given = config.getoption("conv3dt_corpus", default=None)
    STATE["corpus_dir"] = Path(given or corpus.DEFAULT_DIR)
    STATE["corpus_save_dir"] = Path(given) if given else Path(out) / "corpus"
    profiles.ACTIVE["corpus_dir"] = STATE["corpus_dir"]


def required_properties(targets) -> set[str]:
    """The properties a full run of these targets runs: the forward's with a forward target, the
    gradient's with a gradient target (``oracle.targets.is_gradient_target``)."""
    from conv3dt.oracle.targets import is_gradient_target

    kinds = {is_gradient_target(name) for name in targets} or {False}   # none known: the forward's
    return ((REQUIRED_PROPERTIES if False in kinds else set())
            | (GRADIENT_PROPERTIES if True in kinds else set()))


def selected_targets(config) -> list[str]:
    names = config.getoption("conv3dt_targets", default=None)
    if not names:
        from conv3dt.oracle.targets import default_targets
        names = default_targets()
    return list(dict.fromkeys(names))


@pytest.fixture(scope="session")
def ctx(request):
    """One TargetPool per selected target (warm workers), the ledger and the recorder."""
    from conv3dt.oracle.pool import TargetPool

    pools = {}
    try:
        for name in selected_targets(request.config):
            pools[name] = TargetPool(name, timeout=30.0)
        impl_pool = pools.get("impl") or TargetPool("impl")
        impl_grad_pool = pools.get("impl-grad") or TargetPool("impl-grad")
        tf_version = None
        for name, p in pools.items():
            info = p.info()
            tf_version = (info.get("worker") or {}).get("tensorflow") or tf_version
            STATE["recorder"].target_facts[name] = target_facts(info)
        capabilities = declared_capabilities(request.config, pools)
        path = request.config.getoption("conv3dt_ledger", default=str(DEFAULT_LEDGER))
        ledger = Ledger.load(path, tf_version)
        # The corpus keeps regressions, not known deviations: a --ledger none (or custom) run
        # must not fill it with what the shipped ledger already explains.
        STATE["shipped_ledger"] = Ledger.load(DEFAULT_LEDGER, tf_version)
        budget = FailureBudget(request.config.getoption("conv3dt_deadline", default=None),
                               request.config.getoption("conv3dt_shrink_seconds",
                                                        default=DEFAULT_SHRINK_SECONDS))
        c = Context(pools, STATE["recorder"], ledger, impl_pool, budget, capabilities,
                    impl_grad_pool=impl_grad_pool)
        STATE["ctx"] = c
        yield c
    finally:
        rec = STATE["recorder"]
        if STATE["ctx"] is not None:
            rec.extra["ledger_stale"] = {i: 1 for i in STATE["ctx"].ledger.stale()}
            rec.extra["timings"] = dict(STATE["ctx"].timings)
            rec.extra["failures"] = STATE["ctx"].budget.to_json()
        rec.extra["time_limits"] = {name: p.time_limits() for name, p in pools.items()
                                    if hasattr(p, "time_limits")}
        for p in pools.values():
            p.close()


def declared_capabilities(config, pools: dict) -> dict:
    """Each target's declaration (``oracle.capabilities``): the session's file where it names
    the target (a ``"*"`` entry: every ``module:function`` target), else what the target itself
    declares (``TargetPool.declared``). Recorded in the target's facts; sets the draw domain
    (``fuzz.profiles.ACTIVE["domain"]``: the union). Only partial declarations are returned."""
    from conv3dt.oracle.capabilities import FULL, Capabilities, read_declarations, union

    path = config.getoption("conv3dt_capabilities", default=None)
    given = read_declarations(path) if path else {}
    out, every = {}, []
    for name, pool in pools.items():
        entry = given.get(name) or (given.get("*") if pool.spec.kind in ("module", "module-grad")
                                    else None)
        entry = entry or pool.declared()
        if entry.get("error"):
            raise ValueError(f"target {name}: {entry['error']}")
        caps = (FULL if entry["declared"] is None else
                Capabilities.from_mapping(entry["declared"], f"target {name} ({entry['source']})"))
        STATE["recorder"].target_facts[name]["capabilities"] = {
            "declared": caps.to_json(), "source": entry["source"] if not caps.is_full else
            (entry["source"] if entry["declared"] is not None else "the whole contract"),
            "summary": caps.summary()}
        every.append(caps)
        if not caps.is_full:
            out[name] = caps
    profiles.ACTIVE["domain"] = union(every)
    return out


def target_facts(info: dict) -> dict:
    """What a target's worker says ran there (the run record's ``environment.targets``)."""
    from conv3dt.oracle.environment import target_facts as facts

    return facts(info)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rec = STATE["recorder"]
    if call.when == "call" and rec is not None:
        prop = item.originalname if hasattr(item, "originalname") else item.name
        rec.seconds[prop.removeprefix("test_")] += call.duration
        if call.excinfo is not None:
            for f in findings_in(call.excinfo.value):
                f = replace(f, details={**f.details, "signature": signature(f).text()})
                rec.final(f)
                shipped = STATE.get("shipped_ledger")
                if shipped is None or not shipped.classify(f).known_deviation:
                    corpus.save(f, STATE["corpus_save_dir"])
        # After every test, not only every 5 s: a Ctrl-C to the whole process group reaches the
        # xdist workers too, and they may be torn down before their session ends; what a finished
        # test judged is then already on disk for the partial record.
        if STATE["ctx"] is not None:
            rec.extra["failures"] = STATE["ctx"].budget.to_json()
        rec.write()


def deferred_tripwire(rec, unreachable: list[str]) -> bool:
    """In a shard of several, write the cells the tripwire requires (``tripwire.json``:
    ``deferred``, ``required``) for the merge to check on the union, and say so (True); the
    whole run (1/1) checks them itself (False)."""
    if profiles.shard().whole:
        return False
    rec.write_tripwire([], False, unreachable,
                       required=[c for c in REQUIRED if c not in set(unreachable)])
    return True


def pytest_collection_modifyitems(session, config, items):
    """The in-process coverage tripwire runs after every property. A property of the forward
    (gradient) op is skipped when no forward (gradient) target is selected: it has nothing to
    judge, and every example it drew would be rejected."""
    from conv3dt.oracle.targets import is_gradient_target

    items.sort(key=lambda it: "test_coverage" in it.nodeid)
    kinds = {is_gradient_target(name) for name in selected_targets(config)}
    for item in items:
        name = getattr(item, "originalname", item.name)
        if name in ("test_coverage_tripwire", "test_corpus_replay"):
            continue
        gradient = name.startswith("test_grad_")
        if gradient not in kinds:
            item.add_marker(pytest.mark.skip(reason=f"no {'gradient' if gradient else 'forward'} "
                                                    "target selected: nothing to judge"))


def pytest_sessionfinish(session, exitstatus):
    rec = STATE["recorder"]
    if rec is None:
        return
    rec.write()
    config = session.config
    if not _is_controller(config) or not getattr(config.option, "numprocesses", None):
        return  # a worker, or a single process (there test_coverage.py checks the counts)
    if not profiles.tripwire_applies():
        return
    if any("cut_short" in (json.loads(p.read_text()).get("failures") or {})
           for p in Path(rec.out_dir).glob("stats-*.json")):
        return  # cut short by the deadline: the record says so; missing cells are expected
    stats = merge_stats(sorted(Path(rec.out_dir).glob("stats-*.json")),
                        ("examples", "coverage", "target_facts"))
    if not required_properties(stats.get("target_facts", {})) <= set(stats.get("examples", {})):
        return  # not every property ran (e.g. -k selected one): the cells cannot all be hit
    gaps, unreachable = tripwire(stats.get("coverage", {}), stats.get("target_facts", {}))
    if deferred_tripwire(rec, unreachable):
        return
    if not gaps:
        if unreachable:
            rec.write_tripwire([], False, unreachable)
        return
    deadline = config.getoption("conv3dt_deadline", default=None)
    past_deadline = deadline is not None and time.time() >= deadline
    # the session's verdict on its own coverage, for the gate's record and console (reports/merge)
    rec.write_tripwire(gaps, past_deadline, unreachable)
    if past_deadline:
        return  # the budget ran out as the last properties ended: cut short, not a coverage hole
    sys.stderr.write(f"\nconv3dt coverage tripwire: {len(gaps)} required cells never hit: "
                     f"{gaps}\n")
    session.exitstatus = 1
