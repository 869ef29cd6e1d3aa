"""Coverage tripwire (single process): after the properties ran in this process, every required
cell must have been hit under the ci profile. Under xdist the controller checks the merged
``stats-*.json`` instead (fuzz/conformance/plugin.py, pytest_sessionfinish). A shard of several
writes the required cells for the merge instead (``plugin.deferred_tripwire``)."""
import os

import pytest

from conv3dt.fuzz import profiles
from conv3dt.fuzz.covering import tripwire

from conv3dt.fuzz.conformance.plugin import STATE, deferred_tripwire, required_properties


def test_coverage_tripwire():
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("per-worker counts are partial: the xdist controller checks the merged stats")
    rec = STATE["recorder"]
    ran, required = set(rec.examples), required_properties(rec.target_facts)
    if not required <= ran:
        pytest.skip(f"properties {sorted(required - ran)} did not run in this session")
    if not profiles.tripwire_applies():
        pytest.skip("the tripwire applies to ci-sized runs (ci profile, --examples >= its count)")
    ctx = STATE["ctx"]
    if ctx is not None and ctx.budget.cut_short_at is not None:
        pytest.skip("cut short by the deadline (--max-time): the record says so")
    gaps, unreachable = tripwire(dict(rec.coverage), rec.target_facts)
    if deferred_tripwire(rec, unreachable):
        pytest.skip("a shard of several: the tripwire is checked on the merged shards "
                    "(conv3dt report merge)")
    if unreachable:   # no target declares them (oracle.capabilities): named in the record
        rec.write_tripwire(gaps, False, unreachable)
    assert not gaps, f"{len(gaps)} required coverage cells never hit: {gaps}"
