"""Hypothesis settings profiles for the conformance properties: ``dev``, ``ci``, ``nightly``.

- ``dev``      fast feedback while editing: few examples, the local example database on.
- ``ci``       reproducible: ``derandomize=True`` (the seed is a hash of the test), no database,
               no deadline (a worker restart after a crash must not fail a test for slowness),
               ``print_blob=True`` so any failure prints its ``@reproduce_failure`` blob.
- ``nightly``  large runs; the database is a directory (``CONV3DT_HYPOTHESIS_DB``, default
               ``.hypothesis/conv3dt``).

A shared example store (``$CONV3DT_EXAMPLE_DB=redis://...``, ``fuzz.exampledb``) is added to
every profile's database when named, ``ci`` included: what any shard or machine found replays in
all the others (a ci run is then reproducible from its seed *and* the store's content).
With a store, ``seeded`` fixes each property's seed (``--seed``) per test instead of
Hypothesis's global ``--hypothesis-seed``, which would switch the database off; without one the
session gets ``--hypothesis-seed`` and runs exactly as it always did.

``max_examples`` is *per property*: ``examples_for(prop)`` scales a profile's base count by the
property's weight. ``--examples N`` replaces the base count (the weights still apply).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, seed, settings

PROFILES = ("dev", "ci", "nightly")

# Per-property weights relative to the profile's base count (differential is the main one).
# An example of differential/exact is a batch of 8 Cases of one call structure
# (fuzz.strategies.VALUE_BATCH), of invalid one Case; each Case is judged on every target.
# ci (9 default targets): differential 150 x 8 x 9 = 10,800 judgments, exact 75 x 8 x 9 = 5,400,
# invalid 300 x 9 = 2,700, metamorphic 30 // 3 = 10 examples — measured in fuzz/README.md.
WEIGHTS = {"differential": 1.0, "exact": 0.5, "invalid": 2.0, "metamorphic": 0.2, "realistic": 0.25,
           # the backward pass (fuzz.gradients): an example is 2 x 4 gradient Cases of one
           # forward call structure, judged on every gradient target
           "grad_differential": 0.4, "grad_exact": 0.2, "grad_invalid": 0.5,
           "grad_metamorphic": 0.1, "grad_realistic": 0.1}

BASE_EXAMPLES = {"dev": 20, "ci": 150, "nightly": 5000}

# No explain phase: after shrinking it re-runs each failure with variations of every argument to
# print "these lines were always and only run by failing examples". Every re-run is a full call
# on every target plus pytest's formatting of the failure, and against a kernel that crashes on
# common inputs that phase was most of the gate's time (measured: fuzz/README.md). The record's
# minimal reproducer says what the explanation would.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)

_SUPPRESS = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
             HealthCheck.function_scoped_fixture, HealthCheck.differing_executors)


_DATABASES: dict[tuple, object] = {}


def _database(default):
    """The profile's database: ``default``, or, when a shared store is named
    (``$CONV3DT_EXAMPLE_DB``), the local directory multiplexed with it — built once per process
    (one connection, one warning if it is unreachable)."""
    from conv3dt.fuzz import exampledb

    url = os.environ.get(exampledb.URL_VAR) or None
    if url is None:
        return default
    key = (url, os.environ.get(exampledb.LOCAL_VAR), os.environ.get(exampledb.ENGINE_VAR) == "1")
    if key not in _DATABASES:
        _DATABASES[key] = exampledb.example_database(key[1], url, engine=key[2])
    return _DATABASES[key]


def register_profiles() -> None:
    """Register the three profiles with Hypothesis (idempotent)."""
    from hypothesis.database import DirectoryBasedExampleDatabase
    from conv3dt.fuzz import exampledb

    common = dict(deadline=None, suppress_health_check=_SUPPRESS, stateful_step_count=10,
                  phases=PHASES)
    settings.register_profile("dev", max_examples=BASE_EXAMPLES["dev"],
                              **({} if _database(None) is None else {"database": _database(None)}),
                              **common)
    settings.register_profile("ci", max_examples=BASE_EXAMPLES["ci"],
                              derandomize=_database(None) is None,
                              database=_database(None), print_blob=True, **common)
    db = os.environ.get(exampledb.LOCAL_VAR, exampledb.DEFAULT_LOCAL)
    settings.register_profile("nightly", max_examples=BASE_EXAMPLES["nightly"],
                              database=_database(DirectoryBasedExampleDatabase(db)),
                              print_blob=True, **common)


def examples_for(prop: str, profile: str | None = None, override: int | None = None) -> int:
    """How many examples property ``prop`` runs under ``profile`` (or the active profile)."""
    if override is not None:
        base = int(override)
    else:
        base = settings.get_profile(profile).max_examples if profile else settings.default.max_examples
    return max(1, int(round(base * WEIGHTS.get(prop, 1.0))))


# ----------------------------------------------------------------------------- active run
ACTIVE = {"profile": "ci", "examples": None, "seed": None, "corpus_dir": None,
          # this run's part of the deterministic work (fuzz.shard.Shard; None: all of it)
          "shard": None,
          # the union of the selected targets' capability declarations (oracle.capabilities),
          # set by the session's ctx fixture before any example is drawn; None: the whole contract
          "domain": None}


def declared_domain():
    """The draw domain (``ACTIVE["domain"]``, default the whole contract)."""
    from conv3dt.oracle.capabilities import FULL

    return ACTIVE["domain"] or FULL


def within_domain(factory):
    """``factory(**draw arguments)`` built when the first example is drawn, inside the
    declared domain (``fuzz.strategies.domain_kwargs``): properties are decorated at import,
    before the session knows what its targets declare."""
    from hypothesis import strategies as st

    from conv3dt.fuzz.strategies import domain_kwargs

    return st.deferred(lambda: factory(**domain_kwargs(declared_domain())))


def configure(profile: str | None, examples: int | None = None, seed: int | None = None,
              shard=None) -> None:
    """Set the profile the conformance properties use (called by fuzz/conformance/plugin.py);
    ``shard``: a ``fuzz.shard.Shard`` (None: the whole run)."""
    register_profiles()
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    ACTIVE.update(profile=profile or "ci", examples=examples, seed=seed, shard=shard)


def shard():
    """This run's shard (``fuzz.shard.Shard``; 1/1 when unsharded)."""
    from conv3dt.fuzz.shard import Shard

    return ACTIVE["shard"] or Shard()


