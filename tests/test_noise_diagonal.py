import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp
from tests.noise_checks import (
    assert_sample_covariance_matches,
    assert_variance_and_matvec_match_dense,
)


def _noise(key, B=3, K=5):
    return hp.DiagonalNoise(hp.positive_scale(jax.random.normal(key, (B, K))))


def test_sample_covariance_matches_dense_covariance(key):
    assert_sample_covariance_matches(_noise(key))


def test_variance_and_matvec_agree_with_dense(key):
    assert_variance_and_matvec_match_dense(_noise(key))


def test_diagonal_noise_draws_one_independent_value_per_class(key):
    # The known defect: drawing (B, S, 1) makes all classes share one scalar (rank one).
    scale = jnp.array([[0.5, 1.0, 2.0, 3.0]])
    eps = hp.DiagonalNoise(scale).sample(key, 50_000)[:, 0, :]
    corr = np.corrcoef(np.asarray(eps).T)
    np.testing.assert_allclose(corr, np.eye(4), atol=0.03)
    np.testing.assert_allclose(np.std(eps, axis=0), scale[0], rtol=0.02)


def test_positive_scale_floor():
    d = hp.positive_scale(jnp.array([-1e4, -50.0, 0.0, 50.0]))
    assert jnp.all(d >= 1e-3) and jnp.all(jnp.isfinite(d))
    np.testing.assert_allclose(d[0], 1e-3, rtol=1e-6)


@pytest.mark.parametrize(
    "scale, match",
    [([1.0, -1.0], "`scale` must be strictly positive"), ([1.0, np.nan], "`scale` contains")],
)
def test_bad_scale_raises(scale, match):
    with pytest.raises(ValueError, match=match):
        hp.DiagonalNoise(jnp.array(scale))
