"""fit_choice on Greene's travel-mode data and on simulated data, against independent references.

References: Greene (2003), *Econometric Analysis*, 5th ed., §21.7.8 and Table 21.11 (p. 729),
the conditional logit for the travel-mode data (gc, ttme, hinc x air, three constants; the
table's ttme entry -0.19612 is a misprint of -0.09612, as Table 21.13 of the same book shows);
statsmodels' `ConditionalLogit`; a scipy BFGS maximum-likelihood fit and finite-difference
Hessians of numpy log-likelihoods written here (the iid probit by 1-D Gauss-Hermite quadrature,
not the core's exact probit).
"""

import math
import warnings

import jax
import numpy as np
import pytest
from scipy import optimize, special, stats

from models import (
    ChoiceData,
    ChoiceSpec,
    SingularHessianWarning,
    TemperatureWarning,
    fit_choice,
    load_travel_mode,
    lr_test,
)
from models.estimation import TRACE_COUNTS

SPEC = ChoiceSpec(base="car", generic=("gc", "ttme"), individual={"hinc": ("air",)})
NAMES = ["asc_air", "asc_train", "asc_bus", "gc", "ttme", "hinc_air"]


@pytest.fixture(scope="module")
def data():
    return load_travel_mode()


@pytest.fixture(scope="module")
def logit(data):
    return fit_choice(data, SPEC, family="logit")


@pytest.fixture(scope="module")
def iid(data):
    return fit_choice(data, SPEC, family="probit", covariance="iid")


def _design(data):
    """X (N, J, 6) built by hand in numpy: asc air/train/bus, gc, ttme, hinc x air."""
    N = data.num_choosers
    X = np.zeros((N, 4, 6))
    X[:, 0, 0] = X[:, 1, 1] = X[:, 2, 2] = 1.0
    X[..., 3] = data.attributes[..., data.attribute_names.index("gc")]
    X[..., 4] = data.attributes[..., data.attribute_names.index("ttme")]
    X[:, 0, 5] = data.individual[:, data.individual_names.index("hinc")]
    return X


def _logit_ll(theta, X, y):
    V = X @ theta
    return np.sum(V[np.arange(len(y)), y] - special.logsumexp(V, axis=1))


def _fd_hessian(f, x, h=1e-4):
    k = len(x)
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h * max(1, abs(x[i])), np.eye(k)[j] * h * max(1, abs(x[j]))
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * ei[i] * ej[j]
            )
    return 0.5 * (H + H.T)


