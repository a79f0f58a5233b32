r"""`hetprobit compare`: every method on digits with injected, class-correlated label noise.

`run_compare` fits the methods of `methods.METHODS` on `methods.noisy_digits` (noise on
the train and validation splits only, test labels clean) and scores them on the clean test
labels with `hetprobit.metrics` (`METRIC_LEGEND`). It also reads the low-rank model's
learned covariance (`models.covariance_summary`, centred: the part of Sigma the argmax
identifies) and ranks class pairs by |correlation|, next to the injected noise's true pairs,
scored by `models.label_noise.pair_recovery`. `write_compare` writes results.json, a
reliability diagram per method and the covariance heatmap; `format_compare` the tables.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from models import covariance_summary
from models.label_noise import pair_recovery

from ..predictive import evaluate
from .methods import METHODS, FitConfig, fit_method, noisy_digits
from .outputs import format_table, plot_pairs, plot_reliability, pyplot, save_figure, write_json

__all__ = [
    "NAME",
    "METRIC_LEGEND",
    "CompareResults",
    "PairRecovery",
    "run_compare",
    "write_compare",
    "format_compare",
    "add_arguments",
    "check_arguments",
    "run",
    "write",
]

NAME = "compare"
HELP = "fit every method on digits with injected label noise; score on clean test labels"
DEFAULT_METHODS = tuple(METHODS)
# --quick without --methods: four methods sharing two fits (a smoke run)
QUICK_METHODS = ("homoscedastic", "temp_scaled", "low_rank", "taylor")
N_BINS = 15

METRIC_LEGEND = {
    "accuracy": "top-1 accuracy on the clean test labels, fraction in [0, 1] (higher is better)",
    "nll": "negative log-likelihood of the clean test labels, nats per example (lower)",
    "ece": f"expected calibration error, top-label, {N_BINS} equal-width confidence bins, "
    "in [0, 1] (lower)",
    "brier": "Brier score, mean over examples of sum_k (p_k - 1[k = y])^2, in [0, 2] (lower)",
    "fit_s": "wall-clock seconds to fit, compilation included (shared fits counted in full)",
}
COLUMNS = [
    ("method", "method"),
    ("accuracy", "top-1"),
    ("nll", "NLL"),
    ("ece", "ECE"),
    ("brier", "Brier"),
    ("fit_s", "fit (s)"),
]


class PairRecovery(NamedTuple):
    """Learned vs injected confusable pairs.

    Attributes:
        method: the model the covariance is read from.
        learned: top pairs `[(i, j, centred correlation), ...]`, by |correlation|.
        true_pairs: the injected pairs `[(a, b), ...]`.
        true_ranks: rank (0 = first) of each true pair among all learned pairs.
        scores: `pair_recovery` (recall_at_P, mean_reciprocal_rank), both in [0, 1].
        correlation: the centred correlation matrix `(K, K)`.
        transition: the injected noise's transition matrix `(K, K)` (training split).
    """

    method: str
    learned: list
    true_pairs: list
    true_ranks: list
    scores: dict
    correlation: np.ndarray
    transition: np.ndarray


class CompareResults(NamedTuple):
    """Outcome of `run_compare`: one metric row per method, probabilities, pair recovery."""

    rows: list[dict]
    config: dict
    probs: dict[str, np.ndarray]
    test_labels: np.ndarray
    pairs: PairRecovery | None

    def to_rows(self) -> list[dict]:
        """Rows with method, accuracy, nll, ece, brier, fit_s (+ label, source, extras)."""
        return [dict(r) for r in self.rows]

    def to_json(self) -> dict:
        """results.json: {"rows": [...], "config": {...}, "legend": {...}, "pairs": {...}}."""
        pairs = None
        if self.pairs is not None:
            p = self.pairs
            pairs = {
                "method": p.method,
                "learned_top": p.learned,
                "true_pairs": p.true_pairs,
                "true_ranks": p.true_ranks,
                "recovery": p.scores,
            }
        return {
            "study": NAME,
            "rows": self.to_rows(),
            "config": self.config,
            "legend": METRIC_LEGEND,
            "pairs": pairs,
        }


def _pairs(name, net, task, top_k: int) -> PairRecovery:
    import jax.numpy as jnp

    r = jax.vmap(net.backbone)(jnp.asarray(task.test[0]))
    summary = covariance_summary(net.head, r, top_k=None, center=True)
    ranked = summary.top_correlation
    truth = [tuple(p) for p in task.train_noise.pairs]
    lookup = {frozenset((p.i, p.j)): n for n, p in enumerate(ranked)}
    return PairRecovery(
        method=name,
        learned=[(p.i, p.j, p.value) for p in ranked[:top_k]],
        true_pairs=truth,
        true_ranks=[lookup.get(frozenset(p)) for p in truth],
        scores=pair_recovery(ranked, truth),
        correlation=summary.correlation,
        transition=np.asarray(task.train_noise.transition),
    )


def run_compare(
    *,
    seed: int = 0,
    noise_rate: float = 0.3,
    methods: Sequence[str] = DEFAULT_METHODS,
    config: FitConfig | None = None,
    progress: bool = False,
    cache: dict | None = None,
) -> CompareResults:
    """Fit `methods` on noisy digits and score them on the clean test labels.

    Args:
        seed: seeds the split, the noise and every fit (keys from `jax.random.key(seed)`).
        noise_rate: mean swap probability within the confusable pairs, in [0, 0.5].
        methods: names from `methods.METHODS`.
        config: sizes (`FitConfig`, None: the defaults): epochs, Monte Carlo samples,
            ensemble members, tau grid.
        progress: show a progress bar over the methods (and per fit).
        cache: a dict of fits shared with earlier calls of `fit_method` / `run_compare`
            with the same seed and noise rate (fits are keyed by method settings and config).

    Raises:
        KeyError: an unknown method; ValueError: `noise_rate` outside [0, 0.5].
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise KeyError(f"unknown method(s) {unknown}; known: {sorted(METHODS)}")
    config = FitConfig() if config is None else config
    task = noisy_digits(seed=seed, noise_rate=noise_rate)
    key = jax.random.key(seed)
    cache = {} if cache is None else cache
    rows, probs, nets = [], {}, {}
    from tqdm.auto import tqdm

    bar = tqdm(list(methods), desc="compare", disable=not progress)
    t0 = time.perf_counter()
    for name in bar:
        bar.set_postfix_str(name)
        pred = fit_method(name, task, config, key=key, cache=cache, progress=False)
        metrics = evaluate(pred.log_probs, task.test[1], n_bins=N_BINS)
        method = METHODS[name]
        rows.append(
            {
                "method": name,
                "label": method.label,
                "source": method.source,
                **{k: metrics[k] for k in ("accuracy", "nll", "ece", "brier")},
                "fit_s": float(pred.fit_s),
                **pred.extra,
            }
        )
        probs[name] = np.exp(pred.log_probs)
        if pred.net is not None:
            nets[name] = pred.net
    pair_source = next(
        (m for m in ("low_rank", "taylor", "parameter_efficient") if m in nets), None
    )
    pairs = None if pair_source is None else _pairs(pair_source, nets[pair_source], task, 10)
    noise = task.train_noise
    meta = {
        "seed": seed,
        "noise_rate": noise_rate,
        "methods": list(methods),
        "fit": config._asdict(),
        "data": {
            "name": "sklearn digits (pixels / 16)",
            "split": {k: len(getattr(task, k)[1]) for k in ("train", "val", "test")},
            "noisy_pairs": [list(p) for p in noise.pairs],
            "train_flipped": float(np.mean(noise.swapped)),
            "val_flipped": float(np.mean(task.val_noise.swapped)),
            "test_labels": "clean",
        },
        "ece_bins": N_BINS,
        "total_s": time.perf_counter() - t0,
    }
    return CompareResults(rows, meta, probs, np.asarray(task.test[1]), pairs)


