"""HET-XL noise (Collier et al. 2023, arXiv:2301.12860): eps = W eps_D in representation space."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp
from tests.noise_checks import (
    assert_sample_covariance_matches,
    assert_variance_and_matvec_match_dense,
)

B, K, D, R = 2, 4, 6, 2


def _noise(key):
    k1, k2, k3 = jax.random.split(key, 3)
    scale = hp.positive_scale(jax.random.normal(k1, (B, D)))
    factor = 0.7 * jax.random.normal(k2, (B, D, R))
    return hp.HetXLNoise(scale, factor, 0.5 * jax.random.normal(k3, (K, D)))


def test_sample_covariance_matches_dense_covariance(key):
    noise = _noise(key)
    assert noise.num_classes == K and noise.num_draws == D + R and noise.batch_shape == (B,)
    assert_sample_covariance_matches(noise)


def test_variance_and_matvec_agree_with_dense(key):
    assert_variance_and_matvec_match_dense(_noise(key))


def test_covariance_is_projected_representation_covariance(key):
    # closed form: Sigma = W Sigma_D W^T with Sigma_D = diag(d^2) + V V^T
    noise = _noise(key)
    d, V, W = noise.inner.scale, noise.inner.factor, noise.projection
    sigma_d = jax.vmap(jnp.diag)(d**2) + V @ jnp.swapaxes(V, -1, -2)
    np.testing.assert_allclose(noise.covariance(), W @ sigma_d @ W.T, rtol=1e-5, atol=1e-6)


def test_importable_from_models_for_compatibility():
    import models

    assert models.HetXLNoise is hp.HetXLNoise is hp.noise.HetXLNoise


@pytest.mark.parametrize(
    "factor, projection, match",
    [
        (jnp.ones((3, 3)), jnp.ones((2, 3)), "1 <= R < in_features D=3"),
        (jnp.ones((3, 1)), jnp.ones((2, 4)), "`projection` must have shape"),
    ],
)
def test_bad_parameters_raise(factor, projection, match):
    with pytest.raises(ValueError, match=match):
        hp.HetXLNoise(jnp.ones(3), factor, projection)
