"""Write every rendering of a record into a report directory, each file atomically.

``render_all(record, out_dir)`` writes ``report.json`` (validated), ``report.md``,
``report.html`` (plots embedded) and the plot PNGs next to them. Each file is written to a
temp name and ``os.replace``d, so an existing report in ``out_dir`` is only ever replaced by a
complete new file, never truncated. JUnit XML is pytest's own and is placed by the gate;
when a stopped session left none (or half of one), ``reports.junit`` renders it from the record.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from conv3dt.reports import record as rec
from conv3dt.reports.html import render_html
from conv3dt.reports.markdown import render_markdown
from conv3dt.reports.plots import render_plots

OUTPUT_FILES = ("report.json", "report.md", "report.html")


def render_all(record: dict[str, Any], out_dir: str | Path, write_json: bool = True) -> dict[str, Path]:
    """Render ``record`` into ``out_dir``; returns {name: path} of the files written."""
    out = Path(out_dir)
    public = rec.json_safe({k: v for k, v in record.items() if not k.startswith("_")})
    rec.validate(public, source="record")
    images = render_plots(public)
    written: dict[str, Path] = {}
    for name, png in images.items():
        written[name] = rec.write_atomic(out / name, png)
    written["report.md"] = rec.write_atomic(out / "report.md", render_markdown(public))
    written["report.html"] = rec.write_atomic(out / "report.html", render_html(public, images))
    if write_json:   # last: report.json appearing means the rest is in place
        written["report.json"] = rec.write(out / "report.json", public)
    return written
