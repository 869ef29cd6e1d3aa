"""Declared invalid inputs, in the manner of PyTorch OpInfo's ``ErrorInput(sample, error_type,
error_regex)``: the record of one validation rule and its near-miss (``InvalidFamily``), the decoder
of a family's own choices (``Picker``) and the decorator that declares a family into a registry
(``declare``). The forward's families are ``fuzz.invalid``'s, the backward's own
``fuzz.grad_invalid``'s; each module keeps its registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from conv3dt.fuzz.strategies import Geometry
from conv3dt.oracle.case import Case

__all__ = ["Picker", "Breaker", "InvalidFamily", "declare"]


class Picker:
    """A family's own choices, decoded from one drawn integer digit by digit (0 = the first
    option, so Hypothesis shrinks each choice toward its first option)."""

    def __init__(self, x: int) -> None:
        self.x = x

    def one(self, options):
        self.x, r = divmod(self.x, len(options))
        return options[r]

    def flag(self) -> bool:
        return self.one((False, True))

    def int(self, lo: int, hi: int) -> int:
        return self.one(tuple(range(lo, hi + 1)))


Breaker = Callable[[Picker, Geometry, Case], Case]


@dataclass(frozen=True)
class InvalidFamily:
    """One validation rule and its near-miss: ``breaks(pick, geometry, valid_case)`` returns the
    Case that violates exactly this rule. ``impl_raises`` / ``impl_says``: the class(es) ``impl``
    raises and a regex its message matches; ``promise``: the class the documentation promises
    (``None``: judged against ``impl``'s class); ``doc_also``: a class the documentation's
    sentence promises for these inputs too, accepted beside impl's (its padding sentence covers
    every non-string padding); ``crash_prone``: TF dies on it (drawn a third as often);
    ``limits``: values at the integer limits."""
    name: str
    breaks: Breaker
    impl_raises: tuple[type[Exception], ...]
    impl_says: str
    promise: str | None = None
    doc_also: str | None = None
    crash_prone: bool = False
    limits: bool = False

    @property
    def label(self) -> str:
        return f"invalid:{self.name}"


def declare(registry: list[InvalidFamily], name: str, impl_raises, impl_says: str,
            **flags) -> Callable[[Breaker], Breaker]:
    """A decorator declaring the decorated near-miss as the family ``name`` in ``registry``
    (``impl_raises``: one class or a tuple; ``flags``: ``InvalidFamily``'s optional fields)."""
    raises = impl_raises if isinstance(impl_raises, tuple) else (impl_raises,)

    def register(breaks: Breaker) -> Breaker:
        registry.append(InvalidFamily(name, breaks, raises, impl_says, **flags))
        return breaks
    return register
