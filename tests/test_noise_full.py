"""FullNoise: Sigma = L L^T (Train 2009, "Discrete choice methods with simulation", ch. 5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp
from tests.noise_checks import (
    assert_sample_covariance_matches,
    assert_variance_and_matvec_match_dense,
)
from tests.reference import scipy_choice_probs


def _cholesky(key, B=3, K=4):
    A = jax.random.normal(key, (B, K, K))
    cov = A @ jnp.swapaxes(A, -1, -2) + 0.5 * jnp.eye(K)[None]
    return cov, jnp.linalg.cholesky(cov)


def test_covariance_is_the_matrix_the_factor_came_from(key):
    cov, L = _cholesky(key)
    noise = hp.FullNoise(L)
    assert noise.num_classes == 4 and noise.batch_shape == (3,) and noise.num_draws == 4
    np.testing.assert_allclose(noise.covariance(), cov, rtol=1e-4, atol=1e-5)


def test_sample_covariance_matches_dense_covariance(key):
    assert_sample_covariance_matches(hp.FullNoise(_cholesky(key)[1]))


def test_variance_and_matvec_agree_with_dense(key):
    assert_variance_and_matvec_match_dense(hp.FullNoise(_cholesky(key)[1]))


def test_unbatched_factor_broadcasts_over_a_batch_of_utilities(key):
    # one Sigma for all examples; tau -> 0 recovers the exact probit probabilities (scipy)
    cov, L = _cholesky(key, B=1, K=3)
    mu = jnp.array([[0.2, -0.4, 0.5], [1.0, 0.0, -1.0]])
    lp = hp.tempered_softmax_log_probs(
        mu, hp.FullNoise(L[0]), key=jax.random.key(2), tau=0.01, num_samples=20_000
    )
    for b in range(2):
        exact = scipy_choice_probs(np.asarray(mu[b]), np.asarray(cov[0]))
        np.testing.assert_allclose(np.exp(lp[b]), exact, atol=0.015)


@pytest.mark.parametrize(
    "L, match",
    [
        (jnp.ones((3, 2)), "shape \\(..., K, K\\)"),
        (jnp.array([[1.0, 0.0], [0.5, -1.0]]), "cholesky diagonal"),
        (jnp.array([[1.0, 0.3], [0.5, 1.0]]), "lower-triangular"),
        (jnp.array([[1.0, 0.0], [jnp.nan, 1.0]]), "`cholesky` contains"),
    ],
)
def test_bad_factor_raises(L, match):
    with pytest.raises(ValueError, match=match):
        hp.FullNoise(L)
