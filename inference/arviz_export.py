r"""Posterior samples as arviz data, their summary, and plots saved to PNG.

`to_arviz` draws from a fitted guide (`guide.sample_posterior`: a Bayesian last layer under
`AutoNormal`, probit-regression coefficients, ...) and wraps the draws as arviz data with
dims named `{site}_dim_i`. Site names with "/" (NumPyro's default scope divider) are
refused by arviz: use `scope_divider="."` (as `models.classifier_model` does).

arviz versions. arviz < 1 (what Python 3.11 installs: 0.23) returns `InferenceData`
from `az.from_dict(posterior=...)`; arviz >= 1 (Python 3.12+) takes
`az.from_dict({"posterior": ...})` and returns an xarray `DataTree`. Both paths are kept,
chosen on `arviz.__version__`; `az.summary` takes either. Plots use matplotlib's Agg
backend (no display) and are written with `savefig`.

arviz is imported lazily: importing it emits a FutureWarning on 0.23, which a strict test
run (warnings are errors) must not see at `import inference`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from hetprobit.validation import check_positive_int

from .data import as_typed_key
from .driver import FitResult

__all__ = ["arviz", "to_arviz", "summarize", "plot_posterior", "plot_losses"]


def arviz():
    """The arviz module, imported with its refactor FutureWarning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


def _arviz_major() -> int:
    return int(arviz().__version__.split(".")[0])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_arviz(
    guide,
    params: dict,
    *args,
    key: PRNGKeyArray,
    num_samples: int = 1000,
    num_chains: int = 1,
    var_names: Sequence[str] | None = None,
    **kwargs,
):
    """Posterior draws of the guide as arviz data (`InferenceData` / `DataTree`).

    Args:
        guide: a fitted guide with `sample_posterior` (e.g. `AutoNormal`).
        params: its fitted params (`FitResult.params`).
        *args, **kwargs: the model's arguments, if `sample_posterior` needs them.
        key: PRNG key of the draws.
        num_samples: draws per chain; num_chains: independent chains (split keys).
        var_names: sites to keep (default: every latent site).

    Returns:
        arviz data with a `posterior` group, variables `(chain, draw, *site_shape)`.

    Raises:
        TypeError: `guide` has no `sample_posterior`.
        KeyError: a name of `var_names` is not a posterior site.
        ValueError: a site name contains "/" (arviz refuses it).
    """
    if not hasattr(guide, "sample_posterior"):
        raise TypeError(f"`guide` must have sample_posterior, got {type(guide).__name__}")
    S = check_positive_int("num_samples", num_samples)
    C = check_positive_int("num_chains", num_chains)
    keys = jax.random.split(as_typed_key(key), C)
    # one draw per key under vmap (numpyro's sample_shape path broadcasts by rank)
    draw = jax.jit(jax.vmap(lambda k: guide.sample_posterior(k, params, *args, **kwargs)))
    chains = [draw(jax.random.split(k, S)) for k in keys]
    names = list(chains[0]) if var_names is None else list(var_names)
    missing = [n for n in names if n not in chains[0]]
    if missing:
        raise KeyError(f"no posterior sites {missing}; available: {sorted(chains[0])}")
    bad = [n for n in names if "/" in n]
    if bad:
        raise ValueError(f"arviz refuses '/' in variable names {bad}: use scope_divider='.'")
    posterior = {n: np.stack([np.asarray(c[n]) for c in chains]) for n in names}
    az = arviz()
    if _arviz_major() >= 1:  # pragma: no cover - arviz 1.x (Python 3.12+)
        return az.from_dict({"posterior": posterior})
    return az.from_dict(posterior=posterior)


def summarize(data, **kwargs):
    """`arviz.summary(data, **kwargs)` (a pandas DataFrame; mean, sd, hdi, ess, r_hat)."""
    return arviz().summary(data, **kwargs)


def plot_posterior(
    data,
    path: str | os.PathLike,
    *,
    kind: str = "forest",
    var_names: Sequence[str] | None = None,
) -> str:
    """Save a forest (`kind="forest"`) or trace (`"trace"`) plot of `data` to a PNG.

    Raises:
        ValueError: `kind` is neither "forest" nor "trace".
    """
    if kind not in ("forest", "trace"):
        raise ValueError(f"`kind` must be 'forest' or 'trace', got {kind!r}")
    plt = _pyplot()
    az = arviz()
    names = None if var_names is None else list(var_names)
    with warnings.catch_warnings():
        # arviz 0.23's own refactor notice and its use of deprecated matplotlib API
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        if _arviz_major() >= 1:  # pragma: no cover - arviz 1.x returns a PlotCollection
            pc = (
                az.plot_forest(data, var_names=names)
                if kind == "forest"
                else (az.plot_trace_dist(data, var_names=names))
            )
            pc.savefig(os.fspath(path))
            return os.fspath(path)
        if kind == "forest":
            axes = az.plot_forest(data, var_names=names, combined=True)
        else:
            axes = az.plot_trace(data, var_names=names)
    fig = np.asarray(axes).ravel()[0].figure
    fig.savefig(os.fspath(path), dpi=80, bbox_inches="tight")
    plt.close(fig)
    return os.fspath(path)


def plot_losses(result: FitResult, path: str | os.PathLike, *, log_scale: bool = False) -> str:
    """Save the loss history (per step, and the per-epoch mean) to a PNG.

    Raises:
        TypeError: `result` is not a `FitResult`.
    """
    if not isinstance(result, FitResult):
        raise TypeError(f"`result` must be a FitResult, got {type(result).__name__}")
    plt = _pyplot()
    steps = result.step_losses.reshape(-1)
    per_epoch = result.step_losses.shape[1]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, steps.size + 1), steps, lw=0.6, alpha=0.5, label="step")
    ax.plot(per_epoch * np.arange(1, result.losses.size + 1), result.losses, "o-", label="epoch")
    if result.val_history.size:
        ax2 = ax.twinx()
        ax2.plot(
            per_epoch * np.arange(1, result.val_history.size + 1),
            result.val_history,
            "s--",
            color="C2",
            label="validation",
        )
        ax2.set_ylabel("validation metric")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (negative ELBO)")
    if log_scale:
        ax.set_yscale("log")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=80)
    plt.close(fig)
    return os.fspath(path)
