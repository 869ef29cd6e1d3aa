"""``conv3dt report matrix``: frameworks × targets, from the records' ``environment.targets``."""
from __future__ import annotations

import copy
from pathlib import Path

from conv3dt.oracle.environment import framework_of
from conv3dt.reports import record as rec
from conv3dt.reports.matrix import build_matrix, framework_label, render_matrix_html, render_matrix_markdown
from tests.unit.test_reports_diff_matrix import report
from tests.unit.test_reports_record import make_record


def _records(tmp: Path) -> tuple[dict, dict]:
    """A TF gate record whose facts predate the ``framework`` fact (kind + tensorflow only), and
    a cross-framework gate's (onnxruntime, openvino, a vendor callable, impl) with it."""
    tf = make_record(tmp / "tf", with_new=True, tf="2.21.0")
    tf["environment"]["targets"] = {t: {"kind": "tf", "tensorflow": "2.21.0"}
                                    for t in ("tf-eager", "tf-graph", "tf-xla", "tf-eager-stock")}
    tf["environment"]["targets"]["impl"] = {"kind": "impl"}
    tf["environment"].setdefault("packages", {})["conv3dt"] = "0.1.0"
    xfw = make_record(tmp / "x", with_new=False, tf="2.21.0")
    xfw["run"]["targets"] = ["onnxruntime", "openvino", "mypkg.k:conv", "impl"]
    xfw["environment"]["targets"] = {
        "onnxruntime": {"kind": "onnxruntime", "framework": framework_of("onnxruntime", {"onnxruntime": "1.32.0"})},
        "openvino": {"kind": "openvino", "framework": framework_of("openvino", {"openvino": "2026.4.1"})},
        "mypkg.k:conv": {"kind": "module", "framework": framework_of("module", {})},
        "impl": {"kind": "impl", "framework": {"name": "impl", "version": "0.1.0"}}}
    xfw["coverage"]["examples"]["differential"]["onnxruntime"] = 123
    return tf, xfw


def test_framework_labels_from_facts_old_and_new():
    assert framework_of("tf", {"tensorflow": "2.21.0"}) == {"name": "TensorFlow", "version": "2.21.0"}
    assert framework_of("module", {"tensorflow": "2.21.0"}) == {"name": "external", "version": None}
    rec_ = {"environment": {"packages": {"conv3dt": "0.1.0"}}}
    assert framework_label({"kind": "jax", "jax": "0.4.30"}, rec_) == "JAX 0.4.30"
    assert framework_label({"kind": "impl"}, rec_) == "impl 0.1.0"
    assert framework_label({"framework": {"name": "OpenVINO", "version": "2026.4.1"}}, rec_) == "OpenVINO 2026.4.1"
    assert framework_label({}, rec_) == "unknown"


def test_matrix_shows_frameworks_by_targets(tmp_path: Path) -> None:
    tf, xfw = _records(tmp_path)
    a = rec.write(tmp_path / "a" / "report.json", tf)
    b = rec.write(tmp_path / "b" / "report.json", xfw)
    moved = copy.deepcopy(tf["findings"][0])      # a new finding on onnxruntime: its cell fails
    moved.update(target="onnxruntime", status="new", known_deviation=None, id="F00000000abc")
    xfw["findings"].append(moved)
    m = build_matrix([("tf/report.json", tf), ("x/report.json", xfw)])
    fw = m["frameworks"]
    assert fw["rows"] == ["ONNX Runtime 1.32.0", "OpenVINO 2026.4.1", "TensorFlow 2.21.0",
                          "external", "impl 0.1.0"]
    assert fw["cells"]["ONNX Runtime 1.32.0"]["onnxruntime"] == {"new": 1, "known": 0, "examples": 123,
                                                                 "records": 1}
    assert fw["cells"]["impl 0.1.0"]["impl"]["records"] == 2           # both records ran impl 0.1.0
    assert "onnxruntime" not in fw["cells"]["TensorFlow 2.21.0"]
    md = render_matrix_markdown(m)
    assert "Frameworks × targets" in md
    row = next(line for line in md.splitlines() if line.startswith("| ONNX Runtime 1.32.0 |"))
    cols = md.split("Frameworks × targets")[1].splitlines()[2].strip("| ").split(" | ")
    assert cols[0] == "framework" and row.split(" | ")[cols.index("onnxruntime")].startswith("FAIL 1 new")
    assert "<th>OpenVINO 2026.4.1</th>" in render_matrix_html(m)
    res = report("matrix", str(a), str(b))
    assert res.returncode == 0, res.stderr
    assert "| TensorFlow 2.21.0 |" in res.stdout and "| external |" in res.stdout