def seeded(test, value: int | None = None, always: bool = False):
    """With a shared store named (``fuzz.exampledb``), ``hypothesis.seed(value)`` on a property
    (default ``--seed``) with its example database kept; without one the property is returned
    as it is (the session's ``--hypothesis-seed`` seeds it), unless ``always`` (a search with a
    seed of its own: the realistic tier's per dtype).

    Hypothesis switches the database off for a seeded test (``--hypothesis-seed`` for every
    test; ``@seed`` by setting ``database=None``), as a seed alone would then no longer say what
    ran; a run with a store replays the store's examples first and then searches its seeded
    stream (the same ``Random(seed)`` as ``--hypothesis-seed``), so the database is set back."""
    value = ACTIVE["seed"] if value is None else value
    store = _database(None) is not None
    if value is None or not (store or always):
        return test
    database = getattr(test, "_hypothesis_internal_use_settings", settings.default).database
    test = seed(value)(test)
    if database is not None and store:
        test._hypothesis_internal_use_settings = settings(test._hypothesis_internal_use_settings,
                                                          database=database)
    return test


def tripwire_applies() -> bool:
    """The coverage tripwire holds a full ``ci``-sized run (or larger) to every required cell;
    a smaller ``--examples`` run (a smoke test) or another profile is not held to it. A shard
    of several defers it to the merge (``fuzz.shard``)."""
    ex = ACTIVE["examples"]
    return ACTIVE["profile"] == "ci" and (ex is None or ex >= BASE_EXAMPLES["ci"])


def settings_for(prop: str) -> settings:
    """The Hypothesis settings for property ``prop`` under the active profile.

    ``--seed S`` turns derandomization off and fixes the seed instead (see ``seed_for``)."""
    register_profiles()
    parent = settings.get_profile(ACTIVE["profile"])
    n = examples_for(prop, ACTIVE["profile"], ACTIVE["examples"])
    extra = {"derandomize": False} if ACTIVE["seed"] is not None else {}
    return settings(parent, max_examples=n, **extra)
