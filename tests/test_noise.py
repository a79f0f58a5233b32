import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp


def _structures(key, B=3, K=5, R=2):
    k1, k2, k3 = jax.random.split(key, 3)
    scale = hp.positive_scale(jax.random.normal(k1, (B, K)))
    factor = 0.7 * jax.random.normal(k2, (B, K, R))
    v = jax.random.normal(k3, (B, K))
    W = 0.8 * jax.random.normal(k2, (K, R))
    return {
        "diagonal": hp.DiagonalNoise(scale),
        "lowrank": hp.LowRankNoise(scale, factor),
        "efficient": hp.ParameterEfficientNoise(scale, v, W),
    }


@pytest.mark.parametrize("name", ["diagonal", "lowrank", "efficient"])
def test_sample_covariance_matches_dense_covariance(key, name):
    noise = _structures(key)[name]
    eps = noise.sample(jax.random.key(1), 100_000)  # (S, B, K)
    assert eps.shape == (100_000, 3, 5)
    emp = jnp.einsum("sbk,sbj->bkj", eps, eps) / eps.shape[0]
    cov = noise.covariance()
    # sampling error of a second moment ~ sqrt(2/S) * scale^2
    tol = 5 * np.sqrt(2 / 100_000) * float(jnp.max(jnp.abs(cov))) + 1e-3
    np.testing.assert_allclose(emp, cov, atol=tol)


@pytest.mark.parametrize("name", ["diagonal", "lowrank", "efficient"])
def test_variance_and_matvec_agree_with_dense(key, name):
    noise = _structures(key)[name]
    cov = noise.covariance()
    x = jax.random.normal(jax.random.key(3), (3, 5))
    np.testing.assert_allclose(noise.variance(), jnp.diagonal(cov, axis1=-2, axis2=-1), rtol=1e-5)
    np.testing.assert_allclose(
        noise.matvec(x), jnp.einsum("bkj,bj->bk", cov, x), rtol=1e-5, atol=1e-6
    )


def test_diagonal_noise_draws_one_independent_value_per_class(key):
    # The known defect: drawing (B, S, 1) makes all classes share one scalar (rank one).
    scale = jnp.array([[0.5, 1.0, 2.0, 3.0]])
    eps = hp.DiagonalNoise(scale).sample(key, 50_000)[:, 0, :]
    corr = np.corrcoef(np.asarray(eps).T)
    np.testing.assert_allclose(corr, np.eye(4), atol=0.03)
    np.testing.assert_allclose(np.std(eps, axis=0), scale[0], rtol=0.02)


def test_parameter_efficient_equals_low_rank_with_row_scaled_factor(key):
    pe = _structures(key)["efficient"]
    lr = hp.LowRankNoise(pe.scale, pe.v[..., None] * pe.factor[None])
    np.testing.assert_allclose(pe.covariance(), lr.covariance(), rtol=1e-5, atol=1e-6)
    zK = jax.random.normal(key, (3, 7, 5))
    zR = jax.random.normal(jax.random.key(9), (3, 7, 2))
    np.testing.assert_allclose(pe.transform(zK, zR), lr.transform(zK, zR), rtol=1e-5, atol=1e-6)


def test_homoscedastic_has_no_noise():
    h = hp.Homoscedastic(4)
    assert h.num_classes == 4 and h.rank == 0
    np.testing.assert_array_equal(h.covariance(), jnp.zeros((4, 4)))


def test_positive_scale_floor():
    d = hp.positive_scale(jnp.array([-1e4, -50.0, 0.0, 50.0]))
    assert jnp.all(d >= 1e-3) and jnp.all(jnp.isfinite(d))
    np.testing.assert_allclose(d[0], 1e-3, rtol=1e-6)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: hp.DiagonalNoise(jnp.array([1.0, -1.0])), "scale"),
        (lambda: hp.DiagonalNoise(jnp.array([1.0, jnp.nan])), "scale"),
        (lambda: hp.LowRankNoise(jnp.ones(3), jnp.ones((3, 3))), "rank R"),
        (lambda: hp.LowRankNoise(jnp.ones(3), jnp.ones((4, 1))), "factor"),
        (lambda: hp.LowRankNoise(jnp.ones(3), jnp.full((3, 1), jnp.inf)), "factor"),
        (lambda: hp.ParameterEfficientNoise(jnp.ones(3), jnp.ones(2), jnp.ones((3, 1))), "`v`"),
        (lambda: hp.ParameterEfficientNoise(jnp.ones(3), jnp.ones(3), jnp.ones((2, 1))), "factor"),
        (lambda: hp.Homoscedastic(0), "num_classes"),
    ],
)
def test_bad_noise_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
