"""One self-contained HTML report: inline CSS, PNG plots base64-embedded, no external requests.

Sections: verdict banner, summary, conformance matrix (heat map + table), headroom
histograms, findings table with reproducers, ledger, regression corpus, coverage,
environment. A few lines of
inline script mark the document ``data-rendered="ok"`` once every embedded image has decoded
(the browser test reads that marker); the page is complete without script too.
"""
from __future__ import annotations

import base64
from html import escape
from typing import Any

from conv3dt.reports.markdown import corpus_lines, fmt_headroom, ledger_line, summary_lines

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:0 1.2rem 3rem}
.banner{padding:1.1rem 1.5rem;color:#fff;font-size:1.5rem;font-weight:600}
.banner.pass{background:#1f7a3a}.banner.fail{background:#b3261e}.banner small{font-weight:400;font-size:.95rem;display:block;opacity:.9}
.partial{background:#8a6d00;color:#fff;padding:.5rem 1.5rem}
h2{margin-top:2rem;border-bottom:1px solid #cfd4dc;padding-bottom:.3rem}
pre{background:#fff;border:1px solid #d9dde3;padding:.6rem;overflow-x:auto;font-size:.8rem}
table{border-collapse:collapse;background:#fff;font-size:.8rem;margin:.5rem 0;display:block;overflow-x:auto;max-width:100%}
pre{white-space:pre-wrap}
th,td{border:1px solid #d9dde3;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#eef0f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.new td:first-child{border-left:4px solid #b3261e}tr.known td:first-child,tr.baseline td:first-child{border-left:4px solid #8a8f98}
.ok{background:#d8f0de}.bad{background:#f7d4d1}.none{background:#eee;color:#888}
img{max-width:100%;background:#fff;border:1px solid #d9dde3}
details summary{cursor:pointer;color:#174ea6}
code{font-size:.85em}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute('data-images', imgs.length + ' loaded, ' + bad.length + ' broken');
  document.body.setAttribute('data-rendered', bad.length ? 'broken-images' : 'ok');
});
"""


def _img(name: str, png: bytes | None, alt: str) -> str:
    if not png:
        return f"<p>No data for {escape(alt)}.</p>"
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="{escape(name)}" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _table(headers: list[str], rows: list[list[Any]], num: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{escape(str(v))}</td>' if i in num
                        else f"<td>{escape(str(v))}</td>" for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _matrix_table(record: dict[str, Any]) -> str:
    matrix = record.get("matrix") or {}
    cells = sorted({c for per in matrix.values() for c in per})
    if not cells:
        return "<p>No matrix data.</p>"
    head = "<th>target</th>" + "".join(f"<th>{escape(c)}</th>" for c in cells)
    rows = []
    for target in sorted(matrix):
        tds = []
        for c in cells:
            pair = matrix[target].get(c)
            if not pair or not pair[0]:
                tds.append('<td class="none">–</td>')
            else:
                cls = "bad" if pair[1] else "ok"
                tds.append(f'<td class="num {cls}">{int(pair[1])}/{int(pair[0])}</td>')
        rows.append(f"<tr><th>{escape(target)}</th>{''.join(tds)}</tr>")
    return (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "<p>Cells: deviations / examples.</p>")


def _findings(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "<p>No findings.</p>"
    heads = ["status", "id", "kind", "target", "property", "dtype", "layout", "padding",
             "strides", "dilations", "value shape", "filter shape", "output shape", "headroom",
             "ledger", "expected / observed / reproducer"]
    rows = []
    for f in findings:
        c = f["case"]
        detail = (f"<b>expected</b>: {escape(f['expected'])}<br><b>observed</b>: "
                  f"{escape(f['observed'])}<details><summary>reproducer</summary>"
                  f"<pre>{escape(f['repro'])}</pre></details>")
        tds = [f["status"], f["id"], f["kind"], f["target"], f["property"], c.get("dtype"),
               c.get("data_format"), c.get("padding"), c.get("strides"), c.get("dilations"),
               c.get("value_shape"), c.get("filter_shape"), c.get("output_shape"),
               fmt_headroom(f.get("headroom")), f.get("known_deviation") or "–"]
        cells = "".join(f"<td>{escape(str(v))}</td>" for v in tds)
        rows.append(f'<tr class="{escape(f["status"])}">{cells}<td>{detail}</td></tr>')
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_html(record: dict[str, Any], images: dict[str, bytes]) -> str:
    s, run = record["summary"], record["run"]
    verdict = s["verdict"]
    title = f"conv3dt {run['command']}: {verdict.upper()}"
    sub = (f"{s['new']} new finding(s), {s['known']} known deviation(s) · {s['examples']} examples "
           f"in {run['duration_s']:.1f} s · TensorFlow {record['environment'].get('tensorflow', '?')}")
    parts = [f'<div class="banner {escape(verdict)}" id="verdict">{escape(title)}'
             f"<small>{escape(sub)}</small></div>"]
    if record.get("partial"):
        parts.append(f'<div class="partial">Partial record: the run was interrupted '
                     f"({escape(record['interrupted']['reason'])}); counts cover what ran.</div>")
    parts.append("<main>")
    parts.append("<h2>Summary</h2><pre>" + escape("\n".join(summary_lines(record))) + "</pre>")
    parts.append("<h2>Conformance matrix</h2>")
    parts.append(_img("matrix-png", images.get("matrix.png"), "conformance matrix heat map"))
    parts.append(_matrix_table(record))
    parts.append("<h2>Headroom per dtype and target</h2>")
    parts.append(_img("headroom-png", images.get("headroom.png"), "headroom histograms"))
    hrows = [[t, d, c["n"], fmt_headroom(c.get("p50")), fmt_headroom(c.get("p99")),
              fmt_headroom(c.get("max")), c.get("over_1", 0)]
             for t, per in record["headroom"].items() for d, c in per.items()]
    parts.append(_table(["target", "dtype", "n", "p50", "p99", "max", "> 1"], hrows, {2, 3, 4, 5, 6}))
    parts.append(f"<h2>Findings ({len(record['findings'])})</h2>")
    parts.append(_findings(record["findings"]))
    parts.append("<h2>Ledger</h2><p>" + escape(ledger_line(record)) + "</p>")
    ledger = record["ledger"]
    if ledger.get("entries"):
        parts.append(_table(["entry", "hits", "TF versions", "reason"],
                            [[e["id"], ledger["matched"].get(e["id"], 0), e.get("tf_versions", ""),
                              e.get("reason", "")] for e in ledger["entries"]], {1}))
    parts.append("<h2>Regression corpus</h2>")
    for line in corpus_lines(record):
        parts.append(f"<p><b>{escape(line[0])}:</b> " + ", ".join(
            f"<code>{escape(i)}</code>" for i in line[1]) + "</p>" if isinstance(line, tuple)
            else f"<p>{escape(line)}</p>")
    parts.append("<h2>Coverage</h2>")
    cov = record["coverage"]
    parts.append(_table(["property", "target", "examples", "seconds (property, all workers)"],
                        [[p, t, n, f"{cov['seconds'].get(p, 0):.1f}"]
                         for p, per in sorted(cov["examples"].items())
                         for t, n in sorted(per.items())], {2, 3}))
    if cov["cells"]:
        parts.append(_table(["cell", "examples"], sorted(cov["cells"].items()), {1}))
    parts.append("<h2>Environment</h2>")
    parts.append(_table(["", ""], [[k, v] for k, v in sorted(record["environment"].items())]
                        + [[f"run.{k}", v] for k, v in sorted(run.items())]))
    parts.append("</main>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body data-rendered=\"pending\">{''.join(parts)}<script>{SCRIPT}</script></body></html>\n")
