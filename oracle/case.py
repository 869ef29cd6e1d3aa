"""Case: one call of ``conv3d_transpose``, fully described and JSON-serialisable.

A Case records every argument *exactly as passed*: which alias carried the arrays
(``value``/``input``, ``filter``/``filters``, positional, both, or missing), the sequence
form of ``strides``/``dilations`` (none / int / list / tuple) and the type of
``output_shape`` (list / tuple / NumPy int32/int64 array / int32/int64 tensor). Invalid
calls are Cases too: any JSON value may stand in any argument.

``Case.call_args(tensor=...)`` rebuilds the positional and keyword arguments; the caller
supplies the tensor constructor for the ``tensor-*`` output_shape forms, so this module
never imports TensorFlow. ``Case.render_call`` renders the same arguments as source text
for standalone reproducers.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from conv3dt.oracle.arrays import ArraySpec

CASE_SCHEMA = "conv3dt-case/1"

VALUE_ARGS = ("value", "input", "positional", "both", "missing")
FILTER_ARGS = ("filter", "filters", "positional", "both", "missing")
OUTPUT_SHAPE_FORMS = ("list", "tuple", "ndarray-int32", "ndarray-int64", "ndarray-float64",
                      "tensor-int32", "tensor-int64", "omitted")
SEQUENCE_FORMS = ("omitted", "none", "int", "list", "tuple")
GRAD_WRT = (None, "value", "filter")

def spatial_dims(shape: Any, layout: Any) -> list[int]:
    """The (D, H, W) sizes of a 5-D shape (value, filter-free output, grad_output) given in
    ``layout`` order: NDHWC entries 1..3, NCDHW entries 2..4."""
    return list(shape[1:4] if layout == "NDHWC" else shape[2:5])


def spatial_triple(arg: Any, layout: Any) -> list[int]:
    """The (D, H, W) entries of a strides/dilations argument as recorded in a Case (JSON form):
    ``None`` → [1, 1, 1]; an int → three copies; a list of ints of length 1 → three copies, of
    length 5 → its spatial entries in ``layout`` order (NDHWC: 1..3, NCDHW: 2..4), of any other
    length → itself (an invalid Case's wrong length stays visible); anything else → [] — never an
    exception, since invalid Cases carry arbitrary JSON. ``impl.args`` is the validating parser; this one only reads."""
    if arg is None:
        return [1, 1, 1]
    if isinstance(arg, bool) or not isinstance(arg, (int, list, tuple)):
        return []
    if isinstance(arg, int):
        return [arg] * 3
    items = list(arg)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in items):
        return []
    if len(items) == 1:
        return items * 3
    if len(items) == 5:
        return items[1:4] if layout == "NDHWC" else items[2:5]
    return items


def _as_form(value: Any, form: str) -> Any:
    """Render a JSON value (list/int/None/...) in the recorded sequence form."""
    if form == "tuple" and isinstance(value, list):
        return tuple(value)
    return value


@dataclass(frozen=True)
class Case:
    """One call: input array recipes plus every argument in the form it is passed."""

    value: ArraySpec | None
    filter: ArraySpec | None
    output_shape: Any = None             # normally a list of ints; any JSON value for invalid cases
    strides: Any = None                  # None | int | list (tuple-ness lives in strides_form)
    dilations: Any = None
    padding: Any = "SAME"
    data_format: Any = "NDHWC"
    value_arg: str = "value"
    filter_arg: str = "filter"
    output_shape_form: str = "list"
    strides_form: str = "list"
    dilations_form: str = "omitted"
    name: str | None = None
    label: str = "valid"                 # 'valid' or the invalid family's name, e.g. 'invalid:padding'
    exact: bool = False                  # every partial sum exactly representable: zero tolerance
    #: a *gradient Case*: ``∂⟨grad_output, y⟩/∂grad_wrt`` of the call ``y`` above, with
    #: ``grad_wrt`` "value" or "filter" and ``grad_output`` the upstream gradient (y's shape,
    #: layout and dtype). None for the forward call.
    grad_output: ArraySpec | None = None
    grad_wrt: str | None = None

    def __post_init__(self) -> None:
        if self.grad_wrt not in GRAD_WRT:
            raise ValueError(f"Case.grad_wrt must be one of {GRAD_WRT}, got {self.grad_wrt!r}")
        if (self.grad_wrt is None) != (self.grad_output is None):
            raise ValueError("a gradient Case needs both grad_wrt and grad_output")
        for attr, allowed in (("value_arg", VALUE_ARGS), ("filter_arg", FILTER_ARGS),
                              ("output_shape_form", OUTPUT_SHAPE_FORMS),
                              ("strides_form", SEQUENCE_FORMS), ("dilations_form", SEQUENCE_FORMS)):
            if getattr(self, attr) not in allowed:
                raise ValueError(f"Case.{attr} must be one of {allowed}, got {getattr(self, attr)!r}")
        for attr in ("output_shape", "strides", "dilations"):  # JSON has no tuples: keep lists
            if isinstance(getattr(self, attr), tuple):
                object.__setattr__(self, attr, list(getattr(self, attr)))

    # ------------------------------------------------------------------ identity
    @property
    def dtype(self) -> str | None:
        return self.value.dtype if self.value is not None else (
            self.filter.dtype if self.filter is not None else None)

    @property
    def is_gradient(self) -> bool:
        """A gradient Case (``grad_wrt`` set): only gradient targets run it."""
        return self.grad_wrt is not None

    @property
    def operation(self) -> str:
        """What the Case asks for: ``forward``, ``grad-value`` or ``grad-filter``."""
        return "forward" if self.grad_wrt is None else f"grad-{self.grad_wrt}"

    def gradient_of(self, wrt: str, grad_output: ArraySpec) -> "Case":
        """This call's gradient Case: ``∂⟨grad_output, y⟩/∂wrt``."""
        return replace(self, grad_wrt=wrt, grad_output=grad_output)

    def forward(self) -> "Case":
        """The forward call of a gradient Case (itself for a forward Case)."""
        return replace(self, grad_wrt=None, grad_output=None)

    @property
    def case_id(self) -> str:
        """A stable 12-hex-digit identifier: the hash of the canonical JSON."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def with_(self, **changes: Any) -> "Case":
        return replace(self, **changes)

    # ------------------------------------------------------------------ calling
    def arrays(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (None if self.value is None else self.value.materialize(),
                None if self.filter is None else self.filter.materialize())

    def grad_array(self) -> np.ndarray | None:
        """The upstream gradient of a gradient Case, materialised (None for a forward Case)."""
        return None if self.grad_output is None else self.grad_output.materialize()

    def call_args(self, tensor: Callable[[Any, str], Any] | None = None,
                  arrays: tuple[np.ndarray | None, np.ndarray | None] | None = None,
                  ) -> tuple[list[Any], dict[str, Any]]:
        """Positional and keyword arguments for a callable with TF's v1 signature.

        ``tensor(values, dtype_name)`` builds a tensor for the ``tensor-*`` output_shape
        forms; ``arrays`` reuses already materialised (value, filter) arrays.
        """
        value, filt = arrays if arrays is not None else self.arrays()
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        if self.value_arg == "positional":
            args.append(value)
        elif self.value_arg == "both":
            kwargs["value"], kwargs["input"] = value, value
        elif self.value_arg != "missing":
            kwargs[self.value_arg] = value
        if self.filter_arg == "positional":
            if self.value_arg != "positional":
                raise ValueError("a positional filter needs a positional value before it")
            args.append(filt)
        elif self.filter_arg == "both":
            kwargs["filter"], kwargs["filters"] = filt, filt
        elif self.filter_arg != "missing":
            kwargs[self.filter_arg] = filt
        if self.output_shape_form != "omitted":
            kwargs["output_shape"] = self._output_shape_object(tensor)
        for key, form in (("strides", self.strides_form), ("dilations", self.dilations_form)):
            if form != "omitted":
                kwargs[key] = _as_form(getattr(self, key), form)
        kwargs["padding"] = self.padding
        kwargs["data_format"] = self.data_format
        if self.name is not None:
            kwargs["name"] = self.name
        return args, kwargs

    def _output_shape_object(self, tensor: Callable[[Any, str], Any] | None) -> Any:
        form, shape = self.output_shape_form, self.output_shape
        if form == "tuple" and isinstance(shape, list):
            return tuple(shape)
        if form.startswith("ndarray-"):
            return np.asarray(shape, dtype=form.split("-")[1])
        if form.startswith("tensor-"):
            if tensor is None:
                raise ValueError(f"output_shape_form {form!r} needs a tensor constructor")
            return tensor(shape, form.split("-")[1])
        return shape

    # ------------------------------------------------------------------ rendering
    def render_arrays(self) -> str:
        """Source lines defining ``value`` and ``filter`` (and, for a gradient Case,
        ``grad_output``; names np, ml_dtypes)."""
        lines = []
        specs = [("value", self.value), ("filter_", self.filter)]
        if self.grad_output is not None:
            specs.append(("grad_output", self.grad_output))
        for name, spec in specs:
            lines.append(f"{name} = {spec.expression() if spec is not None else 'None'}")
        return "\n".join(lines)

    def render_call(self, function: str = "tf.compat.v1.nn.conv3d_transpose",
                    tensor_template: str = "tf.constant({values!r}, dtype=tf.{dtype})") -> str:
        """Source text of the call, arguments in exactly the recorded forms."""
        parts: list[str] = []
        if self.value_arg == "positional":
            parts.append("value")
        elif self.value_arg == "both":
            parts += ["value=value", "input=value"]
        elif self.value_arg != "missing":
            parts.append(f"{self.value_arg}=value")
        if self.filter_arg == "positional":
            parts.append("filter_")
        elif self.filter_arg == "both":
            parts += ["filter=filter_", "filters=filter_"]
        elif self.filter_arg != "missing":
            parts.append(f"{self.filter_arg}=filter_")
        if self.output_shape_form != "omitted":
            parts.append(f"output_shape={self.render_output_shape(tensor_template)}")
        for key, seq_form in (("strides", self.strides_form), ("dilations", self.dilations_form)):
            if seq_form != "omitted":
                parts.append(f"{key}={_as_form(getattr(self, key), seq_form)!r}")
        parts.append(f"padding={self.padding!r}")
        parts.append(f"data_format={self.data_format!r}")
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        return f"{function}(" + ", ".join(parts) + ")"

    def render_output_shape(self, tensor_template: str = "tf.constant({values!r}, dtype=tf.{dtype})") -> str:
        """Source text of the output_shape object in its recorded form."""
        form, shape = self.output_shape_form, self.output_shape
        if form == "tuple" and isinstance(shape, list):
            return repr(tuple(shape))
        if form.startswith("ndarray-"):
            return f"np.array({shape!r}, dtype=np.{form.split('-')[1]})"
        if form.startswith("tensor-"):
            return tensor_template.format(values=shape, dtype=form.split("-")[1])
        return repr(shape)

    def summary(self) -> dict[str, Any]:
        """The case fields a report shows (shapes, not values)."""
        return {
            "case_id": self.case_id, "label": self.label, "dtype": self.dtype,
            "data_format": self.data_format,
            "value_shape": None if self.value is None else list(self.value.shape),
            "filter_shape": None if self.filter is None else list(self.filter.shape),
            "output_shape": self.output_shape, "strides": self.strides,
            "dilations": self.dilations, "padding": self.padding,
            "forms": {"value_arg": self.value_arg, "filter_arg": self.filter_arg,
                      "output_shape": self.output_shape_form, "strides": self.strides_form,
                      "dilations": self.dilations_form},
            "value_recipe": None if self.value is None else self.value.recipe,
            "exact": self.exact,
            **({"grad_wrt": self.grad_wrt, "grad_output_shape": list(self.grad_output.shape),
                "grad_output_dtype": self.grad_output.dtype} if self.grad_wrt else {}),
        }

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CASE_SCHEMA,
            "value": None if self.value is None else self.value.to_json(),
            "filter": None if self.filter is None else self.filter.to_json(),
            "output_shape": self.output_shape, "strides": self.strides,
            "dilations": self.dilations, "padding": self.padding,
            "data_format": self.data_format, "value_arg": self.value_arg,
            "filter_arg": self.filter_arg, "output_shape_form": self.output_shape_form,
            "strides_form": self.strides_form, "dilations_form": self.dilations_form,
            "name": self.name, "label": self.label, "exact": self.exact,
            # only gradient Cases carry these keys: a forward Case's JSON (and case_id) is
            # what it was before gradients existed, so corpus and ledger ids keep their meaning
            **({"grad_output": self.grad_output.to_json(), "grad_wrt": self.grad_wrt}
               if self.grad_wrt is not None else {}),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Case":
        if not isinstance(obj, dict) or obj.get("schema") != CASE_SCHEMA:
            got = obj.get("schema") if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(f"not a {CASE_SCHEMA} object (schema: {got!r})")
        fields = {k: v for k, v in obj.items() if k != "schema"}
        for key in ("value", "filter", "grad_output"):
            if fields.get(key) is not None:
                fields[key] = ArraySpec.from_json(fields[key])
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ValueError(f"Case JSON has unexpected or missing fields: {exc}") from exc


def structure_key(case: Case | dict[str, Any]) -> str:
    """The call structure of a Case (or its JSON): every argument except the array values —
    value/filter dtype and shape (not their recipes), output_shape and its form, strides and
    dilations and their forms, padding, data_format, the argument aliases, ``name``. ``label``
    and ``exact`` are judging metadata, not arguments. Calls with equal keys trace to the same
    TF function or graph (``oracle.tf_paths`` caches traces by it) and do the same work (the
    pool's time limits learn per key: ``oracle.timelimits``). Canonical JSON text; never raises."""
    obj = dict(case) if isinstance(case, dict) else case.to_json()
    for key in ("value", "filter", "grad_output"):
        if isinstance(obj.get(key), dict):
            obj[key] = {"dtype": obj[key].get("dtype"), "shape": obj[key].get("shape")}
    obj.pop("label", None), obj.pop("exact", None)
    return json.dumps(obj, sort_keys=True)
