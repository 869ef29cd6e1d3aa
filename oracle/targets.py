"""The target registry: stable names -> how a Case is run, and in which environment.

A *target* is one way of executing ``conv3d_transpose``. Its :class:`TargetSpec` says

- ``kind``: ``tf`` (a TensorFlow path, see ``oracle.tf_paths``), ``impl`` (our NumPy
  reference), ``jax`` (``jax.lax`` mapped to TF's semantics) or ``module`` (any callable
  ``module:function`` with TF's v1 signature — a vendor kernel, or a test fixture);
- ``env``: the environment variables its worker process must start with. Workers are keyed
  by environment, so every TF path sharing ``TF_ENABLE_ONEDNN_OPTS`` runs in one warm
  process (three TF imports for the eight default TF targets, not eight);
- ``isolated``: whether it must run in a disposable worker process (TF and ``module:``
  targets always; ``impl`` runs in-process unless asked otherwise).

This module never imports TensorFlow; it is safe to import anywhere.
"""
from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from typing import Any

from conv3dt.oracle.kernels import VERBOSE_ENV

# TF_CPP_MIN_LOG_LEVEL=1 hides INFO chatter but keeps WARNING/ERROR and, above all, FATAL
# (CHECK-failure) lines, which the crash Outcome's stderr tail must show.
TF_BASE_ENV = {"TF_CPP_MIN_LOG_LEVEL": "1"}
UNSET = None  # an env value of None means "remove this variable from the worker's environment"

KNOWN_TARGETS: dict[str, str] = {
    "tf-eager": "tf.compat.v1.nn.conv3d_transpose, eager, TensorFlow as shipped "
                "(TF_ENABLE_ONEDNN_OPTS unset: TF picks oneDNN by CPU)",
    "tf-eager-stock": "tf.compat.v1.nn.conv3d_transpose, eager, TF_ENABLE_ONEDNN_OPTS=0 (stock kernels)",
    "tf-eager-onednn": "tf.compat.v1.nn.conv3d_transpose, eager, TF_ENABLE_ONEDNN_OPTS=1 (oneDNN forced on)",
    "tf-graph": "tf.compat.v1.nn.conv3d_transpose in a tf.compat.v1 Graph + Session, value and "
                "filter fed through placeholders (graph-construction errors are seen)",
    "tf-function": "tf.compat.v1.nn.conv3d_transpose inside tf.function (no XLA)",
    "tf-xla": "tf.compat.v1.nn.conv3d_transpose inside tf.function(jit_compile=True)",
    "tf-v2": "tf.nn.conv3d_transpose (v2 API: input/filters), eager",
    "tf-grad": "d<conv3d(x, filter), value>/dx via tf.GradientTape — the same mathematical op",
    "impl": "conv3dt's NumPy reference impl.conv3d_transpose",
    # gradient targets: they answer gradient Cases (oracle.case.Case.grad_wrt) only
    "tf-grad-eager": "both gradients of tf.compat.v1.nn.conv3d_transpose by tf.GradientTape, eager, "
                     "TensorFlow as shipped (Conv3D for dvalue, Conv3DBackpropFilterV2 for dfilter)",
    "tf-grad-eager-stock": "the same, TF_ENABLE_ONEDNN_OPTS=0 (stock kernels)",
    "tf-grad-eager-onednn": "the same, TF_ENABLE_ONEDNN_OPTS=1 (oneDNN forced on)",
    "tf-grad-function": "the GradientTape inside tf.function (graph kernels, TF's shape functions)",
    "tf-grad-xla": "the GradientTape inside tf.function(jit_compile=True)",
    "tf-grad-v1": "tf.compat.v1.gradients(y, [value, filter], grad_ys=g) in a v1 Graph + Session",
    "impl-grad": "conv3dt's NumPy reference impl.conv3d_transpose_grads",
    "jax": "jax.lax.conv_general_dilated mapped to TF's semantics (optional extra: jax[cpu])",
    "onnxruntime": "ONNX ConvTranspose on ONNX Runtime's CPU provider, mapped to TF's semantics "
                   "(optional extra: conv3dt[onnxruntime])",
    "openvino": "OpenVINO ConvolutionBackpropData on its CPU plugin, mapped to TF's semantics "
                "(optional extra: conv3dt[openvino])",
}

