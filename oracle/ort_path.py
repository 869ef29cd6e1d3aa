"""The ``onnxruntime`` target: ONNX ``ConvTranspose`` on ONNX Runtime's CPU provider, mapped to
TF's ``conv3d_transpose`` contract.

Runs inside a spawned worker (onnxruntime and onnx are imported lazily; the optional extra
``conv3dt[onnxruntime]``). Every argument form of TF's v1 signature (aliases, sequence forms of
strides and dilations, output_shape as list / tuple / ndarray / tensor, NCDHW / NDHWC, SAME /
VALID, dilations, zero-size) is first normalised and validated by ``impl.normalize_call``, as
the ``jax`` target does: an invalid Case is rejected with impl's class (the doc's) before
ONNX Runtime sees it, since an ONNX model has no way to express most of TF's argument errors.
This target judges ONNX Runtime's arithmetic and its handling of valid geometry.

The mapping, per spatial axis (input size ``I``, TF output size ``O``, kernel ``K``, stride
``s``, dilation ``d``, ``eff = (K - 1)·d + 1``, TF's ``pad_before`` from impl: ``P // 2`` with
``P = max(0, (I - 1)·s + eff - O)`` for SAME, 0 for VALID). ONNX defines

    out[o] = Σ x[i]·w[k]   over   o = i·s + k·d − pads_begin,
    size   = (I − 1)·s + eff + output_padding − pads_begin − pads_end

which is TF's sum when ``pads_begin = pad_before``. The size must be ``O``: with
``full = (I − 1)·s + eff`` and ``end = full − O − pad_before``,

    end ≥ 0:  pads_end = end, output_padding = 0
    end < 0:  pads_end = 0,   output_padding = −end   (TF's trailing outputs reached by no tap,
              zeros: VALID's slack or SAME with a small kernel)

``−end < s`` for every valid call (VALID: ``(I − 1)·s + eff ≤ O < I·s + eff``; SAME: ``O ≤ I·s``
and ``pad_before = 0``), which ONNX Runtime requires (``output_padding < max(s, d)``).

Layouts: ONNX is channels-first. The value is passed as NCDHW (an NDHWC value is transposed by
NumPy, an exact copy, and the result transposed back); TF's filter ``[KD, KH, KW, Cout, Cin]``
is ONNX's ``W[Cin, Cout, KD, KH, KW]`` (``transpose(4, 3, 0, 1, 2)``, no spatial flip: both
define the transposed convolution, not a correlation). ``group = 1``.

Dtypes: ONNX's ``ConvTranspose`` admits float16, float32 and float64 (no bfloat16 in the
operator's type constraint); ONNX Runtime's CPU provider registers kernels for float32 and
float16 only (probed with onnxruntime 1.32: float64 is ``NOT_IMPLEMENTED`` "Could not find an
implementation for ConvTranspose(11)", bfloat16 an ``INVALID_GRAPH`` type error). Those are its
declared limits (``CAPABILITIES``); the model is still built in the Case's dtype, so ORT's own
rejection is what the Outcome records. One session per call structure (dtype, shapes, strides,
dilations, pads), cached (LRU); every session runs single-threaded (``intra_op_num_threads = 1``:
the suite shares its cores, and a thread count changes no defined result).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np

from conv3dt.oracle.case import Case

#: What ONNX Runtime's CPU ConvTranspose supports (schema: ``oracle.capabilities``). Probed with
#: onnxruntime 1.32: float16 and float32 kernels only. Layouts, paddings and dilations are all
#: expressible through the mapping above; zero-size shapes and every argument form are valid TF
#: calls it accepts (what it does with them is judged, not declared away).
CAPABILITIES: dict[str, Any] = {
    "dtypes": ["float16", "float32"],
    "layouts": ["NDHWC", "NCDHW"],
    "paddings": ["SAME", "VALID"],
    "dilations": True,
    "zero_size": True,
    "argument_forms": True,
}

OPSET = 17          # ConvTranspose-11 semantics; any ORT >= 1.16 runs opset 17
IR_VERSION = 8
CACHE_SIZE = 256    # sessions kept (a fuzz run makes one per call structure)

_SESSIONS: "OrderedDict[tuple, Any]" = OrderedDict()


def warm_up() -> dict[str, Any]:
    """Import ONNX Runtime and onnx, run one call (starting the runtime); the worker's facts."""
    import onnx
    import onnxruntime

    x = np.ones((1, 1, 2, 2, 2), np.float32)
    _session("float32", x.shape, (1, 1, 2, 2, 2), (1, 1, 1), (1, 1, 1), (0,) * 6, (0,) * 3).run(
        None, {"x": x, "w": x})
    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
            "onnxruntime_providers": list(onnxruntime.get_available_providers())}


