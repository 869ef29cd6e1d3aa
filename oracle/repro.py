"""Standalone reproducers: one Case on one target as a copy-paste Python script.

For TF targets the script needs only ``numpy`` and ``tensorflow`` (plus ``ml_dtypes``,
which TensorFlow itself depends on, for bfloat16 inputs). It builds the arrays with the
Case's recipe expressions (the same text the oracle evaluates, so the values are
identical), makes the call in the target's way and leaves TF's result in ``result``:

- ``tf-eager-stock`` / ``tf-eager-onednn`` set ``TF_ENABLE_ONEDNN_OPTS`` *before*
  importing TensorFlow (it is read once, at import); the as-shipped paths remove it, as their
  worker did, so that TF decides by the CPU (unless the gate forced them with
  ``--as-shipped-onednn``: then they set it too);
- ``tf-graph`` builds the call in a ``tf.compat.v1.Graph`` on placeholders and runs it in a
  Session with the arrays fed (as the oracle does: with constants, Grappler would fold the op
  with a kernel of its own choosing, which rounds bfloat16 differently under oneDNN);
- ``tf-function`` / ``tf-xla`` trace it in ``tf.function`` (``jit_compile=True`` for XLA);
- ``tf-v2`` calls ``tf.nn.conv3d_transpose`` with v2's names;
- ``tf-grad`` takes the gradient of ``tf.nn.conv3d`` with respect to its input;
- the gradient targets (a gradient Case: ``grad_output`` defined with the arrays) record the
  forward call on a ``tf.GradientTape`` (eager, or inside ``tf.function`` / XLA) or build it in a
  v1 Graph with ``tf.compat.v1.gradients``, and keep the one gradient asked for; ``impl-grad``
  and ``grad:module:function`` call the backward and take ``[0]`` (dvalue) or ``[1]`` (dfilter).

A raised error propagates (the script ends with TF's traceback); a crash kills the script,
which is the point.
"""
from __future__ import annotations

import json

from conv3dt.oracle.case import Case
from conv3dt.oracle.targets import expand_to_5, resolve, v2_case

V1 = "tf.compat.v1.nn.conv3d_transpose"
#: Targets whose call is a conv3dt mapping module's ``run(case, arrays)``: kind -> (module, what
#: it maps to). Their reproducers import that module (the mapping is part of what is judged).
MAPPED = {"jax": ("jax_path", "jax.lax"), "onnxruntime": ("ort_path", "ONNX Runtime's ConvTranspose"),
          "openvino": ("openvino_path", "OpenVINO's ConvolutionBackpropData")}


def _arrays_source(case: Case) -> str:
    return case.render_arrays()


def _tensor_arg(spec, name: str) -> str:
    return "None" if spec is None else f"tf.constant({name})"


def _gradient_body(case: Case, spec) -> list[str]:
    """The gradient Case's call the target's way: the backward function for impl and vendors,
    else the forward under TF's gradient machinery (``oracle.tf_grad_paths``)."""
    wrt, index = case.grad_wrt, 0 if case.grad_wrt == "value" else 1
    if spec.kind in ("impl-grad", "module-grad"):
        np_tensor = "np.array({values!r}, dtype=np.{dtype})"
        fn = "conv3d_transpose_grads" if spec.kind == "impl-grad" else spec.function.split(".")[-1]
        call = case.forward().render_call(function=fn, tensor_template=np_tensor)
        return [f"result = {call[:-1]}, grad_output=grad_output)[{index}]   # d{wrt}"]
    forward = case.forward().render_call(V1)
    if spec.path == "grad-v1":
        return ["arrays = (value, filter_, grad_output)",
                "with tf.compat.v1.Graph().as_default() as graph:",
                "    value, filter_, grad_output = (None if a is None else tf.compat.v1.placeholder("
                "tf.as_dtype(a.dtype.name), a.shape) for a in arrays)",
                f"    y = {forward}",
                f"    (out,) = tf.compat.v1.gradients(y, [{'value' if wrt == 'value' else 'filter_'}], "
                "grad_ys=grad_output)",
                "    feed = {p: a for p, a in zip((value, filter_, grad_output), arrays) if p is not None}",
                "    with tf.compat.v1.Session(graph=graph) as session:",
                "        result = session.run(out, feed)"]
    taped = ["with tf.GradientTape() as tape:",
             "    for t in (value, filter_):",
             "        if t is not None:",
             "            tape.watch(t)",
             f"    y = {forward}",
             f"d{wrt} = tape.gradient(y, {'value' if wrt == 'value' else 'filter_'}, "
             "output_gradients=grad_output)"]
    args = ("None if value is None else tf.constant(value), "
            "None if filter_ is None else tf.constant(filter_), tf.constant(grad_output)")
    if spec.path == "grad-eager":
        return [f"value, filter_, grad_output = ({args})", *taped, f"result = d{wrt}"]
    jit = ", jit_compile=True" if spec.path == "grad-xla" else ""
    return [f"@tf.function(reduce_retracing=False{jit})",
            "def gradient(value, filter_, grad_output):",
            *[f"    {line}" for line in taped], f"    return d{wrt}", "",
            f"result = gradient({args})"]


