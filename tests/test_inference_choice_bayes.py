"""Bayesian multinomial probit (NUTS on the exact likelihood): recovery, parametrisation, input.

References: data simulated here from a J = 3 probit with known coefficients and a known
covariance of the utility differences (Omega_00 = 1, the normalisation of the "full" probit);
the posterior must cover the truth (posterior mean within 2 posterior s.d.), as in blackjax's
and numpyro's "recover a known posterior" tests. The LKJ / scale -> Cholesky mapping is
checked against Omega = D R D computed with numpy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inference import ChoiceBayesResults, fit_choice_bayes
from inference.choice_bayes import _full_raw
from models import ChoiceData, ChoiceModel, ChoiceSpec, fit_choice
from models.choice_spec import design_layout

ASC = {"b": 0.5, "c": -0.3}
BETA = 1.0
OMEGA = np.array([[1.0, 0.5], [0.5, 1.5]])  # Cov(eps_b - eps_a, eps_c - eps_a)
SPEC = ChoiceSpec(base="a", generic=("x",))


def _simulate(n: int, seed: int) -> ChoiceData:
    """U_nj = asc_j + BETA x_nj + eps_nj with eps_a = 0 and (eps_b, eps_c) ~ N(0, OMEGA)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, 1))
    eps = np.zeros((n, 3))
    eps[:, 1:] = rng.multivariate_normal(np.zeros(2), OMEGA, size=n)
    U = np.array([0.0, ASC["b"], ASC["c"]]) + BETA * x[..., 0] + eps
    return ChoiceData.from_arrays(
        x, U.argmax(axis=1).astype(np.int32), alternatives=("a", "b", "c"), attribute_names=("x",)
    )


def test_full_raw_gives_omega_d_r_d():
    """theta's Cholesky part built from (R, D) reproduces Omega = D R D through ChoiceModel."""
    data = _simulate(10, 0)
    model = ChoiceModel(design_layout(SPEC, data), "probit", "full")
    R = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.4], [-0.2, 0.4, 1.0]])
    d = np.array([1.0, 0.7, 2.0])
    with jax.enable_x64(True):
        L = jnp.asarray(d[:, None] * np.linalg.cholesky(R))
        raw = _full_raw(L)
        assert raw.shape == (5,)
        # a J = 4 model has a 3 x 3 Omega
        data4 = ChoiceData.from_arrays(
            np.zeros((2, 4, 1)), np.array([0, 1], np.int32), alternatives=tuple("abcd"),
            attribute_names=("x",),
        )  # fmt: skip
        m4 = ChoiceModel(design_layout(SPEC, data4), "probit", "full")
        theta = jnp.concatenate([jnp.zeros(len(m4.coef_names)), raw])
        omega = np.asarray(m4.difference_covariance(theta))
    np.testing.assert_allclose(omega, np.diag(d) @ R @ np.diag(d), atol=1e-12)
    assert model.noise_names == ("chol_c_b", "ln_chol_c")


@pytest.fixture(scope="module")
def sim():
    return _simulate(400, 1)


@pytest.fixture(scope="module")
def posterior(sim):
    return fit_choice_bayes(
        sim, SPEC, key=jax.random.key(0), covariance="full",
        num_warmup=200, num_samples=200, num_chains=2,
    )  # fmt: skip


@pytest.mark.slow
def test_posterior_covers_truth(posterior):
    """Posterior means of the coefficients and of Omega's free entries lie within 2 posterior
    s.d. of the values the data were simulated with; chains mixed (R-hat, ESS)."""
    assert isinstance(posterior, ChoiceBayesResults)
    mean, sd = posterior.mean, posterior.sd
    for name, truth in (("asc_b", ASC["b"]), ("asc_c", ASC["c"]), ("x", BETA)):
        assert abs(mean[name] - truth) < 2 * sd[name], (name, mean[name], sd[name])
    omega = posterior.samples["omega"].reshape(-1, 2, 2)
    np.testing.assert_allclose(omega[:, 0, 0], 1.0, atol=1e-12)  # the normalisation holds
    for i, k in ((1, 0), (1, 1)):
        m, s = omega[:, i, k].mean(), omega[:, i, k].std()
        assert abs(m - OMEGA[i, k]) < 2 * s, ((i, k), m, s)
    summ = posterior.summary
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(summ.columns)
    assert summ["r_hat"].max() < 1.05
    assert summ["ess_bulk"].min() > 50
    assert list(summ.index[:3]) == ["theta[asc_b]", "theta[asc_c]", "theta[x]"]
    assert posterior.num_divergences < 10


def test_bad_input_rejected_before_sampling():
    data = _simulate(20, 2)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="covariance"):
        fit_choice_bayes(data, SPEC, key=key, covariance="factor")
    with pytest.raises(ValueError, match="num_samples"):
        fit_choice_bayes(data, SPEC, key=key, num_samples=0)
    with pytest.raises(ValueError, match="lkj_concentration"):
        fit_choice_bayes(data, SPEC, key=key, lkj_concentration=0.0)
    with pytest.raises(ValueError, match="target_accept"):
        fit_choice_bayes(data, SPEC, key=key, target_accept=1.0)
    with pytest.raises(ValueError, match="unknown attribute"):
        fit_choice_bayes(data, ChoiceSpec(base="a", generic=("cost",)), key=key)
    with pytest.raises(ValueError, match="base"):
        fit_choice_bayes(data, ChoiceSpec(base="z", generic=("x",)), key=key)
    with pytest.raises(TypeError, match="data"):
        fit_choice_bayes(data.attributes, SPEC, key=key)
    with pytest.raises(TypeError, match="key"):
        fit_choice_bayes(data, SPEC, key=None)


@pytest.mark.slow
def test_posterior_agrees_with_maximum_likelihood(posterior, sim):
    """Bernstein-von Mises (van der Vaart 1998, *Asymptotic Statistics*, §10.2): with N = 400
    and a flat-ish prior (s.d. 10) the coefficients' posterior mean is near the ML estimate
    (within 0.5 posterior s.d.) and the posterior s.d. near the Hessian standard error
    (ratio in [0.7, 1.4]); `compare` lines the two up by name."""
    ml = fit_choice(sim, SPEC, family="probit", covariance="full")
    table = posterior.compare(ml)
    assert list(table.index) == list(ml.names)
    np.testing.assert_allclose(table.ml_estimate, ml.params)
    coefs = table.loc[["asc_b", "asc_c", "x"]]
    assert (coefs.difference_in_sd.abs() < 0.5).all(), coefs
    ratio = coefs.posterior_sd / coefs.ml_std_err
    assert ((ratio > 0.7) & (ratio < 1.4)).all(), coefs
    with pytest.raises(ValueError, match="ml"):
        posterior.compare(fit_choice(sim, SPEC, family="logit"))
