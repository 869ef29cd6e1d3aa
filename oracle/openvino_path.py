"""The ``openvino`` target: OpenVINO's ``ConvolutionBackpropData`` (opset1) on its CPU plugin,
mapped to TF's ``conv3d_transpose`` contract.

Runs inside a spawned worker (openvino imported lazily; the optional extra
``conv3dt[openvino]``). Every argument form of TF's v1 signature is first normalised and
validated by ``impl.normalize_call``, as the ``jax`` target does: an invalid Case is rejected
with impl's class (the doc's) before OpenVINO sees it — an OpenVINO model cannot express TF's
argument errors. This target judges OpenVINO's arithmetic and its handling of valid geometry.

The mapping, per spatial axis (input size ``I``, TF output size ``O``, kernel ``K``, stride
``s``, dilation ``d``, ``eff = (K - 1)·d + 1``; TF's ``pad_before`` from impl: ``P // 2`` with
``P = max(0, (I - 1)·s + eff - O)`` for SAME, 0 for VALID). OpenVINO defines, with
``auto_pad = explicit`` and no ``output_shape`` input,

    out[o] = Σ x[i]·w[k]   over   o = i·s + k·d − pads_begin,
    size   = (I − 1)·s + eff − pads_begin − pads_end + output_padding

— the same as ONNX's ``ConvTranspose`` — so the geometry is ``oracle.ort_path.onnx_geometry``'s:
``pads_begin = pad_before``; with ``full = (I − 1)·s + eff`` and ``end = full − O − pad_before``,
``pads_end = end, output_padding = 0`` when ``end ≥ 0``, else ``pads_end = 0,
output_padding = −end`` (TF's trailing outputs reached by no tap; ``−end < s``).

Layouts: OpenVINO is channels-first (``data [N, Cin, D, H, W]``, ``filters [Cin, Cout, KD, KH,
KW]``): an NDHWC value is transposed by NumPy (an exact copy) and the result back; TF's filter
``[KD, KH, KW, Cout, Cin]`` becomes ``transpose(4, 3, 0, 1, 2)``, no flip.

Precision: the model is built in the Case's dtype (f16, bf16, f32, f64 parameters are all
accepted). The CPU plugin's default ``INFERENCE_PRECISION_HINT`` on a CPU with AVX-512 BF16 or
AMX is **bf16** — a float32 model would silently run in bfloat16, a documented performance
setting, not TF's float32 contract — so every model is compiled with the hint ``f32`` (the
highest the plugin offers) and ``INFERENCE_NUM_THREADS = 1`` (the suite shares its cores).
bfloat16 data crosses the Python API as raw bits: OpenVINO's Python tensors show bf16 memory
as a float16 *view* of the bits, and converting an ``ml_dtypes.bfloat16`` array through
``CompiledModel.__call__`` garbles it (probed: 1e30 came back as 1.08e4), so inputs are written
and outputs read as uint16 bit patterns. One compiled model per call structure, cached (LRU).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from conv3dt.oracle.case import Case
from conv3dt.oracle.ort_path import channels_first

#: What OpenVINO's CPU ConvolutionBackpropData supports (schema: ``oracle.capabilities``).
#: Probed with openvino 2026.4: models in every one of the four dtypes compile and run; layouts,
#: paddings and dilations are expressible through the mapping above; zero-size shapes and every
#: argument form are valid TF calls it accepts. What it computes wrongly (float64 in float32,
#: empty inputs, non-finite taps, bfloat16 specials) is judged and ledgered, not declared away.
CAPABILITIES: dict[str, Any] = {
    "dtypes": ["float16", "bfloat16", "float32", "float64"],
    "layouts": ["NDHWC", "NCDHW"],
    "paddings": ["SAME", "VALID"],
    "dilations": True,
    "zero_size": True,
    "argument_forms": True,
}

CACHE_SIZE = 256
CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}

_COMPILED: "OrderedDict[tuple, Any]" = OrderedDict()
_CORE: list = []


def _ov():
    """``(openvino, opset1)``: the opsets moved from ``openvino.runtime`` (2023.x) to the top level."""
    import openvino

    try:
        import openvino.opset1 as opset1
    except ImportError:   # openvino 2023.x
        import openvino.runtime.opset1 as opset1
    return openvino, opset1


def _core():
    if not _CORE:
        _CORE.append(_ov()[0].Core())
    return _CORE[0]


def warm_up() -> dict[str, Any]:
    """Import OpenVINO, compile and run one model (starting its thread pools); the worker's facts."""
    openvino, _ = _ov()
    x = np.ones((1, 1, 2, 2, 2), np.float32)
    _execute("float32", x, x, (1, 1, 1), (1, 1, 1), ((0, 0, 0), (0, 0, 0), (0, 0, 0)))
    core = _core()
    return {"openvino": openvino.__version__.split("-")[0], "openvino_build": openvino.__version__,
            "openvino_devices": list(core.available_devices),
            "openvino_default_precision": str(core.get_property("CPU", "INFERENCE_PRECISION_HINT"))}


