"""Capability declarations: which part of TF's contract a target implements.

A vendor's kernel may implement part of ``tf.compat.v1.nn.conv3d_transpose`` on purpose —
float32 and float16 only, NDHWC only, no dilation. It says so once, and the gate then judges
it on what it claims and reports the rest as declared, never as failures. A declaration is a
mapping (``conv3dt-capabilities/1``); every key is optional and an absent key means "all of it":

    dtypes          subset of float16, bfloat16, float32, float64
    layouts         subset of NDHWC, NCDHW
    paddings        subset of SAME, VALID
    dilations       bool — dilation > 1 on any axis
    zero_size       bool — a zero in the batch, a channel count, a spatial extent or the output
    argument_forms  bool — False: only the v1 signature's plain spelling (value / filter given
                    positionally or by those names, output_shape a list or tuple, strides and
                    dilations length-5 lists or tuples or omitted); True: every form the doc
                    allows (``input=`` / ``filters=`` aliases, NumPy / tensor output_shape, int
                    and length-1/3 strides and dilations, ``None``)

It comes from the callable's ``conv3dt_capabilities`` attribute (reported by its worker), from a
built-in target's spec (``oracle.targets``), or from the user (``conv3dt gate --capabilities
FILE`` / ``--dtype``..., which replace the attribute). ``admits(case)`` says whether a Case lies
inside; outside, the target is not called. For an invalid Case only its *valid* facts are
checked (an int32 dtype is the invalid family's business, not an undeclared dtype).

This module is pure: no NumPy, no TF; the oracle, fuzz and the gate all read it.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from conv3dt.oracle.case import Case, spatial_triple

SCHEMA = "conv3dt-capabilities/1"
DTYPES = ("float32", "float64", "float16", "bfloat16")
LAYOUTS = ("NDHWC", "NCDHW")
PADDINGS = ("SAME", "VALID")
GRADIENTS = ("value", "filter")
#: The attribute a ``module:function`` target may carry (a mapping in the schema above).
ATTRIBUTE = "conv3dt_capabilities"
PLAIN_VALUE_ARGS = ("value", "positional")
PLAIN_FILTER_ARGS = ("filter", "positional")
PLAIN_OUTPUT_SHAPE_FORMS = ("list", "tuple")
PLAIN_SEQUENCE_FORMS = ("list", "tuple", "omitted")


class CapabilityError(ValueError):
    """A declaration that is not in the schema (names the source and the key)."""


@dataclass(frozen=True)
class Capabilities:
    """What a target implements; the default is the whole contract."""
    dtypes: tuple[str, ...] = DTYPES
    layouts: tuple[str, ...] = LAYOUTS
    paddings: tuple[str, ...] = PADDINGS
    dilations: bool = True
    zero_size: bool = True
    argument_forms: bool = True
    gradients: tuple[str, ...] = GRADIENTS

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_mapping(cls, obj: Any, source: str = "declaration") -> "Capabilities":
        """Validate a declaration; one ``CapabilityError`` naming ``source`` and what is wrong."""
        if not isinstance(obj, Mapping):
            raise CapabilityError(f"{source}: a capability declaration is a mapping, got "
                                  f"{type(obj).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known - {"schema"})
        if unknown:
            raise CapabilityError(f"{source}: unknown key(s) {unknown}; the keys are {sorted(known)}")
        if "schema" in obj and obj["schema"] != SCHEMA:
            raise CapabilityError(f"{source}: schema {obj['schema']!r} is not {SCHEMA!r}")
        values: dict[str, Any] = {}
        for key, allowed in (("dtypes", DTYPES), ("layouts", LAYOUTS), ("paddings", PADDINGS),
                             ("gradients", GRADIENTS)):
            if key not in obj:
                continue
            given = obj[key]
            if isinstance(given, str) or not isinstance(given, (list, tuple)) \
                    or not all(isinstance(v, str) for v in given):
                raise CapabilityError(f"{source}: {key} must be a list of strings, got {given!r}")
            bad = [v for v in given if v not in allowed]
            if bad:
                raise CapabilityError(f"{source}: {key} {bad} not among {list(allowed)}")
            if not given:
                raise CapabilityError(f"{source}: {key} is empty: the target could be given no "
                                      f"Case at all")
            values[key] = tuple(v for v in allowed if v in given)   # canonical order
        for key in ("dilations", "zero_size", "argument_forms"):
            if key in obj:
                if not isinstance(obj[key], bool):
                    raise CapabilityError(f"{source}: {key} must be true or false, got {obj[key]!r}")
                values[key] = obj[key]
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "dtypes": list(self.dtypes), "layouts": list(self.layouts),
                "paddings": list(self.paddings), "dilations": self.dilations,
                "zero_size": self.zero_size, "argument_forms": self.argument_forms,
                "gradients": list(self.gradients)}

    @property
    def is_full(self) -> bool:
        return self == Capabilities()

    def summary(self) -> str:
        """One line: what is declared unsupported ("the whole contract" when nothing is)."""
        out = [f"{key} {'/'.join(getattr(self, key))} only" for key, every in
               (("dtypes", DTYPES), ("layouts", LAYOUTS), ("paddings", PADDINGS),
                ("gradients", GRADIENTS))
               if set(getattr(self, key)) != set(every)]
        out += [f"no {label}" for key, label in (("dilations", "dilation > 1"),
                                                 ("zero_size", "zero-size inputs"),
                                                 ("argument_forms", "alternative argument forms"))
                if not getattr(self, key)]
        return "; ".join(out) or "the whole contract"

    # ------------------------------------------------------------------ judging a Case
    def admits(self, case: Case) -> str | None:
        """None when the Case lies inside the declaration, else the first reason it does not
        (``"dtype float64"``, ``"dilation > 1"``...), as the record counts it."""
        dtypes = {a.dtype for a in (case.value, case.filter) if a is not None}
        dtype = dtypes.pop() if len(dtypes) == 1 else None   # a mismatch is an invalid family's
        if dtype in DTYPES and dtype not in self.dtypes:
            return f"dtype {dtype}"
        if case.data_format in LAYOUTS and case.data_format not in self.layouts:
            return f"layout {case.data_format}"
        if case.padding in PADDINGS and case.padding not in self.paddings:
            return f"padding {case.padding}"
        if not self.dilations and any(d > 1 for d in spatial_triple(case.dilations, case.data_format)
                                      if isinstance(d, int)):
            return "dilation > 1"
        if not self.zero_size and _has_zero(case):
            return "zero-size"
        if not self.argument_forms and not _plain_forms(case):
            return "argument form"
        if case.grad_wrt is not None and case.grad_wrt not in self.gradients:
            return f"gradient {case.grad_wrt}"
        return None


FULL = Capabilities()


def _has_zero(case: Case) -> bool:
    shapes = [a.shape for a in (case.value, case.filter) if a is not None]
    out = case.output_shape if isinstance(case.output_shape, (list, tuple)) else []
    return any(n == 0 for shape in shapes for n in shape) or any(
        isinstance(n, int) and n == 0 for n in out)


def _plain_forms(case: Case) -> bool:
    return (case.value_arg in PLAIN_VALUE_ARGS and case.filter_arg in PLAIN_FILTER_ARGS
            and case.output_shape_form in PLAIN_OUTPUT_SHAPE_FORMS
            and case.strides_form in PLAIN_SEQUENCE_FORMS
            and case.dilations_form in PLAIN_SEQUENCE_FORMS
            and all(len(arg) == 5 for arg, form in ((case.strides, case.strides_form),
                                                    (case.dilations, case.dilations_form))
                    if form != "omitted" and isinstance(arg, (list, tuple))))


def union(declarations: list[Capabilities]) -> Capabilities:
    """What at least one of the targets implements: the domain worth drawing Cases from."""
    if not declarations:
        return FULL
    return Capabilities(
        dtypes=tuple(d for d in DTYPES if any(d in c.dtypes for c in declarations)),
        layouts=tuple(v for v in LAYOUTS if any(v in c.layouts for c in declarations)),
        paddings=tuple(p for p in PADDINGS if any(p in c.paddings for c in declarations)),
        dilations=any(c.dilations for c in declarations),
        zero_size=any(c.zero_size for c in declarations),
        argument_forms=any(c.argument_forms for c in declarations),
        gradients=tuple(g for g in GRADIENTS if any(g in c.gradients for c in declarations)))


def load_file(path: str | Path) -> dict[str, Capabilities]:
    """A declarations file (TOML or JSON): either one declaration (for every ``module:function``
    target, key ``"*"``) or ``{"targets": {name: declaration}}``."""
    path = Path(path)
    try:
        text = path.read_text()
        obj = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except OSError as exc:
        raise CapabilityError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CapabilityError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: "
                              f"{exc}") from None
    if isinstance(obj, Mapping) and "targets" in obj:
        targets = obj["targets"]
        if not isinstance(targets, Mapping) or not targets:
            raise CapabilityError(f"{path}: 'targets' must map target names to declarations")
        return {str(name): Capabilities.from_mapping(decl, f"{path} [{name}]")
                for name, decl in targets.items()}
    return {"*": Capabilities.from_mapping(obj, str(path))}


def write_declarations(declared: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """A session's declarations file: ``{"targets": {name: {"declared": mapping, "source":
    text}}}`` (written by the gate, read by the conformance session)."""
    path = Path(path)
    path.write_text(json.dumps({"targets": declared}, indent=1, sort_keys=True))
    return path


def read_declarations(path: str | Path) -> dict[str, dict[str, Any]]:
    """``write_declarations``'s file, or a user's own (``load_file`` forms) given to pytest."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text()) if path.suffix == ".json" else None
    except (OSError, ValueError):
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("targets"), dict) and obj["targets"] and all(
            isinstance(v, dict) and "declared" in v for v in obj["targets"].values()):
        return obj["targets"]
    return {name: {"declared": caps.to_json(), "source": f"file {path}"}
            for name, caps in load_file(path).items()}
