"""Backbones, the NumPyro classifier model (Predictive labels vs exact probit, SVI sites)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
import pytest
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

from hetprobit.exact import exact_choice_probs
from models import MLP, Classifier, HeteroscedasticHead, ResNet, classifier_model


def test_backbone_shapes():
    mlp = MLP(4, 8, key=jax.random.key(0))
    assert jax.vmap(mlp)(jnp.ones((3, 4))).shape == (3, 8)
    small = ResNet(8, 12, channels=8, key=jax.random.key(1))
    assert jax.jit(lambda x: jax.vmap(small)(x))(jnp.ones((2, 64))).shape == (2, 12)
    assert eqx.filter_eval_shape(small, jnp.ones((1, 8, 8))).shape == (12,)
    # shapes only: build and apply the MNIST-sized net abstractly (no weights drawn)
    mnist = jax.eval_shape(
        lambda x: ResNet(28, 10, channels=4, num_stages=3, key=jax.random.key(2))(x),
        jnp.ones((28, 28)),
    )
    assert mnist.shape == (10,)
    with pytest.raises(ValueError, match="one example"):
        mlp(jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="image_size=8"):
        small(jnp.ones((28, 28)))


def make_net(K=3, rank=1, **kw):
    backbone = MLP(2, 4, width=8, depth=1, key=jax.random.key(0))
    head = HeteroscedasticHead(4, K, covariance="lowrank", rank=rank, key=jax.random.key(1), **kw)
    # make the noise large so the probit probabilities differ clearly from the softmax
    head = eqx.tree_at(lambda h: h.scale.bias, head, head.scale.bias + 5.0)
    head = eqx.tree_at(lambda h: h.factor.bias, head, head.factor.bias * 150.0)
    return Classifier(backbone, head)


def test_predictive_labels_follow_exact_probit_probabilities():
    net = make_net()
    x1 = jnp.array([0.3, -0.5])
    n = 20_000
    x = jnp.broadcast_to(x1, (n, 2))
    y = Predictive(classifier_model, num_samples=1)(jax.random.key(2), x, net=net)["y"][0]
    freq = np.bincount(np.asarray(y), minlength=3) / n
    mu, noise = net.head.noise_parameters(net.features(x1))
    p = np.asarray(exact_choice_probs(mu, noise.covariance()))
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) <= 4.5 * se + 1e-4), (freq, p)
    # and the probabilities are far from the homoscedastic softmax (the noise matters)
    assert np.max(np.abs(p - np.asarray(jax.nn.softmax(mu)))) > 0.05


def test_multilabel_predictive_indicators():
    net = make_net(K=4, rank=2, multilabel=True)
    x1 = jnp.array([0.1, 0.2])
    n = 10_000
    y = Predictive(classifier_model, num_samples=1)(
        jax.random.key(3), jnp.broadcast_to(x1, (n, 2)), net=net
    )["y"][0]
    assert y.shape == (n, 4)
    mu, noise = net.head.noise_parameters(net.features(x1))
    from jax.scipy.stats import norm

    p = np.asarray(norm.cdf(mu / jnp.sqrt(noise.variance())))
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(np.asarray(y).mean(0) - p) <= 4.5 * se + 1e-4)


def test_svi_map_and_bayesian_last_layer_sites():
    net = make_net()
    x = jax.random.normal(jax.random.key(4), (32, 2))
    y = jnp.arange(32) % 3

    def model(x, y):
        return classifier_model(x, y, net=net, num_data=320, prior_scale=1.0)

    tr = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace(x, y)
    assert {"net$params", "net.head.mu.weight", "net.head.mu.bias", "y"} <= set(tr)
    assert all("/" not in name for name in tr)
    assert tr["y"]["scale"] == pytest.approx(10.0)
    assert tr["net.head.mu.weight"]["scale"] is None  # priors are not rescaled
    svi = SVI(model, AutoNormal(model), optax.adam(1e-2), Trace_ELBO())
    res = svi.run(jax.random.key(5), 30, x, y, progress_bar=False)
    assert np.all(np.isfinite(res.losses))
    assert "net.head.mu.weight_auto_loc" in res.params

    def map_model(x, y):
        return classifier_model(x, y, net=net, mc_key=jax.random.key(0))

    svi = SVI(map_model, lambda x, y: None, optax.adam(3e-2), Trace_ELBO())
    res = svi.run(jax.random.key(6), 60, x, y, progress_bar=False)
    assert float(res.losses[-5:].mean()) < float(res.losses[0])


def test_model_argument_checks():
    net = make_net()
    with pytest.raises(ValueError, match="num_data"):
        numpyro.handlers.seed(classifier_model, 0)(jnp.zeros((4, 2)), net=net, num_data=2)
    with pytest.raises(ValueError, match="leading dimension"):
        numpyro.handlers.seed(classifier_model, 0)(jnp.zeros((4, 2)), jnp.zeros(3, int), net=net)
    with pytest.raises(TypeError, match="Classifier"):
        classifier_model(jnp.zeros((4, 2)), net=net.head)
