"""Target registry, per-target argument adaptation, environment capture, CLI and benchmark."""
from __future__ import annotations

import json

import pytest

from conv3dt import bench_oracle
from conv3dt.oracle import cli
from conv3dt.oracle.arrays import ArraySpec
from conv3dt.oracle.case import Case
from conv3dt.oracle.environment import capture_environment
from conv3dt.oracle.targets import (KNOWN_TARGETS, Inexpressible, UnknownTarget, default_targets, expand_to_5,
                            grad_check, resolve, v2_case)

STABLE = ("tf-eager", "tf-eager-stock", "tf-graph", "tf-function", "tf-xla", "tf-v2", "tf-grad", "impl", "jax")


def test_stable_names_and_defaults():
    assert set(STABLE) <= set(KNOWN_TARGETS)
    defaults = default_targets()
    assert set(defaults) <= set(KNOWN_TARGETS)
    assert {"tf-eager", "tf-eager-stock", "tf-graph", "tf-function", "tf-xla", "tf-v2", "tf-grad",
            "impl"} <= set(defaults)


def test_workers_are_keyed_by_environment():
    shipped = {resolve(t).env_key for t in ("tf-eager", "tf-graph", "tf-function", "tf-xla", "tf-v2", "tf-grad")}
    assert len(shipped) == 1
    assert dict(next(iter(shipped)))["TF_ENABLE_ONEDNN_OPTS"] is None  # unset: TF as shipped
    assert dict(resolve("tf-eager-stock").env)["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert dict(resolve("tf-eager-onednn").env)["TF_ENABLE_ONEDNN_OPTS"] == "1"
    for t in KNOWN_TARGETS:
        if t.startswith("tf-"):
            level = int(dict(resolve(t).env)["TF_CPP_MIN_LOG_LEVEL"])
            assert level <= 2  # FATAL CHECK-failure lines must reach the stderr tail
    assert not resolve("impl").isolated and resolve("impl", isolate_impl=True).isolated
    mod = resolve("pkg.sub:obj.fn")
    assert (mod.kind, mod.module, mod.function, mod.isolated) == ("module", "pkg.sub", "obj.fn", True)


@pytest.mark.parametrize("bad", ["tf-nope", "nocolon", ":fn", "mod:", "a b:c", "mod:fn()"])
def test_unknown_targets(bad):
    with pytest.raises(UnknownTarget):
        resolve(bad)


def _case(**changes):
    return Case(ArraySpec("float32", (1, 2, 2, 2, 3), "normal", seed=1),
                ArraySpec("float32", (2, 2, 2, 4, 3), "normal", seed=2),
                output_shape=[1, 4, 4, 4, 4], strides=[1, 2, 2, 2, 1]).with_(**changes)


def test_v2_adaptation():
    args, kwargs = v2_case(_case()).call_args()
    assert not args and {"input", "filters", "output_shape", "strides", "padding", "data_format"} <= set(kwargs)
    assert "value" not in kwargs and "filter" not in kwargs
    _, kwargs = v2_case(_case(strides_form="omitted")).call_args()
    assert kwargs["strides"] is None
    _, kwargs = v2_case(_case(value_arg="both")).call_args()
    assert "value" in kwargs and "input" in kwargs  # v2 lacks `value`: its TypeError is observed
    args, _ = v2_case(_case(value_arg="positional", filter_arg="positional")).call_args()
    assert len(args) == 2


@pytest.mark.parametrize("value, form, fmt, expected", [
    (None, "omitted", "NDHWC", [1, 1, 1, 1, 1]),
    (None, "none", "NCDHW", [1, 1, 1, 1, 1]),
    (2, "int", "NDHWC", [1, 2, 2, 2, 1]),
    ([3], "list", "NCDHW", [1, 1, 3, 3, 3]),
    ([1, 2, 3], "tuple", "NDHWC", [1, 1, 2, 3, 1]),
    ([1, 2, 3], "list", "NCDHW", [1, 1, 1, 2, 3]),
    ([1, 2, 2, 2, 1], "list", "NDHWC", [1, 2, 2, 2, 1]),
    ([1, 2, 2, 2], "list", "NDHWC", [1, 2, 2, 2]),  # odd lengths pass through for TF to reject
])
def test_expand_to_5(value, form, fmt, expected):
    assert expand_to_5(value, form, fmt) == expected


@pytest.mark.parametrize("changes", [dict(value_arg="both"), dict(filter_arg="missing"),
                                     dict(output_shape_form="omitted"),
                                     dict(output_shape=[2**31 - 1, 1, 1, 1, 2]),      # 16 GiB of x
                                     dict(output_shape=[1, 2**21, 2**21, 2**21, 2])])
def test_grad_inexpressible_forms(changes):
    with pytest.raises(Inexpressible, match="tf-grad cannot express") as info:
        grad_check(_case(**changes))
    assert isinstance(info.value, TypeError)
    grad_check(_case(value_arg="input", filter_arg="filters"))


def test_environment_capture():
    env = capture_environment()
    assert env["python"].count(".") == 2 and env["packages"]["numpy"]
    assert env["packages"]["tensorflow-cpu"] or env["packages"]["tensorflow"]
    assert env["cpu"]["logical_cpus"] >= 1 and isinstance(env["cpu"]["flags"], list)
    assert "TF_ENABLE_ONEDNN_OPTS" in env["env"] and env["platform"]
    json.dumps(env)


def test_targets_cli_quick_json(capsys):
    assert cli.main(["--quick", "--json", "tests.unit.fixtures_targets:fine"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["targets"]}
    assert set(KNOWN_TARGETS) | {"tests.unit.fixtures_targets:fine"} == set(rows)
    assert rows["tf-eager"]["available"] and rows["tf-eager"]["default"]
    assert rows["tests.unit.fixtures_targets:fine"]["kind"] == "module"
    assert cli.main(["--quick", "bad name"]) == 2


def test_targets_cli_checked_table(capsys):
    """Checked mode starts the worker and reports what it found (module targets start fast)."""
    assert cli.main(["tests.unit.fixtures_targets:fine", "--quick"]) == 0
    text = capsys.readouterr().out
    assert "tf-eager" in text and "in default_targets()" in text
    row = cli._checked("tests.unit.fixtures_targets:fine", 30, __import__("contextlib").ExitStack())
    assert row["available"] and row["versions"]["numpy"]
    bad = cli._checked("tests.unit.fixtures_targets:no_such", 30, __import__("contextlib").ExitStack())
    assert not bad["available"] and "no_such" in bad["reason"]


def test_bench_oracle_runs_and_reports(capsys):
    assert bench_oracle.main(["--targets", "impl", "--calls", "40", "--batch", "1", "--batch", "8",
                              "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    row = out["results"][0]
    assert row["target"] == "impl" and set(row["calls_per_s"]) == {"1", "8"}
    assert all(v > 0 for v in row["calls_per_s"].values())
    assert row["outcome_kinds"] == {"1": ["value"], "8": ["value"]}
    assert out["goal"]["target"] == "tf-eager" and out["goal"]["met"] is False  # tf-eager not run


def test_bench_oracle_all_targets_row(capsys):
    targets = "impl,tests.unit.fixtures_targets:fine,tests.unit.fixtures_targets:rejecting"
    assert bench_oracle.main(["--targets", targets, "--all", "20", "--skip-single", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["all_targets"]
    assert row["pairs"] == 60 and row["environments"] == 1
    assert row["sequential_pairs_per_s"] > 0 and row["run_on_targets_pairs_per_s"] > 0
    assert row["outcome_kinds"]["sequential"] == row["outcome_kinds"]["run_on_targets"] == ["raised", "value"]