#: Cross-framework targets (kind = name): the module mapping each to TF's contract, and the
#: import that must be available. Like jax, not in ``default_targets()``: see that function.
FRAMEWORK_TARGETS = {"onnxruntime": ("conv3dt.oracle.ort_path", ("onnxruntime", "onnx")),
                     "openvino": ("conv3dt.oracle.openvino_path", ("openvino",))}

# The targets a gate runs when none are named. tf-eager-stock and tf-eager-onednn force oneDNN
# off and on, so both kernel families run on every CPU: TF enables oneDNN by itself only on CPUs
# with AVX-512 VNNI/BF16 or AMX (and on those, the stock kernel runs only when forced). That
# costs three TF worker environments (as shipped, off, on; ~0.6 GB each). tf-eager stays: TF as
# shipped, whatever it picks here.
DEFAULT_TARGET_NAMES = ("tf-eager", "tf-eager-stock", "tf-eager-onednn", "tf-graph", "tf-function",
                        "tf-xla", "tf-v2", "tf-grad", "impl")
#: The gradient targets a gate runs by default alongside the forward ones: every TF training path
#: (sharing the forward's three TF workers: no extra TF import) and impl's gradients.
DEFAULT_GRADIENT_TARGET_NAMES = ("tf-grad-eager", "tf-grad-eager-stock", "tf-grad-eager-onednn",
                                 "tf-grad-function", "tf-grad-xla", "tf-grad-v1", "impl-grad")
#: A vendor's backward: ``grad:module:function`` with ``impl.conv3d_transpose_grads``'s signature,
#: returning ``(dvalue, dfilter)``.
GRADIENT_MODULE_PREFIX = "grad:"


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: str                                   # 'tf' | 'impl' | 'jax' | 'module' | 'impl-grad' | 'module-grad' | a framework
    description: str
    env: tuple[tuple[str, str | None], ...] = ()  # variables set (or removed, value None) in the worker
    isolated: bool = True
    module: str | None = None                   # for kind 'module'
    function: str | None = None
    path: str | None = None                     # for kind 'tf': eager|graph|function|xla|v2|grad, or grad-eager|grad-function|grad-xla|grad-v1
    #: a built-in target's capability declaration (``oracle.capabilities`` schema); None: the
    #: whole contract, or for a ``module`` target whatever its callable declares
    capabilities: dict | None = None

    @property
    def gradient(self) -> bool:
        """A gradient target: it answers gradient Cases (``Case.grad_wrt``), never forward ones."""
        return self.kind in ("impl-grad", "module-grad") or (self.path or "").startswith("grad-")

    @property
    def env_key(self) -> tuple[tuple[str, str | None], ...]:
        """Targets with equal env_key share one worker process."""
        return tuple(sorted(self.env, key=lambda kv: kv[0]))

    def env_dict(self) -> dict[str, str | None]:
        return dict(self.env)


#: Forces the as-shipped TF paths' oneDNN setting ("0" or "1"; unset: TF decides by CPU). For
#: proving a verdict on both machine kinds from one machine (``conv3dt gate --as-shipped-onednn``,
#: the suite's kernel-dependent tests); a user's gate leaves it unset.
AS_SHIPPED_ONEDNN_VAR = "CONV3DT_AS_SHIPPED_ONEDNN"


def as_shipped_onednn() -> str | None:
    """The forced oneDNN setting of the as-shipped TF paths, or None (TF decides)."""
    value = os.environ.get(AS_SHIPPED_ONEDNN_VAR) or None
    if value not in (None, "0", "1"):
        raise ValueError(f"{AS_SHIPPED_ONEDNN_VAR}={value!r} is invalid; expected 0, 1 or unset")
    return value


