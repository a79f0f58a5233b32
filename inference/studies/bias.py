r"""`hetprobit bias`: relaxation bias and gradient variance of the tempered estimator.

For K in `classes`, data are drawn from the exact heteroscedastic probit
(`models.make_synthetic_classification`, low-rank noise with K // 2 planted pairs). Over a
grid of temperatures tau and Monte Carlo sizes S:

- bias: mean over examples and classes of |p_tau,S - p_exact| at the TRUE (mu, Sigma)
  (`inference.relaxation_bias`; exact probit probabilities from `hetprobit.exact` for
  K <= 10). It includes the Monte Carlo error of S draws (~ 1/sqrt(S)), a floor the
  relaxation bias is measured above; every tau shares the same draws.
- grad_variance: the trace of the covariance over independent Monte Carlo keys of the
  gradient of the negative ELBO w.r.t. all network parameters (`inference.gradient_variance`)
  at the parameters of a short fit (a small MLP + low-rank `HeteroscedasticHead`), on one
  minibatch, with the head's tau and S set to the grid point.

The untempered probit estimator (`hetprobit.probit_log_probs`) is the tau = 0 point
(estimator "probit"); its gradient variance uses the head's `likelihood="probit"` option at
the same fitted parameters.

Background: Collier et al. 2020, "Analysis of softmax approximation for deep classifiers
under input-dependent label noise", arXiv:2003.06778 (the bias-variance trade-off of tau).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp

import hetprobit as hp
from hetprobit.exact import exact_choice_probs
from hetprobit.noise import LowRankNoise
from models import (
    MLP,
    Classifier,
    HeteroscedasticHead,
    classifier_model,
    make_synthetic_classification,
)

from ..driver import fit
from ..relaxation import gradient_variance, relaxation_bias
from .outputs import format_table, pyplot, save_figure, write_json

__all__ = [
    "NAME",
    "BiasResults",
    "run_bias",
    "write_bias",
    "format_bias",
    "add_arguments",
    "check_arguments",
    "run",
    "write",
]

NAME = "bias"
HELP = "relaxation bias and gradient variance of the tempered estimator vs tau and S"
DEFAULT_TAUS = (0.05, 0.1, 0.2, 0.5, 1.0)
DEFAULT_SAMPLES = (16, 64, 256)
QUICK_TAUS = (0.1, 1.0)
QUICK_SAMPLES = (16,)
COLUMNS = [
    ("num_classes", "K"),
    ("estimator", "estimator"),
    ("tau", "tau"),
    ("num_samples", "S"),
    ("bias", "mean |p - p_exact|"),
    ("max_bias", "max |p - p_exact|"),
    ("grad_variance", "grad variance"),
]
LEGEND = {
    "bias": "mean over examples and classes of |p_estimate - p_exact| (probability units; "
    "includes the Monte Carlo error of S draws)",
    "grad_variance": "sum over parameters of the variance over Monte Carlo keys of d(-ELBO)/d"
    "theta on one minibatch (squared loss units per parameter, summed)",
}


class BiasResults(NamedTuple):
    """Outcome of `run_bias`: rows (num_classes, estimator, tau, num_samples, bias,
    max_bias, grad_variance) and the configuration."""

    rows: list[dict]
    config: dict

    def to_rows(self) -> list[dict]:
        """One dict per (K, estimator, tau, S)."""
        return [dict(r) for r in self.rows]

    def to_json(self) -> dict:
        """results.json: {"study", "rows", "config", "legend"}."""
        return {"study": NAME, "rows": self.to_rows(), "config": self.config, "legend": LEGEND}


def _net(key, K, rank, *, tau, num_samples, features=8, likelihood="tempered") -> Classifier:
    k1, k2 = jax.random.split(key)
    head = HeteroscedasticHead(
        features,
        K,
        covariance="low_rank",
        rank=rank,
        tau=tau,
        num_train_samples=num_samples,
        key=k2,
        likelihood=likelihood,
    )
    return Classifier(MLP(4, features, width=16, depth=1, key=k1), head)


def _at_network(result, net: Classifier, name: str = "net"):
    """`result` with its fitted arrays re-labelled under `net`'s static settings.

    The head's Monte Carlo settings are static fields, part of the parameter tree's
    structure, so a fit at S = 16 cannot be evaluated by a network with S = 64 as is; the
    leaves (the fitted arrays) are kept and the structure taken from `net`. The optimiser
    state is re-initialised (gradients do not depend on it).
    """
    import equinox as eqx

    svi = result.svi
    u = svi.optim.get_params(result.state.svi_state.optim_state)
    like = {f"{name}$params": eqx.partition(net, eqx.is_inexact_array)[0]}
    u_new = jax.tree.unflatten(jax.tree.structure(like), jax.tree.leaves(u))
    svi_state = result.state.svi_state._replace(optim_state=svi.optim.init(u_new))
    return result._replace(state=result.state._replace(svi_state=svi_state))


def _one_k(K, *, key, taus, grid, num_data, fit_epochs, num_grad_keys, batch_size):
    k_data, k_net, k_fit, k_bias, k_grad = jax.random.split(key, 5)
    rank = max(1, K // 2)
    data = make_synthetic_classification(num_data, K, num_pairs=rank, key=k_data)
    noise = LowRankNoise(data.scale, data.factor)
    mu = jnp.asarray(data.mu)
    net0 = _net(k_net, K, rank, tau=1.0, num_samples=16)
    result = fit(
        classifier_model,
        None,
        (data.x, data.y),
        num_epochs=fit_epochs,
        batch_size=batch_size,
        key=k_fit,
        progress=False,
        net=net0,
    )
    batch = (data.x[:batch_size], data.y[:batch_size])
    rows = []

    def grad_var(tau, S, likelihood="tempered"):
        net = _net(k_net, K, rank, tau=tau, num_samples=S, likelihood=likelihood)
        kw = dict(key=k_grad, num_keys=num_grad_keys, num_data=num_data, net=net)
        return gradient_variance(_at_network(result, net), batch, **kw)

    for S in grid:
        b = relaxation_bias(mu, noise, taus, key=k_bias, num_samples=S)
        for tau, mean_abs, max_abs in zip(b.taus, b.mean_abs, b.max_abs, strict=True):
            rows.append(
                {
                    "num_classes": K,
                    "estimator": "tempered",
                    "tau": float(tau),
                    "num_samples": int(S),
                    "bias": float(mean_abs),
                    "max_bias": float(max_abs),
                    "grad_variance": grad_var(float(tau), int(S)),
                }
            )
    cov = jnp.broadcast_to(noise.covariance(), (*mu.shape, K))
    exact = exact_choice_probs(mu, cov)
    for S in grid:
        p = jnp.exp(hp.probit_log_probs(mu, noise, key=k_bias, num_samples=int(S)))
        err = jnp.abs(p - exact)
        rows.append(
            {
                "num_classes": K,
                "estimator": "probit",
                "tau": 0.0,
                "num_samples": int(S),
                "bias": float(jnp.mean(err)),
                "max_bias": float(jnp.max(err)),
                "grad_variance": grad_var(1.0, int(S), "probit"),
            }
        )
    return rows


def run_bias(
    *,
    seed: int = 0,
    taus: Sequence[float] = DEFAULT_TAUS,
    num_samples_grid: Sequence[int] = DEFAULT_SAMPLES,
    classes: Sequence[int] = (3, 5),
    num_data: int = 256,
    fit_epochs: int = 5,
    num_grad_keys: int = 16,
    batch_size: int = 64,
    progress: bool = False,
) -> BiasResults:
    """Bias and gradient variance over tau x S for each K in `classes` (module docstring).

    Raises:
        ValueError: a tau <= 0, a non-positive S, K outside [2, 10] (the exact reference),
            `num_data` < `batch_size`.
    """
    taus = tuple(float(t) for t in taus)
    grid = tuple(int(s) for s in num_samples_grid)
    if not taus or min(taus) <= 0:
        raise ValueError(f"`taus` must be non-empty and > 0, got {taus}")
    if not grid or min(grid) < 1:
        raise ValueError(f"`num_samples_grid` must be non-empty and >= 1, got {grid}")
    bad = [k for k in classes if not 2 <= int(k) <= 10]
    if bad:
        raise ValueError(f"`classes` must lie in [2, 10] (exact probit reference), got {bad}")
    if num_data < batch_size:
        raise ValueError(f"`num_data` ({num_data}) must be >= `batch_size` ({batch_size})")
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    key = jax.random.key(seed)
    rows = []
    for K in tqdm(list(classes), desc="bias", disable=not progress):
        rows += _one_k(
            int(K),
            key=jax.random.fold_in(key, int(K)),
            taus=taus,
            grid=grid,
            num_data=num_data,
            fit_epochs=fit_epochs,
            num_grad_keys=num_grad_keys,
            batch_size=batch_size,
        )
    config = {
        "seed": seed,
        "taus": list(taus),
        "num_samples_grid": list(grid),
        "classes": [int(k) for k in classes],
        "num_data": num_data,
        "fit_epochs": fit_epochs,
        "num_grad_keys": num_grad_keys,
        "batch_size": batch_size,
        "total_s": time.perf_counter() - t0,
    }
    return BiasResults(rows, config)


def format_bias(results: BiasResults) -> str:
    """The terminal report: the table and its legend."""
    lines = [format_table(results.to_rows(), COLUMNS, digits=4), ""]
    lines += [f"  {k}: {v}" for k, v in LEGEND.items()]
    return "\n".join(lines)


def write_bias(results: BiasResults, out_dir) -> list[Path]:
    """Write results.json and bias.png (bias and gradient variance vs tau, a line per S,
    a row per K; the untempered estimator as a marker at tau = 0). Returns the paths.

    Raises:
        OSError: a file cannot be written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_json(results.to_json(), out / "results.json")]
    plt = pyplot()
    ks = sorted({r["num_classes"] for r in results.rows})
    fig, axes = plt.subplots(len(ks), 2, figsize=(9, 3.2 * len(ks)), squeeze=False)
    for (ax_b, ax_g), K in zip(axes, ks, strict=True):
        for S in sorted({r["num_samples"] for r in results.rows}):
            sel = [r for r in results.rows if r["num_classes"] == K and r["num_samples"] == S]
            temp = [r for r in sel if r["estimator"] == "tempered"]
            line = ax_b.plot(
                [r["tau"] for r in temp], [r["bias"] for r in temp], "o-", label=f"S={S}"
            )
            ax_g.plot([r["tau"] for r in temp], [r["grad_variance"] for r in temp], "o-")
            for r in sel:
                if r["estimator"] == "probit":
                    kw = dict(marker="*", ms=12, color=line[0].get_color())
                    x0 = [min(results.config["taus"]) / 2]  # tau = 0 drawn left of the grid
                    ax_b.plot(x0, [r["bias"]], label=f"untempered, S={S}", **kw)
                    ax_g.plot(x0, [r["grad_variance"]], **kw)
        ax_b.set(xscale="log", yscale="log", xlabel="tau", ylabel="mean |p - p_exact|")
        ax_b.set_title(f"K = {K}: bias vs exact probit")
        ax_g.set(xscale="log", yscale="log", xlabel="tau", ylabel="gradient variance")
        ax_g.set_title(f"K = {K}: gradient variance")
        ax_b.legend(fontsize=8)
    paths.append(save_figure(fig, out / "bias.png"))
    return paths