def _element_type(dtype: str):
    t = _ov()[0].Type
    return {"float16": t.f16, "bfloat16": t.bf16, "float32": t.f32, "float64": t.f64}[dtype]


def _compiled(dtype: str, x_shape: tuple, w_shape: tuple, strides: tuple, dilations: tuple,
              geometry: tuple):
    """The cached CompiledModel of one ConvolutionBackpropData structure."""
    key = (dtype, x_shape, w_shape, strides, dilations, geometry)
    compiled = _COMPILED.get(key)
    if compiled is not None:
        _COMPILED.move_to_end(key)
        return compiled
    openvino, ops = _ov()
    pads_begin, pads_end, output_padding = geometry
    x = ops.parameter(list(x_shape), _element_type(dtype), name="x")
    w = ops.parameter(list(w_shape), _element_type(dtype), name="w")
    y = ops.convolution_backprop_data(x, w, list(strides), None, list(pads_begin), list(pads_end),
                                      list(dilations), auto_pad="explicit",
                                      output_padding=list(output_padding))
    compiled = _core().compile_model(openvino.Model([y], [x, w], "conv3d_transpose"), "CPU", CONFIG)
    _COMPILED[key] = compiled
    while len(_COMPILED) > CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return compiled


def _tensor(array: np.ndarray):
    """An OpenVINO tensor holding ``array``'s values (bfloat16 as its raw bits)."""
    openvino = _ov()[0]
    tensor = openvino.Tensor(_element_type(array.dtype.name), list(array.shape))
    if array.size:
        dst = np.asarray(tensor.data)
        if array.dtype.name == "bfloat16":
            dst.view(np.uint16)[...] = array.view(np.uint16)
        else:
            dst[...] = array
    return tensor


def _execute(dtype: str, x: np.ndarray, w: np.ndarray, strides: tuple, dilations: tuple,
             geometry: tuple) -> np.ndarray:
    compiled = _compiled(dtype, x.shape, w.shape, strides, dilations, geometry)
    request = compiled.create_infer_request()
    request.infer([_tensor(x), _tensor(w)])
    out = request.get_output_tensor(0)
    shape = tuple(out.shape)
    data = np.asarray(out.data)
    if dtype == "bfloat16":
        import ml_dtypes

        data = data.view(np.uint16).view(ml_dtypes.bfloat16)
    return np.array(data, copy=True).reshape(shape)


def run(case: Case, arrays: tuple) -> np.ndarray:
    """The Case's call on OpenVINO, with TF's result layout (and OpenVINO's shape and dtype)."""
    c = channels_first(case, arrays)
    geometry = (c.pads_begin, c.pads_end, c.output_padding)
    out = _execute(c.dtype, c.x, c.w, c.strides, c.dilations, geometry)
    return np.ascontiguousarray(out.transpose(0, 2, 3, 4, 1)) if c.ndhwc and out.ndim == 5 else out
