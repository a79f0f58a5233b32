"""Probit recovery for J = 5 and 6 alternatives, where `fit_choice` uses Genz's lattice GHK.

For 5 <= J <= 10 the probit likelihood is the randomly shifted rank-1 lattice SOV / GHK integral
of `hetprobit.exact_choice_log_probs` (Genz 1992, J. Comput. Graph. Stat. 1(2); Genz & Bretz
2009, *Computation of Multivariate Normal and t Probabilities*, ch. 4), with `n_points *
n_shifts` points, and the fit states that number and its simulation error (issue 11, item 3).
References here: the values the data were simulated with (z-scores against the Hessian standard
errors), and, for the simulation error, the independent-noise probit's choice probabilities as a
1-D Gauss-Hermite integral written in numpy (Train 2009, *Discrete Choice Methods with
Simulation*, §5.6: P_k = E_t prod_{j != k} Phi((V_k - V_j + s_k t) / s_j), t ~ N(0, 1)).
"""

import numpy as np
import pytest
from scipy import special

from models import ChoiceData, ChoiceSpec, fit_choice

# a small lattice keeps the fit affordable (N_POINTS * N_SHIFTS = 508 points per orthant instead
# of the default 1021 * 8); the test checks that its stated error covers the real one
N_POINTS, N_SHIFTS = 127, 4
N = 300


def _simulate(J: int, seed: int):
    """U_nj = asc_j + beta x_nj + sd_j e_nj, e iid N(0, 1), sd_0 = 1 (the normalisation)."""
    rng = np.random.default_rng(seed)
    asc = np.concatenate([[0.0], np.linspace(0.5, -0.5, J - 1)])
    sd = np.exp(np.linspace(0.0, 0.4, J) * np.resize([1.0, -1.0], J))
    x = rng.normal(size=(N, J, 1))
    y = np.argmax(asc + 1.0 * x[..., 0] + sd * rng.normal(size=(N, J)), axis=1)
    data = ChoiceData.from_arrays(x, y.astype(np.int32), attribute_names=("x",),
                                  alternatives=tuple(f"a{j}" for j in range(J)))  # fmt: skip
    return data, asc, sd


def _independent_probit_log_lik(V, sd, y, nodes=96):
    """sum_n log P(y_n) for independent N(V_j, sd_j^2) utilities, by Gauss-Hermite quadrature."""
    t, w = np.polynomial.hermite_e.hermegauss(nodes)
    rows = np.arange(len(y))
    Vk, sk = V[rows, y][:, None, None], sd[y][:, None, None]
    lc = special.log_ndtr((Vk - V[:, :, None] + sk * t[None, None]) / sd[None, :, None])
    lc[rows, y, :] = 0.0
    return float(np.sum(special.logsumexp(lc.sum(axis=1) + np.log(w / w.sum()), axis=1)))


@pytest.mark.parametrize("J", [5, 6])
def test_heteroscedastic_probit_recovery_through_the_lattice(J):
    data, asc, sd = _simulate(J, seed=J)
    spec = ChoiceSpec(base="a0", generic=("x",))
    fit = fit_choice(data, spec, family="probit", covariance="heteroscedastic",
                     n_points=N_POINTS, n_shifts=N_SHIFTS)  # fmt: skip
    assert fit.convergence.converged
    # coefficients and the log noise scales within 4 Hessian standard errors of the truth
    truth = np.concatenate([asc[1:], [1.0], np.log(sd[1:])])
    assert fit.names[-1] == f"ln_sd_a{J - 1}"
    z = (fit.params - truth) / fit.std_err.to_numpy()
    assert np.all(np.abs(z) < 4.0), z
    # the stated simulation error covers the lattice's actual error at the estimate (the
    # quadrature reference is exact to ~1e-12 here) and is small against a log-likelihood
    # difference that matters (an LR test's chi^2 quantiles are O(1))
    k = J - 1
    V = np.concatenate([[0.0], fit.params[:k]])[None] + fit.params[k] * data.attributes[..., 0]
    sd_hat = np.concatenate([[1.0], np.exp(fit.params[k + 1 :])])
    ref = _independent_probit_log_lik(V, sd_hat, data.chosen)
    err = fit.log_likelihood_error
    assert 0.0 < err < 0.1
    assert abs(fit.log_likelihood - ref) <= err, (fit.log_likelihood - ref, err)
    summary = fit.summary()
    assert f"lattice GHK, {N_POINTS} x {N_SHIFTS} points" in summary
    assert f"(+/- {err:.1e})" in summary
