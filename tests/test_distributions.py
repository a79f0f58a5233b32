import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer import Predictive
from scipy.stats import norm

import hetprobit as hp
from tests.reference import scipy_choice_probs


def _case():
    mu = jnp.array([[0.0, 0.5, 1.0, -0.3], [1.0, 0.0, 0.2, 0.4]])
    noise = hp.LowRankNoise(
        jnp.array([[0.8, 1.0, 1.2, 0.6]] * 2), jnp.array([[[0.5], [-0.5], [0.3], [0.0]]] * 2)
    )
    return mu, noise


def test_choice_samples_follow_exact_probit():
    mu, noise = _case()
    d = hp.HeteroscedasticChoice(mu, noise, key=jax.random.key(0))
    assert d.batch_shape == (2,) and d.event_shape == ()
    n = 200_000
    y = np.asarray(d.sample(jax.random.key(1), (n,)))
    assert y.shape == (n, 2)
    for b in range(2):
        exact = scipy_choice_probs(mu[b], noise.covariance()[b])
        freq = np.bincount(y[:, b], minlength=4) / n
        se = np.sqrt(exact * (1 - exact) / n)
        assert np.all(np.abs(freq - exact) < 4.5 * se), (freq, exact)


def test_indicator_samples_follow_normal_cdf():
    mu, noise = _case()
    d = hp.HeteroscedasticIndicators(mu, noise, key=jax.random.key(0))
    assert d.batch_shape == (2,) and d.event_shape == (4,)
    n = 100_000
    y = np.asarray(d.sample(jax.random.key(2), (n,)))
    exact = norm.cdf(np.asarray(mu) / np.sqrt(np.asarray(noise.variance())))
    se = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(y.mean(0) - exact) < 4.5 * se)


def test_log_prob_is_tempered_estimate_and_handles_sample_dims():
    mu, noise = _case()
    key = jax.random.key(3)
    d = hp.HeteroscedasticChoice(mu, noise, tau=0.3, num_samples=128, key=key)
    y = jnp.array([2, 0])
    expected = hp.tempered_softmax_log_likelihood(mu, noise, y, key=key, tau=0.3, num_samples=128)
    np.testing.assert_allclose(d.log_prob(y), expected, rtol=1e-6)
    ys = jnp.stack([y, jnp.array([1, 3]), y])
    lp = d.log_prob(ys)
    assert lp.shape == (3, 2)
    np.testing.assert_allclose(lp[2], expected, rtol=1e-6)
    np.testing.assert_allclose(jax.nn.logsumexp(d.log_probs(), -1), 0.0, atol=1e-5)
    di = hp.HeteroscedasticIndicators(mu, noise, tau=0.3, num_samples=128, key=key)
    z = jnp.array([[1, 0, 1, 0], [0, 0, 1, 1]])
    np.testing.assert_allclose(
        di.log_prob(z),
        hp.tempered_sigmoid_log_likelihood(mu, noise, z, key=key, tau=0.3, num_samples=128),
        rtol=1e-6,
    )


def test_homoscedastic_default_is_categorical_logits():
    mu = jnp.array([[0.2, -1.0, 0.7]])
    d = hp.HeteroscedasticChoice(mu)
    ref = numpyro.distributions.Categorical(logits=mu)
    np.testing.assert_allclose(d.log_prob(jnp.array([2])), ref.log_prob(jnp.array([2])), rtol=1e-6)


def test_log_prob_key_from_seed_handler_or_error():
    mu, noise = _case()
    d = hp.HeteroscedasticChoice(mu, noise)
    with pytest.raises(RuntimeError, match="key"):
        d.log_prob(jnp.array([0, 1]))
    with numpyro.handlers.seed(rng_seed=0):
        a = d.log_prob(jnp.array([0, 1]))
    assert jnp.all(jnp.isfinite(a))


def test_validation_and_bad_input():
    mu, noise = _case()
    with numpyro.validation_enabled():
        d = hp.HeteroscedasticChoice(mu, noise, key=jax.random.key(0))
        with pytest.raises(ValueError, match="labels"):
            with pytest.warns(UserWarning, match="Out-of-support"):
                d.log_prob(jnp.array([0, 7]))
    with pytest.raises(ValueError, match="tau"):
        hp.HeteroscedasticChoice(mu, noise, tau=-1.0)
    with pytest.raises(ValueError, match="K="):
        hp.HeteroscedasticChoice(mu[:, :3], noise)
    with pytest.raises(ValueError, match="value"):
        hp.HeteroscedasticChoice(mu, noise, key=jax.random.key(0)).log_prob(jnp.zeros(3, int))


def test_predictive_samples_labels_from_the_generative_process():
    mu, noise = _case()

    def model(y=None):
        with numpyro.plate("data", 2):
            numpyro.sample("y", hp.HeteroscedasticChoice(mu, noise), obs=y)

    out = Predictive(model, num_samples=50_000)(jax.random.key(0))["y"]
    assert out.shape == (50_000, 2)
    exact = scipy_choice_probs(mu[0], noise.covariance()[0])
    freq = np.bincount(np.asarray(out[:, 0]), minlength=4) / 50_000
    assert np.abs(freq - exact).max() < 4.5 * np.sqrt(0.25 / 50_000)