def _tf_env(onednn: str | None) -> tuple[tuple[str, str | None], ...]:
    """A TF worker's environment: oneDNN as given (None: as shipped, unless forced by
    ``AS_SHIPPED_ONEDNN_VAR``) and oneDNN's per-primitive report on (``oracle.kernels``)."""
    if onednn is None:
        onednn = as_shipped_onednn()
    return tuple(sorted({**TF_BASE_ENV, **VERBOSE_ENV, "TF_ENABLE_ONEDNN_OPTS": onednn}.items()))


_TF_PATHS = {
    "tf-eager": ("eager", None), "tf-eager-stock": ("eager", "0"), "tf-eager-onednn": ("eager", "1"),
    "tf-graph": ("graph", None), "tf-function": ("function", None), "tf-xla": ("xla", None),
    "tf-v2": ("v2", None), "tf-grad": ("grad", None),
    "tf-grad-eager": ("grad-eager", None), "tf-grad-eager-stock": ("grad-eager", "0"),
    "tf-grad-eager-onednn": ("grad-eager", "1"), "tf-grad-function": ("grad-function", None),
    "tf-grad-xla": ("grad-xla", None), "tf-grad-v1": ("grad-v1", None),
}


class UnknownTarget(ValueError):
    """The name is neither a known target nor a ``module:function`` reference."""


def resolve(name: str, *, isolate_impl: bool = False) -> TargetSpec:
    """The TargetSpec for a target name (known name or ``module:function``)."""
    if name in _TF_PATHS:
        path, onednn = _TF_PATHS[name]
        return TargetSpec(name, "tf", KNOWN_TARGETS[name], env=_tf_env(onednn), path=path)
    if name in ("impl", "impl-grad"):
        return TargetSpec(name, name, KNOWN_TARGETS[name], isolated=isolate_impl)
    if name == "jax":
        return TargetSpec(name, "jax", KNOWN_TARGETS[name],
                          env=(("JAX_PLATFORMS", "cpu"), ("XLA_PYTHON_CLIENT_PREALLOCATE", "false")))
    if name in FRAMEWORK_TARGETS:   # the mapping module declares what its backend supports
        module = importlib.import_module(FRAMEWORK_TARGETS[name][0])   # (imports no backend)
        return TargetSpec(name, name, KNOWN_TARGETS[name], capabilities=dict(module.CAPABILITIES))
    gradient = name.startswith(GRADIENT_MODULE_PREFIX)
    reference = name[len(GRADIENT_MODULE_PREFIX):] if gradient else name
    if ":" in reference:
        module, _, function = reference.partition(":")
        if module and function and all(p.isidentifier() for p in module.split(".")) \
                and all(p.isidentifier() for p in function.split(".")):
            if gradient:
                return TargetSpec(name, "module-grad", f"{function} from module {module} "
                                  "(impl.conv3d_transpose_grads signature: both gradients)",
                                  module=module, function=function)
            return TargetSpec(name, "module", f"{function} from module {module} (TF v1 signature)",
                              module=module, function=function)
    raise UnknownTarget(f"unknown target {name!r}: use one of {sorted(KNOWN_TARGETS)}, "
                        f"'module:function' (a forward kernel) or 'grad:module:function' (a backward)")


def is_gradient_target(name: str) -> bool:
    """Whether a target name is a gradient target (see ``TargetSpec.gradient``); unknown: False."""
    try:
        return resolve(name).gradient
    except UnknownTarget:
        return False


