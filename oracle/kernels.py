"""Which kernel actually ran a call: observed per call, never inferred from a target's name.

TensorFlow picks its CPU kernel at run time: with oneDNN on (TF's default on CPUs with AVX-512
VNNI/BF16 or AMX, or ``TF_ENABLE_ONEDNN_OPTS=1``) the graph/eager rewrite replaces
``Conv3DBackpropInputV2`` by ``_MklNativeConv3DBackpropInputV2`` for the dtypes that kernel is
registered for (float32, bfloat16, float16 on TF 2.21); float64, or oneDNN off, runs the stock
(Eigen) kernel; ``jit_compile=True`` runs XLA's own code. So the same target runs different
kernels on different machines and for different dtypes, and a deviation belongs to the kernel.

A :class:`KernelObservation` says which *family* ran one call and how we know:

- ``verbose``: oneDNN itself said so. TF workers start with ``ONEDNN_VERBOSE=1``: oneDNN prints
  one ``onednn_verbose,...,exec,cpu,convolution,<impl>,<prop_kind>,<memory descs>,...`` line per
  executed primitive (flushed to the worker's stdout file); ``impl`` (e.g.
  ``brgconv_strided:avx512_core``) and the weights' memory blocking (e.g. ``Bcdea16b``) come
  from the backward-data convolution line.
- ``message``: the error or crash text names a oneDNN kernel (``_MklNative...``,
  ``mkl_conv_grad_input_ops.cc``, ``MklConv...Op`` frames) or the stock op
  (``[Op:Conv3DBackpropInputV2]``, ``Conv3DBackpropInputOpV2``).
- ``silent``: the call returned a non-empty result from non-empty operands (a gradient's g
  included) and oneDNN, reporting every primitive it executes, reported none: the stock kernel
  computed it. Seen on TF 2.21 on an AMD EPYC with
  AVX-512 BF16 but no AVX512-FP16: the oneDNN rewrite is registered for float16, yet a float16
  call prints no oneDNN line and gives exactly the stock kernel's (half-rounded) result.
- ``registry``: no such text (a call that returned early, an empty result, a crash without a
  FATAL line): TF's own decision inputs — oneDNN on or off as TF decided
  (``IsMklEnabled()``, asked in the worker) and the dtypes the oneDNN kernel is registered for
  (``get_registered_kernels_for_op``) — give the kernel TF's rewrite selects.
- ``path``: the target's nature decides (``xla`` for ``tf-xla``; ``impl``, ``jax``,
  ``onnxruntime``, ``openvino``, ``external`` for ``module:function``).

This module imports neither TensorFlow nor fuzz; the worker and the pool both use it.
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple

#: Every kernel family a ledger entry or a test may name.
KERNEL_FAMILIES = ("onednn", "stock", "xla", "impl", "jax", "onnxruntime", "openvino", "external")
EVIDENCE = ("verbose", "message", "registry", "path", "silent")

#: The worker environment variable that makes oneDNN report each executed primitive.
VERBOSE_ENV = {"ONEDNN_VERBOSE": "1"}

_CONV_LINE = re.compile(r"^onednn_verbose,(?:v\d+,)?(?:primitive,)?exec,cpu,convolution,"
                        r"(?P<impl>[^,]*),(?P<prop>[^,]*),(?P<mds>[^,]*)", re.M)
_WEIGHTS = re.compile(r"wei:[^: ]*:[^: ]*:blocked:(?P<fmt>[^: ]+)")
_ONEDNN_TEXT = re.compile(r"_MklNative\w*|_Mkl\w*Conv\w*|mkl_conv\w*\.cc|\bMkl\w*Op\b|"
                          r"could not create a (?:primitive )?descriptor")
_STOCK_TEXT = re.compile(r"\[Op:Conv3DBackpropInputV2\]|__wrapped__Conv3DBackpropInputV2|"
                         r"Conv3DBackpropInputOpV2|conv_grad_input_ops\.cc|conv_grad_ops_3d\.cc|"
                         # the stock Conv3D (tf-grad's forward op): Eigen's NDHWC-only check
                         r"CPU implementation of Conv3D currently only supports (?:the NHWC|dilated)|"
                         r"Current CPU implementation does not yet support dilation rates larger")


class KernelObservation(NamedTuple):
    """The kernel family that ran one call, the implementation and weight blocking oneDNN
    reported (``None`` where nothing reported one) and the evidence (see the module doc)."""

    family: str
    impl: str | None = None
    weights: str | None = None
    evidence: str = "path"

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "impl": self.impl, "weights": self.weights,
                "evidence": self.evidence}

    @classmethod
    def from_json(cls, obj: dict[str, Any] | None) -> "KernelObservation | None":
        if obj is None:
            return None
        return cls(obj["family"], obj.get("impl"), obj.get("weights"), obj.get("evidence", "path"))

    @property
    def label(self) -> str:
        """``family`` or ``family:impl/weights`` — what reports count per target."""
        detail = "/".join(x for x in (self.impl, self.weights) if x)
        return f"{self.family}:{detail}" if detail else self.family


def onednn_convolutions(text: str) -> list[tuple[str, str, str | None]]:
    """(impl, prop_kind, weights blocking) of every oneDNN convolution executed in ``text``."""
    out = []
    for m in _CONV_LINE.finditer(text):
        w = _WEIGHTS.search(m.group("mds"))
        out.append((m.group("impl"), m.group("prop"), w.group("fmt") if w else None))
    return out


#: The oneDNN primitive that computes each operation (``Case.operation``): the forward op is
#: oneDNN's backward-data convolution; its gradients are a forward convolution of g (dvalue) and
#: a backward-weights convolution (dfilter). A gradient call also runs the forward, whose line is
#: not the gradient's kernel.
_PRIMITIVE_OF = {"forward": ("backward_data",), "grad-value": ("forward_training", "forward_inference"),
                 "grad-filter": ("backward_weights",)}


def observe(kind: str, path: str | None, dtype: str | None, text: str,
            facts: dict[str, Any], computed: bool = False, operation: str = "forward"
            ) -> KernelObservation:
    """The kernel that ran a call of a target of ``kind`` (``tf``/``impl``/``jax``/``onnxruntime``/
    ``openvino``/``module``, and the gradient kinds ``impl-grad``/``module-grad``)
    and TF ``path``, on arrays of ``dtype``, given the call's output ``text`` (oneDNN verbose
    lines, the exception message or the crash's stderr) and the worker's ``facts``
    (``onednn_enabled``, ``onednn_dtypes``, from :func:`oracle.tf_paths.warm_up`).
    ``computed``: the call returned a non-empty result (so a oneDNN kernel would have printed
    its verbose line). ``operation``: ``Case.operation`` (a gradient's kernel is the primitive
    computing that gradient, ``_PRIMITIVE_OF``)."""
    if kind != "tf":
        family = kind.removesuffix("-grad")
        return KernelObservation(family if family in ("impl", "jax", "onnxruntime", "openvino")
                                 else "external")
    if path in ("xla", "grad-xla"):
        return KernelObservation("xla")
    convs = onednn_convolutions(text)
    if operation != "forward":
        mine = [c for c in convs if c[1] in _PRIMITIVE_OF[operation]]
        if mine:
            return KernelObservation("onednn", mine[-1][0], mine[-1][2], "verbose")
        if convs and computed:   # oneDNN ran the forward and reported no gradient primitive
            return KernelObservation("stock", evidence="silent")
        convs = []
    if convs:
        data = [c for c in convs if c[1] == "backward_data"] or convs
        return KernelObservation("onednn", data[-1][0], data[-1][2], "verbose")
    if _ONEDNN_TEXT.search(text):
        return KernelObservation("onednn", evidence="message")
    if _STOCK_TEXT.search(text):
        return KernelObservation("stock", evidence="message")
    onednn = bool(facts.get("onednn_enabled")) and dtype in (facts.get("onednn_dtypes") or ())
    if onednn and computed:
        return KernelObservation("stock", evidence="silent")
    return KernelObservation("onednn" if onednn else "stock", evidence="registry")
