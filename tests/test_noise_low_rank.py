import jax
import jax.numpy as jnp
import pytest

import hetprobit as hp
from tests.noise_checks import (
    assert_sample_covariance_matches,
    assert_variance_and_matvec_match_dense,
)


def _noise(key, B=3, K=5, R=2):
    k1, k2 = jax.random.split(key)
    return hp.LowRankNoise(
        hp.positive_scale(jax.random.normal(k1, (B, K))), 0.7 * jax.random.normal(k2, (B, K, R))
    )


def test_sample_covariance_matches_dense_covariance(key):
    noise = _noise(key)
    assert noise.rank == 2 and noise.num_draws == 7
    assert_sample_covariance_matches(noise)


def test_variance_and_matvec_agree_with_dense(key):
    assert_variance_and_matvec_match_dense(_noise(key))


@pytest.mark.parametrize(
    "scale, factor, match",
    [
        (jnp.ones(3), jnp.ones((3, 3)), "rank R must satisfy 1 <= R < K=3"),
        (jnp.ones(3), jnp.ones((4, 1)), "`factor` must have shape"),
        (jnp.ones(3), jnp.full((3, 1), jnp.inf), "`factor` contains"),
        (-jnp.ones(3), jnp.ones((3, 1)), "`scale` must be strictly positive"),
    ],
)
def test_bad_parameters_raise(scale, factor, match):
    with pytest.raises(ValueError, match=match):
        hp.LowRankNoise(scale, factor)
