r"""The data contract of the training loop: tuples of arrays, checked once, eagerly.

`data` is a tuple of arrays sliced along axis 0 (the example axis), e.g. `(x, y)`; the
model is called as `model(*batch, num_data=N, **model_kwargs)` (`num_data` only when its
signature has it).

`validate_data` is run by `fit` / `fit_ensemble` on the whole data set (and the
validation set) *before* anything is traced or compiled:

- every floating array is finite (no NaN / inf), naming the array and the first bad index;
- the labels -- the last array of `data` when its dtype is integer or bool -- are >= 0, and
  < K when the number of classes K is known: from `num_classes`, else from the model's
  keyword arguments (`net.head.num_classes` of a `models.Classifier`, or a `num_classes=`
  keyword of the model itself);
- multilabel heads (`net.head.multilabel`): the last array holds only 0/1 indicators.

Nothing here runs under `jit`: the compiled epoch does not re-check the data (that would
cost a pass over the data set per epoch); it checks its losses instead (`svi.run_epoch`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from hetprobit.validation import (
    check_array,
    check_finite,
    check_indicator_labels,
    check_labels,
)

__all__ = ["as_typed_key", "check_data", "validate_data", "model_call_kwargs"]


def as_typed_key(key, name: str = "key") -> PRNGKeyArray:
    """Accept a typed `jax.random.key` or a raw uint32 `PRNGKey`; return a typed key.

    Raises:
        TypeError: `key` is None.
    """
    if key is None:
        raise TypeError(f"`{name}` is required: pass a jax.random.key")
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))


def check_data(name: str, data) -> tuple[tuple[Array, ...], int]:
    """A non-empty tuple of arrays with one common leading size N; returns (data, N).

    Shapes only (works under tracing); `validate_data` checks the values.

    Raises:
        TypeError: `data` is not a non-empty tuple / list.
        ValueError: an array has no leading axis, or the leading sizes differ.
    """
    if not isinstance(data, tuple | list) or not data:
        raise TypeError(f"`{name}` must be a non-empty tuple of arrays, got {type(data).__name__}")
    arrays = []
    for i, a in enumerate(data):
        arr = jnp.asarray(a)
        if arr.ndim < 1:
            raise ValueError(f"`{name}[{i}]` must have a leading example axis, got shape ()")
        if not (jnp.issubdtype(arr.dtype, jnp.integer) or jnp.issubdtype(arr.dtype, jnp.bool_)):
            arr = check_array(f"{name}[{i}]", arr, min_ndim=1)
        arrays.append(arr)
    sizes = {a.shape[0] for a in arrays}
    if len(sizes) != 1:
        raise ValueError(
            f"arrays of `{name}` must share their leading size, got shapes "
            f"{[a.shape for a in arrays]}"
        )
    return tuple(arrays), sizes.pop()


def _label_spec(model_kwargs: dict, num_classes: int | None) -> tuple[int | None, bool]:
    """(K or None, multilabel) from an explicit K or the model's keyword arguments."""
    head = getattr(model_kwargs.get("net"), "head", None)
    multilabel = bool(getattr(head, "multilabel", False))
    if num_classes is None:
        num_classes = getattr(head, "num_classes", None)
    if num_classes is None and isinstance(model_kwargs.get("num_classes"), int):
        num_classes = model_kwargs["num_classes"]
    return num_classes, multilabel


def validate_data(
    name: str,
    data: Sequence[Array],
    *,
    model_kwargs: dict | None = None,
    num_classes: int | None = None,
) -> tuple[tuple[Array, ...], int]:
    """Check a whole data set once, eagerly (module docstring); returns (data, N).

    Args:
        name: the argument's name in messages, e.g. "data" or "validation.data".
        data: tuple of arrays `(N, ...)`, labels last.
        model_kwargs: the model's keyword arguments (K is read from `net` / `num_classes`).
        num_classes: K, overriding what the model kwargs say.

    Raises:
        TypeError, ValueError: from `check_data`; a floating array holds NaN / inf (naming
            `name[i]` and the first index); a label is < 0 or >= K (naming the value); a
            multilabel target is not 0/1.
    """
    data, N = check_data(name, data)
    K, multilabel = _label_spec(dict(model_kwargs or {}), num_classes)
    last = len(data) - 1
    for i, arr in enumerate(data):
        arr = _process_local(arr)
        label_name = f"{name}[{i}] (labels)"
        if i == last and multilabel:
            check_indicator_labels(label_name, arr)
        elif jnp.issubdtype(arr.dtype, jnp.floating):
            check_finite(f"{name}[{i}]", arr)
        elif i == last and jnp.issubdtype(arr.dtype, jnp.integer):
            if K is not None:
                check_labels(label_name, arr, K)
            elif int(np.min(np.asarray(arr))) < 0:
                raise ValueError(
                    f"`{label_name}` must be >= 0 (class labels), found label "
                    f"{int(np.min(np.asarray(arr)))}"
                )
    return data, N


def _process_local(arr):
    """The values this process holds: all of `arr`, or its local rows of a global array
    spanning several processes (`inference.distributed`; each process checks its part)."""
    if isinstance(arr, jax.Array) and not arr.is_fully_addressable:
        return np.concatenate([np.asarray(s.data) for s in arr.addressable_shards])
    return arr


def model_call_kwargs(model, model_kwargs: dict, num_data: int) -> dict:
    """`model_kwargs` plus `num_data=N` when the model's signature accepts it."""
    kwargs = dict(model_kwargs)
    if "num_data" not in kwargs:
        try:
            params = inspect.signature(model).parameters
        except (TypeError, ValueError):
            params = {}
        if "num_data" in params:
            kwargs["num_data"] = int(num_data)
    return kwargs
