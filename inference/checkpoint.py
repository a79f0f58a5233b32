"""Save and load a `FitState` (or any pytree of arrays) bit-exactly.

Leaves are written with `equinox.tree_serialise_leaves` (NumPy `.npy` records, exact bits).
Typed PRNG keys (`jax.random.key`) do not serialise, so every typed-key leaf is stored as
its `jax.random.key_data` and wrapped back, with the implementation of the corresponding
leaf of `like`, on load. Resuming `fit(..., init_state=load_checkpoint(path, like))`
continues to the bit-identical result of an uninterrupted run.

`like` is any pytree with the structure, shapes and dtypes of the saved one: the state of
the same fit (e.g. `FitResult.state`), or `jax.eval_shape` of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = ["save_checkpoint", "load_checkpoint"]


def _is_key(x) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _unwrap_keys(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _like_unwrapped(like):
    def leaf(x):
        if not _is_key(x):
            return x
        data_shape = jax.eval_shape(jax.random.key_data, x)
        return jnp.zeros(data_shape.shape, data_shape.dtype)

    return jax.tree.map(leaf, like)


def save_checkpoint(path: str | os.PathLike, state) -> None:
    """Write `state` (a `FitState` or any pytree of arrays) to `path`, atomically.

    The file is written next to `path` and renamed over it, so an interruption during the
    write leaves the previous checkpoint intact. Missing parent folders are created.

    Raises:
        OSError: the write failed (the previous file at `path` stays intact).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = _unwrap_keys(state)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            eqx.tree_serialise_leaves(f, tree)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, like):
    """Read a pytree saved by `save_checkpoint`; `like` gives its structure (module doc).

    Raises:
        FileNotFoundError: no file at `path`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    raw = eqx.tree_deserialise_leaves(path, _like_unwrapped(like))

    def rewrap(x, ref):
        if not _is_key(ref):
            return x
        # an abstract `like` (jax.eval_shape) carries the implementation in its key dtype
        impl = ref.dtype if isinstance(ref, jax.ShapeDtypeStruct) else jax.random.key_impl(ref)
        return jax.random.wrap_key_data(x, impl=impl)

    return jax.tree.map(rewrap, raw, like)
