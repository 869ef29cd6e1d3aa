"""JUnit XML from the run record (``reports.junit``) when pytest's is missing or cut short, as
after a session stopped by a signal; pytest's own is kept when it is well-formed."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from conv3dt.session import publish
from conv3dt.reports import record as rec
from conv3dt.reports.junit import render_junit, well_formed


def a_record(new_finding: bool = True) -> dict:
    r = rec.new_record({}, {"command": "gate", "profile": "ci", "seed": 0, "targets": ["t"],
                           "duration_s": 3.5, "examples": 0})
    r["coverage"]["examples"] = {"differential": {"t": 40}, "metamorphic": {"t": 2}}
    if new_finding:
        r["findings"] = [{"id": "F1", "kind": "crash", "target": "t", "property": "metamorphic-adjoint",
                          "case": {k: None for k in rec.CASE_FIELDS}, "case_json": {}, "expected": "a result", "observed": "crashed (SIGSEGV)",
                          "headroom": None, "known_deviation": None, "status": "new", "repro": "import numpy",
                          "details": {}, "kernels": [], "count": 1}]
        r["summary"].update(verdict="fail", new=1, findings=1)
    rec.mark_interrupted(r, "SIGTERM")
    return r


def test_one_testcase_per_property_and_target_and_a_failure_per_new_finding() -> None:
    root = ET.fromstring(render_junit(a_record()).split("?>", 1)[1])
    suite = root.find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {c.get("classname"): c for c in suite.iter("testcase")}
    assert cases["conv3dt.metamorphic"].find("failure").get("message").startswith("F1 crash")
    assert cases["conv3dt.differential"].find("failure") is None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["partial"] == "True" and props["interrupted"] == "SIGTERM"


def test_publish_replaces_a_cut_short_pytest_junit_and_keeps_a_whole_one(tmp_path: Path) -> None:
    cut = tmp_path / "cut.xml"
    cut.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="3">')
    assert not well_formed(cut)
    (tmp_path / "a").mkdir()
    publish(a_record(), tmp_path / "a", cut, None)
    assert well_formed(tmp_path / "a" / "junit.xml")
    assert 'name="conv3dt"' in (tmp_path / "a" / "junit.xml").read_text()
    whole = tmp_path / "whole.xml"
    whole.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="3"/></testsuites>')
    (tmp_path / "b").mkdir()
    publish(a_record(), tmp_path / "b", whole, None)
    assert 'name="pytest"' in (tmp_path / "b" / "junit.xml").read_text()
