r"""Bayesian multinomial probit: NUTS on the exact / GHK choice likelihood.

Posterior over theta = (coefficients, noise parameters) of `models.ChoiceModel`,

    p(theta | y) ∝ prod_n P(y_n | x_n, z_n; theta) p(theta),

where prod_n P(y_n | .) is `ChoiceModel`'s per-chooser log-likelihood (the exact probit: closed
bivariate / trivariate normal CDF for J = 3, 4, Genz's lattice GHK for 5 <= J <= 10), entered
with `numpyro.factor` — the same function the maximum-likelihood fit maximises, not a copy.

Priors (normalisations as in `fit_choice`; only utility differences and one scale are
identified, Train 2009, *Discrete Choice Methods with Simulation*, ch. 5):

* coefficients (ASCs, generic, alternative-specific, chooser-variable): beta_p ~ N(0, s_beta^2)
  independently (`coef_scale` = s_beta).
* covariance="iid": Sigma = I (no noise parameters).
* covariance="heteroscedastic": ln sd_j ~ N(0, 1) for j != base, sd_base = 1.
* covariance="full": the covariance of the utility differences w.r.t. the base,
  Omega = Cov(eps_j - eps_base) `(J-1, J-1)` = D R D with R ~ LKJ(eta) (Lewandowski,
  Kurowicka & Joe 2009, J. Multivariate Anal. 100(9); `lkj_concentration` = eta) and
  D = diag(1, s_2, ..., s_{J-1}), s_k ~ LogNormal(0, 1). Fixing s_1 = 1 (Omega_00 = 1) is
  the scale normalisation of the maximum-likelihood "full" probit, so posterior and ML
  estimates are on the same scale; theta's noise part is the Cholesky factor L = D L_R of
  Omega in `ChoiceModel`'s parametrisation (sub-diagonal entries, ln L_ii).

Sampling: NUTS (Hoffman & Gelman 2014, JMLR 15) with a dense mass matrix, chains run one after
another (`chain_method="sequential"`), in float64. The arviz summary (mean, sd, HDI, bulk / tail
ESS, R-hat; Vehtari et al. 2021, Bayesian Anal. 16(2)) is over named sites `theta` (coefficient
names of the ML fit) and `omega` (Omega's entries).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.infer import MCMC, NUTS

from hetprobit.validation import check_positive_int
from models import ChoiceData, ChoiceModel, ChoiceResults, ChoiceSpec
from models.choice_results import choice_arrays
from models.choice_spec import design_layout

from .arviz_export import arviz, summarize
from .data import as_typed_key

__all__ = ["BAYES_COVARIANCES", "ChoiceBayesResults", "choice_probit_model", "fit_choice_bayes"]

BAYES_COVARIANCES = ("iid", "heteroscedastic", "full")


def _full_raw(L):
    """`ChoiceModel`'s "full" parameters from L `(m, m)`: row by row L[i, :i], then ln L_ii."""
    parts = []
    for i in range(L.shape[0]):
        parts.append(L[i, :i])
        if i:
            parts.append(jnp.log(L[i, i])[None])
    return jnp.concatenate(parts) if parts else jnp.zeros((0,), L.dtype)


def choice_probit_model(
    model: ChoiceModel,
    arrays,
    *,
    coef_scale: float = 10.0,
    lkj_concentration: float = 2.0,
):
    """NumPyro model of the Bayesian probit (priors in the module docstring).

    Sites: `beta` `(P,)`, and by covariance `ln_sd` `(J-1,)` (heteroscedastic) or
    `corr_chol` `(J-1, J-1)` and `scale` `(J-2,)` (full); deterministic `theta` `(k,)` in
    `model.names` order and `omega` `(J-1, J-1)`; the log-likelihood sum_n log P(y_n) as the
    factor `log_likelihood`.
    """
    P = len(model.coef_names)
    m = model.num_alternatives - 1
    dtype = arrays.attributes.dtype
    beta = numpyro.sample("beta", dist.Normal(jnp.zeros(P, dtype), coef_scale).to_event(1))
    if model.covariance == "iid":
        noise_sites = ()
    elif model.covariance == "heteroscedastic":
        noise_sites = (numpyro.sample("ln_sd", dist.Normal(jnp.zeros(m, dtype), 1.0).to_event(1)),)
    else:
        corr_chol = numpyro.sample("corr_chol", dist.LKJCholesky(m, lkj_concentration))
        scale = numpyro.sample("scale", dist.LogNormal(jnp.zeros(m - 1, dtype), 1.0).to_event(1))
        noise_sites = (corr_chol, scale)
    theta, omega, log_likelihood = _theta_omega_log_likelihood(model, beta, noise_sites, arrays)
    numpyro.deterministic("theta", theta)
    numpyro.deterministic("omega", omega)
    numpyro.factor("log_likelihood", log_likelihood)


