"""`inference.fit` (driver.py): known-good accuracy, determinism, bit-exact resume with early
stopping, and errors before compiling on bad data / at the first non-finite loss."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro import handlers
from numpyro.infer.autoguide import AutoNormal

from hetprobit.exact import exact_choice_log_probs
from inference import (
    FitResult,
    FitState,
    Validation,
    default_optimizer,
    evaluate,
    fit,
    load_checkpoint,
    predict_log_probs,
)
from models import classifier_model
from models.synthetic import make_synthetic_classification

N_TRAIN, BATCH, EPOCHS = 400, 50, 30


@pytest.fixture(scope="module")
def problem(make_classifier):
    d = make_synthetic_classification(600, 3, num_pairs=1, key=jax.random.key(0))
    net = make_classifier(
        jax.random.key(1),
        hidden=8,
        width=16,
        covariance="lowrank",
        rank=1,
        num_train_samples=16,
        num_eval_samples=256,
    )
    return d, net


def _fit(problem, **kwargs):
    d, net = problem
    opts = dict(
        num_epochs=EPOCHS,
        batch_size=BATCH,
        key=jax.random.key(3),
        net=net,
        progress=False,
        optimizer=default_optimizer(EPOCHS * N_TRAIN // BATCH, learning_rate=2e-2),
        validation=Validation((d.x[N_TRAIN:], d.y[N_TRAIN:])),
    )
    opts.update(kwargs)
    return fit(classifier_model, None, (d.x[:N_TRAIN], d.y[:N_TRAIN]), **opts)


@pytest.fixture(scope="module")
def reference_fit(problem):
    return _fit(problem)


def _leaves_equal(a, b):
    def eq(x, y):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        return x.shape == y.shape and x.dtype == y.dtype and bool(jnp.all(x == y))

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(eq(x, y) for x, y in zip(la, lb, strict=True))


def test_fit_reaches_known_accuracy_and_nll(problem, reference_fit):
    d, net = problem
    res = reference_fit
    assert isinstance(res, FitResult) and isinstance(res.state, FitState)
    assert res.losses.shape == (EPOCHS,) and res.step_losses.shape == (EPOCHS, N_TRAIN // BATCH)
    assert int(res.state.epoch) == EPOCHS
    assert res.losses[-1] < 0.75 * res.losses[0]
    assert res.timing.compile_s > 0 and res.timing.step_s > 0
    # default validation metric: negative ELBO per example; params of its best epoch
    assert res.val_history.shape == (EPOCHS,) and np.all(np.isfinite(res.val_history))
    assert res.best_epoch == int(np.argmin(res.val_history)) + 1
    assert 0.3 < res.val_history.min() < 1.5
    assert int(res.state.stopping.best_epoch) == res.best_epoch
    xv, yv = d.x[N_TRAIN:], d.y[N_TRAIN:]
    lp = predict_log_probs(
        classifier_model, None, res.params, xv, key=jax.random.key(5), net=net, inference=True
    )
    got = evaluate(lp, yv)
    oracle = evaluate(exact_choice_log_probs(d.mu[N_TRAIN:], d.covariance()[N_TRAIN:]), yv)
    # oracle (true probit probabilities): accuracy 0.745, NLL 0.561; class prior NLL ~1.07
    assert got["accuracy"] >= oracle["accuracy"] - 0.06
    assert got["nll"] <= oracle["nll"] + 0.16


def test_resume_with_early_stopping_state_is_bit_exact(problem, reference_fit, tmp_path):
    path = tmp_path / "run" / "state.eqx"
    interrupted = _fit(problem, checkpoint_path=path, callback=lambda e, s, loss: e == 11)
    assert np.array_equal(interrupted.losses, reference_fit.losses[:11])  # same key, same run
    state = load_checkpoint(path, interrupted.state)
    assert int(state.epoch) == 11
    resumed = _fit(problem, init_state=state)
    assert resumed.losses.shape == (EPOCHS - 11,)
    assert _leaves_equal(resumed.state, reference_fit.state)  # incl. early-stopping counters
    assert _leaves_equal(resumed.params, reference_fit.params)
    assert resumed.best_epoch == reference_fit.best_epoch
    assert np.array_equal(resumed.losses, reference_fit.losses[11:])
    assert np.array_equal(resumed.val_history, reference_fit.val_history[11:])


def test_early_stopping_keeps_best_epoch_and_other_seed_differs(problem, reference_fit):
    d, _ = problem
    calls = []

    def metric(params, x, y, *, net, num_data=None):  # better twice, then worse
        calls.append(1)
        return [3.0, 2.0, 2.5, 2.6, 2.7, 1.0][len(calls) - 1]

    val = Validation((d.x[N_TRAIN:], d.y[N_TRAIN:]), metric=metric, patience=2)
    res = _fit(problem, validation=val, key=jax.random.key(4))
    assert res.best_epoch == 2 and res.losses.shape == (4,)
    # another seed, another run (the same seed gives the same run bit for bit: the resume
    # test); the metric's script, not the seed, decides when to stop
    assert not np.allclose(res.losses[0], reference_fit.losses[0])
    np.testing.assert_array_equal(res.val_history, [3.0, 2.0, 2.5, 2.6])
    assert int(res.state.stopping.num_bad_epochs) == 2


def _logistic_model(x, y=None, *, num_data=None):
    w = numpyro.sample("w", dist.Normal(0.0, 5.0).expand([2]).to_event(1))
    scale = 1.0 if num_data is None else num_data / x.shape[0]
    logits = jnp.stack([0 * x[:, 0], x @ w], -1)
    with handlers.scale(scale=scale), numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Categorical(logits=logits), obs=y)


def test_bayesian_logistic_regression_with_autonormal_recovers_weights():
    """Any model + guide: minibatched Bayesian logistic regression, known weights."""
    key_x, key_y = jax.random.split(jax.random.key(7))
    x = jax.random.normal(key_x, (256, 2))
    w_true = jnp.array([2.0, -1.0])
    y = jax.random.bernoulli(key_y, jax.nn.sigmoid(x @ w_true)).astype(jnp.int32)
    res = fit(
        _logistic_model,
        AutoNormal(_logistic_model),
        (x, y),
        num_epochs=40,
        batch_size=64,
        key=jax.random.key(0),
        optimizer=optax.adam(5e-2),
        progress=False,
    )
    np.testing.assert_allclose(res.params["w_auto_loc"], w_true, atol=0.6)
    assert np.all(np.asarray(res.params["w_auto_scale"]) < 0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=1000), "batch_size"),
        (dict(num_epochs=0), "num_epochs"),
        (dict(init_state=123), "FitState"),
        (dict(validation=(1, 2)), "Validation"),
        (dict(validation=Validation((np.zeros((3, 4)), np.zeros(3, int)), patience=0)), "patience"),
    ],
)
def test_fit_rejects_bad_arguments(problem, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _fit(problem, **kwargs)


def _counting(model, calls):
    @functools.wraps(model)
    def wrapped(*args, **kwargs):
        calls.append(1)
        return model(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda x, y: (x.at[7].set(jnp.nan), y), r"`data\[0\]`.*non-finite.*\(7, 0\)"),
        (lambda x, y: (x, y.at[5].set(3)), r"`data\[1\] \(labels\)`.*K=3.*found label 3"),
        (lambda x, y: (x, y.at[5].set(-1)), r"`data\[1\] \(labels\)`.*found label -1"),
    ],
)
def test_bad_data_raises_before_anything_is_traced(problem, corrupt, match):
    d, net = problem
    x, y = corrupt(d.x[:100], d.y[:100])
    calls = []
    model = _counting(classifier_model, calls)
    with pytest.raises(ValueError, match=match):
        fit(model, None, (x, y), num_epochs=2, batch_size=50, key=jax.random.key(0), net=net)
    assert calls == []  # the model was never traced: nothing was compiled
    with pytest.raises(ValueError, match=r"validation\.data"):
        fit(
            model,
            None,
            (d.x[:100], d.y[:100]),
            num_epochs=2,
            batch_size=50,
            key=jax.random.key(0),
            net=net,
            validation=Validation((x, y)),
        )
    assert calls == []


def _drifting_model(x, *, num_data=None):
    """Loss w + 0 * log(w): gradient 1, finite while w > 0, NaN once SGD drives w below 0."""
    w = numpyro.param("w", jnp.ones(()))
    numpyro.factor("f", -(w + 0.0 * jnp.log(w)))


def test_non_finite_loss_stops_naming_epoch_and_step(tmp_path):
    # SGD(0.3) from w=1: w = 1, .7, .4, .1, -.2 at global steps 0..4; 2 steps per epoch,
    # so the first NaN loss is epoch 3, step 1 (1-based), and epoch 2 is the last checkpoint.
    path = tmp_path / "ckpt.eqx"
    kwargs = dict(batch_size=2, key=jax.random.key(0), optimizer=optax.sgd(0.3), progress=False)
    with pytest.raises(FloatingPointError, match=r"loss.*epoch 3, step 1 of 2"):
        fit(
            _drifting_model,
            None,
            (jnp.zeros((4, 1)),),
            num_epochs=5,
            checkpoint_path=path,
            **kwargs,
        )
    kwargs["progress"] = True  # the tqdm bar runs too
    ok = fit(_drifting_model, None, (jnp.zeros((4, 1)),), num_epochs=2, **kwargs)
    assert ok.best_epoch == 2 and ok.val_history.shape == (0,)  # no validation: the last epoch
    saved = load_checkpoint(path, ok.state)
    assert int(saved.epoch) == 2 and _leaves_equal(saved, ok.state)
    np.testing.assert_allclose(ok.step_losses.ravel(), [1.0, 0.7, 0.4, 0.1], rtol=1e-5)


def test_non_finite_validation_metric_raises_naming_epoch():
    values = iter([1.0, float("nan")])
    val = Validation((jnp.zeros((2, 1)),), metric=lambda params, x: next(values))
    with pytest.raises(FloatingPointError, match=r"validation metric.*epoch 2"):
        fit(
            _drifting_model,
            None,
            (jnp.zeros((4, 1)),),
            num_epochs=3,
            batch_size=4,
            key=jax.random.key(0),
            optimizer=optax.sgd(0.01),
            validation=val,
            progress=False,
        )


def test_fit_rejects_mismatched_data(problem):
    d, net = problem
    with pytest.raises(ValueError, match="leading size"):
        fit(
            classifier_model,
            None,
            (d.x[:10], d.y[:11]),
            num_epochs=1,
            batch_size=5,
            key=jax.random.key(0),
            net=net,
            progress=False,
        )
