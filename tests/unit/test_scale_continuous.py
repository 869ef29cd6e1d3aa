"""Continuous fuzzing on HypoFuzz (``conv3dt continuous``, ``fuzz.continuous``).

What a HypoFuzz campaign finds reaches a gate through the shared example store only if both
file it under the same Hypothesis database key. HypoFuzz's own collection (``hypofuzz.collection
.collect_tests``, in a subprocess: it runs pytest) is compared here with the keys the gate's
properties carry (another subprocess, importing the shipped conformance modules as the gate
does). The store itself is tested in ``test_scale_redis.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from conv3dt.fuzz.continuous import PROPERTIES, TARGETS_FILE, nodeid
from conv3dt.fuzz.exampledb import LOCAL_VAR, URL_VAR
from tests.unit.test_cli_gate import conv3dt

CONF = Path(__file__).resolve().parents[2] / "fuzz" / "conformance"

HYPOFUZZ_KEYS = f"""
import json, sys
from hypofuzz.collection import collect_tests
res = collect_tests([{str(CONF / TARGETS_FILE)!r}, "--rootdir", {str(CONF)!r},
                     "-p", "no:cacheprovider", "--hypothesis-profile", "nightly",
                     "--target", "impl", "--target", "impl-grad"])
sys.stdout.write("KEYS" + json.dumps({{t.nodeid: t.database_key.hex() for t in res.fuzz_targets}}))
"""

GATE_KEYS = """
import json, sys
from conv3dt.fuzz.conformance import (test_differential, test_exact, test_gradients, test_invalid,
                                      test_metamorphic)
props = {"differential": test_differential.differential, "exact": test_exact.exact,
         "invalid": test_invalid.invalid, "metamorphic": test_metamorphic.metamorphic_identities,
         **{p: getattr(test_gradients, p) for p in
            ("grad_differential", "grad_exact", "grad_invalid", "grad_metamorphic")}}
sys.stdout.write("KEYS" + json.dumps({p: t._hypothesis_internal_database_key.hex()
                                      for p, t in props.items()}))
"""


def _keys(script: str) -> dict:
    # a store is named (nothing listens there): the gate's properties take HypoFuzz's keys only then
    env = {**os.environ, URL_VAR: "redis://127.0.0.1:1/0", LOCAL_VAR: str(tmp_db())}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=CONF.parents[1], env=env)
    assert res.returncode == 0 and "KEYS" in res.stdout, res.stdout[-2000:] + res.stderr[-2000:]
    return json.loads(res.stdout.rsplit("KEYS", 1)[1])


def tmp_db() -> Path:
    return Path(tempfile.mkdtemp(prefix="conv3dt-keys-db-"))


def test_hypofuzz_files_its_failures_under_the_gate_properties_keys() -> None:
    fuzzed, gate = _keys(HYPOFUZZ_KEYS), _keys(GATE_KEYS)
    assert sorted(fuzzed) == sorted(nodeid(p) for p in PROPERTIES), fuzzed   # all eight collected
    assert {p: fuzzed[nodeid(p)] for p in PROPERTIES} == gate


def test_continuous_usage_errors_are_one_line() -> None:
    for argv, message in ((["--budget", "0"], "--budget must be positive"),
                          (["--example-db", "mysql://x"], "expected a redis://"),
                          (["--target", "tf-nope"], "unknown target 'tf-nope'")):
        res = conv3dt("continuous", *argv)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert message in res.stderr, res.stderr


def test_continuous_runs_hypofuzz_on_the_targets_file_with_the_gates_rootdir() -> None:
    """The node ids (and so the database keys) depend on ``--rootdir``; ``--property`` narrows
    the run to one fuzz target (no switching between properties in a HypoFuzz process)."""
    from conv3dt.continuous import build_parser, command

    cmd = command(build_parser().parse_args(["--property", "exact", "--target", "impl", "-n", "3"]),
                  CONF)
    tail = cmd[cmd.index("--"):]
    assert cmd[cmd.index("-n") + 1] == "3" and "--no-dashboard" in cmd
    assert tail[1:4] == [str(CONF / TARGETS_FILE), "--rootdir", str(CONF)]
    assert tail[tail.index("-k") + 1] == "test_exact" and "--target=impl" in tail
    assert tail[tail.index("--hypothesis-profile") + 1] == "nightly"
