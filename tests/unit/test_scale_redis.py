"""The shared example store on a real Redis (``conv3dt gate --example-db redis://...``).

Each test starts its own Debian ``redis-server`` on a free loopback port (no persistence) and
stops it; without ``redis-server`` the fixture FAILS, naming the package (CI installs it:
``.ci/run``). The gates judge ``tests.unit.scale_targets`` kernels (NumPy only: seconds), and
each run has a local example directory of its own, as a separate machine would.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conv3dt.fuzz import exampledb
from conv3dt.reports.record import load
from tests.unit.test_cli_gate import conv3dt

TARGET = "tests.unit.scale_targets:wrong_cout3"
RUN = ["--workers", "0", "--target", TARGET, "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server():
    """A fresh redis-server on 127.0.0.1 (its URL and process), stopped afterwards."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server (Debian); "
                    "the shared example store tests need a real one")
    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--daemonize", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"redis-server did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.kill()
        proc.wait()


def _gate(tmp_path: Path, name: str, *argv: str, env: dict | None = None):
    res = conv3dt("gate", "--report-dir", str(tmp_path / name), *RUN, *argv,
                  env={exampledb.LOCAL_VAR: str(tmp_path / f"local-db-{name}"), **(env or {})})
    assert res.returncode in (0, 1), res.stderr
    return res, load(tmp_path / name / "report.json")


def _new(record) -> set[str]:
    return {f["id"] for f in record["findings"] if f["status"] == "new"}


def test_a_failure_found_by_shard_1_replays_in_shard_2(redis_server, tmp_path: Path) -> None:
    """Shard 1/2 finds the kernel's bug and saves its example in the store; shard 2/2, on
    another "machine" (its own local directory), replays it from the store and reports the same
    finding, which enters its regression corpus. Without the store shard 2/2 does not find it."""
    url, _ = redis_server
    _, alone = _gate(tmp_path, "shard2-alone", "--shard", "2/2", "--examples", "1",
                     "--example-db", _nowhere())
    assert _new(alone) == set(), "the control run found the bug itself: the test shows nothing"
    _, one = _gate(tmp_path, "shard1", "--shard", "1/2", "--examples", "6", "--example-db", url)
    assert _new(one), "shard 1/2 should find the Cout = 3 bug"
    res, two = _gate(tmp_path, "shard2", "--shard", "2/2", "--examples", "1", "--example-db", url)
    assert _new(two) == _new(one) and res.returncode == 1
    corpus = tmp_path / "shard2" / "session" / "corpus"
    assert {f"{i}.json" for i in _new(one)} <= {p.name for p in corpus.glob("*.json")}
    assert two["run"]["example_db"] == {"url": url, "state": "shared", "error": ""}
    assert "warning" not in res.stderr


def test_losing_the_store_degrades_to_local_without_losing_a_result(redis_server,
                                                                    tmp_path: Path) -> None:
    """Unreachable from the start, or killed mid-run by the kernel's first call (after every
    session process connected to it): either way the gate goes on with its local directory,
    prints one warning line, says so in the record, and ends exactly as the other does — same
    verdict, examples and findings: nothing it judged is lost."""
    url, proc = redis_server
    argv = ("--shard", "1/2", "--examples", "6",
            "--target", "tests.unit.scale_targets:wrong_cout3_kills_store")
    res_off, off = _gate(tmp_path, "unreachable", *argv, "--example-db", _nowhere())
    res, lost = _gate(tmp_path, "lost", *argv, "--example-db", url,
                      env={"CONV3DT_TEST_KILL_PID": str(proc.pid)})
    assert proc.wait(timeout=10) is not None                     # the store is gone
    for out, record, state in ((res_off, off, "unreachable"), (res, lost, "lost")):
        warnings = [ln for ln in out.stderr.splitlines() if "warning" in ln]
        assert len(warnings) == 1 and state in warnings[0], out.stderr
        assert warnings[0].startswith("conv3dt gate: warning: example database")
        assert "local directory" in warnings[0]
        assert record["run"]["example_db"]["state"] == state, record["run"].get("example_db")
    assert res.returncode == res_off.returncode == 1
    assert lost["summary"]["examples"] == off["summary"]["examples"]
    assert [f["id"] for f in lost["findings"]] == [f["id"] for f in off["findings"]]
    assert _new(lost), "the Cout = 3 bug should be found with or without the store"


def _nowhere() -> str:
    """A loopback URL nothing listens on: a run with its local directory only, configured
    exactly as one with a store (an empty store changes nothing Hypothesis draws)."""
    return f"redis://127.0.0.1:{_free_port()}/0"
