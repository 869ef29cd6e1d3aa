"""Regression-corpus replay results travel from the session stats into the record and the report."""
import json

from conv3dt.reports.html import render_html
from conv3dt.reports.markdown import render_markdown
from conv3dt.reports.merge import merge_session, read_session
from conv3dt.reports.record import dumps, new_record, validate


def test_fixed_corpus_entries_are_reported_as_fixed(tmp_path):
    session = tmp_path / "session"
    session.mkdir()
    (session / "stats-gw0.json").write_text(json.dumps(
        {"corpus": {"replayed": 2, "fixed": ["Fa"], "still_failing": [], "known": ["Fk"]}}))
    (session / "stats-gw1.json").write_text(json.dumps(
        {"corpus": {"replayed": 2, "fixed": ["Fb", "Fa"], "still_failing": ["Fs"], "known": []}}))
    findings, stats = read_session(session)
    record = new_record({"tensorflow": "2.21.0", "python": "3.11"},
                        {"command": "gate", "profile": "ci", "seed": 0, "duration_s": 1.0,
                         "examples": 0, "targets": ["impl"]})
    merge_session(record, findings, stats)
    assert record["corpus"]["replayed"] == 4
    assert record["corpus"]["fixed"] == ["Fa", "Fb"]
    assert record["corpus"]["still_failing"] == ["Fs"] and record["corpus"]["known"] == ["Fk"]
    validate(json.loads(dumps(record)), "report.json")
    text = render_markdown(record)
    assert "4 entries replayed: 2 fixed, 1 still failing, 1 known" in text
    assert "Fixed (no longer reproduce): `Fa`, `Fb`" in text
    assert "Still failing: `Fs`" in text
    page = render_html(record, {})
    assert "<h2>Regression corpus</h2>" in page
    assert "4 entries replayed: 2 fixed, 1 still failing, 1 known" in page
    assert "<b>Fixed (no longer reproduce):</b> <code>Fa</code>, <code>Fb</code>" in page
