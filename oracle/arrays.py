"""ArraySpec: how to re-create one input array exactly, anywhere.

An input array is never stored as an opaque blob. It is a *recipe* — a single NumPy
expression — so that the very same text both materialises the array here
(`ArraySpec.materialize`) and appears in a standalone reproducer
(`ArraySpec.expression`). There is one source of truth; the two cannot drift apart.

Recipes (all draws use ``np.random.default_rng(seed)``, PCG64):

- ``inline``   the values themselves (``data``, C order, float64 literals that are exactly
               the dtype's values; non-finite as ``float('nan')`` etc.).
- ``normal``   ``rng.standard_normal(shape) * scale``
- ``uniform``  ``rng.uniform(low, high, shape)``
- ``integers`` ``rng.integers(low, high + 1, shape)`` — exact small integers
- ``ones``     ``np.ones(shape)`` (TF's own closed-form tests use these)
- ``special``  each element is, with probability ``p``, drawn from ``pool`` (±0, subnormals,
               values near overflow, ±inf, nan, …), else ``standard_normal * scale``.

The drawn float64 array is then cast to ``dtype`` (``ml_dtypes.bfloat16`` for bfloat16).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

INLINE_LIMIT = 4096  # elements; larger arrays must use a seeded recipe

RECIPES = ("inline", "normal", "uniform", "integers", "ones", "special")


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a dtype name, bfloat16 included (via ml_dtypes)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def float_literal(x: float) -> str:
    """A Python literal that evaluates to exactly the float64 ``x`` (nan, ±inf, -0.0 too)."""
    if math.isnan(x):
        return "float('nan')"
    if math.isinf(x):
        return "float('inf')" if x > 0 else "-float('inf')"
    return repr(float(x))


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))


def _from_json_float(x: float | str) -> float:
    return float(x)


@dataclass(frozen=True, eq=False)
class ArraySpec:
    """A recipe for one array: dtype name, shape, recipe name, seed and parameters.

    Equality and hashing go through the canonical JSON, so recipes holding nan compare equal.
    """

    dtype: str
    shape: tuple[int, ...]
    recipe: str = "normal"
    seed: int = 0
    params: tuple[tuple[str, Any], ...] = ()
    data: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"ArraySpec.recipe must be one of {RECIPES}, got {self.recipe!r}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.recipe == "inline":
            if self.data is None or len(self.data) != math.prod(self.shape):
                raise ValueError(
                    f"inline ArraySpec needs {math.prod(self.shape)} values for shape "
                    f"{self.shape}, got {None if self.data is None else len(self.data)}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArraySpec) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    # ----------------------------------------------------------------- constructors
    @classmethod
    def inline(cls, array: np.ndarray) -> "ArraySpec":
        """Freeze an existing array's exact values (its dtype must be a float dtype)."""
        arr = np.asarray(array)
        name = "bfloat16" if arr.dtype.name == "bfloat16" else arr.dtype.name
        if arr.size > INLINE_LIMIT:
            raise ValueError(f"array of {arr.size} elements is too large to inline "
                             f"(limit {INLINE_LIMIT}); use a seeded recipe")
        values = tuple(float(v) for v in arr.astype(np.float64).ravel())
        return cls(dtype=name, shape=arr.shape, recipe="inline", data=values)

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    # ----------------------------------------------------------------- the recipe
    def expression(self) -> str:
        """The NumPy expression (names ``np`` and ``ml_dtypes``) that builds this array."""
        shape = repr(self.shape)
        rng = f"np.random.default_rng({self.seed})"
        if self.recipe == "inline":
            body = "[" + ", ".join(float_literal(v) for v in self.data) + "]"
            base = f"np.array({body}, dtype=np.float64).reshape({shape})"
        elif self.recipe == "normal":
            base = f"{rng}.standard_normal({shape}) * {float_literal(self.param('scale', 1.0))}"
        elif self.recipe == "uniform":
            base = (f"{rng}.uniform({float_literal(self.param('low', -1.0))}, "
                    f"{float_literal(self.param('high', 1.0))}, {shape})")
        elif self.recipe == "integers":
            base = (f"{rng}.integers({int(self.param('low', -2))}, "
                    f"{int(self.param('high', 2)) + 1}, {shape}).astype(np.float64)")
        elif self.recipe == "ones":
            base = f"np.ones({shape})"
        else:  # special
            pool = "[" + ", ".join(float_literal(v) for v in self.param("pool", (0.0,))) + "]"
            p = float_literal(self.param("p", 0.2))
            scale = float_literal(self.param("scale", 1.0))
            base = (f"(lambda r: np.where(r.random({shape}) < {p}, "
                    f"r.choice(np.array({pool}), size={shape}), "
                    f"r.standard_normal({shape}) * {scale}))({rng})")
        target = "ml_dtypes.bfloat16" if self.dtype == "bfloat16" else f"np.{self.dtype}"
        return f"({base}).astype({target})"

    def materialize(self) -> np.ndarray:
        """The exact array every run and every reproducer sees.

        Computes exactly what :meth:`expression` says, step for step, without compiling the
        text (``eval`` costs ~70 µs per array, which the oracle's throughput cannot afford).
        ``evaluate_expression`` runs the text itself; the unit tests hold the two bit-equal
        for every recipe.
        """
        shape = self.shape
        if self.recipe == "inline":
            base = np.array(self.data, dtype=np.float64).reshape(shape)
        elif self.recipe == "ones":
            base = np.ones(shape)
        else:
            rng = np.random.default_rng(self.seed)
            if self.recipe == "normal":
                base = rng.standard_normal(shape) * float(self.param("scale", 1.0))
            elif self.recipe == "uniform":
                base = rng.uniform(float(self.param("low", -1.0)), float(self.param("high", 1.0)), shape)
            elif self.recipe == "integers":
                base = rng.integers(int(self.param("low", -2)), int(self.param("high", 2)) + 1,
                                    shape).astype(np.float64)
            else:  # special: the same draw order as the expression (random, choice, normal)
                pick = rng.random(shape) < float(self.param("p", 0.2))
                pooled = rng.choice(np.array([float(v) for v in self.param("pool", (0.0,))]), size=shape)
                base = np.where(pick, pooled, rng.standard_normal(shape) * float(self.param("scale", 1.0)))
        with np.errstate(over="ignore", invalid="ignore"):
            return base.astype(numpy_dtype(self.dtype))

    def evaluate_expression(self) -> np.ndarray:
        """Evaluate the :meth:`expression` text (what a reproducer does)."""
        import ml_dtypes

        with np.errstate(over="ignore", invalid="ignore"):
            return eval(self.expression(), {"np": np, "ml_dtypes": ml_dtypes, "float": float})  # noqa: S307

    # ----------------------------------------------------------------- JSON
    def to_json(self) -> dict:
        out: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape), "recipe": self.recipe}
        if self.recipe not in ("inline", "ones"):
            out["seed"] = self.seed
        if self.params:
            out["params"] = {k: ([_json_float(x) for x in v] if isinstance(v, (list, tuple)) else
                                 (_json_float(v) if isinstance(v, float) else v))
                             for k, v in self.params}
        if self.data is not None:
            out["data"] = [_json_float(v) for v in self.data]
        return out

    @classmethod
    def from_json(cls, obj: dict) -> "ArraySpec":
        try:
            params = tuple(
                (k, tuple(_from_json_float(x) for x in v) if isinstance(v, list) else
                 (_from_json_float(v) if isinstance(v, str) and v in ("nan", "inf", "-inf") else v))
                for k, v in obj.get("params", {}).items())
            data = obj.get("data")
            return cls(dtype=obj["dtype"], shape=tuple(obj["shape"]), recipe=obj["recipe"],
                       seed=int(obj.get("seed", 0)), params=params,
                       data=None if data is None else tuple(_from_json_float(v) for v in data))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a valid ArraySpec JSON object ({exc!r}): {obj!r:.200}") from exc