def test_logit_reproduces_greene_and_statsmodels(data, logit):
    # Greene (2003), Table 21.11: published to 4-5 digits. The log-likelihood at the optimum,
    # -199.128, is the value statsmodels' ConditionalLogit (below) reaches as well.
    assert logit.log_likelihood == pytest.approx(-199.128, abs=1e-3)
    greene = {"asc_air": 5.207, "asc_train": 3.869, "asc_bus": 3.163, "gc": -0.01550,
              "ttme": -0.09612, "hinc_air": 0.01329}  # fmt: skip
    for name, value in greene.items():
        assert logit.coef[name] == pytest.approx(value, rel=2e-3), name
    from statsmodels.discrete.conditional_models import ConditionalLogit

    X = _design(data)
    endog = (np.arange(4)[None, :] == data.chosen[:, None]).astype(float).ravel()
    groups = np.repeat(np.arange(data.num_choosers), 4)
    model = ConditionalLogit(endog, X.reshape(-1, 6), groups=groups)
    sm = model.fit(disp=0, method="bfgs", maxiter=2000, gtol=1e-9)
    np.testing.assert_allclose(logit.coef[NAMES].to_numpy(), sm.params, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(logit.std_err[NAMES].to_numpy(), sm.bse, rtol=1e-3)


def test_logit_standard_errors_equal_a_finite_difference_hessian(data, logit):
    X, y = _design(data), data.chosen
    ref = optimize.minimize(lambda t: -_logit_ll(t, X, y), np.zeros(6), method="BFGS",
                            options={"gtol": 1e-8})  # fmt: skip
    assert logit.log_likelihood == pytest.approx(-ref.fun, abs=1e-6)
    theta = logit.coef[NAMES].to_numpy()
    H = _fd_hessian(lambda t: _logit_ll(t, X, y), theta)
    np.testing.assert_allclose(logit.std_err[NAMES], np.sqrt(np.diag(np.linalg.inv(-H))), rtol=1e-4)
    # robust: sandwich from per-chooser scores (closed form for the logit)
    P = special.softmax(X @ theta, axis=1)
    scores = X[np.arange(len(y)), y] - np.einsum("nj,njk->nk", P, X)
    Hinv = np.linalg.inv(-H)
    robust = np.sqrt(np.diag(Hinv @ (scores.T @ scores) @ Hinv))
    np.testing.assert_allclose(logit.robust_std_err[NAMES], robust, rtol=1e-4)
    assert logit.convergence.converged and logit.convergence.grad_norm < 1e-4
    summary = logit.summary()
    for word in ("std_err", "p_value", "log-likelihood", "AIC", "BIC", "n: 210", "normalisation"):
        assert word in summary


def test_second_fit_of_the_same_shape_does_not_recompile(data, logit):
    before = dict(TRACE_COUNTS)
    again = fit_choice(data, SPEC, family="logit")
    assert dict(TRACE_COUNTS) == before
    assert again.log_likelihood == pytest.approx(logit.log_likelihood, abs=1e-9)


def _iid_probit_ll(theta, X, y, nodes=80):
    """IID probit (Var eps = 1): P_k = E_t[prod_{j != k} Phi(V_k - V_j + t)], Gauss-Hermite."""
    t, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    V = X @ theta
    Vk = V[np.arange(len(y)), y][:, None]
    diff = Vk - V  # (N, J)
    logcdf = special.log_ndtr(diff[:, :, None] + t[None, None, :])  # (N, J, nodes)
    logcdf[np.arange(len(y)), y, :] = 0.0
    return np.sum(special.logsumexp(logcdf.sum(axis=1) + np.log(w)[None], axis=1))


def test_iid_probit_matches_quadrature_likelihood_and_fd_standard_errors(data, logit, iid):
    X, y = _design(data), data.chosen
    theta = iid.coef[NAMES].to_numpy()
    f = lambda t: _iid_probit_ll(t, X, y)  # noqa: E731
    assert iid.log_likelihood == pytest.approx(f(theta), abs=1e-6)
    ref = optimize.minimize(lambda t: -f(t), theta * 0.9, method="BFGS", options={"gtol": 1e-7})
    assert iid.log_likelihood >= -ref.fun - 1e-5
    H = _fd_hessian(f, theta)
    np.testing.assert_allclose(iid.std_err[NAMES], np.sqrt(np.diag(np.linalg.inv(-H))), rtol=2e-3)
    # logit / probit scale ratio ~ pi / sqrt(6) = 1.28 (Train 2009, §5.2)
    assert 1.0 < logit.coef["ttme"] / iid.coef["ttme"] < 2.0


def test_predicted_shares_and_logit_elasticities(data, logit, iid):
    # with a full set of constants the logit's mean fitted probabilities equal the observed
    # shares (first-order condition of the constants)
    np.testing.assert_allclose(logit.shares(data), data.shares(), atol=1e-6)
    P = logit.probabilities(data)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    E = logit.elasticities(data, "gc")
    gc = data.attributes[..., data.attribute_names.index("gc")]
    ref = logit.coef["gc"] * gc[:, None, :] * (np.eye(4)[None] - P[:, None, :])
    np.testing.assert_allclose(E, ref, rtol=1e-8, atol=1e-12)
    # probit: against central finite differences of the predicted probabilities. The 8 bumped
    # copies of the data (+/- h on each alternative's gc) are stacked into one data set of
    # 8 x 210 choosers, so the probabilities are evaluated in one call, not eight.
    Ep = iid.elasticities(data, "gc")
    N, h = data.num_choosers, 1e-4 * gc
    bumped = np.concatenate(
        [gc + sign * h * np.eye(4)[k] for k in range(4) for sign in (1.0, -1.0)]
    )  # (8 N, 4): rows [k, +], [k, -], ... for k = 0..3
    stacked = ChoiceData.from_arrays(
        np.tile(data.attributes, (8, 1, 1)), np.tile(data.chosen, 8),
        alternatives=data.alternatives, attribute_names=data.attribute_names,
        individual=np.tile(data.individual, (8, 1)), individual_names=data.individual_names,
        available=np.tile(data.available, (8, 1)),
    ).with_attributes(gc=bumped)  # fmt: skip
    logP = np.log(iid.probabilities(stacked)).reshape(4, 2, N, 4)
    for k in range(4):
        fd = (logP[k, 0] - logP[k, 1]) / (2 * h[:, k : k + 1]) * gc[:, k : k + 1]
        np.testing.assert_allclose(Ep[:, :, k], fd, rtol=1e-4, atol=1e-8)
    assert np.all(np.exp(logP) > 0)


def test_lr_test_against_chi2(data, logit):
    restricted = fit_choice(data, ChoiceSpec(base="car", generic=("gc", "ttme")))
    t = lr_test(restricted, logit)
    assert t.df == 1
    stat = 2 * (logit.log_likelihood - restricted.log_likelihood)
    assert t.statistic == pytest.approx(stat) and t.p_value == pytest.approx(stats.chi2.sf(stat, 1))
    with pytest.raises(ValueError, match="more parameters"):
        lr_test(logit, restricted)


def test_collinear_columns_give_flagged_infinite_standard_errors_not_nan(data):
    gc = data.attributes[..., data.attribute_names.index("gc")]
    X = np.concatenate([data.attributes, 2 * gc[..., None]], axis=-1)
    dup = ChoiceData.from_arrays(X, data.chosen, alternatives=data.alternatives,
                                 attribute_names=data.attribute_names + ("gc2",))  # fmt: skip
    with pytest.warns(SingularHessianWarning, match=r"singular Hessian.*'gc', 'gc2'"):
        fit = fit_choice(dup, ChoiceSpec(base="car", generic=("gc", "gc2", "ttme")))
    assert fit.singular
    assert not np.any(np.isnan(fit.std_err)) and not np.any(np.isnan(fit.robust_std_err))
    assert np.isinf(fit.std_err["gc"]) and np.isinf(fit.std_err["gc2"])
    assert np.isfinite(fit.std_err["ttme"])
    # an infinite standard error: z = 0 (never "-0"), p = 1
    for name in ("gc", "gc2"):
        assert fit.z[name] == 0.0 and not np.signbit(fit.z[name]) and fit.p_values[name] == 1.0
    assert "singular Hessian" in fit.summary()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(family="tobit"), "family"),
        (dict(family="probit", covariance="spherical"), "covariance"),
        (dict(family="probit", method="ghk"), "method"),
        (dict(family="probit", covariance="factor", rank=3), "rank"),
        (dict(family="probit", method="tempered"), "key"),
        (dict(starts=np.zeros((1, 3))), "starts"),
    ],
)
def test_bad_arguments_raise(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_choice(data, SPEC, **kwargs)


def test_tempered_fit_reports_exact_likelihood_and_warns_on_large_tau(data, iid):
    with pytest.warns(TemperatureWarning, match="tau=0.5"):
        fit = fit_choice(data, SPEC, family="probit", covariance="iid", method="tempered",
                         tau=0.5, num_samples=64, key=jax.random.key(0))  # fmt: skip
    # the reported log-likelihood is the exact one at the tempered estimate: never above the
    # exact optimum, and different from the tempered objective
    assert fit.log_likelihood <= iid.log_likelihood + 1e-8
    assert fit.objective != pytest.approx(fit.log_likelihood, abs=1e-3)
    assert "tempered objective" in fit.summary()


def _simulate_logit(J, N, beta, asc, key):
    rng = np.random.default_rng(key)
    X = rng.normal(size=(N, J, 2))
    V = X @ beta + np.concatenate([[0.0], asc])[None]
    y = np.argmax(V + rng.gumbel(size=(N, J)), axis=1)
    return ChoiceData.from_arrays(X, y.astype(np.int32), alternatives=[f"a{j}" for j in range(J)],
                                  attribute_names=("x1", "x2"))  # fmt: skip


@pytest.mark.parametrize("J", [3, 4, 5, 6])
def test_logit_recovers_simulated_coefficients(J):
    beta, asc = np.array([1.0, -0.5]), np.linspace(0.5, -0.5, J - 1)
    d = _simulate_logit(J, 2000, beta, asc, J)
    fit = fit_choice(d, ChoiceSpec(base="a0", generic=("x1", "x2")))
    truth = np.concatenate([asc, beta])
    z = (fit.params - truth) / fit.std_err.to_numpy()
    assert np.all(np.abs(z) < 4.0), z


def test_no_warnings_on_a_regular_fit(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_choice(data, SPEC, family="logit")
    assert math.isfinite(fit_choice(data, SPEC).aic)


@pytest.fixture(scope="module")
def simulated_probit():
    """J = 3, N = 1500 choosers from a probit with correlated, unequal noise."""
    rng = np.random.default_rng(3)
    N = 1500
    X = rng.normal(size=(N, 3, 1))
    cov = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 1.2], [0.0, 1.2, 1.5]])
    eps = rng.normal(size=(N, 3)) @ np.linalg.cholesky(cov).T
    V = 1.0 * X[..., 0] + np.array([0.0, 0.5, -0.3])
    y = np.argmax(V + eps, axis=1).astype(np.int32)
    data = ChoiceData.from_arrays(X, y, alternatives=("a", "b", "c"), attribute_names=("x",))
    # Omega = Cov(eps_b - eps_a, eps_c - eps_a) = A Sigma A^T = [[3, 2.2], [2.2, 2.5]]
    # (the covariance includes Var(eps_a) = 1); scale Omega_00 = 1
    A = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    omega = A @ cov @ A.T
    np.testing.assert_allclose(omega, [[3.0, 2.2], [2.2, 2.5]])
    return data, omega


