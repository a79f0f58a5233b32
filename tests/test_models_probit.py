"""Multinomial probit regression: recovery of known coefficients; log-space tails; loader."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from models import (
    MODECHOICE_ALTERNATIVES,
    choice_log_likelihood,
    difference_covariance,
    fit_probit,
    load_modechoice,
    params_from_covariance,
    simulate_choices,
    utility_covariance,
)

TRUE_ASC = jnp.array([0.5, -0.5])
TRUE_BETA = jnp.array([1.0, -0.8])
TRUE_OMEGA = jnp.array([[1.0, 0.5], [0.5, 1.5]])


@pytest.fixture(scope="module")
def simulated():
    true = params_from_covariance(TRUE_ASC, TRUE_BETA, TRUE_OMEGA)
    X = jax.random.normal(jax.random.key(0), (1000, 3, 2))
    return true, X, simulate_choices(true, X, key=jax.random.key(1))


def test_exact_fit_recovers_coefficients(simulated):
    true, X, y = simulated
    fit = fit_probit(X, y, method="exact")
    assert fit.results.convergence.converged
    # every parameter within 4 Hessian standard errors of the truth (N = 1000: s.e. ~0.06-0.09
    # for asc / beta, ~0.1-0.2 for the Cholesky factor of Omega = L L^T, L_10 = 0.5,
    # L_11 = sqrt(1.25)); a 4-s.e. band has coverage 1 - 6e-5 per parameter
    L = np.linalg.cholesky(np.asarray(TRUE_OMEGA))
    truth = np.concatenate([TRUE_ASC, TRUE_BETA, [L[1, 0], np.log(L[1, 1])]])
    assert fit.results.names == ("asc_alt1", "asc_alt2", "x0", "x1", "chol_alt2_alt1",
                                 "ln_chol_alt2")  # fmt: skip
    z = (fit.results.params - truth) / fit.results.std_err.to_numpy()
    assert np.all(np.abs(z) < 4.0), z
    # ProbitParams carry the attributes' dtype (float32 here)
    np.testing.assert_allclose(fit.params.asc, fit.results.params[:2], rtol=1e-6)
    assert float(difference_covariance(fit.params)[0, 0]) == pytest.approx(1.0)
    ll_true = float(jnp.sum(choice_log_likelihood(true, X, y)))
    assert fit.log_likelihood >= ll_true - 1e-3 * abs(ll_true)
    # the returned params are the best point: their exact LL is the reported one
    ll_fit = float(jnp.sum(choice_log_likelihood(fit.params, X, y)))
    assert ll_fit == pytest.approx(fit.log_likelihood, abs=1e-3)


def test_exact_tail_log_likelihood_is_computed_in_log_space():
    """Issue 9 item 8: log of a floored probability gave -21.4 where log p = -53.9. With
    Omega = (I + 1 1^T) / 2 the utilities are iid N(V_j, 1/2): reference by quadrature."""
    omega = jnp.array([[1.0, 0.5], [0.5, 1.0]])
    with jax.enable_x64(True):
        prm = params_from_covariance(jnp.zeros(2), jnp.array([1.0]), omega)
        X = jnp.array([[[-5.0], [5.0], [4.5]], [[0.2], [0.0], [-0.1]]])
        y = jnp.array([0, 1])
        ll = np.asarray(choice_log_likelihood(prm, X, y))
    t, w = np.polynomial.hermite_e.hermegauss(120)
    sd = np.sqrt(0.5)
    ref = []
    for n in range(2):
        V, k = np.asarray(X[n, :, 0]), int(y[n])
        lc = special.log_ndtr((V[k] - V[:, None] + sd * t[None]) / sd)
        lc[k] = 0.0
        ref.append(special.logsumexp(lc.sum(0) + np.log(w / w.sum())))
    assert ref[0] < -40
    np.testing.assert_allclose(ll, ref, rtol=1e-3)


def test_tempered_likelihood_matches_exact_at_small_tau(simulated):
    true, X, y = simulated
    exact = choice_log_likelihood(true, X[:200], y[:200])
    mc = choice_log_likelihood(
        true,
        X[:200],
        y[:200],
        method="tempered",
        key=jax.random.key(2),
        tau=0.02,
        num_samples=4000,
    )
    np.testing.assert_allclose(jnp.mean(mc), jnp.mean(exact), atol=0.02)


def test_utility_covariance_has_zero_base_row(simulated):
    true, _, _ = simulated
    S = utility_covariance(true, base=1)
    np.testing.assert_allclose(S[1], 0.0)
    np.testing.assert_allclose(S[jnp.array([0, 2])][:, jnp.array([0, 2])], TRUE_OMEGA, rtol=1e-5)


def test_modechoice_loader():
    d = load_modechoice()
    assert d.attributes.shape == (210, 4, 2) and d.choice.shape == (210,)
    assert d.alternatives == MODECHOICE_ALTERNATIVES == ("air", "train", "bus", "car")
    np.testing.assert_array_equal(np.bincount(d.choice), [58, 63, 30, 59])
    assert d.income.shape == d.party_size.shape == (210,)
    assert load_modechoice(("ttme", "invc", "invt", "gc")).attributes.shape == (210, 4, 4)
    with pytest.raises(ValueError, match="attributes"):
        load_modechoice(("price",))


def test_bad_probit_arguments_raise(simulated):
    true, X, y = simulated
    with pytest.raises(ValueError, match="method"):
        choice_log_likelihood(true, X, y, method="ghk")
    with pytest.raises(ValueError, match="key"):
        fit_probit(X, y, method="tempered")
    with pytest.raises(ValueError, match="base"):
        fit_probit(X, y, base=5)
    with pytest.raises(ValueError, match="base"):
        choice_log_likelihood(true, X, y, base=3)
    with pytest.raises(ValueError, match="omega"):
        params_from_covariance(TRUE_ASC, TRUE_BETA, 2 * TRUE_OMEGA)
