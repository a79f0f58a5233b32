import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp


def _brute_force_taylor(mu, cov, tau):
    """s_k + ½ tr(H s_k Sigma/tau^2), with H from jax.hessian (independent of our algebra)."""
    K = mu.shape[-1]
    H = jax.hessian(lambda u: jax.nn.softmax(u))(mu / tau)  # (K, K, K): H[k] = hessian of s_k
    return jax.nn.softmax(mu / tau) + 0.5 * jnp.einsum("kij,ji->k", H, cov / tau**2)[:K]


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_taylor_matches_hessian_trace(key, tau):
    mu = jax.random.normal(key, (6,))
    V = 0.3 * jax.random.normal(jax.random.key(1), (6, 2))
    noise = hp.LowRankNoise(jnp.full((6,), 0.2), V)
    ours = hp.taylor_softmax_probs(mu, noise, tau=tau)
    np.testing.assert_allclose(ours, _brute_force_taylor(mu, noise.covariance(), tau), atol=1e-6)
    dense = hp.taylor_softmax_probs(mu, noise.covariance(), tau=tau)
    np.testing.assert_allclose(dense, ours, atol=1e-6)
    np.testing.assert_allclose(jnp.sum(ours), 1.0, atol=1e-6)


def test_diagonal_case_is_seed_equation_9():
    mu = jnp.array([0.3, -0.2, 1.0, 0.1])
    sig2 = jnp.array([0.05, 0.1, 0.02, 0.2])
    s = jax.nn.softmax(mu)
    expected = jnp.array(
        [
            s[k]
            * (
                1
                - 0.5 * sum(s[j] * (1 - 2 * s[j]) * sig2[j] for j in range(4) if j != k)
                + 0.5 * (1 - s[k]) * (1 - 2 * s[k]) * sig2[k]
            )
            for k in range(4)
        ]
    )
    ours = hp.taylor_softmax_probs(mu, hp.DiagonalNoise(jnp.sqrt(sig2)))
    np.testing.assert_allclose(ours, expected, rtol=1e-5)
    # log version: log s_k + correction / s_k (seed Eq. 10)
    np.testing.assert_allclose(
        hp.taylor_softmax_log_probs(mu, hp.DiagonalNoise(jnp.sqrt(sig2))),
        jnp.log(s) + (expected - s) / s,
        rtol=1e-5,
    )


@pytest.mark.parametrize("scale", [0.05, 0.15])
def test_taylor_close_to_monte_carlo_for_small_sigma(key, scale):
    mu = jax.random.normal(key, (3, 5))
    noise = hp.LowRankNoise(
        jnp.full((3, 5), scale), scale * jax.random.normal(jax.random.key(2), (3, 5, 2))
    )
    mc = jnp.exp(
        hp.tempered_softmax_log_probs(mu, noise, key=key, num_samples=20_000, sampler="qmc")
    )
    taylor = hp.taylor_softmax_probs(mu, noise)
    homo = jax.nn.softmax(mu)
    err_taylor = float(jnp.abs(taylor - mc).max())
    err_homo = float(jnp.abs(homo - mc).max())
    assert err_taylor < 0.1 * err_homo + 2e-4, (err_taylor, err_homo)


def test_sigmoid_taylor_close_to_monte_carlo(key):
    mu = jnp.array([[-1.0, 0.2, 1.5]])
    noise = hp.DiagonalNoise(jnp.array([[0.1, 0.15, 0.1]]))
    mc = jnp.exp(
        hp.tempered_sigmoid_log_probs(mu, noise, key=key, num_samples=20_000, sampler="qmc")
    )
    np.testing.assert_allclose(hp.taylor_sigmoid_probs(mu, noise), mc, atol=2e-4)


def test_taylor_bad_input():
    with pytest.raises(ValueError, match="cov"):
        hp.taylor_softmax_probs(jnp.zeros(3), jnp.eye(4))
    with pytest.raises(ValueError, match="tau"):
        hp.taylor_softmax_probs(jnp.zeros(3), jnp.eye(3), tau=0.0)
    with pytest.raises(ValueError, match="mu"):
        hp.taylor_softmax_probs(jnp.array([jnp.nan, 0.0, 0.0]), jnp.eye(3))


def test_dense_cov_not_psd_raises():
    """Issue 9.3: a dense covariance with eigenvalue -1 (eigenvalues of [[1, 2], [2, 1]] are
    3 and -1) is rejected, eagerly and under jit."""
    cov = jnp.array([[1.0, 2.0], [2.0, 1.0]])
    mu = jnp.array([0.2, -0.2])
    with pytest.raises(ValueError, match=r"`cov`.*semi-definite.*-1"):
        hp.taylor_softmax_probs(mu, cov, tau=1.0)
    with pytest.raises(Exception, match="cov.*semi-definite"):
        jax.block_until_ready(jax.jit(lambda c: hp.taylor_softmax_probs(mu, c))(cov))


def test_half_precision_is_refused_naming_the_argument():
    noise = hp.DiagonalNoise(jnp.ones(3))
    with pytest.raises(TypeError, match=r"`mu`.*half precision"):
        hp.taylor_softmax_probs(jnp.zeros(3, jnp.float16), noise)
    with pytest.raises(TypeError, match=r"`mu`.*half precision"):
        hp.taylor_sigmoid_probs(jnp.zeros(3, jnp.float16), noise)
    with pytest.raises(TypeError, match=r"`cov`.*half precision"):
        hp.taylor_softmax_probs(jnp.zeros(3), jnp.eye(3, dtype=jnp.float16))
