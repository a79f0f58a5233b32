"""The pure training loop `inference.svi`: `init` / `run_epoch` recover a known optimum,
visit every example once per epoch, check losses under jit, and drive `fit` bit for bit."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
import pytest

from inference import (
    EarlyStoppingState,
    EpochInfo,
    FitState,
    build_svi,
    fit,
    init,
    run_epoch,
    update_early_stopping,
)

N = 64


def _mean_model(x, *, num_data=None):
    """Loss (N / B) * 0.5 * Σ_batch (x_i - w)^2: minimised by w = mean(x) over the data set."""
    w = numpyro.param("w", jnp.zeros(()))
    scale = 1.0 if num_data is None else num_data / x.shape[0]
    numpyro.factor("f", -scale * 0.5 * jnp.sum((x - w) ** 2))


@pytest.fixture(scope="module")
def x():
    return 3.0 + jax.random.normal(jax.random.key(0), (N,))


def test_full_batch_loop_recovers_the_mean(x):
    # full batch: gradient N (w - mean), SGD step 0.5 / N halves the error each step
    svi = build_svi(_mean_model, None, optax.sgd(0.5 / N))
    state = eqx.filter_jit(init)(svi, (x,), key=jax.random.key(1), batch_size=N)
    assert isinstance(state, FitState) and int(state.epoch) == 0
    assert state.stopping.best_params is None and float(state.stopping.best_value) == np.inf
    epoch = eqx.filter_jit(run_epoch)
    for _ in range(40):
        state, info = epoch(svi, state, (x,), batch_size=N)
    assert isinstance(info, EpochInfo) and info.losses.shape == (1,)
    assert int(state.epoch) == 40 and int(info.first_nonfinite) == -1
    np.testing.assert_allclose(
        svi.get_params(state.svi_state)["w"], np.mean(np.asarray(x)), rtol=1e-5
    )


def test_epoch_uses_every_example_once(x):
    # learning rate 0: w stays 0, and Σ_steps loss * B / N = 0.5 Σ_all x_i^2 exactly when the
    # minibatches of an epoch partition the data set (a permutation, without replacement)
    svi = build_svi(_mean_model, None, optax.sgd(0.0))
    state = init(svi, (x,), key=jax.random.key(2), batch_size=16)
    for _ in range(2):
        state, info = eqx.filter_jit(run_epoch)(svi, state, (x,), batch_size=16)
        assert info.losses.shape == (4,)
        np.testing.assert_allclose(
            np.sum(info.losses) * 16 / N, 0.5 * np.sum(np.asarray(x) ** 2), rtol=1e-5
        )
        assert np.ptp(np.asarray(info.losses)) > 0  # different minibatches


def test_fit_is_a_driver_of_init_and_run_epoch(x):
    opt = optax.adam(0.1)
    res = fit(
        _mean_model,
        None,
        (x,),
        num_epochs=3,
        batch_size=16,
        key=jax.random.key(3),
        optimizer=opt,
        progress=False,
    )
    svi = build_svi(_mean_model, None, opt)
    state = eqx.filter_jit(init)(svi, (x,), key=jax.random.key(3), batch_size=16)
    losses = []
    for _ in range(3):
        state, info = eqx.filter_jit(run_epoch)(svi, state, (x,), batch_size=16)
        losses.append(info.losses)
    np.testing.assert_array_equal(np.stack(losses), res.step_losses)
    np.testing.assert_array_equal(svi.get_params(state.svi_state)["w"], res.params["w"])


def _drifting_model(x, *, num_data=None):
    w = numpyro.param("w", jnp.ones(()))
    numpyro.factor("f", -(w + 0.0 * jnp.log(w)))  # NaN once w < 0


def test_run_epoch_raises_under_jit_naming_the_step():
    svi = build_svi(_drifting_model, None, optax.sgd(0.3))
    data = (jnp.zeros((4, 1)),)
    state = init(svi, data, key=jax.random.key(0), batch_size=2)
    epoch = eqx.filter_jit(run_epoch)
    for _ in range(2):  # w = 1, .7 | .4, .1
        state, info = epoch(svi, state, data, batch_size=2)
    with pytest.raises(eqx.EquinoxRuntimeError, match="non-finite loss.*step 1 of 2"):
        jax.block_until_ready(epoch(svi, state, data, batch_size=2))  # w = -.2
    _, info = epoch(svi, state, data, batch_size=2, check_finite=False)
    assert int(info.first_nonfinite) == 0 and np.all(np.isnan(info.losses))


def test_update_early_stopping_counts_and_freezes():
    def run(values, patience):
        st = EarlyStoppingState(
            jnp.asarray(jnp.inf, jnp.float32), jnp.int32(0), jnp.int32(0), {"w": jnp.zeros(())}
        )
        for e, v in enumerate(values, start=1):
            st = update_early_stopping(st, v, {"w": jnp.asarray(float(e))}, e, patience=patience)
        return st

    st = run([3.0, 2.0, 2.5, 2.6, 1.0], patience=2)  # stopped after epoch 4: 1.0 is ignored
    assert (float(st.best_value), int(st.best_epoch), int(st.num_bad_epochs)) == (2.0, 2, 2)
    assert float(st.best_params["w"]) == 2.0
    st = run([3.0, 2.0, 2.5, 2.6, 1.0], patience=None)  # never stops: 1.0 at epoch 5 is best
    assert (float(st.best_value), int(st.best_epoch), float(st.best_params["w"])) == (1.0, 5, 5.0)
    # vmapped over two members: each keeps its own counters
    init_st = EarlyStoppingState(
        jnp.full((2,), jnp.inf, jnp.float32), jnp.zeros(2, jnp.int32), jnp.zeros(2, jnp.int32), None
    )
    step = jax.vmap(lambda s, v: update_early_stopping(s, v, None, 1, patience=1))
    st = step(init_st, jnp.array([1.0, jnp.nan]))
    np.testing.assert_array_equal(st.best_epoch, [1, 0])  # NaN is never an improvement
    np.testing.assert_array_equal(st.num_bad_epochs, [0, 1])
