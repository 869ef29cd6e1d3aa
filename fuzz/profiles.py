"""Hypothesis settings profiles for the conformance properties: ``dev``, ``ci``, ``nightly``.

- ``dev``      fast feedback while editing: few examples, the local example database on.
- ``ci``       reproducible: ``derandomize=True`` (the seed is a hash of the test), no database,
               no deadline (a worker restart after a crash must not fail a test for slowness),
               ``print_blob=True`` so any failure prints its ``@reproduce_failure`` blob.
- ``nightly``  large runs; the database is a directory (``CONV3DT_HYPOTHESIS_DB``, default
               ``.hypothesis/conv3dt``) that can be shared between machines (copy or mount it).

``max_examples`` is *per property*: ``examples_for(prop)`` scales a profile's base count by the
property's weight. ``--examples N`` replaces the base count (the weights still apply).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

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


def register_profiles() -> None:
    """Register the three profiles with Hypothesis (idempotent)."""
    common = dict(deadline=None, suppress_health_check=_SUPPRESS, stateful_step_count=10,
                  phases=PHASES)
    settings.register_profile("dev", max_examples=BASE_EXAMPLES["dev"], **common)
    settings.register_profile("ci", max_examples=BASE_EXAMPLES["ci"], derandomize=True,
                              database=None, print_blob=True, **common)
    db = os.environ.get("CONV3DT_HYPOTHESIS_DB", os.path.join(".hypothesis", "conv3dt"))
    settings.register_profile("nightly", max_examples=BASE_EXAMPLES["nightly"],
                              database=DirectoryBasedExampleDatabase(db), print_blob=True,
                              **common)


def examples_for(prop: str, profile: str | None = None, override: int | None = None) -> int:
    """How many examples property ``prop`` runs under ``profile`` (or the active profile)."""
    if override is not None:
        base = int(override)
    else:
        base = settings.get_profile(profile).max_examples if profile else settings.default.max_examples
    return max(1, int(round(base * WEIGHTS.get(prop, 1.0))))


# ----------------------------------------------------------------------------- active run
ACTIVE = {"profile": "ci", "examples": None, "seed": None, "corpus_dir": None,
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


def configure(profile: str | None, examples: int | None = None, seed: int | None = None) -> None:
    """Set the profile the conformance properties use (called by fuzz/conformance/plugin.py)."""
    register_profiles()
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    ACTIVE.update(profile=profile or "ci", examples=examples, seed=seed)


def tripwire_applies() -> bool:
    """The coverage tripwire holds a full ``ci``-sized run (or larger) to every required cell;
    a smaller ``--examples`` run (a smoke test) or another profile is not held to it."""
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
