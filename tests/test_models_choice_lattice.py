"""Probit recovery with 5 and 6 alternatives, where `fit_choice` uses Genz's lattice GHK.

For 5 <= J <= 10 the probit likelihood is the randomly shifted rank-1 lattice SOV / GHK integral
(`hetprobit.mvn_log_cdf`; Genz 1992, J. Comput. Graph. Stat. 1(2); Genz & Bretz
2009, *Computation of Multivariate Normal and t Probabilities*, ch. 4) with `n_points *
n_shifts` points; the fit states that number and its simulation error (issue 11, item 3).
References: the values the data were simulated with (z-scores against the Hessian standard
errors) and, for the simulation error, the independent-noise probit's log-likelihood as a 1-D
Gauss-Hermite integral written in numpy (Train 2009, *Discrete Choice Methods with Simulation*,
§5.6: P_k = E_t prod_{j != k, available} Phi((V_k - V_j + s_k t) / s_j), t ~ N(0, 1)).

Cost: the likelihood is one (J - 1)-dimensional orthant per chooser (the chosen alternative's),
~(J - 1) N n_points n_shifts SOV steps per evaluation; the Hessian by differences takes 2k score
evaluations. So ONE small fit covers both choice-set sizes: half of the choosers face 5
alternatives (a5 unavailable), half face 6, and the J = 5 and J = 6 lattice problems share one
compiled likelihood (about 26 s on a quiet 2-core machine, mostly compilation).
"""

import numpy as np
from scipy import special

from models import ChoiceData, ChoiceSpec, fit_choice

J, N = 6, 120
N_POINTS, N_SHIFTS = 61, 4  # 244 lattice points per orthant (default 1021 x 8)
BETA = 1.0
SD = np.array([1.0, 0.8, 1.25, 0.7, 1.4, 0.9])  # sd_a0 = 1: the normalisation


def _simulate(seed: int) -> ChoiceData:
    """U_nj = BETA x_nj + SD_j e_nj, e iid N(0, 1); choosers 0..N/2-1 lack alternative a5."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, J, 1))
    available = np.ones((N, J), bool)
    available[: N // 2, J - 1] = False
    U = np.where(available, BETA * x[..., 0] + SD * rng.normal(size=(N, J)), -np.inf)
    x[~available] = 0.0
    return ChoiceData.from_arrays(
        x, U.argmax(axis=1).astype(np.int32), alternatives=tuple(f"a{j}" for j in range(J)),
        attribute_names=("x",), available=available,
    )  # fmt: skip


def _independent_probit_log_lik(V, sd, y, available, nodes=96):
    """sum_n log P(y_n) for independent N(V_j, sd_j^2) utilities over the available
    alternatives, by Gauss-Hermite quadrature in log space."""
    t, w = np.polynomial.hermite_e.hermegauss(nodes)
    rows = np.arange(len(y))
    Vk, sk = V[rows, y][:, None, None], sd[y][:, None, None]
    lc = special.log_ndtr((Vk - V[:, :, None] + sk * t[None, None]) / sd[None, :, None])
    lc[rows, y, :] = 0.0
    lc[~available] = 0.0
    return float(np.sum(special.logsumexp(lc.sum(axis=1) + np.log(w / w.sum()), axis=1)))


def test_heteroscedastic_probit_recovery_with_five_and_six_alternatives():
    data = _simulate(seed=5)
    spec = ChoiceSpec(base="a0", generic=("x",), asc=False)
    # one neutral start (beta = 0.5, iid noise) instead of the default two: halves the BFGS cost
    start = np.array([[0.5, 0.0, 0.0, 0.0, 0.0, 0.0]])
    fit = fit_choice(data, spec, family="probit", covariance="heteroscedastic",
                     n_points=N_POINTS, n_shifts=N_SHIFTS, starts=start)  # fmt: skip
    assert fit.convergence.converged
    assert fit.names == ("x", "ln_sd_a1", "ln_sd_a2", "ln_sd_a3", "ln_sd_a4", "ln_sd_a5")
    # the coefficient and the log noise scales within 4 Hessian standard errors of the truth
    truth = np.concatenate([[BETA], np.log(SD[1:])])
    z = (fit.params - truth) / fit.std_err.to_numpy()
    assert np.all(np.abs(z) < 4.0), z
    # the stated simulation error covers the lattice's actual error at the estimate (the
    # quadrature reference is exact to ~1e-10 here) and is small against the log-likelihood
    # differences an LR test reads (chi^2 quantiles are O(1))
    V = fit.params[0] * data.attributes[..., 0]
    sd_hat = np.concatenate([[1.0], np.exp(fit.params[1:])])
    ref = _independent_probit_log_lik(V, sd_hat, data.chosen, data.available)
    err = fit.log_likelihood_error
    assert 0.0 < err < 0.2
    assert abs(fit.log_likelihood - ref) <= err, (fit.log_likelihood - ref, err)
    summary = fit.summary()
    assert f"lattice GHK, {N_POINTS} x {N_SHIFTS} points" in summary
    assert f"(+/- {err:.1e})" in summary