def onnx_geometry(in_size: int, out_size: int, kernel: int, stride: int, dilation: int,
                  pad_before: int) -> tuple[int, int, int]:
    """``(pads_begin, pads_end, output_padding)`` of the ONNX ConvTranspose whose output on one
    axis is TF's: size ``out_size``, tap ``k`` of input ``i`` at ``i·s + k·d − pad_before``."""
    full = (in_size - 1) * stride + (kernel - 1) * dilation + 1
    end = full - out_size - pad_before
    return (pad_before, end, 0) if end >= 0 else (pad_before, 0, -end)


class ChannelsFirst(NamedTuple):
    """A Case as the channels-first backends (ONNX Runtime, OpenVINO) take it."""
    dtype: str
    ndhwc: bool                  # the result goes back to NDHWC
    x: np.ndarray                # [N, Cin, D, H, W], contiguous
    w: np.ndarray                # [Cin, Cout, KD, KH, KW], contiguous
    strides: tuple
    dilations: tuple
    pads_begin: tuple
    pads_end: tuple
    output_padding: tuple


def channels_first(case: Case, arrays: tuple) -> ChannelsFirst:
    """Validate the Case with impl's rules (``normalize_call``: the doc's error classes before
    any backend sees it) and map it per axis with ``onnx_geometry``."""
    from conv3dt.impl import normalize_call

    args, kwargs = case.call_args(tensor=lambda values, dt: np.asarray(values, dtype=dt), arrays=arrays)
    kwargs.pop("name", None)
    call = normalize_call(*args, **kwargs)
    ndhwc = call.data_format == "NDHWC"
    x = np.ascontiguousarray(call.value.transpose(0, 4, 1, 2, 3) if ndhwc else call.value)
    w = np.ascontiguousarray(call.filter.transpose(4, 3, 0, 1, 2))
    geo = [onnx_geometry(i, o, k, s, d, p) for i, o, k, s, d, p in zip(
        x.shape[2:], call.output_spatial, call.filter.shape[:3], call.strides, call.dilations,
        call.pad_before)]
    begin, end, output_padding = (tuple(g[j] for g in geo) for j in range(3))
    return ChannelsFirst(call.dtype.name, ndhwc, x, w, tuple(call.strides), tuple(call.dilations),
                         begin, end, output_padding)


def _onnx_type(dtype: str) -> int:
    from onnx import TensorProto

    return {"float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16,
            "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[dtype]


def _session(dtype: str, x_shape: tuple, w_shape: tuple, strides: tuple, dilations: tuple,
             pads: tuple, output_padding: tuple):
    """The cached InferenceSession of one ConvTranspose structure (built on first use)."""
    key = (dtype, tuple(x_shape), tuple(w_shape), strides, dilations, pads, output_padding)
    session = _SESSIONS.get(key)
    if session is not None:
        _SESSIONS.move_to_end(key)
        return session
    import onnxruntime as ort
    from onnx import helper

    elem = _onnx_type(dtype)
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=list(w_shape[2:]),
                            strides=list(strides), dilations=list(dilations), pads=list(pads),
                            output_padding=list(output_padding), group=1)
    graph = helper.make_graph([node], "conv3d_transpose",
                              [helper.make_tensor_value_info("x", elem, list(x_shape)),
                               helper.make_tensor_value_info("w", elem, list(w_shape))],
                              [helper.make_tensor_value_info("y", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    _SESSIONS[key] = session
    while len(_SESSIONS) > CACHE_SIZE:
        _SESSIONS.popitem(last=False)
    return session


def run(case: Case, arrays: tuple) -> np.ndarray:
    """The Case's call on ONNX Runtime, with TF's result layout, shape and dtype."""
    c = channels_first(case, arrays)
    session = _session(c.dtype, c.x.shape, c.w.shape, c.strides, c.dilations,
                       c.pads_begin + c.pads_end, c.output_padding)
    out = session.run(None, {"x": c.x, "w": c.w})[0]
    return np.ascontiguousarray(out.transpose(0, 2, 3, 4, 1)) if c.ndhwc else out