@pytest.mark.slow
def test_probit_nesting_and_covariance_recovery(simulated_probit):
    data, omega = simulated_probit
    spec = ChoiceSpec(base="a", generic=("x",))
    fits = {
        c: fit_choice(data, spec, family="probit", covariance=c)
        for c in ("iid", "heteroscedastic", "factor", "full")
    }
    ll = {c: f.log_likelihood for c, f in fits.items()}
    tol = 1e-6
    assert ll["full"] >= ll["factor"] - tol and ll["full"] >= ll["heteroscedastic"] - tol
    assert ll["factor"] >= ll["iid"] - tol and ll["heteroscedastic"] >= ll["iid"] - tol
    full = fits["full"]
    assert full.convergence.converged
    # recovery (scale: Omega_00 = 1, so beta = 1 / sqrt(3), asc = (0.5, -0.3) / sqrt(3))
    s = np.sqrt(omega[0, 0])
    truth = np.array([0.5 / s, -0.3 / s, 1.0 / s])
    z = (full.params[:3] - truth) / full.std_err.to_numpy()[:3]
    assert np.all(np.abs(z) < 4.0), z
    # normalised Omega = [[1, 0.733], [0.733, 0.833]]; N = 1500: s.e. of its entries ~0.05-0.1
    np.testing.assert_allclose(full.difference_covariance, omega / omega[0, 0], atol=0.2)
    assert lr_test(fits["iid"], full).p_value < 0.05