def format_compare(results: CompareResults) -> str:
    """The terminal report: the metric table, its legend and the pair-recovery table."""
    lines = [format_table(results.to_rows(), COLUMNS), ""]
    lines += [f"  {k:>8}: {v}" for k, v in METRIC_LEGEND.items()]
    p = results.pairs
    if p is not None:
        lines += ["", f"Confusable pairs: learned ({p.method}, centred correlation) vs injected"]
        learned = [
            {"rank": n + 1, "pair": f"{i}-{j}", "corr": v}
            for n, (i, j, v) in enumerate(p.learned[:6])
        ]
        lines.append(
            format_table(
                learned, [("rank", "rank"), ("pair", "learned pair"), ("corr", "corr")], digits=3
            )
        )
        truth = ", ".join(
            f"{a}-{b} (rank {'-' if r is None else r + 1})"
            for (a, b), r in zip(p.true_pairs, p.true_ranks, strict=True)
        )
        lines.append(f"injected pairs: {truth}")
        lines.append(
            f"recovery: recall@{len(p.true_pairs)} = {p.scores['recall_at_P']:.2f}, "
            f"mean reciprocal rank = {p.scores['mean_reciprocal_rank']:.2f}"
        )
    return "\n".join(lines)


def write_compare(results: CompareResults, out_dir) -> list[Path]:
    """Write results.json, reliability_<method>.png, reliability.png (all methods) and,
    with a covariance, pairs.png (learned centred correlation next to the injected
    transition matrix). Creates `out_dir`; returns the paths written.

    Raises:
        OSError: a file cannot be written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    paths = [write_json(results.to_json(), out / "results.json")]
    y = results.test_labels
    rows = {r["method"]: r for r in results.rows}
    for name, probs in results.probs.items():
        fig, ax = plt.subplots(figsize=(4, 4))
        plot_reliability(ax, probs, y, N_BINS, f"{name}: ECE {rows[name]['ece']:.3f}")
        paths.append(save_figure(fig, out / f"reliability_{name}.png"))
    n = len(results.probs)
    if n:
        cols = min(4, n)
        fig, axes = plt.subplots(-(-n // cols), cols, figsize=(3 * cols, 3 * -(-n // cols)))
        for ax, (name, probs) in zip(np.ravel(axes), results.probs.items(), strict=False):
            plot_reliability(ax, probs, y, N_BINS, f"{name}\nECE {rows[name]['ece']:.3f}")
        for ax in np.ravel(axes)[n:]:
            ax.axis("off")
        paths.append(save_figure(fig, out / "reliability.png"))
    if results.pairs is not None:
        p = results.pairs
        paths.append(plot_pairs(out / "pairs.png", p.correlation, p.transition, p.method))
    return paths


# ---------------------------------------------------------------------- command line


def _method_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of method names")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown method(s) {unknown}; known: {list(METHODS)}")
    return names


def _noise_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a float, got {text!r}") from None
    if not 0.0 <= value <= 0.5:
        raise argparse.ArgumentTypeError(f"must lie in [0, 0.5], got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `hetprobit compare` (besides the common --seed/--out/--quick/--epochs)."""
    parser.add_argument(
        "--methods",
        type=_method_list,
        default=None,
        help=f"comma-separated subset of: {', '.join(METHODS)} (None: all; "
        f"with --quick: {','.join(QUICK_METHODS)})",
    )
    parser.add_argument(
        "--noise-rate",
        type=_noise_rate,
        default=0.3,
        help="mean swap probability within the confusable pairs, train/val only, in [0, 0.5]",
    )
    parser.add_argument(
        "--members", type=int, default=None, help="ensemble size (None: 4; 2 with --quick)"
    )


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Checks needing several options; `parser.error` (exit 2) before any work."""
    if args.methods is None:
        args.methods = QUICK_METHODS if args.quick else DEFAULT_METHODS
    if args.members is not None and args.members < 1:
        parser.error(f"argument --members: must be > 0, got {args.members}")


def config_from_args(args: argparse.Namespace) -> FitConfig:
    """`FitConfig` of the command: `--quick` shrinks epochs, samples and members."""
    base = FitConfig()
    if args.quick:
        base = base._replace(
            epochs=3, train_samples=8, eval_samples=64, members=2, tau_grid=(0.3, 1.0)
        )
    if args.epochs is not None:
        base = base._replace(epochs=args.epochs)
    if args.members is not None:
        base = base._replace(members=args.members)
    return base


def run(args: argparse.Namespace) -> CompareResults:
    """Run the study as the command's options say."""
    return run_compare(
        seed=args.seed,
        noise_rate=args.noise_rate,
        methods=args.methods,
        config=config_from_args(args),
        progress=not args.no_progress,
    )


def write(results: CompareResults, out) -> list[Path]:
    """Print the report and write the files (`write_compare`)."""
    print(format_compare(results))
    paths = write_compare(results, out)
    print(f"\nwrote {len(paths)} files to {out}")
    return paths
