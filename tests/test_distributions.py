import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer import SVI, Predictive, Trace_ELBO
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


def test_log_prob_key_drawn_at_construction_under_seed_or_error():
    mu, noise = _case()
    d = hp.HeteroscedasticChoice(mu, noise)  # outside any handler: no key, no warning
    assert d.mc_key is None
    with pytest.raises(RuntimeError, match="needs a key"):
        d.log_prob(jnp.array([0, 1]))
    with numpyro.handlers.seed(rng_seed=0):
        d = hp.HeteroscedasticChoice(mu, noise)
    # the key was drawn while the handler was active; log_prob works after it is gone
    a, b = d.log_prob(jnp.array([0, 1])), d.log_prob(jnp.array([0, 1]))
    assert jnp.all(jnp.isfinite(a))
    np.testing.assert_array_equal(a, b)


def _svi_problem(key=None):
    """A user-style model: mean utilities mu = x beta, observation site in a plate."""
    x = jax.random.normal(jax.random.key(0), (40, 3))
    beta_true = jnp.array([[1.0, -1.0, 0.0], [0.5, 0.5, -1.0], [0.0, 1.0, 1.0]])
    noise = hp.DiagonalNoise(jnp.full((40, 3), 0.8))
    y = hp.HeteroscedasticChoice(x @ beta_true, noise).sample(jax.random.key(1))

    def model(x, y=None):
        beta = numpyro.param("beta", jnp.zeros((3, 3)))
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample(
                "y", hp.HeteroscedasticChoice(x @ beta, noise, num_samples=16, key=key), obs=y
            )

    return model, (lambda x, y=None: None), x, y


@pytest.mark.parametrize("fixed_key", [False, True])
def test_plain_svi_loop_with_key_none_draws_fresh_randomness(fixed_key):
    # issue 9.6: numpyro evaluates log_prob after the model's handlers are gone
    key = jax.random.key(5) if fixed_key else None
    model, guide, x, y = _svi_problem(key)
    svi = SVI(model, guide, numpyro.optim.Adam(0.0), Trace_ELBO())  # step 0: params fixed
    state = svi.init(jax.random.key(2), x, y)
    update = jax.jit(svi.update)  # the usual loop: one compile, three steps
    losses = []
    for _ in range(3):
        state, loss = update(state, x, y)
        losses.append(float(loss))
    assert np.all(np.isfinite(losses))
    if fixed_key:  # common random numbers: a deterministic objective
        assert losses[0] == losses[1] == losses[2]
    else:  # fresh draws every step
        assert len(set(losses)) == 3
    if fixed_key:
        return
    # and the fresh-draw objective is a real fit: with a positive step the loss decreases
    svi = SVI(model, guide, numpyro.optim.Adam(0.1), Trace_ELBO())
    result = svi.run(jax.random.key(3), 60, x, y, progress_bar=False)
    assert np.mean(result.losses[-10:]) < np.mean(result.losses[:10]) - 5.0


def test_invalid_monte_carlo_setting_is_rejected_at_construction():
    mu, noise = _case()
    k = jax.random.key(0)
    with pytest.raises(ValueError, match="`sampler` must be one of"):
        hp.HeteroscedasticChoice(mu, noise, key=k, sampler="sobol")
    with pytest.raises(ValueError, match="`num_samples` must be even"):
        hp.HeteroscedasticChoice(mu, noise, key=k, sampler="antithetic", num_samples=7)
    with pytest.raises(ValueError, match="`num_samples` must be even"):
        hp.HeteroscedasticIndicators(mu, noise, key=k, sampler="antithetic", num_samples=7)
    with pytest.raises(ValueError, match="num_samples"):
        hp.HeteroscedasticChoice(mu, noise, key=k, num_samples=0)
    with pytest.raises(TypeError, match="monte_carlo"):
        hp.HeteroscedasticChoice(mu, noise, key=k, monte_carlo={"num_samples": 8})


