r"""`fit_choice`: maximum-likelihood estimation of logit and probit discrete-choice models.

    theta_hat = argmax sum_n log P(y_n | x_n, z_n; theta)

with the likelihoods of `choice_likelihood` (exact / lattice GHK in log space, or tempered
Monte Carlo for research) and the BFGS engine of `estimation` (compiled once per problem shape,
several starts, Hessian and sandwich standard errors). Everything runs in float64.

Probit starts (unless given): the logit estimate rescaled to the probit's normalisation
(beta_logit * sqrt(6) / pi for unit-variance noise; a further 1 / sqrt(2) for "full", whose
Omega_00 = Var(eps_j - eps_base) = 1), with the noise at its iid value and at a perturbed value.
"""

from __future__ import annotations

import math
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from hetprobit import exact_choice_probs

from .choice_data import ChoiceData
from .choice_likelihood import ChoiceModel
from .choice_results import ChoiceResults, choice_arrays
from .choice_spec import ChoiceSpec, design_layout, design_matrix
from .estimation import evaluate_log_likelihood, maximize_likelihood

__all__ = ["fit_choice", "TemperatureWarning", "NonConvergenceWarning"]

TAU_RATIO = 0.1


class TemperatureWarning(UserWarning):
    """tau is not small against the smallest noise standard deviation (tempered fit biased)."""


class NonConvergenceWarning(UserWarning):
    """The optimiser did not report convergence."""


def _noise_start(model: ChoiceModel, perturbed: bool) -> np.ndarray:
    names = model.noise_names
    J = model.num_alternatives
    if model.covariance == "full":
        m = J - 1
        base_cov = 0.5 * (np.eye(m) + np.ones((m, m)))  # iid utilities, Omega_00 = 1
        if perturbed:
            base_cov = np.eye(m)
        L = np.linalg.cholesky(base_cov)
        out = []
        for i in range(m):
            out += list(L[i, :i])
            if i:
                out.append(math.log(L[i, i]))
        return np.asarray(out)
    if model.covariance == "factor":
        return np.full(len(names), 0.5 if perturbed else 0.2)
    if model.covariance == "heteroscedastic":
        return np.full(len(names), -0.3 if perturbed else 0.0)
    return np.zeros(len(names))


def _column_scale(layout, data: ChoiceData) -> np.ndarray:
    """1 / s.d. of each design column over available entries (1 for constants / zeros)."""
    with jax.enable_x64(True):
        X = np.asarray(
            design_matrix(layout, jnp.asarray(data.attributes), jnp.asarray(data.individual))
        )
    sd = np.array([X[..., p][data.available].std() for p in range(X.shape[-1])])
    return np.where(sd > 1e-12, 1.0 / np.where(sd > 1e-12, sd, 1.0), 1.0)


