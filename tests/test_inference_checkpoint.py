"""`inference.checkpoint`: a `FitState` (typed keys included) survives save/load bit for bit,
writes are atomic, a missing file is named."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
import pytest

from inference import build_svi, init, load_checkpoint, save_checkpoint


def _model(x, *, num_data=None):
    w = numpyro.param("w", jnp.zeros(3))
    numpyro.factor("f", -jnp.sum((x - w[None]) ** 2))


@pytest.fixture(scope="module")
def state():
    svi = build_svi(_model, None, optax.adam(0.1))
    x = jax.random.normal(jax.random.key(0), (8, 3))
    return init(svi, (x,), key=jax.random.key(1), batch_size=4, track_best=True)


def _leaves_equal(a, b):
    def raw(x):
        return jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        x.dtype == y.dtype and np.array_equal(raw(x), raw(y)) for x, y in zip(la, lb, strict=True)
    )


def test_round_trip_is_bit_exact_with_typed_keys(state, tmp_path):
    assert jnp.issubdtype(state.svi_state.rng_key.dtype, jax.dtypes.prng_key)
    path = tmp_path / "a" / "b" / "ckpt.eqx"  # parent folders are created
    save_checkpoint(path, state)
    loaded = load_checkpoint(path, state)
    assert type(loaded) is type(state) and _leaves_equal(loaded, state)
    assert jax.random.key_impl(loaded.svi_state.rng_key) == jax.random.key_impl(
        state.svi_state.rng_key
    )
    # the loaded key draws the same numbers
    np.testing.assert_array_equal(
        jax.random.normal(loaded.svi_state.rng_key, (4,)),
        jax.random.normal(state.svi_state.rng_key, (4,)),
    )
    # `like` may be an abstract structure
    assert _leaves_equal(load_checkpoint(path, jax.eval_shape(lambda: state)), state)


def test_overwrite_is_atomic_and_missing_file_is_named(state, tmp_path, monkeypatch):
    path = tmp_path / "ckpt.eqx"
    save_checkpoint(path, state)

    def fail_midway(f, tree):
        f.write(b"partial")
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(eqx, "tree_serialise_leaves", fail_midway)
        with pytest.raises(OSError, match="disk full"):
            save_checkpoint(path, state)
    assert _leaves_equal(load_checkpoint(path, state), state)  # the previous file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.eqx"]  # no temp file left
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.eqx", state)
