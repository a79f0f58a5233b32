"""The output side of the `choice` study: the coefficient table and the files it writes.

`format_choice` prints estimate (std. error) per model and coefficient, then the exact
log-likelihood and AIC per model; `write_choice` writes results.json, coefficients.csv,
coefficients.md and choice.png (`inference.studies.choice` has the study itself; both names
are re-exported there). The shared writers are in `inference.studies.outputs`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

from .outputs import pyplot, save_figure, write_json

if TYPE_CHECKING:
    from .choice import ChoiceStudyResults

__all__ = ["Z95", "format_choice", "write_choice"]

Z95 = 1.959963984540054  # the 97.5% standard-normal quantile: 95% intervals, estimate +/- Z95 s.e.


def _wide(results: ChoiceStudyResults) -> tuple[list[str], list[str], dict]:
    labels = [f["model"] for f in results.fits]
    params = list(dict.fromkeys(r["parameter"] for r in results.rows))
    cell = {(r["parameter"], r["model"]): r for r in results.rows}
    return labels, params, cell


def _fmt(v: float | None, digits: int = 4) -> str:
    """`digits` significant digits, trailing zeros kept ("0.450", not "0.45")."""
    return "-" if v is None or not math.isfinite(v) else f"{v:#.{digits}g}"


def format_choice(results: ChoiceStudyResults, *, markdown: bool = False) -> str:
    """The coefficient table: estimate (std. error) per model, then LL and AIC per model."""
    labels, params, cell = _wide(results)
    body = []
    for p in params:
        row = [p]
        for m in labels:
            r = cell.get((p, m))
            row.append("" if r is None else f"{_fmt(r['estimate'])} ({_fmt(r['std_err'], 3)})")
        body.append(row)
    body.append(["log-likelihood (exact)", *(f"{f['log_likelihood']:.3f}" for f in results.fits)])
    body.append(["AIC", *(f"{f['aic']:.2f}" for f in results.fits)])
    header = ["parameter", *labels]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in  # noqa: E731
                              enumerate(zip(r, widths, strict=True)))  # fmt: skip
    return "\n".join([fmt(header), "-" * (sum(widths) + 2 * len(widths)), *map(fmt, body)])


def write_choice(results: ChoiceStudyResults, out_dir) -> list[Path]:
    """Write results.json, coefficients.csv, coefficients.md and choice.png; returns the paths.

    Raises:
        OSError: a file cannot be written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "coefficients.csv", out / "coefficients.md"]
    write_json(results.to_json(), paths[0])
    with open(paths[1], "w", newline="") as fh:
        cols = ["model", "parameter", "estimate", "std_err", "lower", "upper"]
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(results.rows)
    paths[2].write_text(format_choice(results, markdown=True) + "\n")

    plt = pyplot()
    labels, params, cell = _wide(results)
    tempered = [f for f in results.fits if f["method"] == "tempered"]
    fig, axes = plt.subplots(1, 2 if tempered else 1, figsize=(12 if tempered else 7, 4.5),
                             squeeze=False)  # fmt: skip
    ax = axes[0, 0]
    width = 0.8 / len(labels)
    for k, m in enumerate(labels):
        ys, xs, err = [], [], []
        for i, p in enumerate(params):
            r = cell.get((p, m))
            if r is not None:
                xs.append(i - 0.4 + (k + 0.5) * width)
                ys.append(r["estimate"])
                se = r["std_err"]
                err.append(Z95 * se if math.isfinite(se) else 0.0)
        ax.errorbar(xs, ys, yerr=err, fmt="o", ms=3, capsize=2, label=m)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xticks(range(len(params)), params, rotation=45, ha="right", fontsize=8)
    ax.set(ylabel="estimate (95% interval)", title=f"{results.config['data']}: coefficients")
    ax.legend(fontsize=7)
    if tempered:
        ax = axes[0, 1]
        ax.plot([f["tau"] for f in tempered], [f["log_likelihood"] for f in tempered], "o-",
                label="tempered fit: exact LL")  # fmt: skip
        ax.plot([f["tau"] for f in tempered], [f["objective"] for f in tempered], "s--",
                label="tempered objective")  # fmt: skip
        for f in results.fits:
            if f["model"] == "full":
                ax.axhline(f["log_likelihood"], color="k", ls=":", label="full probit (exact ML)")
        ax.set(xscale="log", xlabel="tau", ylabel="log-likelihood", title="tempered fits vs tau")
        ax.legend(fontsize=7)
    paths.append(save_figure(fig, out / "choice.png"))
    return paths