def _body(case: Case, target: str) -> list[str]:
    spec = resolve(target)
    if spec.gradient:
        return _gradient_body(case, spec)
    if spec.kind == "impl" or spec.kind == "module":
        np_tensor = "np.array({values!r}, dtype=np.{dtype})"
        fn = "conv3d_transpose" if spec.kind == "impl" else spec.function.split(".")[-1]
        return [f"result = {case.render_call(function=fn, tensor_template=np_tensor)}"]
    if spec.kind in MAPPED:
        case_json = json.dumps(case.to_json(), separators=(",", ":"))
        return [f"case = Case.from_json(json.loads({case_json!r}))",
                f"result = {MAPPED[spec.kind][0]}.run(case, (value, filter_))"]
    if spec.kind != "tf":
        raise ValueError(f"no reproducer for target kind {spec.kind!r}")
    path = spec.path
    if path == "eager":
        return [f"result = {case.render_call(V1)}"]
    if path == "graph":   # placeholders fed at run time, as the oracle does: constants would be
        return ["arrays = (value, filter_)",                   # folded by Grappler's own kernel
                "with tf.compat.v1.Graph().as_default() as graph:",
                "    value, filter_ = (None if a is None else tf.compat.v1.placeholder("
                "tf.as_dtype(a.dtype.name), a.shape) for a in arrays)",
                f"    out = {case.render_call(V1)}",
                "    feed = {p: a for p, a in zip((value, filter_), arrays) if p is not None}",
                "    with tf.compat.v1.Session(graph=graph) as session:",
                "        result = session.run(out, feed)"]
    if path in ("function", "xla"):
        jit = ", jit_compile=True" if path == "xla" else ""
        return [f"@tf.function(reduce_retracing=False{jit})",
                "def call(value, filter_):",
                f"    return {case.render_call(V1)}",
                "",
                f"result = call({_tensor_arg(case.value, 'value')}, {_tensor_arg(case.filter, 'filter_')})"]
    if path == "v2":
        return [f"result = {v2_case(case).render_call('tf.nn.conv3d_transpose')}"]
    # grad
    from conv3dt.oracle.targets import Inexpressible, grad_check

    try:
        grad_check(case)
    except Inexpressible as exc:
        return [f"# {exc}", f"raise TypeError({str(exc)!r})"]
    strides = expand_to_5(case.strides, case.strides_form, case.data_format)
    dilations = expand_to_5(case.dilations, case.dilations_form, case.data_format)
    return ["# conv3d_transpose(value, filter) is the gradient of conv3d(x, filter) w.r.t. x,",
            "# weighted by value; conv3d's filter [KD, KH, KW, in, out] is the same array.",
            "dy = tf.constant(value)",
            "with tf.GradientTape() as tape:",
            f"    x = tf.zeros({case.render_output_shape()}, dtype=dy.dtype)",
            "    tape.watch(x)",
            f"    y = tf.nn.conv3d(x, tf.constant(filter_), strides={strides!r}, "
            f"padding={case.padding!r}, data_format={case.data_format!r}, dilations={dilations!r})",
            "result = tape.gradient(y, x, output_gradients=dy)"]


