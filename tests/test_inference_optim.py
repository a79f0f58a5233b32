"""`inference.default_optimizer` does what its docstring says: the learning rate follows the
warm-up + cosine formula (measured through Adam's updates), gradients are clipped to the
global norm, weight decay is decoupled."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from inference import default_optimizer

T, PEAK, WARM, END = 40, 1e-2, 0.25, 0.1


def _lr(t):
    """The docstring's schedule, written out independently of optax."""
    warmup = round(WARM * T)
    if t < warmup:
        return PEAK * t / warmup
    cos = (1 + np.cos(np.pi * (t - warmup) / (T - warmup))) / 2
    return PEAK * (cos * (1 - END) + END)


def test_learning_rate_follows_warmup_and_cosine():
    # constant gradient, no weight decay: Adam's bias-corrected step is -lr(t) * g / |g|
    opt = default_optimizer(
        T, learning_rate=PEAK, warmup_fraction=WARM, end_fraction=END, weight_decay=0.0
    )
    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    got = []
    for _ in range(T + 1):
        upd, state = opt.update({"w": jnp.array([0.5, -0.5])}, state, params)
        got.append(-float(upd["w"][0]))
    want = [_lr(t) for t in range(T + 1)]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-9)
    assert got[0] == 0.0 and max(got) == pytest.approx(PEAK, rel=1e-4)


@pytest.mark.parametrize("clip_norm", [1.0, 2.5])
def test_gradients_are_clipped_to_the_global_norm(clip_norm):
    opt = default_optimizer(10, clip_norm=clip_norm)
    params = {"a": jnp.zeros(3), "b": jnp.zeros(1)}
    grads = {"a": jnp.array([3e6, 0.0, -4e6]), "b": jnp.array([0.0])}  # global norm 5e6
    _, state = opt.update(grads, opt.init(params), params)
    mu = optax.tree_utils.tree_get(state, "mu")  # Adam's first moment: (1 - b1) * clipped
    np.testing.assert_allclose(mu["a"], 0.1 * clip_norm * np.array([0.6, 0.0, -0.8]), rtol=1e-5)
    small = {"a": jnp.array([0.3, 0.0, -0.4]), "b": jnp.array([0.0])}  # norm 0.5: untouched
    _, state = opt.update(small, opt.init(params), params)
    np.testing.assert_allclose(
        optax.tree_utils.tree_get(state, "mu")["a"], 0.1 * small["a"], rtol=1e-5
    )


def test_weight_decay_is_decoupled():
    # zero gradient: the only update is -lr(t) * weight_decay * params (AdamW)
    opt = default_optimizer(
        T, learning_rate=PEAK, warmup_fraction=WARM, end_fraction=END, weight_decay=0.5
    )
    params = {"w": jnp.array([2.0, -4.0])}
    state = opt.init(params)
    for t in range(15):
        upd, state = opt.update({"w": jnp.zeros(2)}, state, params)
        np.testing.assert_allclose(
            upd["w"], -_lr(t) * 0.5 * np.array([2.0, -4.0]), rtol=1e-4, atol=1e-12
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_steps=0), "num_steps"),
        (dict(warmup_fraction=1.0), "warmup_fraction"),
        (dict(end_fraction=1.5), "end_fraction"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(clip_norm=-1.0), "clip_norm"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = {"num_steps": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        default_optimizer(**args)
