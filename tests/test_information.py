"""Seed 001: H(Y) - E[CE] of a trained classifier estimates I(X;Y) on a known channel."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hetprobit import information as I


def _entropy(p):
    p = np.asarray(p, np.float64)
    p = p[p > 0]
    return -np.sum(p * np.log(p))


def exact_mi(confusion, p_x):
    """I(X;Y) = H(Y) - H(Y|X) of the channel p(y|x) = confusion[x, y]."""
    p_y = p_x @ confusion
    return _entropy(p_y) - sum(p_x[i] * _entropy(confusion[i]) for i in range(len(p_x)))


def _sample(key, confusion, p_x, n):
    kx, ky = jax.random.split(key)
    x = jax.random.categorical(kx, jnp.log(jnp.asarray(p_x)), shape=(n,))
    y = jax.random.categorical(ky, jnp.log(jnp.asarray(confusion))[x])
    return x, y


def _fit_logit_table(x, y, M, K, steps=300, lr=0.1):
    """A classifier that is a table of logits indexed by x, trained by Adam on mean CE."""
    opt = optax.adam(lr)

    def loss(table):
        logp = jax.nn.log_softmax(table[x], axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

    def step(carry, _):
        table, state = carry
        g = jax.grad(loss)(table)
        updates, state = opt.update(g, state)
        return (optax.apply_updates(table, updates), state), None

    table = jnp.zeros((M, K))
    (table, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, length=steps))(
        (table, opt.init(table))
    )
    return table


# Balanced channel: X uniform on 4 symbols, doubly stochastic confusion -> Y uniform.
BALANCED = np.full((4, 4), 0.1) + 0.6 * np.eye(4)
# Unbalanced channel: X uniform on 3 symbols, Y marginal (0.5, 0.3, 0.2).
UNBALANCED = np.array([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.3, 0.3, 0.4]])


def test_log_k_minus_ce_estimates_mi_of_balanced_channel():
    p_x = np.full(4, 0.25)
    mi_true = exact_mi(BALANCED, p_x)  # = log 4 - H(0.7, 0.1, 0.1, 0.1) ~ 0.446 nats
    np.testing.assert_allclose(mi_true, np.log(4) - _entropy([0.7, 0.1, 0.1, 0.1]), rtol=1e-12)
    x_tr, y_tr = _sample(jax.random.key(0), BALANCED, p_x, 20000)
    table = _fit_logit_table(x_tr, y_tr, 4, 4)
    x_te, y_te = _sample(jax.random.key(1), BALANCED, p_x, 20000)
    est = I.mutual_information_estimate(table[x_te], y_te, class_priors="uniform")
    assert abs(float(est.mi) - mi_true) < 0.02, (float(est.mi), mi_true)
    np.testing.assert_allclose(est.entropy_y, np.log(4), rtol=1e-6)
    # log K - E[CE] identity and pointwise = log softmax_y + log K, whose mean is the MI
    ce = -jnp.take_along_axis(jax.nn.log_softmax(table[x_te]), y_te[:, None], axis=-1)[:, 0]
    np.testing.assert_allclose(est.mi, np.log(4) - jnp.mean(ce), rtol=1e-5)
    np.testing.assert_allclose(est.pointwise, np.log(4) - ce, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jnp.mean(est.pointwise), est.mi, rtol=1e-5)
    # empirical label frequencies give nearly the same answer on balanced data
    est_freq = I.mutual_information_estimate(table[x_te], y_te)
    assert abs(float(est_freq.mi) - float(est.mi)) < 0.005


def test_empirical_priors_estimate_mi_of_unbalanced_channel():
    p_x = np.full(3, 1 / 3)
    mi_true = exact_mi(UNBALANCED, p_x)
    x, y = _sample(jax.random.key(2), UNBALANCED, p_x, 20000)
    # oracle classifier: logits = log p(y|x)
    oracle = jnp.log(jnp.asarray(UNBALANCED, jnp.float32))[x]
    est = I.mutual_information_estimate(oracle, y)
    assert abs(float(est.mi) - mi_true) < 0.02, (float(est.mi), mi_true)
    np.testing.assert_allclose(
        est.entropy_y, _entropy(np.bincount(np.asarray(y)) / 20000), rtol=1e-5
    )
    np.testing.assert_allclose(jnp.mean(est.pointwise), est.mi, rtol=1e-4, atol=1e-6)
    # given the true marginal as priors: H(Y) of the true marginal
    p_y = p_x @ UNBALANCED
    est_p = I.mutual_information_estimate(oracle, y, class_priors=p_y)
    np.testing.assert_allclose(est_p.entropy_y, _entropy(p_y), rtol=1e-6)
    assert abs(float(est_p.mi) - mi_true) < 0.02
    # the uniform assumption is wrong here and biases the estimate upwards
    est_u = I.mutual_information_estimate(oracle, y, class_priors="uniform")
    assert float(est_u.mi) - mi_true > 0.05


def test_uninformative_classifier_gives_zero_and_shapes():
    y = jnp.array([[0, 1, 2], [2, 1, 0]])
    est = I.mutual_information_estimate(jnp.zeros((2, 3, 3)), y)
    assert est.pointwise.shape == (2, 3) and est.mi.shape == ()
    np.testing.assert_allclose(est.mi, 0.0, atol=1e-6)
    jitted = jax.jit(I.mutual_information_estimate)(jnp.zeros((2, 3, 3)), y)
    np.testing.assert_allclose(jitted.mi, est.mi, atol=1e-7)


def test_bad_inputs_raise_naming_the_argument():
    logits = np.zeros((4, 3))
    with pytest.raises(ValueError, match="labels.*shape"):
        I.mutual_information_estimate(logits, np.zeros(3, int))
    with pytest.raises(ValueError, match="labels.*found label 3"):
        I.mutual_information_estimate(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="logits.*non-finite"):
        I.mutual_information_estimate(np.full((4, 3), np.inf), np.zeros(4, int))
    with pytest.raises(ValueError, match="class_priors.*sum to 1"):
        I.mutual_information_estimate(logits, np.zeros(4, int), class_priors=np.ones(3))
    with pytest.raises(ValueError, match=r"class_priors.*shape \(3,\)"):
        I.mutual_information_estimate(logits, np.zeros(4, int), class_priors=np.ones(4) / 4)
    with pytest.raises(ValueError, match="class_priors.*probability 0"):
        I.mutual_information_estimate(
            logits, np.array([0, 1, 2, 2]), class_priors=np.array([0.5, 0.5, 0.0])
        )
    with pytest.raises(ValueError, match="class_priors"):
        I.mutual_information_estimate(logits, np.zeros(4, int), class_priors="balanced")
    with pytest.raises(ValueError, match="logits.*empty"):
        I.mutual_information_estimate(np.zeros((0, 3)), np.zeros(0, int))