def test_monte_carlo_setting_is_carried_and_replaced_publicly():
    mu, noise = _case()
    key = jax.random.key(4)
    mc = hp.MonteCarlo(num_samples=64, sampler="antithetic", chunk_size=8)
    d = hp.HeteroscedasticChoice(mu, noise, tau=0.4, monte_carlo=mc, key=key)
    y = jnp.array([1, 3])
    ref = hp.tempered_softmax_log_likelihood(mu, noise, y, key=key, tau=0.4, **mc.kwargs())
    np.testing.assert_allclose(d.log_prob(y), ref, rtol=1e-6)
    more = d.with_monte_carlo(mc.replace(num_samples=128))
    assert d.monte_carlo == mc and more.monte_carlo.num_samples == 128  # d unchanged
    ref128 = hp.tempered_softmax_log_probs(mu, noise, key=key, tau=0.4, **more.monte_carlo.kwargs())
    np.testing.assert_allclose(more.log_probs(), ref128, rtol=1e-6)
    with pytest.raises(AttributeError):
        d.num_samples = 5  # no overwriting from outside
    # a distribution is a pytree: the setting survives jit
    out = jax.jit(lambda dist: dist.log_prob(y))(d)
    np.testing.assert_allclose(out, ref, rtol=1e-6)


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


# ------------------------------------------------------------------ likelihood="probit"
def test_probit_log_prob_is_the_probit_estimator():
    mu, noise = _case()
    key, y = jax.random.key(6), jnp.array([2, 0])
    lik = hp.Likelihood("probit", num_nodes=16)
    d = hp.HeteroscedasticChoice(mu, noise, tau=0.3, likelihood=lik, key=key)
    assert d.monte_carlo == hp.MonteCarlo(64, "qmc")  # the probit's default draws
    ref = hp.probit_log_likelihood(mu, noise, y, key=key, num_nodes=16)
    np.testing.assert_allclose(d.log_prob(y), ref, rtol=1e-6)  # tau ignored
    np.testing.assert_allclose(
        d.log_probs(), hp.probit_log_probs(mu, noise, key=key, num_nodes=16), rtol=1e-6
    )
    np.testing.assert_allclose(jax.jit(lambda dist: dist.log_prob(y))(d), ref, rtol=1e-6)
    # sample is the generative process whatever the likelihood
    tempered = hp.HeteroscedasticChoice(mu, noise, key=key)
    k = jax.random.key(7)
    np.testing.assert_array_equal(d.sample(k, (5,)), tempered.sample(k, (5,)))
    # diagonal noise: deterministic, no key needed even outside a seed handler
    diag = hp.DiagonalNoise(noise.scale)
    dd = hp.HeteroscedasticChoice(mu, diag, likelihood="probit")
    assert dd.mc_key is None
    np.testing.assert_allclose(dd.log_prob(y), hp.probit_log_likelihood(mu, diag, y), rtol=1e-6)


def test_multilabel_probit_log_prob_is_the_exact_marginal_likelihood():
    mu, noise = _case()
    d = hp.HeteroscedasticIndicators(mu, noise, likelihood="probit")  # no key, no handler
    z = jnp.array([[1, 0, 1, 0], [0, 0, 1, 1]])
    sd = np.sqrt(np.asarray(noise.variance()))
    sign = 2.0 * np.asarray(z) - 1.0
    ref = norm.logcdf(sign * np.asarray(mu) / sd).sum(-1)  # scipy closed form
    np.testing.assert_allclose(d.log_prob(z), ref, rtol=1e-5)
    np.testing.assert_allclose(
        jnp.exp(d.log_probs()), norm.cdf(np.asarray(mu) / sd), rtol=1e-5, atol=1e-7
    )
    full = hp.FullNoise(jnp.linalg.cholesky(noise.covariance()))
    df = hp.HeteroscedasticIndicators(mu, full, likelihood="probit")
    np.testing.assert_allclose(df.log_prob(z), ref, rtol=1e-5)


def test_probit_with_an_unsupported_structure_or_bad_choice_raises():
    mu, noise = _case()
    full = hp.FullNoise(jnp.linalg.cholesky(noise.covariance()))
    with pytest.raises(ValueError, match="likelihood='probit'.*covariance='full'"):
        hp.HeteroscedasticChoice(mu, full, likelihood="probit")
    with pytest.raises(ValueError, match="likelihood='probit'.*covariance='homoscedastic'"):
        hp.HeteroscedasticChoice(mu, likelihood="probit")
    with pytest.raises(ValueError, match="likelihood='probit'.*covariance='homoscedastic'"):
        hp.HeteroscedasticIndicators(mu, likelihood="probit")
    with pytest.raises(ValueError, match="`likelihood` must be one of"):
        hp.HeteroscedasticChoice(mu, noise, likelihood="exact")
    with pytest.raises(TypeError, match="likelihood"):
        hp.HeteroscedasticChoice(mu, noise, likelihood=None)
    with pytest.raises(RuntimeError, match="needs a key"):  # factor draws need a key
        hp.HeteroscedasticChoice(mu, noise, likelihood="probit").log_prob(jnp.array([0, 1]))
