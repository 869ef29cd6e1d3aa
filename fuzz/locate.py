"""Localisation of a value mismatch: *where* in the output the violations lie. Pure NumPy.

``locate(bad, y, y_ref, ratio, layout)`` takes the violation mask ``bad`` of ``fuzz.judge``, the
result ``y`` and reference ``y_ref`` (float64 views) and ``ratio = |y − y_ref| / bound``, all 5-D
in the Case's layout (``NDHWC``: channel axis 4; ``NCDHW``: 1; batch axis 0; D, H, W the others
in order), and computes:

- the positions along each axis that hold at least one violation (``bad.any`` over the other
  axes), as range text (``ranges``: ``[0, 1, 2, 3, 7]`` → ``"0-3, 7"``, at most 8 pieces);
- the first violation (C order) and the worst (largest finite ``ratio``; else the first), both
  as indices in the output's own layout order;
- ``patterns``: sentences each of which holds for *every* violation (a statement, not a guess),
  most specific first: a single element; a box of the axes' violating positions where
  ``y == 0`` throughout ("channels 8-10 of 11 are 0"); violating batch entries whose result is
  another entry's truth (exactly, or within that entry's ``bound`` when given); per axis, a
  contiguous tail or head (naming the power-of-two block ≥ 4 that its start is a multiple of),
  or positions all ≡ r (mod p), p ∈ {2, 4, ..., 32} (all of them, or ≥ 3); else "only <axis> X" for a strict subset;
  then the kind of value: non-finite where the truth is finite, finite where it is not,
  ``y = 0`` (dropped contributions), or a relative error ``|y − y_ref|/|y_ref|`` whose median is
  ~2^-k and whose maximum is within 2^5 of it (reduced precision; needs ≥ 16 violations).
Everything is vectorised (reductions per axis); the Python loops run over axis positions or
batch entries only.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

MAX_PIECES = 8
AXES = ("batch", "channel", "D", "H", "W")
_PLURAL = {"batch": "batch entries", "channel": "channels"}
_ORDINAL = {2: "2nd", 4: "4th", 8: "8th", 16: "16th", 32: "32nd"}


def ranges(indices, n: int | None = None) -> str:
    """Sorted distinct ``indices`` as ``"0-3, 7"``; ``"all"`` if ``n`` is given and they are
    ``0..n-1``; at most ``MAX_PIECES`` pieces, then ``", … (k ranges)"``."""
    idx = np.unique(np.asarray(indices, dtype=np.int64))
    if idx.size == 0:
        return "none"
    if n is not None and idx.size == n:
        return "all"
    cut = np.flatnonzero(np.diff(idx) != 1) + 1
    starts, ends = idx[np.r_[0, cut]], idx[np.r_[cut - 1, idx.size - 1]]
    pieces = [f"{a}" if a == b else f"{a}-{b}" for a, b in zip(starts[:MAX_PIECES], ends[:MAX_PIECES])]
    more = f", … ({len(starts)} ranges)" if len(starts) > MAX_PIECES else ""
    return ", ".join(pieces) + more


def _noun(axis: str, count: int) -> str:
    """``"channels"`` / ``"batch entry"`` / ``"W positions"``..."""
    if count > 1:
        return _PLURAL.get(axis, f"{axis} positions")
    return {"batch": "batch entry", "channel": "channel"}.get(axis, f"{axis} position")


def _where(axis: str, pos: np.ndarray, n: int) -> str:
    """``"channels 8-10 of 11"``, ``"batch 7 of 8"``, ``"W 16 of 17"``."""
    name = _PLURAL.get(axis, axis) if pos.size > 1 else axis
    return f"{name} {ranges(pos)} of {n}"


def _block(k: int) -> int:
    """The largest power of two ≥ 4 (≤ 1024) that divides ``k > 0``; 0 if none."""
    b = k & -k
    return min(b, 1024) if b >= 4 else 0


def _structure(axis: str, pos: np.ndarray, n: int) -> str | None:
    """A tail, head or periodic statement about the violating positions ``pos`` along an axis."""
    if n < 4:
        return None
    where = _where(axis, pos, n)
    lo, hi = int(pos[0]), int(pos[-1])
    if pos.size == hi - lo + 1 and hi == n - 1 and lo > 0:
        b = _block(lo)
        extra = ("" if not b else f", the last partial block of {b}" if n - lo < b
                 else f", the last block of {b}" if n - lo == b else f" (a multiple of {b})")
        return f"{where}: the tail past {lo}{extra}"
    if pos.size == hi + 1 and lo == 0 and hi < n - 1:
        b = _block(hi + 1)
        extra = ("" if not b else f", the first block of {b}" if hi + 1 == b
                 else f" ({hi + 1}, a multiple of {b})")
        return f"{where}: the head up to {hi}{extra}"
    if pos.size >= 2:
        g = math.gcd(*(int(d) for d in np.diff(pos)))
        p = max((q for q in _ORDINAL if g % q == 0 and q < n), default=0)
        if p:
            r = lo % p
            if pos.size == len(range(r, n, p)):
                return f"every {_ORDINAL[p]} {_noun(axis, 1)} (≡ {r} mod {p})"
            if pos.size >= 3:
                return f"only {_noun(axis, 2)} ≡ {r} (mod {p})"
    return None


def _precision(e: int) -> str:
    """The format whose rounding (unit roundoff 2^-8, 2^-11, 2^-24) keeps every relative error
    below 2^-e: a format name for e within a bit or two of its unit roundoff's exponent."""
    for lo, hi, name in ((7, 10, "bfloat16"), (10, 13, "float16/TF32"), (22, 26, "float32")):
        if lo <= e < hi:
            return f": {name}-like precision"
    return ""


