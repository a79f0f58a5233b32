"""Checks every noise structure must pass (used by tests/test_noise_<structure>.py).

The reference for `covariance()` is the empirical second moment of `sample()` (the
structure's own reparameterisation eps = transform(z)), and the references for
`variance()` / `matvec()` are the diagonal of and the product with the dense matrix.
"""

import jax
import jax.numpy as jnp
import numpy as np


def assert_sample_covariance_matches(noise, *, num_samples=100_000, seed=1):
    """Empirical E[eps eps^T] of `sample` equals `covariance()` within 5 standard errors."""
    eps = noise.sample(jax.random.key(seed), num_samples)  # (S, *batch, K)
    assert eps.shape == (num_samples, *noise.batch_shape, noise.num_classes)
    emp = jnp.einsum("s...k,s...j->...kj", eps, eps) / num_samples
    cov = noise.covariance()
    # standard error of a second moment E[x y]: sqrt((S_xx S_yy + S_xy^2) / S)
    var = jnp.diagonal(cov, axis1=-2, axis2=-1)
    se = jnp.sqrt((var[..., :, None] * var[..., None, :] + cov**2) / num_samples)
    np.testing.assert_array_less(np.abs(emp - cov), 5 * np.asarray(se) + 1e-6)


def assert_variance_and_matvec_match_dense(noise, *, seed=3):
    """`variance()` and `matvec(x)` agree with the dense `covariance()`."""
    cov = noise.covariance()
    shape = (*noise.batch_shape, noise.num_classes)
    x = jax.random.normal(jax.random.key(seed), shape)
    np.testing.assert_allclose(
        noise.variance(), jnp.diagonal(cov, axis1=-2, axis2=-1), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        noise.matvec(x), jnp.einsum("...kj,...j->...k", cov, x), rtol=1e-4, atol=1e-5
    )
