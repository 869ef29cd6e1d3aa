"""The cross-framework targets ``onnxruntime`` and ``openvino`` (``oracle/ort_path.py``,
``oracle/openvino_path.py``): each mapping checked against impl before any gate relies on it.

ONNX Runtime and OpenVINO are optional extras (``conv3dt[onnxruntime]``, ``conv3dt[openvino]``;
the ``test`` extra installs both, so CI runs these): a backend's tests skip, naming the extra,
only when it is not installed. The geometry mapping itself is checked without either.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings

from conv3dt.fuzz.invalid import family_examples
from conv3dt.fuzz.judge import judge_value
from conv3dt.fuzz.ledger import DEFAULT_LEDGER, Ledger, case_features
from conv3dt.fuzz.strategies import valid_cases
from conv3dt.fuzz.truth import truth_of
from conv3dt.impl.args import same_padding, windowed_size
from conv3dt.oracle.capabilities import Capabilities
from conv3dt.oracle.case import spatial_triple
from conv3dt.oracle.kernels import KERNEL_FAMILIES
from conv3dt.oracle.ort_path import onnx_geometry
from conv3dt.oracle.repro import render_reproducer
from conv3dt.oracle.targets import default_targets, framework_installed, resolve

TARGETS = ("onnxruntime", "openvino")
N_CASES = 300
CAPABILITY_KEYS = {"dtypes", "layouts", "paddings", "dilations", "zero_size", "argument_forms"}


def needs(target: str):
    return pytest.mark.skipif(not framework_installed(target),
                              reason=f"{target} is an optional extra (pip install 'conv3dt[{target}]')")


def test_geometry_gives_tf_size_and_tap_positions():
    """Over every valid (I, O, K, s, d, padding) in a grid: the ONNX/OpenVINO output size
    ``(I-1)s + eff + output_padding - pads`` is TF's O, pads_begin is TF's pad_before, the
    padding is never negative and output_padding < max(s, d) (what both backends require)."""
    checked = 0
    for i, k, s, d, padding in itertools.product(range(0, 4), range(1, 4), range(1, 4), range(1, 3),
                                                 ("SAME", "VALID")):
        eff = (k - 1) * d + 1
        for o in range(0, 14):
            if windowed_size(o, eff, s, padding) != i:
                continue
            before = same_padding(o, i, eff, s)[0] if padding == "SAME" else 0
            pb, pe, op = onnx_geometry(i, o, k, s, d, before)
            assert pb == before and pe >= 0 and 0 <= op < max(s, d), (i, o, k, s, d, padding)
            assert (i - 1) * s + eff + op - pb - pe == o
            checked += 1
    assert checked > 200


@pytest.mark.parametrize("target", TARGETS)
def test_targets_are_optional_and_declare_capabilities(target):
    spec = resolve(target)
    assert spec.kind == target and spec.isolated and target in KERNEL_FAMILIES
    assert target not in default_targets()     # another framework: never in the TF gate
    module = __import__(f"conv3dt.oracle.{'ort_path' if target == 'onnxruntime' else 'openvino_path'}",
                        fromlist=["CAPABILITIES"])
    caps = module.CAPABILITIES
    assert set(caps) == CAPABILITY_KEYS
    Capabilities.from_mapping(caps, target)                 # the schema of oracle.capabilities
    assert spec.capabilities == caps                        # what the gate reads (pool.declared)


@pytest.mark.parametrize("target", [pytest.param(t, marks=needs(t)) for t in TARGETS])
def test_declared_dtypes_are_exactly_what_the_backend_runs(target):
    """A declaration states real limits: every declared dtype computes a 1x1x1 Case correctly,
    every undeclared one is rejected by the backend itself (probed through the pool, which does
    not filter by declaration)."""
    from conv3dt.oracle.arrays import ArraySpec
    from conv3dt.oracle.case import Case
    from conv3dt.oracle.pool import TargetPool

    declared = set(resolve(target).capabilities["dtypes"])
    dtypes = ("float16", "bfloat16", "float32", "float64")
    cases = [Case(ArraySpec(dt, (1, 2, 2, 2, 1), "ones"), ArraySpec(dt, (2, 2, 2, 1, 1), "ones"),
                  [1, 3, 3, 3, 1], [1, 1, 1, 1, 1], padding="VALID", exact=True) for dt in dtypes]
    with TargetPool(target, timeout=60) as pool:
        outs = pool.run(cases)
    for dt, case, out in zip(dtypes, cases, outs):
        if dt in declared:
            assert out.kind == "value" and out.value.dtype.name == dt, (dt, out.describe())
            assert not judge_value(case, out, truth_of(case), target, "exact")[0], dt
        else:
            assert out.kind == "raised", (dt, out.describe())   # the backend's own rejection


def _float32_cases() -> list:
    """N_CASES random valid float32 Cases (no zero-size dimension: those are ledgered
    deviations), deterministic, over every argument form and geometry axis."""
    drawn: list = []

    @settings(max_examples=N_CASES, derandomize=True, database=None, deadline=None)
    @given(valid_cases(dtypes=("float32",), zero_dims=False))
    def collect(case):
        drawn.append(case)

    collect()
    return drawn


@pytest.fixture(scope="module")
def float32_cases():
    cases = _float32_cases()
    seen = {(c.data_format, c.padding, c.value_arg, c.filter_arg, c.output_shape_form,
             c.strides_form, c.dilations_form) for c in cases}
    # the draw covers every axis the mapping must handle
    assert {c[0] for c in seen} == {"NDHWC", "NCDHW"} and {c[1] for c in seen} == {"SAME", "VALID"}
    assert {c[2] for c in seen} >= {"value", "input", "positional"}
    assert {c[3] for c in seen} >= {"filter", "filters", "positional"}
    assert {c[4] for c in seen} >= {"list", "tuple", "ndarray-int32", "ndarray-int64",
                                    "tensor-int32", "tensor-int64"}
    assert {c[5] for c in seen} >= {"int", "list", "tuple"} and {c[6] for c in seen} >= {"int", "list"}
    assert any(max(spatial_triple(c.dilations, c.data_format)) > 1 for c in cases)
    assert any(max(spatial_triple(c.strides, c.data_format)) > 1 for c in cases)
    return cases


@pytest.mark.parametrize("target", [pytest.param(t, marks=needs(t)) for t in TARGETS])
def test_target_matches_impl_on_random_float32_cases(target, float32_cases):
    from conv3dt.oracle.pool import TargetPool

    with TargetPool(target, timeout=60) as pool:
        info = pool.info()
        assert info["worker"][target]             # the framework version the worker reports
        outs = pool.run(float32_cases)
    ledger = Ledger.load(DEFAULT_LEDGER)
    bad, known = [], []
    for case, out in zip(float32_cases, outs):
        assert out.kernel.family == target
        findings, _ = judge_value(case, out, truth_of(case), target, "differential")
        for f in findings:
            # a backend defect on non-finite inputs is ledgered (never a mapping error: the
            # finite Cases pin the mapping); anything else is a mapping or backend error
            entry = ledger.classify(f).known_deviation if case_features(f.case)["nonfinite-input"] else None
            (known if entry else bad).append((f.kind, case.case_id, entry or f.observed[:200]))
    assert not bad, f"{len(bad)} of {len(float32_cases)} differ from impl: {bad[:3]}"
    assert len(known) <= len(float32_cases) // 20, known     # the rare non-finite corner only


@pytest.mark.parametrize("target", [pytest.param(t, marks=needs(t)) for t in TARGETS])
def test_invalid_calls_are_rejected_with_impls_class(target):
    """Every invalid family's example: rejected before the backend, with impl's class."""
    from conv3dt.oracle.pool import TargetPool
    from conv3dt.oracle.worker import call_v1
    from conv3dt.impl import conv3d_transpose

    cases = family_examples()
    with TargetPool(target, timeout=60) as pool:
        outs = pool.run(cases)
    for case, out in zip(cases, outs):
        try:
            call_v1(conv3d_transpose, case, case.arrays())
            expected = None
        except Exception as exc:  # noqa: BLE001 — impl's class is the expectation
            expected = type(exc).__name__
        assert expected is not None, case.label
        assert out.kind == "raised" and out.short_class == expected, (case.label, out.describe())


@pytest.mark.parametrize("target", TARGETS)
def test_reproducer_calls_the_mapping_module(target):
    case = _float32_cases()[0]
    script = render_reproducer(case, target)
    module = "ort_path" if target == "onnxruntime" else "openvino_path"
    assert f"from conv3dt.oracle import {module}" in script
    assert f"result = {module}.run(case, (value, filter_))" in script
    assert "import tensorflow" not in script
    compile(script, "<repro>", "exec")
