import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp
from tests.noise_checks import (
    assert_sample_covariance_matches,
    assert_variance_and_matvec_match_dense,
)


def _noise(key, B=3, K=5, R=2):
    k1, k2, k3 = jax.random.split(key, 3)
    scale = hp.positive_scale(jax.random.normal(k1, (B, K)))
    v = jax.random.normal(k3, (B, K))
    return hp.ParameterEfficientNoise(scale, v, 0.8 * jax.random.normal(k2, (K, R)))


def test_sample_covariance_matches_dense_covariance(key):
    assert_sample_covariance_matches(_noise(key))


def test_variance_and_matvec_agree_with_dense(key):
    assert_variance_and_matvec_match_dense(_noise(key))


def test_equals_low_rank_with_row_scaled_factor(key):
    # Collier et al. 2021 (arXiv:2105.10305), Alg. 1: V(x) = v(x) 1_R^T ⊙ W
    pe = _noise(key)
    lr = hp.LowRankNoise(pe.scale, pe.v[..., None] * pe.factor[None])
    np.testing.assert_allclose(pe.covariance(), lr.covariance(), rtol=1e-5, atol=1e-6)
    zK = jax.random.normal(key, (3, 7, 5))
    zR = jax.random.normal(jax.random.key(9), (3, 7, 2))
    np.testing.assert_allclose(pe.transform(zK, zR), lr.transform(zK, zR), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "v, factor, match",
    [
        (jnp.ones(2), jnp.ones((3, 1)), "`v` must have the shape"),
        (jnp.ones(3), jnp.ones((2, 1)), "`factor` must have shape"),
        (jnp.ones(3), jnp.ones((3, 3)), "rank R must satisfy"),
    ],
)
def test_bad_parameters_raise(v, factor, match):
    with pytest.raises(ValueError, match=match):
        hp.ParameterEfficientNoise(jnp.ones(3), v, factor)
