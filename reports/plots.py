"""Plots of a run record as PNG bytes (matplotlib, Agg backend — no display needed).

- ``matrix_heatmap``: conformance matrix, target × cell (dtype / layout / dilation / padding /
  ...), colour = share of examples in the cell with a deviation, text = deviations/examples.
- ``headroom_histograms``: per dtype, the distribution of headroom (error / bound, log scale)
  for each target, with the bound (1.0) marked.

PNG output carries no timestamp, so the same record gives the same bytes.
"""
from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

_META = {"Software": None}


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata=_META)
    plt.close(fig)
    return buf.getvalue()


def matrix_cells(record: dict[str, Any]) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(targets, cells, examples[t, c], deviations[t, c]) from ``record['matrix']``."""
    matrix = record.get("matrix") or {}
    targets = sorted(matrix)
    cells = sorted({c for per in matrix.values() for c in per})
    n = np.zeros((len(targets), len(cells)))
    dev = np.zeros_like(n)
    for i, t in enumerate(targets):
        for j, c in enumerate(cells):
            pair = matrix[t].get(c)
            if pair:
                n[i, j], dev[i, j] = pair[0], pair[1]
    return targets, cells, n, dev


def matrix_heatmap(record: dict[str, Any]) -> bytes | None:
    targets, cells, n, dev = matrix_cells(record)
    if not targets or not cells:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, dev / np.maximum(n, 1), np.nan)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(cells) + 2.5),
                                    max(2.5, 0.45 * len(targets) + 1.8)))
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="#dddddd")
    # a power norm so that a few deviations in hundreds of examples already show as orange
    im = ax.imshow(np.ma.masked_invalid(rate), cmap=cmap, aspect="auto",
                   norm=matplotlib.colors.PowerNorm(0.25, vmin=0.0, vmax=1.0))
    ax.set_xticks(range(len(cells)), labels=cells, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(targets)), labels=targets, fontsize=8)
    if len(cells) * len(targets) <= 400:
        for i in range(len(targets)):
            for j in range(len(cells)):
                if n[i, j] > 0:
                    ax.text(j, i, f"{int(dev[i, j])}/{int(n[i, j])}", ha="center", va="center",
                            fontsize=6, color="black")
    ax.set_title("Conformance matrix: share of examples with a deviation (power scale; grey: not run)",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    return _png(fig)


def headroom_histograms(record: dict[str, Any]) -> bytes | None:
    headroom = record.get("headroom") or {}
    dtypes = sorted({d for per in headroom.values() for d, c in per.items() if c.get("samples")})
    if not dtypes:
        return None
    cols = min(2, len(dtypes))
    rows = math.ceil(len(dtypes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 3.2 * rows), squeeze=False)
    bins = np.logspace(-6, 1, 36)
    for k, dtype in enumerate(dtypes):
        ax = axes[k // cols][k % cols]
        for target in sorted(headroom):
            cell = headroom[target].get(dtype)
            if not cell or not cell.get("samples"):
                continue
            values = np.clip(np.asarray(cell["samples"], dtype=float), bins[0], bins[-1])
            weights = np.full(values.shape, 1.0 / max(1, len(values)))
            ax.hist(values, bins=bins, weights=weights, histtype="step", linewidth=1.2,
                    label=f"{target} (n={cell['n']}, {cell.get('over_1', 0)} over 1)")
        ax.axvline(1.0, color="red", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_title(f"{dtype}: headroom = error / bound (> 1 violates)", fontsize=9)
        ax.set_xlabel("headroom", fontsize=8)
        ax.set_ylabel("share of sampled examples", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    for k in range(len(dtypes), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.tight_layout()
    return _png(fig)


def render_plots(record: dict[str, Any]) -> dict[str, bytes]:
    """``{file name: PNG bytes}`` for every plot the record has data for."""
    out: dict[str, bytes] = {}
    for name, fn in (("matrix.png", matrix_heatmap), ("headroom.png", headroom_histograms)):
        png = fn(record)
        if png is not None:
            out[name] = png
    return out
