"""The TensorFlow call code for every ``tf-*`` target. Runs inside worker processes only.

TensorFlow is imported lazily (``_tf()``), so importing this module is cheap; a worker
calls :func:`warm_up` once after start. Each path takes a Case plus its materialised
(value, filter) arrays and returns what TF returned as a NumPy array (dtype and shape
exactly as returned; bfloat16 as ``ml_dtypes.bfloat16``, given to TF as its own bfloat16 type,
see :func:`from_numpy`). Whatever TF raises propagates
to the worker, which records it.

Per-path adaptation of the Case's v1 arguments:

- ``eager``     ``tf.compat.v1.nn.conv3d_transpose(*args, **kwargs)``, arguments exactly as
                recorded (NumPy arrays in, ``tf.constant`` for ``tensor-*`` output_shape).
- ``graph``     the same call built in a ``tf.compat.v1.Graph`` whose value and filter are
                placeholders of the Case's exact dtype and static shape, run by a Session with
                the arrays fed — the way a v1 model calls the op. Shape inference / attr checks
                raise at construction (often ``ValueError``). A built (graph, session) is cached
                per argument structure (``oracle.case.structure_key``, LRU), like the traced
                functions; a structure whose construction raised is rebuilt, so the error is
                seen on every call.
- ``function``  the call traced in ``tf.function`` (value and filter are the function's
                tensor arguments; every other argument is a Python constant of the trace).
                Traced functions are cached per argument structure (LRU).
- ``xla``       the same with ``jit_compile=True``.
- ``v2``        ``tf.nn.conv3d_transpose``: ``value``/``input`` -> ``input``,
                ``filter``/``filters`` -> ``filters``; positional stays positional; v1-only
                spellings that v2 lacks (both aliases given) are passed as-is, so v2's own
                ``TypeError`` is what is observed; omitted ``strides`` -> ``strides=None``
                (v1's default, which v2 treats the same way).
- ``grad``      ``∂⟨conv3d(x, filter), value⟩/∂x`` with ``x = zeros(output_shape)``, via
                ``GradientTape.gradient(..., output_gradients=value)``. conv3d_transpose's
                filter ``[KD, KH, KW, Cout, Cin]`` *is* the forward conv3d filter
                ``[KD, KH, KW, in_channels=Cout, out_channels=Cin]``: no transposition.
                strides/dilations are expanded to the length-5 form conv3d requires.
                Argument forms with no gradient equivalent (both aliases, a missing array)
                raise :class:`oracle.targets.Inexpressible`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from conv3dt.oracle.case import Case, structure_key
from conv3dt.oracle.targets import Inexpressible, expand_to_5, grad_check, v2_case

#: Traced functions and built graphs per (path, argument structure), least recently used first.
_FUNCTION_CACHE: "OrderedDict[tuple[str, str], Any]" = OrderedDict()
FUNCTION_CACHE_SIZE = 128


def _tf():
    import tensorflow as tf

    return tf


def warm_up() -> dict:
    """Import TF, quiet its Python logger, and report versions and XLA availability."""
    return {**import_facts(), **runtime_facts()}


def import_facts() -> dict:
    """Import TF, quiet its Python logger, and report what is known without running an op:
    versions, build, oneDNN state and dtypes. Starts no thread (TF's runtime and its pools start
    at the first op), so a zygote may fork after it (``oracle.forkserver``)."""
    tf = _tf()
    tf.get_logger().setLevel("ERROR")
    info: dict[str, Any] = {"tensorflow": tf.__version__,
                            "tf_git_version": getattr(tf.version, "GIT_VERSION", None)}
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        info["tf_built_with_xla"] = bool(port.IsBuiltWithXLA())
        info["tf_mkl_build"] = bool(port.IsMklEnabled())
    except Exception as exc:  # noqa: BLE001 - private API; record why it is unknown
        info["tf_port_query_error"] = repr(exc)
    info.update(onednn_facts(tf, info))
    info["tf_build_info"] = {k: str(v) for k, v in tf.sysconfig.get_build_info().items()}
    return info


def runtime_facts() -> dict:
    """Whether XLA compiles and runs here: one jit-compiled call (this starts TF's runtime)."""
    tf = _tf()
    info: dict[str, Any] = {}
    try:
        out = tf.function(lambda a: a * 2.0, jit_compile=True)(tf.constant([1.0]))
        info["xla_available"] = bool(out.numpy()[0] == 2.0)
    except Exception as exc:  # noqa: BLE001
        info["xla_available"] = False
        info["xla_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return info


#: The op a conv3d_transpose call runs, and the kernel TF's oneDNN rewrite replaces it with.
STOCK_OP, ONEDNN_OP = "Conv3DBackpropInputV2", "_MklNativeConv3DBackpropInputV2"


def onednn_facts(tf, info: dict) -> dict:
    """Whether oneDNN is on *as TF decided* (CPU features, then ``TF_ENABLE_ONEDNN_OPTS``) and
    the dtypes TF registers the oneDNN kernel for: the inputs of TF's kernel choice
    (``oracle.kernels.observe``)."""
    out: dict[str, Any] = {"onednn_enabled": bool(info.get("tf_mkl_build")),
                           "stock_op": STOCK_OP, "onednn_op": ONEDNN_OP}
    try:
        from tensorflow.python.framework import kernels

        registered = kernels.get_registered_kernels_for_op(ONEDNN_OP).kernel
        out["onednn_dtypes"] = sorted({tf.dtypes.as_dtype(t).name for k in registered
                                       for c in k.constraint if c.name == "T"
                                       for t in c.allowed_values.list.type})
    except Exception as exc:  # noqa: BLE001 - private API; record why it is unknown
        out["onednn_dtypes"] = []
        out["onednn_registry_error"] = repr(exc)
    from conv3dt.oracle.environment import cpu_flags

    flags = cpu_flags()
    if flags:
        out["onednn_dtypes"] = [d for d in out["onednn_dtypes"] if onednn_takes(d, flags)]
    return out


def onednn_takes(dtype: str, flags: set[str]) -> bool:
    """TF's own per-dtype rule (``IsDataTypeSupportedByOneDNNOnThisCPU``, util.cc): with oneDNN
    on, float16 runs oneDNN only with AVX512BW plus AVX512-FP16 or AMX-FP16, or AVX-NE-CONVERT,
    else TF logs "oneDNN supports DT_HALF only on platforms with AVX-512. Falling back to the
    default Eigen-based implementation" (seen on TF 2.21, AMD EPYC with AVX-512 BF16 but no
    FP16); bfloat16 needs AVX512F or AVX-NE-CONVERT."""
    if dtype == "float16":
        return ("avx512bw" in flags and bool({"avx512_fp16", "amx_fp16"} & flags)) or "avx_ne_convert" in flags
    if dtype == "bfloat16":
        return "avx512f" in flags or "avx_ne_convert" in flags
    return True


def to_numpy(result: Any) -> np.ndarray:
    """A TF result as NumPy, dtype kept (bfloat16 -> ml_dtypes.bfloat16)."""
    arr = result.numpy() if hasattr(result, "numpy") else np.asarray(result)
    arr = np.asarray(arr)
    if arr.dtype.name == "bfloat16" and type(arr.dtype.type).__module__ != "ml_dtypes":
        import ml_dtypes

        arr = arr.view(ml_dtypes.bfloat16)
    return arr


def _constant(values: Any, dtype: str):
    return _tf().constant(values, dtype=dtype)


def from_numpy(arrays: tuple) -> tuple:
    """The inputs as this TF takes them: bfloat16 as TF's own NumPy bfloat16 type.

    TF >= 2.13 uses ``ml_dtypes.bfloat16`` (a no-op here); TF 2.12 has its own type and
    rejects an ``ml_dtypes.bfloat16`` array ('Unsupported numpy type: not a numpy type';
    graph feeds: 'Cannot cast array data from dtype(bfloat16) to dtype(bfloat16)'), which
    made every bfloat16 Case a false accept-reject finding. Same bits, so a view."""
    tf_bf16 = None
    out = []
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype.name == "bfloat16":
            if tf_bf16 is None:
                tf_bf16 = np.dtype(_tf().bfloat16.as_numpy_dtype)
            if a.dtype != tf_bf16:
                a = a.view(tf_bf16)
        out.append(a)
    return tuple(out)


def run(path: str, case: Case, arrays: tuple) -> np.ndarray:
    """Run one Case on one TF path; return TF's result as NumPy (raises what TF raises)."""
    return to_numpy(_PATHS[path](case, from_numpy(arrays)))


# ------------------------------------------------------------------ the paths
def _eager(case: Case, arrays: tuple):
    args, kwargs = case.call_args(tensor=_constant, arrays=arrays)
    return _tf().compat.v1.nn.conv3d_transpose(*args, **kwargs)


def _lru_get(key: tuple, build):
    """The cached object for ``key``, built (and the oldest evicted) on a miss."""
    hit = _FUNCTION_CACHE.get(key)
    if hit is not None:
        _FUNCTION_CACHE.move_to_end(key)
        return hit
    hit = _FUNCTION_CACHE[key] = build()
    while len(_FUNCTION_CACHE) > FUNCTION_CACHE_SIZE:
        evicted = _FUNCTION_CACHE.popitem(last=False)[1]
        if hasattr(evicted, "session"):   # a built v1 graph (this module's or tf_grad_paths')
            evicted.session.close()
    return hit


class GraphCall:
    """One built v1 graph: a placeholder per array (its exact dtype and static shape; None stays
    None), the output ``build(placeholders)`` makes of them, and an open Session that runs it
    with the arrays fed (``oracle.tf_grad_paths`` builds its gradients the same way)."""

    def __init__(self, arrays: tuple, build):
        tf = _tf()
        graph = tf.Graph()
        with graph.as_default():
            self.feeds = [None if a is None else
                          tf.compat.v1.placeholder(tf.as_dtype(a.dtype.name), a.shape)
                          for a in arrays]
            self.output = build(*self.feeds)
        self.session = tf.compat.v1.Session(graph=graph)

    def __call__(self, arrays: tuple):
        feed = {p: a for p, a in zip(self.feeds, arrays) if p is not None}
        return self.session.run(self.output, feed)


def _graph(case: Case, arrays: tuple):
    def build(value, filt):
        args, kwargs = case.call_args(tensor=_constant, arrays=(value, filt))
        return _tf().compat.v1.nn.conv3d_transpose(*args, **kwargs)

    return _lru_get(("graph", structure_key(case)), lambda: GraphCall(arrays, build))(arrays)


def _traced(case: Case, arrays: tuple, jit: bool):
    tf = _tf()

    def build():
        def call(value, filt):
            args, kwargs = case.call_args(tensor=_constant, arrays=(value, filt))
            return tf.compat.v1.nn.conv3d_transpose(*args, **kwargs)

        return tf.function(call, jit_compile=jit, reduce_retracing=False)

    fn = _lru_get(("xla" if jit else "function", structure_key(case)), build)
    value, filt = arrays
    return fn(None if value is None else tf.constant(value),
              None if filt is None else tf.constant(filt))


def _function(case: Case, arrays: tuple):
    return _traced(case, arrays, jit=False)


def _xla(case: Case, arrays: tuple):
    return _traced(case, arrays, jit=True)


def _v2(case: Case, arrays: tuple):
    args, kwargs = v2_case(case).call_args(tensor=_constant, arrays=arrays)
    return _tf().nn.conv3d_transpose(*args, **kwargs)


def _grad(case: Case, arrays: tuple):
    tf = _tf()
    grad_check(case)
    value, filt = arrays
    dy = tf.constant(value)
    shape = case._output_shape_object(_constant)
    with tf.GradientTape() as tape:
        x = tf.zeros(shape, dtype=dy.dtype)
        tape.watch(x)
        y = tf.nn.conv3d(x, tf.constant(filt),
                         strides=expand_to_5(case.strides, case.strides_form, case.data_format),
                         padding=case.padding, data_format=case.data_format,
                         dilations=expand_to_5(case.dilations, case.dilations_form, case.data_format))
    grad = tape.gradient(y, x, output_gradients=dy)
    if grad is None:
        raise RuntimeError("tf-grad: GradientTape returned no gradient for x")
    return grad


_PATHS = {"eager": _eager, "graph": _graph, "function": _function, "xla": _xla,
          "v2": _v2, "grad": _grad}
TF_PATH_NAMES = tuple(_PATHS)
