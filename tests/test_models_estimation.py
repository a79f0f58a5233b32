"""The maximum-likelihood engine on a Poisson regression, against statsmodels' GLM."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import gammaln

from models.estimation import (
    TRACE_COUNTS,
    SingularHessianWarning,
    covariance_from_hessian,
    information_criteria,
    lr_test,
    maximize_likelihood,
)


@dataclass(frozen=True)
class Poisson:
    """l_n = y_n x_n'b - exp(x_n'b) - log y_n!"""

    def __call__(self, theta, data):
        X, y = data
        eta = X @ theta
        return y * eta - jnp.exp(eta) - gammaln(y + 1.0)


@pytest.fixture(scope="module")
def poisson_data():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(500), rng.normal(size=(500, 2))])
    y = rng.poisson(np.exp(X @ np.array([0.3, 0.5, -0.2]))).astype(float)
    return X, y


def test_poisson_estimate_and_standard_errors_match_statsmodels(poisson_data):
    import statsmodels.api as sm

    X, y = poisson_data
    with jax.enable_x64(True):
        data = (jnp.asarray(X), jnp.asarray(y))
        est = maximize_likelihood(Poisson(), data, np.zeros((2, 3)) + [[0.0], [0.5]])
        ref = sm.GLM(y, X, family=sm.families.Poisson()).fit()
        np.testing.assert_allclose(est.params, ref.params, rtol=1e-6)
        np.testing.assert_allclose(est.std_err, ref.bse, rtol=1e-6)
        assert est.log_likelihood == pytest.approx(ref.llf, abs=1e-8)
        robust = sm.GLM(y, X, family=sm.families.Poisson()).fit(cov_type="HC0")
        np.testing.assert_allclose(est.robust_std_err, robust.bse, rtol=1e-5)
        assert est.convergence.converged and len(est.convergence.start_log_likelihoods) == 2
        # the same shape again: nothing is traced (compiled once per problem shape)
        before = dict(TRACE_COUNTS)
        again = maximize_likelihood(Poisson(), data, np.full(3, 0.1))
        assert dict(TRACE_COUNTS) == before
        np.testing.assert_allclose(again.params, est.params, rtol=1e-6)
        # Hessian by differences of the autodiff gradient agrees with the autodiff Hessian
        fd = maximize_likelihood(Poisson(), data, est.params, hessian="differences")
        np.testing.assert_allclose(fd.std_err, est.std_err, rtol=1e-6)


def test_the_best_point_is_kept(poisson_data):
    X, y = poisson_data
    with jax.enable_x64(True):
        data = (jnp.asarray(X), jnp.asarray(y))
        opt = maximize_likelihood(Poisson(), data, np.zeros(3))
        # starting at the optimum with a single allowed step: never a worse point
        again = maximize_likelihood(Poisson(), data, opt.params, max_steps=1)
        assert again.log_likelihood >= opt.log_likelihood - 1e-9
        assert not again.convergence.converged or again.convergence.grad_norm < 1e-4


def test_convergence_message_says_which_test_was_met(poisson_data):
    """Success by BFGS's own tolerances; "converged by the gradient" when the step limit cut BFGS
    off at a point whose gradient is ~0; not converged when the limit cut it off early."""
    X, y = poisson_data
    with jax.enable_x64(True):
        data = (jnp.asarray(X), jnp.asarray(y))
        opt = maximize_likelihood(Poisson(), data, np.zeros(3))
        assert opt.convergence.converged and opt.convergence.message == "successful"
        at_optimum = maximize_likelihood(Poisson(), data, opt.params, max_steps=1).convergence
        assert at_optimum.converged and at_optimum.grad_norm < 1e-6
        assert at_optimum.message.startswith("converged by the gradient")
        assert "max_steps = 1 reached" in at_optimum.message
        cut_off = maximize_likelihood(Poisson(), data, np.zeros(3), max_steps=2).convergence
        assert not cut_off.converged and cut_off.grad_norm > 1e-4
        assert cut_off.message == "max_steps = 2 reached"


def test_singular_hessian_gives_infinite_not_nan_errors(poisson_data):
    X, y = poisson_data
    Xd = np.column_stack([X, 2 * X[:, 1]])  # collinear column
    with jax.enable_x64(True):
        with pytest.warns(SingularHessianWarning, match="positions"):
            est = maximize_likelihood(Poisson(), (jnp.asarray(Xd), jnp.asarray(y)), np.zeros(4))
    assert est.singular
    assert not np.any(np.isnan(est.std_err)) and not np.any(np.isnan(est.robust_std_err))
    assert np.isinf(est.std_err[1]) and np.isinf(est.std_err[3])
    assert np.all(np.isfinite(est.std_err[[0, 2]]))
    cov, bad, singular = covariance_from_hessian(-np.eye(2))
    np.testing.assert_allclose(cov, np.eye(2))
    assert not singular and not bad.any()


def test_information_criteria_and_lr_test_inputs():
    aic, bic = information_criteria(-100.0, 3, 50)
    assert aic == 206.0 and bic == pytest.approx(3 * np.log(50) + 200.0)

    class Fit:
        def __init__(self, ll, k, n):
            self.log_likelihood, self.num_params, self.num_obs = ll, k, n

    with pytest.raises(ValueError, match="num_obs"):
        lr_test(Fit(-10, 2, 5), Fit(-9, 3, 6))
    with pytest.raises(ValueError, match="scale"):
        maximize_likelihood(Poisson(), None, np.zeros(2), scale=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="hessian"):
        maximize_likelihood(Poisson(), None, np.zeros(2), hessian="bfgs")


def test_non_finite_hessian_gives_infinite_errors_for_the_parameters_it_touches():
    # a NaN in the (1, 1) entry: parameter 1 gets inf, parameter 0 keeps 1 / 2 (H = -2 there)
    H = np.array([[-2.0, 0.0], [0.0, np.nan]])
    cov, bad, singular = covariance_from_hessian(H)
    assert singular and bad.tolist() == [False, True]
    assert cov[0, 0] == 0.5 and np.isinf(cov[1, 1]) and not np.isnan(cov).any()
