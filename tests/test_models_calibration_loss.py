"""Calibration losses (hetprobit.calibration) as the likelihood term of a homoscedastic model."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer.util import log_density

import hetprobit as hp
from inference import fit
from models import MLP, Classifier, HeteroscedasticHead, classifier_model


def _net(covariance="homoscedastic"):
    key = jax.random.key(0)
    return Classifier(MLP(3, 8, key=key), HeteroscedasticHead(8, 4, covariance=covariance, key=key))


def _data(n=64):
    x = jax.random.normal(jax.random.key(1), (n, 3))
    w = jax.random.normal(jax.random.key(3), (3, 4))
    y = jnp.argmax(x @ w, -1)
    return x, y


@pytest.mark.parametrize("name", ["ce", "mbls", "focal"])
def test_loss_is_the_scaled_negative_log_density(name):
    net = _net()
    x, y = _data()
    logits = jax.vmap(net)(x)
    expected = -(100 / 64) * jnp.sum(hp.CALIBRATION_LOSSES[name](logits, y))
    with numpyro.handlers.seed(rng_seed=0):
        ld, _ = log_density(classifier_model, (x, y), dict(net=net, num_data=100, loss=name), {})
    np.testing.assert_allclose(ld, expected, rtol=1e-5)
    if name == "ce":  # cross-entropy loss == the categorical likelihood
        with numpyro.handlers.seed(rng_seed=0):
            ld_cat, _ = log_density(classifier_model, (x, y), dict(net=net, num_data=100), {})
        np.testing.assert_allclose(ld, ld_cat, rtol=1e-5)


def test_fit_with_mbls_loss_learns():
    x, y = _data(512)
    res = fit(
        classifier_model,
        None,
        (x, y),
        num_epochs=30,
        batch_size=64,
        key=jax.random.key(2),
        net=_net(),
        loss="mbls",
        progress=False,
    )
    assert float(res.losses[-1]) < 0.6 * float(res.losses[0])


def test_loss_rejected_for_noisy_head_or_unknown_name():
    x, y = _data()
    with numpyro.handlers.seed(rng_seed=0), pytest.raises(ValueError, match="homoscedastic"):
        classifier_model(x, y, net=_net("diagonal"), loss="mbls")
    with numpyro.handlers.seed(rng_seed=0), pytest.raises(ValueError, match="loss"):
        classifier_model(x, y, net=_net(), loss="hinge")
