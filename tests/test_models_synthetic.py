"""Synthetic data from the exact process; a fitted low-rank head finds the planted pair."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hetprobit.exact import exact_choice_probs
from models import (
    HeteroscedasticHead,
    centre_covariance,
    covariance_summary,
    make_synthetic_classification,
    pair_ranks,
    top_pairs,
)


def test_synthetic_shapes_truth_and_label_frequencies():
    data = make_synthetic_classification(500, 6, num_pairs=2, key=jax.random.key(0))
    assert data.x.shape == (500, 4) and data.y.shape == (500,) and data.mu.shape == (500, 6)
    assert data.factor.shape == (500, 6, 2) and data.covariance().shape == (500, 6, 6)
    assert [tuple(p) for p in data.pairs] == [(0, 1, -1), (2, 3, 1)]
    ranks = pair_ranks(top_pairs(jnp.mean(data.covariance(), 0), top_k=None), data.pairs)
    assert sorted(ranks) == [0, 1]
    # noise grows with x_0
    assert float(data.scale[jnp.argmax(data.x[:, 0]), 0]) > float(
        data.scale[jnp.argmin(data.x[:, 0]), 0]
    )
    ml = make_synthetic_classification(
        200, 5, num_pairs=1, multilabel=True, mean_offset=-1.0, key=jax.random.key(1)
    )
    assert ml.y.shape == (200, 5) and set(np.unique(ml.y)) <= {0, 1}


def test_synthetic_labels_are_the_exact_argmax_process():
    # one x repeated: label frequencies equal the exact probit probabilities at that x
    n, K = 20_000, 3
    data = make_synthetic_classification(n, K, num_pairs=1, noise_growth=0.0, key=jax.random.key(2))
    # a fresh draw at a fixed x: use the truth of example 0 for everyone
    mu0, scale0, factor0 = data.mu[0], data.scale[0], data.factor[0]
    z = jax.random.normal(jax.random.key(3), (n, K + 1))
    u = mu0[None] + scale0[None] * z[:, :K] + z[:, K:] @ factor0.T
    freq = np.bincount(np.asarray(jnp.argmax(u, -1)), minlength=K) / n
    p = np.asarray(exact_choice_probs(mu0, data.covariance()[0]))
    assert np.all(np.abs(freq - p) <= 4.5 * np.sqrt(p * (1 - p) / n) + 1e-4)


def test_bad_synthetic_configuration_raises():
    with pytest.raises(ValueError, match="num_pairs"):
        make_synthetic_classification(10, 4, num_pairs=3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="pair_signs"):
        make_synthetic_classification(10, 4, num_pairs=1, pair_signs=(2,), key=jax.random.key(0))
    with pytest.raises(ValueError, match="noise_growth"):
        make_synthetic_classification(10, 4, noise_growth=1.5, key=jax.random.key(0))


def test_fitted_lowrank_head_ranks_planted_pair_first():
    """Fit mu, d, V on representations [x, tanh(2x)]; the planted pair tops the table."""
    N, K = 12_000, 6
    data = make_synthetic_classification(
        N, K, num_pairs=1, mean_scale=1.0, pair_strength=1.5, key=jax.random.key(0)
    )
    feats = jnp.concatenate([data.x, jnp.tanh(2.0 * data.x)], axis=-1)
    head = HeteroscedasticHead(
        feats.shape[1],
        K,
        covariance="lowrank",
        rank=1,
        num_train_samples=16,
        key=jax.random.key(1),
    )
    opt = optax.adam(5e-2)

    params, static = eqx.partition(head, eqx.is_inexact_array)

    @jax.jit
    def train(params, key):
        def step(carry, k):
            p, state = carry
            idx = jax.random.randint(jax.random.fold_in(k, 1), (1000,), 0, N)

            def loss_fn(q):
                m = eqx.combine(q, static)
                return -jnp.mean(m.log_likelihood(feats[idx], data.y[idx], key=k))

            updates, state = opt.update(jax.grad(loss_fn)(p), state)
            return (optax.apply_updates(p, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key, 300))
        return params

    head = eqx.combine(train(params, jax.random.key(2)), static)
    for center in (False, True):
        summary = covariance_summary(head, feats[:4000], top_k=None, center=center)
        assert pair_ranks(summary.top_covariance, data.pairs) == [0], summary.top_covariance[:3]
        assert summary.top_covariance[0].value < 0  # planted as substitutes (negative)
    truth = centre_covariance(jnp.mean(data.covariance(), 0))
    assert pair_ranks(top_pairs(truth, top_k=None), data.pairs) == [0]