@dataclass(frozen=True)
class Localisation:
    """Where the violations of one judged output lie (see the module docstring)."""
    violations: int
    total: int
    batches: str                    # batch entries with a violation: "0-3, 7 of 8" or "all"
    channels: str                   # "8-10 of 11"
    axes: dict[str, str]            # {"D": "0-15 of 16", "H": ..., "W": "16 of 17"}
    first: list[int]                # first violation, C order, output layout
    worst: list[int]                # largest finite ratio (else the first violation)
    patterns: list[str] = field(default_factory=list)   # each true of every violation
    mentioned: tuple[frozenset, ...] = field(default=(), repr=False, compare=False)

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop("mentioned")
        return out

    def summary(self) -> str:
        """One deterministic line: up to 4 patterns, then the restricted axes they do not name."""
        if not self.violations:
            return "no violations"
        parts: list[str] = []
        for p in self.patterns[:4]:   # "channels 8-10 of 11: the tail ..." after "channels 8-10 of 11 are 0"
            head, sep, rest = p.partition(": ")
            parts.append(rest if sep and any(q.startswith(head) for q in parts) else p)
        named = set().union(*self.mentioned[:4])
        if "batch" not in named:
            parts.append(f"batches {self.batches}")
        if "channel" not in named and not _full(self.channels):
            parts.append(f"channels {self.channels}")
        parts += [f"{a}: {t}" for a, t in self.axes.items() if a not in named and not _full(t)]
        return "; ".join(parts)


def _full(text: str) -> bool:
    """Whether ``"<ranges> of n"`` covers 0..n-1 (``"0-15 of 16"``, ``"0 of 1"``)."""
    head, _, n = text.rpartition(" of ")
    return head == ("0" if n == "1" else f"0-{int(n) - 1}")


def _mixups(bad, y, y_ref, bound, rows):
    """For each violating batch entry ``i`` an entry ``j ≠ i`` whose truth ``y[i]`` is (exactly,
    or within ``bound[j]``), tried first on ``i``'s first 8 violations; None unless every
    violating entry has one."""
    def near(i, j, sel):
        tol = 0.0 if bound is None else bound[j].reshape(-1)[sel]
        with np.errstate(invalid="ignore", over="ignore"):   # inf - inf, a half overflow
            return bool(np.all(np.abs(y[i].reshape(-1)[sel] - y_ref[j].reshape(-1)[sel]) <= tol))
    pairs = []
    for i in rows:
        probe = np.flatnonzero(bad[i])[:8]
        j = next((j for j in range(y.shape[0]) if j != i and near(i, j, probe)
                  and near(i, j, slice(None))), None)
        if j is None:
            return None
        pairs.append((i, j))
    return pairs