def fit_choice(
    data: ChoiceData,
    spec: ChoiceSpec,
    *,
    family: str = "logit",
    covariance: str = "iid",
    rank: int = 1,
    method: str = "exact",
    tau: float = 0.05,
    num_samples: int = 1024,
    key=None,
    n_points: int = 1021,
    n_shifts: int = 8,
    num_nodes: int = 32,
    starts=None,
    max_steps: int = 500,
    tol: float | None = None,
) -> ChoiceResults:
    """Fit a logit or probit choice model by maximum likelihood.

    Args:
        data: `ChoiceData`. spec: `ChoiceSpec` (coefficients; names `asc_<alt>`, `<attr>`,
            `<attr>_<alt>`, `<var>_<alt>`).
        family: "logit" (closed form) or "probit".
        covariance: probit noise, "iid" | "heteroscedastic" | "full" | "factor" (normalisations
            in `models.choice_likelihood` and in `summary()`); rank: R of "factor".
        method: probit likelihood, "exact" (J <= 4 closed forms; 5 <= J <= 10 lattice GHK
            with `n_points * n_shifts` points) or "tempered" (Monte Carlo with `tau`,
            `num_samples` draws and the fixed `key`; research only: the result reports the
            exact log-likelihood beside the tempered objective and warns when
            tau > 0.1 x the smallest noise s.d.) or "untempered" (`hetprobit.
            probit_log_likelihood`, no temperature: `num_nodes` quadrature nodes; for
            "factor" `num_samples` QMC factor draws with the fixed `key`, default key(0);
            deterministic for "iid" / "heteroscedastic"; not for "full").
        starts: `(M, k)` starting values of theta (default: from the logit fit for probit).
        max_steps: BFGS iteration limit per start.
        tol: BFGS tolerance on steps and objective (optimistix rtol = atol). Default 1e-9, and
            1e-6 for the lattice GHK likelihood (probit, J >= 5): its estimate moves by about
            its simulation error when the variable ordering switches, so a tighter tolerance
            is never met and every start would run to `max_steps`.

    Returns:
        `ChoiceResults` (coefficients, standard errors, LL, AIC/BIC, predictions, summary).

    Raises:
        ValueError: an unknown family / covariance / method, a spec that does not match the
            data (unknown names, base not among the alternatives), J too large for the exact
            probit, too many noise parameters to be identified, bad starts.
    """
    t0 = time.perf_counter()
    if not isinstance(data, ChoiceData):
        raise TypeError(f"`data` must be a ChoiceData, got {type(data).__name__}")
    if not isinstance(spec, ChoiceSpec):
        raise TypeError(f"`spec` must be a ChoiceSpec, got {type(spec).__name__}")
    layout = design_layout(spec, data)
    model = ChoiceModel(
        layout, family, covariance, int(rank), method, float(tau), int(num_samples),
        int(n_points), int(n_shifts), int(num_nodes),
    )  # fmt: skip
    if family == "probit" and method == "tempered" and key is None:
        raise ValueError("method='tempered' needs key= (a fixed key: common random numbers)")
    P, k = len(model.coef_names), len(model.names)
    col_scale = _column_scale(layout, data)
    scale = np.concatenate([col_scale, np.ones(k - P)])
    messages = []
    with jax.enable_x64(True):
        arrays = choice_arrays(data, key)
        if starts is None:
            if family == "logit":
                starts = np.zeros((1, k))
            else:
                logit = fit_choice(data, spec, family="logit", max_steps=max_steps)
                f = math.sqrt(6) / math.pi / (math.sqrt(2) if covariance == "full" else 1.0)
                beta = logit.params * f
                starts = np.stack(
                    [np.concatenate([beta, _noise_start(model, p)]) for p in (False, True)]
                )
        starts = np.atleast_2d(np.asarray(starts, np.float64))
        if starts.shape[1] != k:
            raise ValueError(f"`starts` must have {k} columns ({model.names}), got {starts.shape}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if tol is None:
                lattice = family == "probit" and method == "exact" and model.num_alternatives > 4
                tol = 1e-6 if lattice else 1e-9
            est = maximize_likelihood(
                model, arrays, starts, scale=scale, max_steps=max_steps,
                hessian=model.hessian_method, rtol=float(tol), atol=float(tol),
            )  # fmt: skip
        for w in caught:
            messages.append(str(w.message))
            warnings.warn(w.message, w.category, stacklevel=2)
        theta = jnp.asarray(est.params)
        ll, ll_err, objective = est.log_likelihood, 0.0, est.log_likelihood
        if family == "probit":
            exact = model if method == "exact" else _exact_twin(model)
            if method != "exact":
                ll = float(np.sum(evaluate_log_likelihood(exact, est.params, arrays)))
            V = exact.utilities(theta, arrays.attributes, arrays.individual)
            cov = exact.noise(theta)[1]
            p, err = exact_choice_probs(
                exact._masked(V, arrays.available, cov), cov, n_points=n_points,
                n_shifts=n_shifts, return_error=True,
            )  # fmt: skip
            rows = jnp.arange(data.num_choosers)
            p_obs, e_obs = p[rows, arrays.chosen], err[rows, arrays.chosen]
            ll_err = float(jnp.sum(e_obs / jnp.maximum(p_obs, 1e-300)))
            if method == "tempered":
                sd = model.smallest_noise_sd(theta)
                if tau > TAU_RATIO * sd:
                    msg = (
                        f"tau={tau} is not small against the smallest noise s.d. {sd:.3g} "
                        f"(tau > {TAU_RATIO} x s.d.): the tempered fit is a logit-kernel probit "
                        f"and biased; exact LL {ll:.4f} vs tempered objective {objective:.4f}"
                    )
                    messages.append(msg)
                    warnings.warn(msg, TemperatureWarning, stacklevel=2)
    if not est.convergence.converged:
        c = est.convergence
        msg = f"the fit did not converge ({c.message}, max |grad|/n {c.grad_norm:.1e})"
        messages.append(msg)
        warnings.warn(msg, NonConvergenceWarning, stacklevel=2)
    counts = np.sum(data.available, axis=1)
    null_ll = float(-np.sum(np.log(counts)))
    return ChoiceResults(
        model=model,
        spec=spec,
        params=np.asarray(est.params),
        estimate=est,
        log_likelihood=float(ll),
        log_likelihood_error=ll_err,
        objective=float(objective),
        null_log_likelihood=null_ll,
        fit_seconds=time.perf_counter() - t0,
        warnings=tuple(messages),
    )


def _exact_twin(model: ChoiceModel) -> ChoiceModel:
    import dataclasses

    return dataclasses.replace(model, method="exact")
