"""Relaxation (tau) sweep: relaxation bias shrinks and gradient variance grows as tau -> 0."""

import jax
import numpy as np
import pytest

from hetprobit import LowRankNoise
from inference import gradient_variance, relaxation_bias, relaxation_sweep
from models import classifier_model
from models.synthetic import make_synthetic_classification


@pytest.fixture(scope="module")
def data():
    return make_synthetic_classification(240, 3, num_pairs=1, key=jax.random.key(0))


def test_relaxation_bias_decreases_with_tau(data):
    noise = LowRankNoise(data.scale[:50], data.factor[:50])
    bias = relaxation_bias(
        data.mu[:50], noise, [1.0, 0.3, 0.05], key=jax.random.key(1), num_samples=4096
    )
    assert bias.mean_abs.shape == (3,)
    assert bias.mean_abs[0] > bias.mean_abs[1] > bias.mean_abs[2]
    assert bias.mean_abs[2] < 0.01 < bias.mean_abs[0]  # MC floor ~ 1/sqrt(4096) per entry
    assert np.all(bias.max_abs >= bias.mean_abs)


def test_sweep_picks_by_validation_nll_and_reports_tradeoff(data, make_classifier, count_traces):
    def make_problem(tau):
        net = make_classifier(
            jax.random.key(1), rank=1, tau=tau, num_train_samples=16, num_eval_samples=128
        )
        return classifier_model, None, {"net": net}

    noise = LowRankNoise(data.scale[200:], data.factor[200:])
    sweep = relaxation_sweep(
        make_problem,
        (data.x[:200], data.y[:200]),
        (data.x[200:], data.y[200:]),
        taus=[0.1, 1.0],
        key=jax.random.key(2),
        num_epochs=2,
        batch_size=50,
        num_grad_keys=8,
        truth=(data.mu[200:], noise),
    )
    assert sweep.val_nll.shape == (2,) and np.all(np.isfinite(sweep.val_nll))
    assert sweep.best_tau == sweep.taus[int(np.argmin(sweep.val_nll))]
    assert sweep.grad_variance[0] > 3 * sweep.grad_variance[1]  # measured ~60x
    assert sweep.bias.mean_abs[0] < sweep.bias.mean_abs[1]
    assert len(sweep.fits) == 2
    # common random numbers: the same keys give the same variance -- the sweep's own value
    # for tau = 1 recomputed from its fit, its first minibatch and its gradient key
    # (a network rebuilt equal by value: the gradients compiled by the sweep are reused)
    k_grad = jax.random.split(jax.random.key(2), 4)[2]
    batch, kwargs = (data.x[:50], data.y[:50]), make_problem(1.0)[2]
    with count_traces() as traces:
        again = gradient_variance(
            sweep.fits[1], batch, key=k_grad, num_keys=8, num_data=200, **kwargs
        )
    assert again == sweep.grad_variance[1]
    assert traces == []
