"""Shards: a deterministic, disjoint part of one conformance run (``--shard I/N``).

N CI jobs run ``conv3dt gate --shard I/N`` (I = 1..N) and ``conv3dt report merge`` makes their
records one. Together the N shards are one larger run:

- **Search.** Every shard runs every property with its full example count, from a seed of its
  own (``Shard.seed``): N disjoint-seeded streams, so N shards judge N times the examples of
  one run. Shard 1/1 keeps the run's seed, so ``--shard 1/1`` is the unsharded run exactly.
- **Deterministic work** is split, never repeated: the regression-corpus entries (by finding
  id), the explicit examples (rare cells, the limits, the realistic tier's boundary Cases; by
  ``case_id``), the coverage floor (``fuzz.covering``; by ``case_id``) and the per-family
  invalid near-misses (by family). An item belongs to the shard ``sha256(key) mod N`` names,
  so it depends on its own key only: an entry added to the corpus moves no other entry.
- **The coverage tripwire** is a property of the union: a shard may miss a cell another shard's
  floor covers. A shard therefore does not fail its tripwire; it writes the required cells
  (``tripwire.json``: ``deferred``, ``required``) and ``reports.shards`` applies the tripwire to
  the merged coverage (docs/scale-out.md).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A ``--shard`` value that is not ``I/N`` with 1 <= I <= N."""


def _bucket(text: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as CI matrices number their jobs)."""
    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.count and 1 <= self.index <= self.count):
            raise ShardError(f"shard {self.index}/{self.count}: need 1 <= I <= N")

    @classmethod
    def parse(cls, spec: str | None) -> "Shard":
        """``"I/N"`` (e.g. ``"2/8"``); None or empty: the whole run (1/1)."""
        if not spec:
            return cls()
        m = _SPEC.match(str(spec))
        if not m:
            raise ShardError(f"--shard {spec!r}: expected I/N, e.g. 1/4")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def whole(self) -> bool:
        """Whether this is the unsharded run (1/1)."""
        return self.count == 1

    def text(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, key: str) -> bool:
        """Whether the deterministic work item ``key`` is this shard's (exactly one shard owns
        every key)."""
        return self.whole or _bucket(str(key), self.count) == self.index - 1

    def take(self, items: Iterable[T], key: Callable[[T], str]) -> list[T]:
        """The items this shard owns, in their order."""
        return [x for x in items if self.owns(key(x))]

    def seed(self, base: int) -> int:
        """The search seed of this shard for the run seed ``base``: ``base`` itself for 1/1,
        else a 63-bit hash of (base, I, N), distinct per shard."""
        if self.whole:
            return int(base)
        digest = hashlib.sha256(f"conv3dt-shard:{base}:{self.index}:{self.count}".encode()).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    def to_json(self, base_seed: int | None = None) -> dict:
        """What the run record says of the shard (``run.shard``)."""
        out = {"index": self.index, "count": self.count}
        if base_seed is not None:
            out["seed"] = self.seed(base_seed)
        return out
