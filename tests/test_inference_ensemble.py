"""Deep Ensembles: vmapped training (with validation) == each member alone; bit-exact resume
from a checkpoint; members differ; entropy split against a hand computation."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
import pytest

from inference import (
    Validation,
    ensemble_keys,
    ensemble_predict,
    entropy_decomposition,
    fit,
    fit_ensemble,
    load_checkpoint,
)
from models import classifier_model
from models.synthetic import make_synthetic_classification

M, EPOCHS, BATCH = 3, 3, 40


@pytest.fixture(scope="module")
def make_net(make_classifier):
    return lambda key: make_classifier(key, covariance="diagonal", num_train_samples=8)


def _ensemble(data, val, make_net, **kwargs):
    return fit_ensemble(
        classifier_model,
        None,
        data,
        num_members=M,
        num_epochs=EPOCHS,
        batch_size=BATCH,
        key=jax.random.key(11),
        member_kwargs=lambda k: {"net": make_net(k)},
        validation=Validation(val),
        progress=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def setup(make_net):
    d = make_synthetic_classification(240, 3, num_pairs=1, key=jax.random.key(0))
    data, val = (d.x[:200], d.y[:200]), (d.x[200:], d.y[200:])
    return d, data, val, _ensemble(data, val, make_net)


def test_vmapped_members_equal_training_each_alone(setup, make_net):
    d, data, val, ens = setup
    assert ens.losses.shape == (M, EPOCHS) and ens.step_losses.shape == (M, EPOCHS, 5)
    assert ens.val_history.shape == (M, EPOCHS) and ens.best_epoch.shape == (M,)
    np.testing.assert_array_equal(ens.best_epoch, np.argmin(ens.val_history, axis=1) + 1)
    init_keys, fit_keys = ensemble_keys(jax.random.key(11), M)
    # the last member (a `fit` is one compile): a wrong member axis or key order shows here,
    # and test_members_differ shows the members are not copies of one another
    for m in (M - 1,):
        alone = fit(
            classifier_model,
            None,
            data,
            num_epochs=EPOCHS,
            batch_size=BATCH,
            key=fit_keys[m],
            net=make_net(init_keys[m]),
            validation=Validation(val),
            progress=False,
        )
        member = jax.tree.map(lambda x, m=m: x[m], ens.params)
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(member), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(alone.losses, ens.losses[m], rtol=1e-5)
        np.testing.assert_allclose(alone.val_history, ens.val_history[m], rtol=1e-5)
        assert alone.best_epoch == ens.best_epoch[m]


def test_resume_from_checkpoint_is_bit_exact(setup, make_net, tmp_path):
    d, data, val, ens = setup
    path = tmp_path / "ensemble.eqx"
    part = _ensemble(data, val, make_net, checkpoint_path=path, callback=lambda e, s, loss: e == 1)
    assert part.losses.shape == (M, 1)
    state = load_checkpoint(path, part.state)
    resumed = _ensemble(data, val, make_net, init_state=state)
    assert resumed.losses.shape == (M, EPOCHS - 1)
    np.testing.assert_array_equal(resumed.losses, ens.losses[:, 1:])
    np.testing.assert_array_equal(resumed.best_epoch, ens.best_epoch)
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(ens.params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_members_differ(setup):
    _, _, _, ens = setup
    w = ens.params["net$params"].head.mu.weight  # (M, K, D)
    for i in range(M):
        for j in range(i + 1, M):
            assert float(jnp.max(jnp.abs(w[i] - w[j]))) > 1e-2
    assert len(set(np.round(ens.losses[:, -1], 3))) == M


def test_ensemble_predict_averages_members(setup, count_traces):
    d, _, _, ens = setup
    x, k1, k2 = d.x[200:], jax.random.key(3), jax.random.key(2)
    ensemble_predict(classifier_model, None, ens, x, key=k1)
    with count_traces() as traces:  # the same configuration and shapes: compiled once
        pred = ensemble_predict(classifier_model, None, ens, x, key=k2)
    assert traces == []
    assert pred.member_log_probs.shape == (M, 40, 3) and pred.log_probs.shape == (40, 3)
    np.testing.assert_allclose(
        jnp.exp(pred.log_probs), jnp.mean(jnp.exp(pred.member_log_probs), 0), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        pred.total_entropy, pred.expected_entropy + pred.mutual_information, rtol=1e-5, atol=1e-6
    )
    assert float(jnp.min(pred.mutual_information)) >= 0.0
    assert float(jnp.mean(pred.mutual_information)) > 0.0


def test_entropy_decomposition_against_hand_computation():
    p = np.array([[[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]], [[0.1, 0.2, 0.7], [1.0, 0.0, 0.0]]])
    with np.errstate(divide="ignore"):
        out = entropy_decomposition(jnp.asarray(np.log(p)))

    def h(q):
        q = q[q > 0]
        return -np.sum(q * np.log(q))

    mean = p.mean(0)
    np.testing.assert_allclose(out.total_entropy, [h(mean[0]), 0.0], atol=1e-6)
    np.testing.assert_allclose(
        out.expected_entropy, [(h(p[0, 0]) + h(p[1, 0])) / 2, 0.0], atol=1e-6
    )
    np.testing.assert_allclose(
        out.mutual_information, [h(mean[0]) - h(p[0, 0]), 0.0], atol=1e-6
    )  # both members have the same entropy here
    # identical members: no epistemic uncertainty
    same = entropy_decomposition(jnp.log(jnp.asarray(np.stack([p[0], p[0]]) + 1e-12)))
    np.testing.assert_allclose(same.mutual_information, 0.0, atol=1e-6)
    # multilabel: per-class Bernoulli entropies
    q = jnp.asarray([[[0.5, 0.9]], [[0.5, 0.1]]])
    ml = entropy_decomposition(jnp.log(q), multilabel=True)
    hb = lambda x: -(x * np.log(x) + (1 - x) * np.log(1 - x))  # noqa: E731
    np.testing.assert_allclose(ml.total_entropy, [2 * hb(0.5)], rtol=1e-5)
    np.testing.assert_allclose(ml.expected_entropy, [hb(0.5) + hb(0.9)], rtol=1e-5)


def test_fit_ensemble_rejects_conflicting_kwargs(make_net):
    d = make_synthetic_classification(40, 3, num_pairs=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="member_kwargs"):
        fit_ensemble(
            classifier_model,
            None,
            (d.x, d.y),
            num_members=2,
            num_epochs=1,
            batch_size=20,
            key=jax.random.key(0),
            member_kwargs=lambda k: {"net": make_net(k)},
            net=make_net(jax.random.key(0)),
            progress=False,
        )


def _offset_model(x, *, offset, speed=1.0, num_data=None):
    """Loss speed * w + 0 * log(w) (NaN once w < 0) plus 0 * offset (a member kwarg)."""
    w = numpyro.param("w", jnp.ones(()))
    numpyro.factor("f", -(speed * w + 0.0 * jnp.log(w)) - 0.0 * offset)


def test_early_stopping_is_per_member():
    """A member that runs out of patience is frozen at its best; the run goes on."""
    init_keys, _ = ensemble_keys(jax.random.key(5), 2)
    offsets = [float(jax.random.normal(k)) for k in init_keys]
    script = {0: [3.0, 2.0, 2.5, 2.6, 2.7, 2.8], 1: [3.0, 2.9, 2.8, 2.7, 2.6, 2.5]}
    calls = {0: 0, 1: 0}

    def metric(params, x, *, offset):
        m = int(np.argmin(np.abs(np.asarray(offsets) - float(offset))))
        calls[m] += 1
        return script[m][calls[m] - 1]

    ens = fit_ensemble(
        _offset_model,
        None,
        (jnp.zeros((4, 1)),),
        num_members=2,
        num_epochs=6,
        batch_size=4,
        key=jax.random.key(5),
        member_kwargs=lambda k: {"offset": jax.random.normal(k)},
        optimizer=optax.sgd(0.01),
        validation=Validation((jnp.zeros((2, 1)),), metric=metric, patience=2),
        progress=False,
    )
    np.testing.assert_array_equal(ens.best_epoch, [2, 6])
    np.testing.assert_array_equal(ens.state.stopping.num_bad_epochs, [2, 0])
    assert ens.losses.shape == (2, 6) and calls == {0: 6, 1: 6}
    # member 0 keeps the parameters of its epoch 2: w = 1 - 0.01 * 2
    np.testing.assert_allclose(ens.params["w"], [0.98, 0.94], rtol=1e-6)


def test_non_finite_loss_names_the_member():
    # member speeds s_m = 1 + 2 u(init_key_m) with SGD(0.3): w_t = 1 - 0.3 s_m t, NaN from the
    # first t with w_t < 0; 2 steps per epoch. Key 3: s = (1.017, 1.557), so member 1 is NaN
    # first at global step 3 (epoch 2, step 2) and member 0 only at step 4 (epoch 3).
    init_keys, _ = ensemble_keys(jax.random.key(3), 2)
    speeds = [1.0 + 2.0 * float(jax.random.uniform(k)) for k in init_keys]
    first = [int(np.floor(1 / (0.3 * s))) + 1 for s in speeds]
    assert first == [4, 3]
    with pytest.raises(FloatingPointError, match=r"epoch 2, step 2 of 2, member\(s\) \[1\]"):
        fit_ensemble(
            _offset_model,
            None,
            (jnp.zeros((4, 1)),),
            num_members=2,
            num_epochs=4,
            batch_size=2,
            key=jax.random.key(3),
            member_kwargs=lambda k: {
                "offset": jnp.zeros(()),
                "speed": 1.0 + 2.0 * jax.random.uniform(k),
            },
            optimizer=optax.sgd(0.3),
            progress=False,
        )
