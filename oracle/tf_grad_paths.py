"""TF's backward pass of ``conv3d_transpose``: the call code of the ``tf-grad-*`` targets.
Runs inside worker processes only (TensorFlow is imported lazily, as in ``oracle.tf_paths``).

A gradient Case (``oracle.case.Case`` with ``grad_wrt``) asks for one of

    dvalue  = ∂⟨g, y⟩/∂value   (TF runs ``Conv3D`` of g with the forward's filter),
    dfilter = ∂⟨g, y⟩/∂filter  (TF runs ``Conv3DBackpropFilterV2`` of value and g),

for ``y = tf.compat.v1.nn.conv3d_transpose(<the Case's arguments, exactly as recorded>)`` and
``g = grad_output``. Each path records the forward call under a gradient machinery and asks for
the one gradient:

- ``grad-eager``     ``tf.GradientTape`` watching value and filter (``tf.constant``s), eager;
                     ``tape.gradient(y, source, output_gradients=g)``;
- ``grad-function``  the same tape inside ``tf.function`` (value, filter and g the function's
                     tensor arguments; traced once per call structure, LRU-cached);
- ``grad-xla``       the same with ``jit_compile=True``;
- ``grad-v1``        a ``tf.compat.v1`` Graph with placeholders for value, filter and g, and
                     ``tf.compat.v1.gradients(y, source, grad_ys=g)`` run by a Session (the graph
                     is built once per call structure).

Argument forms that give the gradient no array to differentiate (a missing value or filter) are
passed as recorded: TF's own rejection of the forward is what is observed. A gradient TF reports
as ``None`` (the source does not reach y) is an error, never silently zeros.
"""
from __future__ import annotations

from typing import Any

from conv3dt.oracle.case import Case, structure_key
from conv3dt.oracle.tf_paths import GraphCall, _constant, _lru_get, _tf, from_numpy, to_numpy


def run(path: str, case: Case, arrays: tuple) -> Any:
    """The requested gradient of a gradient Case on one TF gradient path, as NumPy."""
    if not case.is_gradient:
        raise TypeError(f"{path}: a gradient target runs gradient Cases only (this Case is the forward)")
    value, filt, g = from_numpy((*arrays, case.grad_array()))
    return to_numpy(_PATHS[path](case, value, filt, g))


def _source_index(case: Case) -> int:
    return 0 if case.grad_wrt == "value" else 1


def _checked(grad: Any, case: Case) -> Any:
    if grad is None:
        raise RuntimeError(f"TF returned no gradient for {case.grad_wrt} (it does not reach y)")
    return grad


def _forward(case: Case, value: Any, filt: Any) -> Any:
    args, kwargs = case.call_args(tensor=_constant, arrays=(value, filt))
    return _tf().compat.v1.nn.conv3d_transpose(*args, **kwargs)


def _taped(case: Case, value: Any, filt: Any, g: Any) -> Any:
    """The tape over the forward call, then the one gradient (eager or inside a trace)."""
    tf = _tf()
    with tf.GradientTape() as tape:
        for t in (value, filt):
            if t is not None:
                tape.watch(t)
        y = _forward(case, value, filt)
    source = (value, filt)[_source_index(case)]
    return _checked(tape.gradient(y, source, output_gradients=g), case)


def _tensor(a: Any) -> Any:
    return None if a is None else _tf().constant(a)


def _eager(case: Case, value: Any, filt: Any, g: Any) -> Any:
    return _taped(case, _tensor(value), _tensor(filt), _tensor(g))


def _traced(case: Case, value: Any, filt: Any, g: Any, jit: bool) -> Any:
    tf = _tf()

    def build():
        return tf.function(lambda v, f, dy: _taped(case, v, f, dy), jit_compile=jit,
                           reduce_retracing=False)

    fn = _lru_get(("grad-xla" if jit else "grad-function", structure_key(case)), build)
    return fn(_tensor(value), _tensor(filt), _tensor(g))


def _v1(case: Case, value: Any, filt: Any, g: Any) -> Any:
    def build(value, filt, g):
        y = _forward(case, value, filt)
        source = (value, filt)[_source_index(case)]
        if source is None:
            raise TypeError(f"no {case.grad_wrt} to differentiate")
        (grad,) = _tf().compat.v1.gradients(y, [source], grad_ys=g)
        return _checked(grad, case)

    arrays = (value, filt, g)
    return _lru_get(("grad-v1", structure_key(case)), lambda: GraphCall(arrays, build))(arrays)


_PATHS = {"grad-eager": _eager,
          "grad-function": lambda c, v, f, g: _traced(c, v, f, g, jit=False),
          "grad-xla": lambda c, v, f, g: _traced(c, v, f, g, jit=True),
          "grad-v1": _v1}
TF_GRAD_PATH_NAMES = tuple(_PATHS)
