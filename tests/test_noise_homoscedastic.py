import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp


def test_homoscedastic_has_no_noise(key):
    h = hp.Homoscedastic(4)
    assert h.num_classes == 4 and h.rank == 0 and h.batch_shape == ()
    np.testing.assert_array_equal(h.covariance(), jnp.zeros((4, 4)))
    np.testing.assert_array_equal(h.sample(key, 8), jnp.zeros((8, 4)))
    np.testing.assert_array_equal(h.matvec(jnp.ones(4)), jnp.zeros(4))


def test_homoscedastic_likelihood_is_tempered_softmax():
    mu = jnp.array([[0.3, -1.2, 2.0]])
    out = hp.tempered_softmax_log_probs(mu, hp.Homoscedastic(3), key=None, tau=0.5)
    np.testing.assert_allclose(out, jax.nn.log_softmax(mu / 0.5, axis=-1), rtol=1e-6)


@pytest.mark.parametrize("bad, err", [(0, ValueError), (2.5, TypeError)])
def test_bad_num_classes_raises(bad, err):
    with pytest.raises(err, match="num_classes"):
        hp.Homoscedastic(bad)