@partial(jax.jit, static_argnums=0)
def _theta_omega_log_likelihood(model: ChoiceModel, beta, noise_sites: tuple, arrays):
    """theta `(k,)`, Omega `(J-1, J-1)` and sum_n log P(y_n) from the sampled sites.

    One compiled function: numpyro runs the model eagerly while it initialises (tracing it and
    searching for valid initial values), and op by op the likelihood is hundreds of small XLA
    compilations (15 s at J = 3); compiled whole it is one, inlined into NUTS's own program.
    """
    if model.covariance == "iid":
        raw = jnp.zeros((0,), beta.dtype)
    elif model.covariance == "heteroscedastic":
        (raw,) = noise_sites
    else:
        corr_chol, scale = noise_sites
        sd = jnp.concatenate([jnp.ones(1, scale.dtype), scale])
        raw = _full_raw(sd[:, None] * corr_chol)
    theta = jnp.concatenate([beta, raw])
    return theta, model.difference_covariance(theta), jnp.sum(model(theta, arrays))


@dataclass(frozen=True, eq=False)
class ChoiceBayesResults:
    """Result of `fit_choice_bayes`.

    Attributes:
        model: the `ChoiceModel` whose likelihood was sampled. spec: the `ChoiceSpec`.
        samples: draws by site, each `(chains, draws, *site_shape)` (numpy).
        inference_data: the arviz data: posterior `theta` (coord `param`: the parameter names)
            and `omega` (coord `entry`: "<alt>,<alt>", Omega's free lower-triangle entries:
            none for iid, all but Omega_00 = 1 for full), sample stats `diverging`.
        summary: arviz summary of `theta` and `omega` (mean, sd, hdi, ess, r_hat).
        num_divergences: divergent transitions after warm-up, all chains.
        seconds: wall time, compilation included.
        priors: the prior settings (coef_scale, lkj_concentration).
    """

    model: ChoiceModel
    spec: ChoiceSpec
    samples: dict
    inference_data: object
    summary: pd.DataFrame
    num_divergences: int
    seconds: float
    priors: dict

    @property
    def names(self) -> tuple[str, ...]:
        return self.model.names

    def _theta(self) -> np.ndarray:
        t = self.samples["theta"]
        return t.reshape(-1, t.shape[-1])

    @property
    def mean(self) -> pd.Series:
        """Posterior mean of theta, by name."""
        return pd.Series(self._theta().mean(axis=0), index=list(self.names))

    @property
    def sd(self) -> pd.Series:
        """Posterior standard deviation of theta, by name."""
        return pd.Series(self._theta().std(axis=0, ddof=1), index=list(self.names))

    @property
    def difference_covariance(self) -> np.ndarray:
        """Posterior mean of Omega = Cov(eps_j - eps_base) `(J-1, J-1)`."""
        o = self.samples["omega"]
        return o.reshape(-1, *o.shape[-2:]).mean(axis=0)

    def compare(self, ml: ChoiceResults) -> pd.DataFrame:
        """Side by side with a maximum-likelihood fit of the same model: per parameter the ML
        estimate and Hessian standard error, the posterior mean and sd, and
        (mean - estimate) / sd.

        Raises:
            ValueError: `ml` is not a fit of the same parameters.
        """
        if not isinstance(ml, ChoiceResults) or tuple(ml.names) != tuple(self.names):
            got = getattr(ml, "names", type(ml).__name__)
            raise ValueError(
                f"`ml` must be a ChoiceResults with parameters {self.names}, got {got}"
            )
        table = pd.DataFrame(
            {
                "ml_estimate": ml.coef,
                "ml_std_err": ml.std_err,
                "posterior_mean": self.mean,
                "posterior_sd": self.sd,
            }
        )
        table["difference_in_sd"] = (table.posterior_mean - table.ml_estimate) / table.posterior_sd
        return table