def default_targets() -> list[str]:
    """Target names run when none are named: every TF path plus impl (jax when installed), and
    the gradient targets (every TF training path of the op's backward, and impl-grad).

    The ``onnxruntime`` and ``openvino`` targets are never added, even when installed: they gate
    another framework, not TF, and a default TF gate must not pay for two more worker
    environments (a spawned ORT or OpenVINO worker, a model compiled per call structure) or fail
    on their own deviations. Name them (``--target onnxruntime``) to gate them."""
    names = list(DEFAULT_TARGET_NAMES) + list(DEFAULT_GRADIENT_TARGET_NAMES)
    if jax_installed():
        names.append("jax")
    return names


def framework_installed(name: str) -> bool:
    """Whether the packages a cross-framework target (``FRAMEWORK_TARGETS``) imports are installed."""
    return all(importlib.util.find_spec(m) is not None for m in FRAMEWORK_TARGETS[name][1])


def jax_installed() -> bool:
    return importlib.util.find_spec("jax") is not None


def tf_installed() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


#: The distributions that install the ``tensorflow`` module: whichever is there is gated.
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu",
                    "tensorflow-intel", "tensorflow-macos", "intel-tensorflow")


def tf_distributions() -> list[tuple[str, str]]:
    """``(distribution, version)`` of every installed TF distribution, without importing TF.
    More than one means they overwrite each other's ``tensorflow`` module."""
    from importlib import metadata

    found = []
    for name in TF_DISTRIBUTIONS:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return found


class Inexpressible(TypeError):
    """A target cannot express this Case's argument form (e.g. tf-grad given both aliases).

    Raised inside the target adaptation and recorded as a ``raised`` Outcome, so a judge
    can tell "this path has no way to make that call" from a TensorFlow rejection.
    """

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target} cannot express this call: {reason}")
        self.target, self.reason = target, reason


# ---------------------------------------------------------------------- per-target adaptation
def v2_case(case):
    """The Case as ``tf.nn.conv3d_transpose`` (v2) is called for the tf-v2 target.

    v1 names map to v2's (``value`` -> ``input``, ``filter`` -> ``filters``); positional stays
    positional; spellings v2 lacks (both aliases) are kept, so v2's own TypeError is observed;
    omitted strides become an explicit ``strides=None`` (v1's default, treated alike by v2).
    """
    changes: dict[str, Any] = {}
    if case.value_arg == "value":
        changes["value_arg"] = "input"
    if case.filter_arg == "filter":
        changes["filter_arg"] = "filters"
    if case.strides_form == "omitted":
        changes.update(strides_form="none", strides=None)
    return case.with_(**changes) if changes else case


def expand_to_5(value: Any, form: str, data_format: Any) -> Any:
    """strides/dilations in the length-5 form ``tf.nn.conv3d`` needs (tf-grad); odd forms pass through."""
    if form == "omitted" or value is None:
        return [1, 1, 1, 1, 1]
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value] * 3
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return [1, 1, *value] if data_format == "NCDHW" else [1, *value, 1]
    return value


#: tf-grad differentiates ``conv3d`` at ``x = zeros(output_shape)``: an output_shape at the integer
#: limits (2³¹ − 1 samples) would allocate x itself (16 GiB) before TF could reject the call.
GRAD_MAX_ELEMENTS = 2**27


def grad_check(case) -> None:
    """Raise Inexpressible when tf-grad has no equivalent of the Case's argument forms."""
    if case.value_arg in ("both", "missing") or case.filter_arg in ("both", "missing"):
        raise Inexpressible("tf-grad", f"value_arg={case.value_arg!r}, filter_arg={case.filter_arg!r}")
    if case.output_shape_form == "omitted":
        raise Inexpressible("tf-grad", "output_shape omitted (x has no shape)")
    shape = case.output_shape
    if isinstance(shape, (list, tuple)) and all(isinstance(n, int) and n >= 0 for n in shape) \
            and math.prod(shape) > GRAD_MAX_ELEMENTS:
        raise Inexpressible("tf-grad", f"x of output_shape {list(shape)} would hold "
                                       f"{math.prod(shape)} elements (at most {GRAD_MAX_ELEMENTS})")
