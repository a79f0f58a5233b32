import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp


def test_defaults_hashable_and_immutable():
    mc = hp.MonteCarlo()
    assert (mc.num_samples, mc.sampler, mc.chunk_size, mc.share_draws) == (256, "mc", None, False)
    assert hash(mc) == hash(hp.MonteCarlo(np.int64(256))) and mc == hp.MonteCarlo(np.int64(256))
    assert type(hp.MonteCarlo(np.int64(8)).num_samples) is int
    assert len({mc, hp.MonteCarlo(), hp.MonteCarlo(128)}) == 2
    with pytest.raises(AttributeError):
        mc.num_samples = 3


def test_replace_validates_and_ignores_none():
    mc = hp.MonteCarlo(64, "antithetic")
    assert mc.replace(num_samples=None, sampler=None) is mc
    assert mc.replace(num_samples=32) == hp.MonteCarlo(32, "antithetic")
    with pytest.raises(ValueError, match="even"):
        mc.replace(num_samples=31)
    with pytest.raises(TypeError, match="no field"):
        mc.replace(samples=8)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(num_samples=0), ValueError, "`num_samples` must be >= 1"),
        (dict(num_samples=2.0), TypeError, "`num_samples` must be an integer"),
        (dict(sampler="sobol"), ValueError, "`sampler` must be one of"),
        (dict(num_samples=5, sampler="antithetic"), ValueError, "`num_samples` must be even"),
        (dict(chunk_size=0), ValueError, "`chunk_size` must be >= 1"),
        (dict(share_draws="yes"), TypeError, "`share_draws` must be a bool"),
    ],
)
def test_invalid_settings_raise_naming_the_argument(kwargs, err, match):
    with pytest.raises(err, match=match):
        hp.MonteCarlo(**kwargs)


def test_kwargs_feed_the_likelihood_functions(key):
    mu = jnp.array([[0.1, 0.4, -0.2]])
    noise = hp.DiagonalNoise(jnp.array([[1.0, 0.5, 2.0]]))
    mc = hp.MonteCarlo(num_samples=32, sampler="qmc", chunk_size=8, share_draws=True)
    a = hp.tempered_softmax_log_probs(mu, noise, key=key, **mc.kwargs())
    b = hp.tempered_softmax_log_probs(
        mu, noise, key=key, num_samples=32, sampler="qmc", chunk_size=8, share_draws=True
    )
    np.testing.assert_array_equal(a, b)
    # a MonteCarlo is a valid static argument under jit
    f = jax.jit(
        lambda m, mc: hp.tempered_softmax_log_probs(m, noise, key=key, **mc.kwargs()),
        static_argnums=1,
    )
    np.testing.assert_allclose(f(mu, mc), a, rtol=1e-6)
