"""The HTML report opened in a real headless Chromium: it renders, its plots decode, no console errors.

Needs Debian's ``chromium`` on PATH (CI: ``apt-get update && apt-get install -y chromium``).
Without it this test FAILS (never skips): the HTML report is a product feature.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conv3dt.reports.render import render_all
from tests.unit.test_reports_record import make_record

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not on PATH: the HTML report test needs a real browser. "
                "Install it with: apt-get update && apt-get install -y chromium")


def open_in_browser(page: Path, tmp: Path, *extra: str) -> tuple[str, list[str]]:
    """(dumped DOM, console lines about ``page``) from one headless Chromium run."""
    res = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra,
                          page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in res.stderr.splitlines()
               if ":CONSOLE" in line or "Uncaught" in line]
    return res.stdout, console


def test_console_errors_are_detected(tmp_path: Path) -> None:
    """The detector itself works: a page that throws is caught (so the next test can fail)."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    dom, console = open_in_browser(page, tmp_path, "--dump-dom")
    assert "undefinedFunction" in dom
    assert any("Uncaught ReferenceError" in line for line in console), console


def test_report_renders_in_chromium_without_console_errors(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    out = tmp_path / "report"
    written = render_all(record, out)
    assert {"report.html", "matrix.png", "headroom.png"} <= set(written)
    html = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//|[^"'#d][^"']*\.(png|css|js))""", html), \
        "the report must be self-contained (no external resources)"
    dom, console = open_in_browser(out / "report.html", tmp_path, "--dump-dom")
    assert console == [], console
    assert 'data-rendered="ok"' in dom, "the load marker did not run or an image failed to decode"
    assert 'data-images="2 loaded, 0 broken"' in dom
    assert 'class="banner fail"' in dom and "conv3dt gate: FAIL" in dom
    for text in ("Conformance matrix", "Headroom per dtype and target", "Findings (4)", "Coverage",
                 "Environment", "reproducer", "tf.compat.v1.nn.conv3d_transpose(",
                 "tf-invalid-argument-not-valueerror", "old-entry"):
        assert text in dom, text

    shot = tmp_path / "report.png"
    subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                    f"--screenshot={shot}", "--window-size=1280,1600", (out / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    png = shot.read_bytes()
    width, height = struct.unpack(">II", png[16:24])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and (width, height) == (1280, 1600)
    assert len(png) > 30_000, "screenshot is (nearly) blank"


def test_passing_report_banner(tmp_path: Path) -> None:
    record = make_record(tmp_path, with_new=False)
    render_all(record, tmp_path / "r")
    dom, console = open_in_browser(tmp_path / "r" / "report.html", tmp_path, "--dump-dom")
    assert console == [], console
    assert 'class="banner pass"' in dom and 'data-rendered="ok"' in dom
