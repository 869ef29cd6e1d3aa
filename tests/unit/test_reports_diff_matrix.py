"""``conv3dt report diff | matrix | render`` on records built from realistic sessions."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conv3dt.reports import record as rec
from conv3dt.reports.diff import diff_records
from conv3dt.reports.matrix import build_matrix, render_matrix_html, render_matrix_markdown
from conv3dt.reports.merge import headroom_cell
from tests.unit.test_reports_record import make_record

ROOT = Path(__file__).resolve().parents[2]


def report(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conv3dt", "report", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def two_records(tmp: Path) -> tuple[Path, Path]:
    oldr = make_record(tmp / "o", with_new=False, tf="2.20.0")
    oldr["headroom"]["tf-graph"]["float16"] = headroom_cell([0.3, 0.5, 0.9])   # within the bound
    old = rec.write(tmp / "old" / "report.json", oldr)
    newr = make_record(tmp / "n", with_new=True, tf="2.21.0", scale=2)
    newr["coverage"]["cells"]["dilation>1"] = 7
    newr["coverage"]["cells"].pop("invalid:padding")
    # the known error-class finding now raises another class
    for f in newr["findings"]:
        if f["kind"] == "error-class":
            f["observed"] = "raised AbortedError: oneDNN failed"
    new = rec.write(tmp / "new" / "report.json", newr)
    return old, new


def test_diff_new_fixed_changed_headroom_coverage(tmp_path: Path) -> None:
    old, new = two_records(tmp_path)
    d = diff_records(rec.load(old), rec.load(new))
    assert d["regressed"]
    assert sorted(f["kind"] for f in d["new_findings"]) == ["crash", "value-mismatch"]
    assert d["fixed"] == [] and d["not_rerun"] == []
    [changed] = d["changed"]
    assert (changed["old_error_class"], changed["new_error_class"]) == ("InvalidArgumentError", "AbortedError")
    crossed = [r for r in d["headroom"] if r["flag"] == "crossed the bound"]
    assert [(r["target"], r["dtype"]) for r in crossed] == [("tf-graph", "float16")]
    assert d["coverage"]["cells_added"] == ["dilation>1"]
    assert d["coverage"]["cells_lost"] == ["invalid:padding"]
    assert {"property": "differential", "target": "impl", "old": 600, "new": 1200} in d["coverage"]["examples"]
    back = diff_records(rec.load(new), rec.load(old))          # and the other way round
    assert not back["regressed"] and back["new_findings"] == []
    assert [f["kind"] for f in back["fixed"]] == ["value-mismatch"]       # tf-graph ran in OLD
    assert [f["target"] for f in back["not_rerun"]] == ["tf-eager-stock"]  # no examples there: not "fixed"


def test_a_crash_line_differing_only_in_log_time_thread_and_address_is_not_changed(
        tmp_path: Path) -> None:
    """Two runs of one seed: the same CHECK failure is logged with another time, thread id and
    address; the diff must not call that a change (another message text still is one)."""
    line = ("crashed (SIGABRT): F0000 00:00:{t}    {pid} mkl_conv_grad_input_ops.cc:610] "
            "Check failed: at {addr}")
    a = make_record(tmp_path / "a", with_new=False)
    b = make_record(tmp_path / "b", with_new=False)
    for r, (t, pid, addr) in ((a, ("1795539231.447126", 1898, "0x7f12ab34cd00")),
                              (b, ("1795539441.695365", 6587, "0x7f99ab34cd08"))):
        r["findings"][0]["observed"] = line.format(t=t, pid=pid, addr=addr)
    assert diff_records(a, b)["changed"] == []
    b["findings"][0]["observed"] = line.format(t="1", pid=2, addr="0x7f99ab34cd08") + " (other)"
    assert [c["id"] for c in diff_records(a, b)["changed"]] == [a["findings"][0]["id"]]


def test_report_diff_cli_exit_codes_and_text(tmp_path: Path) -> None:
    old, new = two_records(tmp_path)
    res = report("diff", str(old), str(new))
    assert res.returncode == 1, res.stderr
    assert res.stdout.startswith("# conv3dt report diff — REGRESSED")
    for text in ("## New findings (2)", "## Fixed (0)", "InvalidArgumentError → AbortedError",
                 "crossed the bound", "cell added: dilation>1", "cell lost: invalid:padding"):
        assert text in res.stdout, text
    res = report("diff", str(new), str(old), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["regressed"] is False
    res = report("diff", str(old), str(tmp_path / "nope.json"))
    assert res.returncode == 2 and "nope.json: no such file" in res.stderr and res.stderr.count("\n") == 1
    (tmp_path / "wrong.json").write_text(json.dumps({"schema": "conv3dt-report/2"}))
    res = report("diff", str(old), str(tmp_path / "wrong.json"))
    assert res.returncode == 2 and "schema is 'conv3dt-report/2'" in res.stderr


def test_matrix_targets_by_tf_version(tmp_path: Path) -> None:
    old, new = two_records(tmp_path)
    m = build_matrix([(str(new), rec.load(new)), (str(old), rec.load(old))])
    assert [c["tf"] for c in m["columns"]] == ["2.20.0", "2.21.0"]             # sorted by version
    assert m["cells"]["tf-graph"]["2.21.0"]["new"] == 1
    assert m["cells"]["tf-graph"]["2.20.0"]["new"] == 0
    assert m["cells"]["impl"]["2.21.0"]["examples"] == 1200
    res = report("matrix", str(old), str(new), "--out", str(tmp_path / "m"))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "| target | TF 2.20.0 | TF 2.21.0 |" in lines
    graph = next(line for line in lines if line.startswith("| tf-graph |"))
    assert "ok 0 new" in graph and "FAIL 1 new" in graph
    assert (tmp_path / "m" / "matrix.html").read_text().count("<tr>") >= 6
    same = report("matrix", str(new), str(new))
    assert same.returncode == 0 and "TF 2.21.0 (new)" in same.stdout      # same version twice


def test_matrix_cell_headroom_findings_ledger_table_and_partial(tmp_path: Path) -> None:
    """A cell shows the sampled headroom and, when higher, the findings' (the sampled values
    alone said h≤1 for TF 2.21's tf-eager, whose known findings reach inf); the ledger hits per
    version are a table; a partial record says so in the HTML as in the Markdown."""
    old, new = two_records(tmp_path)
    newr, oldr = rec.load(new), rec.load(old)
    assert max(c["max"] for c in newr["headroom"]["tf-eager"].values()) == 0.62   # sampled
    known = next(f for f in newr["findings"] if f["target"] == "tf-eager")
    known["headroom"] = "inf"                                    # e.g. a known nan result
    oldr["partial"] = True
    m = build_matrix([(str(new), newr), (str(old), oldr)])
    assert m["cells"]["tf-eager"]["2.21.0"]["worst_headroom"] == 0.62
    assert m["cells"]["tf-eager"]["2.21.0"]["worst_finding_headroom"] == "inf"
    md = render_matrix_markdown(m)
    assert "h≤0.62 (findings: inf)" in md.split("| tf-eager |")[1].split("\n")[0]
    # the ledger table: which known deviations each version matched
    newr["ledger"]["matched"] = {"onednn-invalid-call-sigill": 3}
    oldr["ledger"]["matched"] = {"onednn-abortederror-on-invalid": 2}
    m = build_matrix([(str(new), newr), (str(old), oldr)])
    md = render_matrix_markdown(m)
    assert "| onednn-invalid-call-sigill | – | 3 |" in md
    assert "| onednn-abortederror-on-invalid | 2 | – |" in md
    assert "<th>onednn-invalid-call-sigill</th><td class=\"none\">–</td><td class=\"num\">3</td>" \
        in render_matrix_html(m)
    assert "PASS (partial)" in md
    html = render_matrix_html(m)
    assert "PASS (partial)</td>" in html and str(old) in html


def test_render_rewrites_md_html_plots_from_a_record(tmp_path: Path) -> None:
    _, new = two_records(tmp_path)
    res = report("render", str(new), "--out", str(tmp_path / "html"))
    assert res.returncode == 0, res.stderr
    for name in ("report.md", "report.html", "matrix.png", "headroom.png", "report.json"):
        assert (tmp_path / "html" / name).exists(), name
    assert rec.load(tmp_path / "html" / "report.json") == rec.load(new)
    res = report("render", str(tmp_path / "missing.json"))
    assert res.returncode == 2 and "missing.json: no such file" in res.stderr
    assert report("frobnicate").returncode == 2
    assert report("--help").returncode == 0
