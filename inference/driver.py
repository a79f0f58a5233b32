r"""`fit`: the driver around the pure loop `svi.init` / `svi.run_epoch`.

`fit` adds what a pure step does not do: checking the data once, eagerly
(`data.validate_data`), compiling the epoch once (timed), a progress bar per epoch,
validation with early stopping (`Validation`), a checkpoint after every epoch, resuming
from a `FitState`, data parallelism over `devices` and a stop with an error at the first
non-finite loss. `run_training` is the same driver for one fit or M vmapped members
(`inference.fit_ensemble`): nothing of the loop is written twice.

Validation: after every epoch the metric is computed at the current parameters -- by
default `svi.validation_loss` (negative ELBO per validation example under a fixed key) --
and recorded in the state's `EarlyStoppingState`; the result's `params` are those of the
best epoch. With `patience`, the run stops after `patience` epochs without improvement.

Errors: a NaN / inf loss stops the fit with a `FloatingPointError` naming the epoch, the
step (and the member); the checkpoint on disk is then the last finite epoch. A non-finite
validation metric raises the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray
from numpyro.infer import SVI

from hetprobit.validation import check_positive_int

from ._epochs import _epochs, _validator
from .data import as_typed_key, validate_data
from .optim import default_optimizer
from .sharding import data_parallel
from .svi import FitState, build_svi, init, run_epoch

__all__ = ["Validation", "FitTiming", "FitResult", "fit", "run_training"]


class Validation(NamedTuple):
    """Validation data and early stopping, one option of `fit` / `fit_ensemble`.

    Attributes:
        data: tuple of arrays like the training data, e.g. `(x_val, y_val)`.
        metric: `metric(params, *data, **model_kwargs) -> scalar`, lower is better; None:
            the negative ELBO per validation example (`svi.validation_loss`).
        patience: stop after this many epochs without a better metric (None: never stop
            early; the best epoch's parameters are still returned).
    """

    data: Sequence[Array]
    metric: Callable[..., Float[Array, ""]] | None = None
    patience: int | None = None


class FitTiming(NamedTuple):
    """Wall-clock timing of a fit in seconds.

    Attributes:
        compile_s: tracing + XLA compilation of the epoch program.
        train_s: time spent running epochs (compiled), including validation.
        epoch_s: per-epoch wall time, `(num_epochs_run,)`.
        step_s: mean time per SVI step over the run (train_s without validation / steps).
    """

    compile_s: float
    train_s: float
    epoch_s: np.ndarray
    step_s: float


class FitResult(NamedTuple):
    """Outcome of `fit` (of `fit_ensemble`: every array with a leading member axis M).

    Attributes:
        params: constrained parameters (`svi.get_params`) of the best epoch when validating,
            else of the last epoch.
        losses: mean loss (negative ELBO estimate) per epoch run, `(E,)`.
        step_losses: loss of every step, `(E, steps_per_epoch)`.
        val_history: validation metric per epoch run `(E,)` (empty without validation).
        best_epoch: 1-based epoch of `params` (the last epoch without validation).
        state: `FitState` after the last epoch run (resume from it, not from `params`).
        timing: `FitTiming`.
        svi: the `numpyro.infer.SVI` object (for `svi.get_params`, `svi.evaluate`).
    """

    params: dict[str, Any]
    losses: np.ndarray
    step_losses: np.ndarray
    val_history: np.ndarray
    best_epoch: int | np.ndarray
    state: FitState
    timing: FitTiming
    svi: SVI


def fit(
    model,
    guide,
    data: Sequence[Array],
    *,
    num_epochs: int,
    batch_size: int,
    key: PRNGKeyArray,
    optimizer: optax.GradientTransformation | None = None,
    validation: Validation | None = None,
    init_state: FitState | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    callback: Callable[[int, FitState, float], bool | None] | None = None,
    **model_kwargs,
) -> FitResult:
    """Fit `model` / `guide` to `data` by SVI (`svi` and this module's docstrings).

    Args:
        model: NumPyro model called as `model(*batch, **model_kwargs)` (+ `num_data=N`).
        guide: NumPyro guide (e.g. `AutoDelta(model)`, `AutoNormal(model)`), or None.
        data: tuple of arrays `(N, ...)` each, e.g. `(x, y)`, labels last.
        num_epochs: total number of epochs (a resumed fit runs the remaining ones).
        batch_size: minibatch size B <= N (a multiple of the device count with `devices`).
        key: PRNG key (keyword-only), typed or raw.
        optimizer: optax transformation; default `default_optimizer(num_epochs * N // B)`.
        validation: a `Validation` (data, metric, patience): best-epoch params, early stop.
        init_state: a `FitState` to resume from (e.g. `load_checkpoint`).
        checkpoint_path: save the `FitState` here after every epoch (`save_checkpoint`).
        devices: run data-parallel over these devices (`inference.sharding`); None: default.
        progress: show a tqdm bar per epoch with the running loss.
        callback: `callback(epoch, state, mean_loss)` after each epoch; return True to stop.
        **model_kwargs: keyword arguments of the model and guide (e.g. `net=`).

    Returns:
        A `FitResult`.

    Raises:
        TypeError, ValueError: bad arguments or data (`data.validate_data`: non-finite
            inputs, labels outside [0, K)), all before anything is compiled.
        FloatingPointError: a loss or validation metric became NaN / inf (epoch, step).
    """
    return run_training(
        model,
        guide,
        data,
        keys=key,
        num_epochs=num_epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        validation=validation,
        init_state=init_state,
        checkpoint_path=checkpoint_path,
        devices=devices,
        progress=progress,
        callback=callback,
        model_kwargs=model_kwargs,
    )


def _check_sizes(num_epochs, batch_size, N, parallel) -> tuple[int, int]:
    num_epochs = check_positive_int("num_epochs", num_epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if batch_size > N:
        raise ValueError(f"`batch_size` ({batch_size}) must be <= the number of examples {N}")
    if parallel is not None and batch_size % parallel.num_devices:
        raise ValueError(
            f"`batch_size` ({batch_size}) must be a multiple of the {parallel.num_devices} devices"
        )
    return num_epochs, batch_size


def _check_validation(validation, model_kwargs) -> Validation | None:
    if validation is None:
        return None
    if not isinstance(validation, Validation):
        raise TypeError(f"`validation` must be a Validation, got {type(validation).__name__}")
    val_data, _ = validate_data("validation.data", validation.data, model_kwargs=model_kwargs)
    if validation.patience is not None:
        check_positive_int("validation.patience", validation.patience)
    if validation.metric is not None and not callable(validation.metric):
        raise TypeError(f"`validation.metric` must be callable, got {validation.metric!r}")
    return validation._replace(data=val_data)


def run_training(
    model,
    guide,
    data: Sequence[Array],
    *,
    keys: PRNGKeyArray,
    num_epochs: int,
    batch_size: int,
    optimizer: optax.GradientTransformation | None,
    validation: Validation | None,
    init_state: FitState | None,
    checkpoint_path,
    devices,
    progress: bool,
    callback,
    model_kwargs: dict,
    member_kwargs: dict | None = None,
    desc: str = "fit",
) -> FitResult:
    """The driver of `fit` (`keys` one key) and `fit_ensemble` (`keys` `(M,)`, vmapped).

    `member_kwargs` (ensembles): model kwargs whose arrays carry a leading member axis.
    Arguments otherwise as in `fit`; raises as `fit` does.
    """
    all_kwargs = {**model_kwargs, **(member_kwargs or {})}
    data, N = validate_data("data", data, model_kwargs=all_kwargs)
    parallel = data_parallel(devices)
    num_epochs, batch_size = _check_sizes(num_epochs, batch_size, N, parallel)
    validation = _check_validation(validation, all_kwargs)
    steps = N // batch_size
    svi = build_svi(model, guide, optimizer or default_optimizer(num_epochs * steps))
    batched = member_kwargs is not None
    m_dyn, m_static = eqx.partition(member_kwargs or {}, eqx.is_array)
    s_dyn, s_static = eqx.partition(model_kwargs, eqx.is_array)

    def kw(m, s):
        return {**eqx.combine(m, m_static), **eqx.combine(s, s_static)}

    def vmap(f, *axes):  # members: mapped over axis 0 of keys, state and member kwargs
        return jax.vmap(f, in_axes=axes) if batched else f

    def init_one(k, d, m, s):
        return init(
            svi, d, key=k, batch_size=batch_size, model_kwargs=kw(m, s), track_best=bool(validation)
        )

    def epoch_one(st, d, m, s):
        opts = dict(batch_size=batch_size, parallel=parallel, check_finite=False)
        return run_epoch(svi, st, d, model_kwargs=kw(m, s), **opts)

    init_fn = vmap(init_one, 0, None, 0, None)
    keys = jax.vmap(as_typed_key)(keys) if batched else as_typed_key(keys)
    like = jax.eval_shape(init_fn, keys, data, m_dyn, s_dyn)  # also sets svi.constrain_fn
    if init_state is None:
        state = jax.jit(init_fn)(keys, data, m_dyn, s_dyn)
    elif not isinstance(init_state, FitState):
        raise TypeError(f"`init_state` must be a FitState, got {type(init_state).__name__}")
    elif jax.tree.structure(init_state) != jax.tree.structure(like):
        raise ValueError(
            "`init_state` does not match this fit (another model, or saved with(out) "
            f"validation): {jax.tree.structure(init_state)} vs {jax.tree.structure(like)}"
        )
    else:
        state = init_state
    if parallel is not None:
        state, m_dyn, s_dyn = parallel.replicate((state, m_dyn, s_dyn))
        data = parallel.place_data(data)
    t0 = time.perf_counter()
    epoch_fn = vmap(epoch_one, 0, None, 0, None)
    compiled = jax.jit(epoch_fn).lower(state, data, m_dyn, s_dyn).compile()
    compile_s = time.perf_counter() - t0
    get_params = jax.jit(vmap(lambda st: svi.get_params(st.svi_state), 0))

    validate = None
    if validation is not None:
        validate = _validator(svi, validation, keys, (m_dyn, s_dyn), kw, vmap, get_params, batched)
    state, (step_losses, val_hist, epoch_s, train_s, val_s) = _epochs(
        lambda st: compiled(st, data, m_dyn, s_dyn),
        state,
        num_epochs=num_epochs,
        steps=steps,
        validate=validate,
        patience=None if validation is None else validation.patience,
        progress=progress,
        desc=desc,
        callback=callback,
        checkpoint_path=checkpoint_path,
    )
    E, members = len(step_losses), np.shape(state.epoch)
    step_losses = np.asarray(step_losses).reshape(E, *members, steps)
    val_hist = np.asarray(val_hist).reshape(len(val_hist), *members)
    if batched:
        step_losses, val_hist = np.moveaxis(step_losses, 0, 1), np.moveaxis(val_hist, 0, 1)
    if validation is not None:
        params, best_epoch = state.stopping.best_params, np.asarray(state.stopping.best_epoch)
    else:
        params, best_epoch = get_params(state), np.asarray(state.epoch)
    step_s = (train_s - val_s) / max(1, E * steps)
    return FitResult(
        params=params,
        losses=step_losses.mean(axis=-1),
        step_losses=step_losses,
        val_history=val_hist,
        best_epoch=best_epoch if batched else int(best_epoch),
        state=state,
        timing=FitTiming(compile_s, train_s, np.asarray(epoch_s), step_s),
        svi=svi,
    )
