"""Shared writers of the studies: results.json, plain-text tables, matplotlib figures.

Every study's results value has `to_rows()` (a list of flat dicts) and `to_json()` (rows
plus a `config` block); these helpers write them and draw with the Agg backend (no display
needed). Nothing here computes a metric: numbers come from `hetprobit.metrics` through the
studies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "finite",
    "format_table",
    "json_ready",
    "plot_pairs",
    "plot_reliability",
    "pyplot",
    "save_figure",
    "write_json",
]


def json_ready(value):
    """Convert numpy / jax scalars and arrays, tuples and NaN into JSON-safe values."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if hasattr(value, "tolist"):
        return json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(payload: dict, path: Path) -> Path:
    """Write `payload` as indented JSON (NaN / inf as null); returns the path.

    Raises:
        OSError: the file cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready(payload), indent=1) + "\n")
    return path


def _cell(value, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def format_table(
    rows: Sequence[dict], columns: Sequence[tuple[str, str]], *, digits: int = 4
) -> str:
    """A plain-text table: `columns` is `[(key, header), ...]`; floats with `digits` decimals.

    Raises:
        KeyError: a row lacks one of the columns' keys.
    """
    cells = [[header for _, header in columns]]
    cells += [[_cell(row[k], digits) for k, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]

    def line(r):
        first = r[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))])

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend selected."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finite(values) -> bool:
    """True when every entry of `values` is a finite number."""
    return bool(np.all(np.isfinite(np.asarray(values, dtype=float))))


def plot_reliability(ax, probs, labels, n_bins: int, title: str) -> None:
    """Top-label reliability diagram (`hetprobit.reliability_diagram`, equal-width bins) on
    `ax`: accuracy per confidence bin as bars, the diagonal as perfect calibration."""
    import hetprobit as hp

    diag = hp.reliability_diagram(probs, labels, n_bins=n_bins)
    edges = np.asarray(diag.edges)
    centres = 0.5 * (edges[:-1] + edges[1:])
    acc = np.nan_to_num(np.asarray(diag.accuracy))
    ax.bar(centres, acc, width=edges[1] - edges[0], edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "r--", lw=1, label="perfect")
    ax.set(xlim=(0, 1), ylim=(0, 1), title=title, xlabel="confidence", ylabel="accuracy")


def plot_pairs(path: Path, correlation, transition, method: str) -> Path:
    """Heatmaps side by side: a learned correlation matrix and the injected noise's
    transition matrix (diagonals blanked); saved to `path`."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    corr = np.array(correlation, dtype=float)
    np.fill_diagonal(corr, 0.0)
    im = a1.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    a1.set(title=f"learned ({method}): centred correlation", xlabel="class", ylabel="class")
    fig.colorbar(im, ax=a1, fraction=0.046)
    trans = np.array(transition, dtype=float)
    np.fill_diagonal(trans, 0.0)
    im = a2.imshow(trans, cmap="Greys", vmin=0)
    a2.set(title="injected: P(noisy = b | clean = a)", xlabel="b", ylabel="a")
    fig.colorbar(im, ax=a2, fraction=0.046)
    for ax in (a1, a2):
        ax.set_xticks(range(corr.shape[0]))
        ax.set_yticks(range(corr.shape[0]))
    return save_figure(fig, path)


def save_figure(fig, path) -> Path:
    """Lay out `fig`, write it to `path` (PNG, 80 dpi, the studies' size) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    pyplot().close(fig)
    return Path(path)
