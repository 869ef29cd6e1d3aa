"""The gate's live progress line (``conv3dt.progress``): the reader on a session directory being
written (torn and foreign files included), the line's content, and the console behaviour of a
real gate: one refreshed line on a TTY (a real pseudo-terminal), nothing under ``--quiet`` or
when stdout is a pipe."""
from __future__ import annotations

import fcntl
import io
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

import pytest

from conv3dt.fuzz.session import Recorder
from conv3dt.progress import LiveProgress, Progress, SessionReader, clock, render

ROOT = Path(__file__).resolve().parents[2]
GATE = [sys.executable, "-m", "conv3dt", "gate", "--target", "impl", "--examples", "5",
        "--max-time", "60", "--workers", "0"]


def finding(fid: str, known: str | None = None, target: str = "impl", prop: str = "p",
            kind: str = "value-mismatch", signature: str | None = None) -> dict:
    return {"id": fid, "kind": kind, "target": target, "property": prop, "case": {},
            "known_deviation": known, "details": {"signature": signature} if signature else {}}


def stats(**per_property: dict[str, int]) -> str:
    return json.dumps({"examples": per_property, "example_phases": {}, "seconds": {}})


def jsonl(*found: dict) -> str:
    return "".join(json.dumps(f) + "\n" for f in found)


# ---------------------------------------------------------------------------- the reader
def test_reader_sums_examples_and_keeps_a_torn_files_last_good_value(tmp_path: Path) -> None:
    assert SessionReader(tmp_path / "missing").read() == Progress()     # no directory yet
    (tmp_path / "stats-gw0.json").write_text(stats(diff={"impl": 10, "tf-eager": 5}))
    (tmp_path / "stats-gw1.json").write_text(stats(diff={"impl": 7}, exact={"impl": 3}))
    (tmp_path / "stats-gw1.json.tmp").write_text(stats(diff={"impl": 1000}))  # Recorder's temp
    (tmp_path / "stats-main.json").write_text('{"examples": {"diff": {"impl": 4')   # torn
    reader = SessionReader(tmp_path)
    assert reader.read().examples == 25 and reader.errors == 1
    (tmp_path / "stats-main.json").write_text(stats(diff={"impl": 4}))
    assert reader.read().examples == 29
    (tmp_path / "stats-gw0.json").write_text('{"examples": ')           # rewritten, cut short
    assert reader.read().examples == 29                                  # its last good 15 stay
    (tmp_path / "stats-gw0.json").write_text("[1, 2]")                   # not a stats object
    assert reader.read().examples == 29 and reader.errors == 3
    (tmp_path / "stats-gw0.json").write_text(stats(diff={"impl": 20}))
    assert reader.read().examples == 34


def test_reader_counts_findings_as_the_record_does(tmp_path: Path) -> None:
    # Two workers each keep the same known deviation's smallest hit; two shrank the same bug
    # (one distinct failure); a baselined finding is not new; a torn last line is skipped.
    (tmp_path / "findings-gw0.jsonl").write_text(jsonl(
        finding("k1", known="led-a"), finding("n1", signature="sig-1"), finding("b1"))
        + '{"id": "n9", "kind": "cr')
    (tmp_path / "findings-gw1.jsonl").write_text(jsonl(
        finding("k2", known="led-a"), finding("n2", signature="sig-1"),
        finding("n3", kind="crash", signature="sig-2")) + "not json\n")
    reader = SessionReader(tmp_path, baseline_ids={"b1"})
    assert reader.read() == Progress(examples=0, findings=4, new=2)   # k1, n1|n2, n3, b1
    (tmp_path / "findings-gw1.jsonl").write_text(jsonl(finding("k3", known="led-b")))
    assert reader.read() == Progress(examples=0, findings=4, new=1)   # k1, n1, b1, k3
    assert SessionReader(tmp_path).read().new == 2                    # without the baseline


def test_reader_decodes_the_recorders_own_files(tmp_path: Path) -> None:
    # Written by the session's Recorder itself: the reader decodes only the examples table of
    # its layout, and a file cut inside that table keeps its last good value.
    rec = Recorder(tmp_path, wid="gw0")
    rec.examples["diff"]["impl"] += 40
    rec.examples["exact"]["tf-eager"] += 2
    rec.example_phases["diff"]["generate"] += 999        # a breakdown, not more examples
    rec.headroom["impl"]["float32"] += [0.5] * 500
    rec.write()
    path = tmp_path / "stats-gw0.json"
    assert '\n "examples": ' in path.read_text() and not list(tmp_path.glob("*.tmp"))
    reader = SessionReader(tmp_path)
    assert reader.read().examples == 42
    text = path.read_text()
    path.write_text(text[:text.index('"tf-eager"')])
    assert reader.read().examples == 42 and reader.errors == 1
    rec.examples["diff"]["impl"] += 1
    rec.write()
    assert reader.read().examples == 43


