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

__all__ = ["format_table", "json_ready", "pyplot", "write_json"]


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