def locate(bad: np.ndarray, y: np.ndarray, y_ref: np.ndarray, ratio: np.ndarray, layout: str,
           bound: np.ndarray | None = None) -> Localisation:
    """Localise the violations ``bad`` of ``y`` against ``y_ref`` (see the module docstring).
    ``bound`` (optional): the per-element bound, used to recognise a mixed-up batch entry."""
    bad = np.asarray(bad, dtype=bool)
    total, nv = int(bad.size), int(np.count_nonzero(bad))
    order = (0, 4, 1, 2, 3) if layout == "NDHWC" else (0, 1, 2, 3, 4)   # batch, channel, D, H, W
    shape = [bad.shape[a] for a in order]
    if nv == 0:
        empty = f"none of {shape[1]}"
        return Localisation(0, total, "none", empty,
                            {a: f"none of {n}" for a, n in zip(AXES[2:], shape[2:])}, [], [], [])
    pos = [np.flatnonzero(bad.any(axis=tuple(b for b in range(5) if b != a))) for a in order]
    first = [int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)]
    with np.errstate(invalid="ignore"):
        score = np.where(bad & np.isfinite(ratio), ratio, -1.0)
    k = int(np.argmax(score))
    worst = [int(i) for i in np.unravel_index(k, bad.shape)] if score.flat[k] >= 0 else first
    restricted = [i for i in range(5) if shape[i] > 1 and pos[i].size < shape[i]]
    yb, rb = y[bad], y_ref[bad]
    pats: list[tuple[str, frozenset]] = []
    if nv == 1:
        pats.append((f"a single element at {first}", frozenset(AXES)))
    zero = bool(np.all(yb == 0))
    if zero:
        box = y
        for i in restricted:
            box = np.take(box, pos[i], axis=order[i])
        if not np.any(box):
            if restricted and nv > 1:
                desc = ", ".join(_where(AXES[i], pos[i], shape[i]) for i in restricted)
                plural = len(restricted) > 1 or pos[restricted[0]].size > 1
                pats.append((f"{desc} {'are' if plural else 'is'} 0",
                             frozenset(AXES[i] for i in restricted)))
            elif not restricted:
                pats.append(("y = 0 everywhere", frozenset(AXES)))
    if shape[0] > 1 and pos[0].size <= 16:
        pairs = _mixups(bad, y, y_ref, bound, pos[0].tolist())
        if pairs:
            how = "" if bound is None else " (within its bound)"
            text = ", ".join(f"batch entry {i} equals batch entry {j}'s truth{how}" for i, j in pairs[:4])
            more = f", and {len(pairs) - 4} more" if len(pairs) > 4 else ""
            pats.append((f"{text}{more}: {'a mixed-up sample' if len(pairs) == 1 else 'mixed-up samples'}",
                         frozenset({"batch"})))
    if nv > 1:
        named = set().union(*(m for _, m in pats))
        for i in restricted:
            text = _structure(AXES[i], pos[i], shape[i])
            if text is None and AXES[i] not in named:
                text = f"only {_noun(AXES[i], pos[i].size)} {ranges(pos[i])} of {shape[i]}"
            if text is not None:
                pats.append((text, frozenset({AXES[i]})))
    fy, fr = np.isfinite(yb), np.isfinite(rb)
    if not fy.any() and fr.all():
        kinds = " or ".join(k for k, m in (("nan", np.isnan(yb)), ("±inf", np.isinf(yb))) if m.any())
        pats.append((f"y is {kinds} where y_ref is finite", frozenset()))
    elif fy.all() and not fr.any():
        pats.append(("y is finite where y_ref is nan or ±inf", frozenset()))
    elif zero and fr.all():
        pats.append(("y = 0 where y_ref ≠ 0 (dropped contributions)", frozenset()))
    elif nv >= 16 and fy.all() and fr.all() and np.all(rb != 0):
        rel = np.abs(yb - rb) / np.abs(rb)
        med, top = float(np.median(rel)), float(rel.max())
        if 0 < med < 2.0**-3 and top <= 32 * med:   # every one within 2^5 of the median
            k, e = round(-math.log2(med)), math.ceil(10 * math.log2(top)) / 10   # 2^e >= top
            pats.append((f"error proportional to |y_ref|: relative error ~2^-{k} (median), "
                         f"≤ 2^{e:g}{_precision(math.floor(-math.log2(top)))}", frozenset()))
    fmt = lambda i: f"{ranges(pos[i])} of {shape[i]}"  # noqa: E731
    batches = ranges(pos[0], shape[0])
    return Localisation(nv, total, batches if batches == "all" else f"{batches} of {shape[0]}",
                        fmt(1), {a: fmt(i) for i, a in enumerate(AXES) if i >= 2}, first, worst,
                        [t for t, _ in pats], tuple(m for _, m in pats))