# ---------------------------------------------------------------------------- the line
def test_the_line_says_examples_findings_elapsed_and_what_is_left() -> None:
    line = render(Progress(12345, 3, 1), 47.2, 900.0)
    assert line == ("conv3dt gate: 12,345 examples judged · 3 findings (1 new) · 0:47 elapsed · "
                    "~14:12 left of 15:00")
    assert render(Progress(1, 1, 0), 3725, None, sep=" | ") == \
        "conv3dt gate: 1 examples judged | 1 finding (0 new) | 1:02:05 elapsed"
    assert render(Progress(), 905, 900.0).endswith("budget of 15:00 spent, finishing")
    assert len(render(Progress(10**6, 0, 0), 1, 900.0, width=40)) == 39
    assert clock(-3) == "0:00" and clock(59.9) == "0:59" and clock(3600) == "1:00:00"


def test_live_progress_draws_one_line_and_ends_it_at_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")     # shutil.get_terminal_size: wide enough for it all
    (tmp_path / "stats-main.json").write_text(stats(diff={"impl": 1234}))
    out = io.StringIO()
    t0 = time.monotonic()
    with LiveProgress(tmp_path, 60.0, True, stream=out, period=0.05) as live:
        time.sleep(0.3)
        (tmp_path / "stats-main.json").write_text(stats(diff={"impl": 5}))
        time.sleep(0.3)
        live.period = 30.0                  # the exit must not wait for a refresh ...
        time.sleep(0.1)
        (tmp_path / "stats-main.json").write_text(stats(diff={"impl": 77}))
        t1 = time.monotonic()
    assert time.monotonic() - t1 < 0.5, "leaving the block waited for the refresh period"
    text = out.getvalue()
    frames = text.split("\r")[1:]
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    assert len(frames) >= 4 and "1,234 examples judged" in frames[0]
    # the shorter line written over the longer one is padded over it, never leaving a tail
    shorter = next(f for f in frames if "5 examples judged" in f)
    assert len(shorter) == len(frames[0]) and shorter.endswith("    ")
    assert "77 examples judged" in frames[-1]   # ... but still shows the final figures
    assert time.monotonic() - t0 < 5
    quiet = io.StringIO()
    with LiveProgress(tmp_path, 60.0, False, stream=quiet, period=0.01):
        time.sleep(0.1)
    assert quiet.getvalue() == ""


# ---------------------------------------------------------------------------- a real gate
def gate_on_pty(tmp_path: Path, *extra: str, columns: int = 80) -> tuple[int, str]:
    """Run a short real gate with stdout on a pseudo-terminal of ``columns`` columns (raw, so
    the terminal adds no \\r of its own); returns (exit code, everything it printed there)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen([*GATE, "--report-dir", str(tmp_path / "r"), *extra], cwd=ROOT,
                                stdout=slave, stderr=err, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1.0)[0]:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:                 # EIO: the gate closed its end
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
    return proc.wait(timeout=30), b"".join(chunks).decode()


def test_a_gate_on_a_terminal_refreshes_one_line_that_ends_at_the_headline(tmp_path: Path) -> None:
    rc, text = gate_on_pty(tmp_path, columns=80)
    assert rc == 0, text + (tmp_path / "stderr").read_text()
    head, *rest = text.split("\r")
    assert head.startswith("conv3dt gate: 1 target(s)") and head.endswith("\n")
    assert rest, f"no progress line was drawn: {text!r}"
    frames = [chunk.split("\n")[0] for chunk in rest]
    assert all(f.startswith("conv3dt gate: ") and "examples judged" in f for f in frames), frames
    assert all(len(f) <= 79 for f in frames), "a frame is wider than the terminal"
    assert "\n" not in "".join(rest[:-1]), "the line was ended before the session was over"
    assert "elapsed" in frames[0]
    final = int(re.search(r"([\d,]+) examples judged", frames[-1]).group(1).replace(",", ""))
    headline = re.search(r"conv3dt gate: PASS — (\d+) examples", rest[-1])
    assert headline and final == int(headline.group(1)), (frames[-1], rest[-1])
    assert "0 findings (0 new)" in frames[-1]


@pytest.mark.parametrize("how", ["quiet on a terminal", "stdout a pipe"])
def test_no_progress_line_under_quiet_or_on_a_pipe(tmp_path: Path, how: str) -> None:
    if how == "quiet on a terminal":
        rc, text = gate_on_pty(tmp_path, "--quiet")
        assert text.count("\n") == 1 and text.startswith("conv3dt gate: PASS"), text
    else:
        res = subprocess.run([*GATE, "--report-dir", str(tmp_path / "r")], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        rc, text = res.returncode, res.stdout
        assert "reports: " in text, text       # the full console output, not a quiet one
    assert rc == 0 and "\r" not in text and "examples judged" not in text, text