def fit_choice_bayes(
    data: ChoiceData,
    spec: ChoiceSpec,
    *,
    key,
    covariance: str = "full",
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    coef_scale: float = 10.0,
    lkj_concentration: float = 2.0,
    n_points: int = 1021,
    n_shifts: int = 8,
    target_accept: float = 0.8,
    progress: bool = False,
) -> ChoiceBayesResults:
    """Sample the posterior of a multinomial probit with NUTS (module docstring: priors).

    Args:
        data: `ChoiceData`; spec: `ChoiceSpec` (coefficient names as in `fit_choice`).
        key: PRNG key of the chains (keyword-only).
        covariance: "iid" | "heteroscedastic" | "full" (normalisations as `fit_choice`).
        num_warmup, num_samples: NUTS warm-up and kept draws per chain; num_chains: chains.
        coef_scale: prior s.d. of every coefficient; lkj_concentration: LKJ eta (> 0; 1 is
            uniform over correlation matrices).
        n_points, n_shifts: lattice GHK points for 5 <= J <= 10 (exact closed forms below).
        target_accept: NUTS target acceptance probability in (0, 1).
        progress: show numpyro's progress bar.

    Returns:
        `ChoiceBayesResults` (draws, arviz data and summary, `compare(ml_fit)`).

    Raises:
        TypeError: `data` / `spec` of the wrong type.
        ValueError: an unknown covariance, a spec that does not match the data, J beyond the
            exact probit, non-positive sizes or scales, target_accept outside (0, 1).
    """
    t0 = time.perf_counter()
    if not isinstance(data, ChoiceData):
        raise TypeError(f"`data` must be a ChoiceData, got {type(data).__name__}")
    if not isinstance(spec, ChoiceSpec):
        raise TypeError(f"`spec` must be a ChoiceSpec, got {type(spec).__name__}")
    if covariance not in BAYES_COVARIANCES:
        raise ValueError(f"`covariance` must be one of {BAYES_COVARIANCES}, got {covariance!r}")
    num_warmup = check_positive_int("num_warmup", num_warmup)
    num_samples = check_positive_int("num_samples", num_samples)
    num_chains = check_positive_int("num_chains", num_chains)
    for name, value in (("coef_scale", coef_scale), ("lkj_concentration", lkj_concentration)):
        if not value > 0:
            raise ValueError(f"`{name}` must be > 0, got {value}")
    if not 0 < target_accept < 1:
        raise ValueError(f"`target_accept` must lie in (0, 1), got {target_accept}")
    if covariance == "full" and data.num_alternatives < 3:
        raise ValueError("covariance='full' needs J >= 3 alternatives; use 'iid' for J = 2")
    model = ChoiceModel(
        design_layout(spec, data), "probit", covariance, method="exact",
        n_points=int(n_points), n_shifts=int(n_shifts),
    )  # fmt: skip
    key = as_typed_key(key)
    with jax.enable_x64(True):
        arrays = choice_arrays(data)
        kernel = NUTS(choice_probit_model, dense_mass=True, target_accept_prob=target_accept)
        mcmc = MCMC(
            kernel,
            num_warmup=num_warmup,
            num_samples=num_samples,
            num_chains=num_chains,
            chain_method="sequential",
            progress_bar=progress,
        )
        mcmc.run(
            key, model, arrays, coef_scale=coef_scale, lkj_concentration=lkj_concentration,
            extra_fields=("diverging",),
        )  # fmt: skip
        draws = mcmc.get_samples(group_by_chain=True)
        samples = {k: np.asarray(v) for k, v in draws.items()}
        diverging = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
    idata = _to_arviz(samples, diverging, model, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        names = ["theta"] if model.covariance == "iid" else ["theta", "omega"]
        summary = summarize(idata, var_names=names)
    return ChoiceBayesResults(
        model=model,
        spec=spec,
        samples=samples,
        inference_data=idata,
        summary=summary,
        num_divergences=int(diverging.sum()),
        seconds=time.perf_counter() - t0,
        priors={"coef_scale": float(coef_scale), "lkj_concentration": float(lkj_concentration)},
    )


def _to_arviz(samples: dict, diverging, model: ChoiceModel, data: ChoiceData):
    """arviz data of the draws, `theta` labelled by parameter name and `omega` by the non-base
    alternatives. (`to_arviz` of `arviz_export` draws from a guide; MCMC has draws already.)"""
    az = arviz()
    others = [a for j, a in enumerate(data.alternatives) if j != model.layout.base]
    rows, cols = np.tril_indices(len(others))
    fixed = {"iid": set(zip(rows, cols, strict=True)), "full": {(0, 0)}}.get(
        model.covariance, set()
    )
    free = [(i, k) for i, k in zip(rows, cols, strict=True) if (i, k) not in fixed]
    coords = {"param": list(model.names), "entry": [f"{others[i]},{others[k]}" for i, k in free]}
    dims = {"theta": ["param"], "omega": ["entry"]}
    posterior = {"theta": samples["theta"]}
    if free:
        omega = samples["omega"]
        posterior["omega"] = np.stack([omega[..., i, k] for i, k in free], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if int(az.__version__.split(".")[0]) >= 1:  # pragma: no cover - arviz 1.x
            return az.from_dict(
                {"posterior": posterior, "sample_stats": {"diverging": diverging}},
                coords=coords,
                dims=dims,
            )
        return az.from_dict(
            posterior=posterior, sample_stats={"diverging": diverging}, coords=coords, dims=dims
        )