# ---------------------------------------------------------------------- command line


def _float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"every tau must be > 0, got {text}")
    return values


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"every value must be >= 1, got {text}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `hetprobit bias`."""
    parser.add_argument(
        "--taus",
        type=_float_list,
        default=None,
        help=f"comma list; None: {DEFAULT_TAUS}, quick {QUICK_TAUS}",
    )
    parser.add_argument(
        "--samples",
        type=_int_list,
        default=None,
        help=f"S grid, comma list; None: {DEFAULT_SAMPLES}, quick {QUICK_SAMPLES}",
    )
    parser.add_argument(
        "--classes",
        type=_int_list,
        default=None,
        help="K values, comma list, each in [2, 10]; None: (3, 5), quick (3,)",
    )


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill the grids (`--quick` picks the small ones) and check K; exit 2 on a bad value."""
    if args.classes is None:
        args.classes = (3,) if args.quick else (3, 5)
    bad = [k for k in args.classes if not 2 <= k <= 10]
    if bad:
        parser.error(f"argument --classes: each K must lie in [2, 10] (exact reference), got {bad}")
    if args.taus is None:
        args.taus = QUICK_TAUS if args.quick else DEFAULT_TAUS
    if args.samples is None:
        args.samples = QUICK_SAMPLES if args.quick else DEFAULT_SAMPLES


def run(args: argparse.Namespace) -> BiasResults:
    """Run the study as the command's options say (`--epochs`: the short fit's epochs)."""
    return run_bias(
        seed=args.seed,
        taus=args.taus,
        num_samples_grid=args.samples,
        classes=args.classes,
        num_data=128 if args.quick else 256,
        fit_epochs=args.epochs or (1 if args.quick else 5),
        num_grad_keys=8 if args.quick else 16,
        progress=not args.no_progress,
    )


def write(results: BiasResults, out) -> list[Path]:
    """Print the report and write the files (`write_bias`)."""
    print(format_bias(results))
    paths = write_bias(results, out)
    print(f"\nwrote {len(paths)} files to {out}")
    return paths