def _preamble(cases: list[Case], target: str, title: str, note: str | None) -> list[str]:
    """Comments naming the target and every call's Case, the environment TF must see at
    import, and the imports the calls need."""
    spec = resolve(target)
    lines = [f"# conv3dt reproducer: {title} on target {target}", f"# {spec.description}"]
    if note:
        lines += [f"# {line}" for line in note.splitlines()]
    for i, case in enumerate(cases):
        label = "case JSON" if len(cases) == 1 else f"call {i}: case JSON"
        lines.append(f"# {label}: {json.dumps(case.to_json(), separators=(',', ':'))[:1500]}")
    env = dict(spec.env)
    if "TF_ENABLE_ONEDNN_OPTS" in env:   # the worker's setting: forced, or TF's own choice
        onednn = env["TF_ENABLE_ONEDNN_OPTS"]
        lines += ["import os", "", "# read once, when TensorFlow is imported: set it first"]
        lines.append(f"os.environ['TF_ENABLE_ONEDNN_OPTS'] = {onednn!r}" if onednn is not None
                     else "os.environ.pop('TF_ENABLE_ONEDNN_OPTS', None)  # as shipped: TF "
                          "decides by this CPU")
    lines.append("import numpy as np")
    if any(c.dtype == "bfloat16" for c in cases):
        lines.append("import ml_dtypes  # bfloat16 for NumPy; a TensorFlow dependency")
    if spec.kind == "tf":
        lines.append("import tensorflow as tf")
    elif spec.kind == "impl":
        lines.append("from conv3dt.impl import conv3d_transpose")
    elif spec.kind == "impl-grad":
        lines.append("from conv3dt.impl import conv3d_transpose_grads")
    elif spec.kind in ("module", "module-grad"):
        lines.append(f"from {spec.module} import {spec.function.split('.')[0]}")
        if "." in spec.function:
            lines.append(f"{spec.function.split('.')[-1]} = {spec.function}")
    elif spec.kind in MAPPED:
        module, what = MAPPED[spec.kind]
        lines += ["import json", "", f"from conv3dt.oracle import {module}  # conv3dt's mapping of "
                  f"TF's arguments to {what}", "from conv3dt.oracle.case import Case", "",
                  f"{module}.warm_up()"]
    return lines


def _guarded(body: list[str]) -> list[str]:
    """``body`` with an exception kept in ``result`` instead of ending the script."""
    return ["try:", *[f"    {line}" if line else "" for line in body],
            "except Exception as exc:  # kept: the check below judges a rejection too",
            "    result = exc"]


def render_reproducer(case: Case, target: str = "tf-eager", *, note: str | None = None,
                      check: list[str] | None = None) -> str:
    """A standalone script that makes ``case``'s call on ``target``; the result is ``result``.
    Without ``check`` an exception ends the script with its traceback; with it, ``result`` holds
    the exception too and the lines ``check`` (the caller's judgement of it, e.g.
    ``fuzz.recheck``) end the script."""
    lines = _preamble([case], target, f"case {case.case_id} ({case.label})", note)
    lines += ["", _arrays_source(case), ""]
    if check is None:
        lines += _body(case, target)
        lines += ["", "result = np.asarray(result)",
                  "print('result:', result.dtype, result.shape)",
                  "print(np.array2string(result.ravel()[:8].astype(np.float64), precision=8))"]
        return "\n".join(lines) + "\n"
    lines += _guarded(_body(case, target))
    lines += ["", "if isinstance(result, BaseException):",
              "    print('raised:', type(result).__name__, str(result)[:500])",
              "else:",
              "    shown = np.asarray(result)",
              "    print('result:', shown.dtype, shown.shape)",
              "    print(np.array2string(shown.ravel()[:8].astype(np.float64), precision=8))",
              "", *check]
    return "\n".join(lines) + "\n"


def render_calls(cases: list[Case], target: str, finale: list[str], *,
                 note: str | None = None, check: list[str] | None = None) -> str:
    """One standalone script making every call of ``cases`` on ``target`` in turn (what each
    gave, result or exception, in ``o0, o1, ...``); when every call gave a result, ``r0, r1,
    ...`` are them as float64 arrays and the lines ``finale`` run (they may use them, and the
    first Case's arrays ``value`` and ``filter_``); then the lines ``check``. For relations
    between several calls: ``fuzz.metamorphic``."""
    lines = _preamble(cases, target, f"{len(cases)} call{'s' if len(cases) != 1 else ''}", note)
    for i, case in enumerate(cases):
        lines += ["", f"# call {i}", _arrays_source(case), *_guarded(_body(case, target)),
                  f"o{i} = result"]
    outs = ", ".join(f"o{i}" for i in range(len(cases)))
    lines += ["", f"if not any(isinstance(o, BaseException) for o in ({outs},)):",
              *[f"    r{i} = np.asarray(o{i}, dtype=np.float64)" for i in range(len(cases))],
              "    # the first call's arrays",
              *[f"    {line}" for line in _arrays_source(cases[0]).splitlines()],
              *[f"    {line}" if line else "" for line in finale],
              "else:",
              f"    print('raised:', [type(o).__name__ for o in ({outs},) "
              "if isinstance(o, BaseException)])"]
    if check:
        lines += ["", *check]
    return "\n".join(lines) + "\n"
