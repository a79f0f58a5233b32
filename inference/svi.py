r"""The training loop as pure functions: `init` and `run_epoch` (SVI with an optax optimiser).

Any NumPyro `model(*batch, **model_kwargs)` and guide (`AutoDelta` for MAP of a network,
`AutoNormal` for a Bayesian last layer, a custom guide, or None for models whose only
unknowns are `numpyro.param` sites) is fitted by maximising the ELBO with
`numpyro.infer.SVI`, `Trace_ELBO` and `numpyro.optim.optax_to_numpyro(optimizer)`
(`build_svi`). In the style of numpyro's `SVI.init` / `SVI.update` and blackjax's
`init` / `step`, the loop is two pure, traceable functions of a `FitState` value:

    state = init(svi, data, key=key, batch_size=B, model_kwargs=kw)
    state, info = run_epoch(svi, state, data, batch_size=B, model_kwargs=kw)

`inference.fit` is a thin driver around them (progress, validation, early stopping,
checkpoints, devices); `inference.fit_ensemble` runs the same two functions under
`jax.vmap` over member keys. Use them directly under `eqx.filter_jit` for a custom loop.

Minibatches: each epoch draws a permutation of the N examples from
`fold_in(data_key, epoch)` and takes floor(N / B) minibatches of B examples without
replacement (the remainder is dropped for that epoch). The minibatch is gathered inside the
compiled epoch and passed as `model(*batch, num_data=N, **model_kwargs)`; the model scales
its likelihood by N / B. One epoch is one `lax.scan` of `svi.update` over the minibatches.

Randomness: `key` is split into an SVI key (initial values, then a fresh key per step from
the SVI state: fresh Monte Carlo draws each step) and a data key (the permutations). Both
live in `FitState`: the same key gives the same result bit for bit, and continuing from a
saved state gives the bit-identical result of an uninterrupted run. The early-stopping
counters (`EarlyStoppingState`) are part of the state, so a resumed run stops where the
uninterrupted one would, with the same best parameters.

Checked under `jit`: `run_epoch(..., check_finite=True)` raises (`eqx.branched_error_if`,
an `equinox.EquinoxRuntimeError`) when a step's loss is NaN or inf, naming the step; the
drivers instead read `EpochInfo.first_nonfinite` on the host and name the epoch, the step
(and the member). Not checked under `jit`: the data (finite inputs, labels in range) --
`inference.data.validate_data` checks the whole data set once, eagerly, before compiling.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro
import optax
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.svi import SVIState

from .data import as_typed_key, check_data, model_call_kwargs
from .sharding import DataParallel

__all__ = [
    "EarlyStoppingState",
    "EpochInfo",
    "FitState",
    "build_svi",
    "empty_guide",
    "init",
    "run_epoch",
    "update_early_stopping",
    "validation_loss",
    # re-exported for `predictive`
    "as_typed_key",
    "check_data",
]


class EarlyStoppingState(NamedTuple):
    """Early-stopping counters, part of `FitState` (checkpointed, resumed bit-exactly).

    Attributes:
        best_value: best validation metric so far, float32 `()` (+inf before the first).
        best_epoch: 1-based epoch of `best_value`, int32 `()` (0 before the first).
        num_bad_epochs: epochs since the best, int32 `()`; the fit stops at `patience`.
        best_params: constrained parameters of the best epoch (None without validation).
    """

    best_value: Array
    best_epoch: Array
    num_bad_epochs: Array
    best_params: Any


class FitState(NamedTuple):
    """Everything needed to continue a fit: a value (save it, resume from it).

    Attributes:
        svi_state: NumPyro `SVIState` (optimiser state with the unconstrained parameters
            and the step count, mutable state, the SVI PRNG key).
        epoch: number of completed epochs, int32 `()`.
        key_data: raw data of the key that draws the per-epoch permutations, uint32.
        stopping: `EarlyStoppingState`.
    """

    svi_state: SVIState
    epoch: Array
    key_data: Array
    stopping: EarlyStoppingState


class EpochInfo(NamedTuple):
    """What one epoch reports.

    Attributes:
        losses: loss (negative ELBO estimate) of every step, `(steps,)`.
        first_nonfinite: 0-based step of the first NaN / inf loss, -1 if none, int32 `()`.
    """

    losses: Float[Array, " steps"]
    first_nonfinite: Int[Array, ""]


def empty_guide(*args, **kwargs):
    """Guide for models without latent sample sites (only `numpyro.param` / eqx_module)."""


def build_svi(model, guide, optimizer: optax.GradientTransformation) -> SVI:
    """`SVI(model, guide or empty_guide, optax_to_numpyro(optimizer), Trace_ELBO())`.

    Raises:
        TypeError: `model` is not callable.
    """
    if not callable(model):
        raise TypeError(f"`model` must be a NumPyro model (callable), got {type(model).__name__}")
    guide = empty_guide if guide is None else guide
    optim = numpyro.optim.optax_to_numpyro(optimizer)
    return SVI(model, guide, optim, Trace_ELBO())


def init(
    svi: SVI,
    data: tuple[Array, ...],
    *,
    key: PRNGKeyArray,
    batch_size: int,
    model_kwargs: dict | None = None,
    track_best: bool = False,
) -> FitState:
    """The initial `FitState` (traceable; `fit_ensemble` vmaps it over member keys).

    Args:
        svi: from `build_svi`.
        data: tuple of arrays `(N, ...)`; the first `batch_size` examples initialise.
        key: PRNG key (typed or raw).
        batch_size: B.
        model_kwargs: keyword arguments of the model and guide (e.g. `net=`).
        track_best: keep the best parameters in `stopping.best_params` (validation on).

    Returns:
        A `FitState` at epoch 0. As in `SVI.init`, this sets `svi.constrain_fn`.

    Raises:
        TypeError, ValueError: `data` is not a tuple of arrays with one leading size.
    """
    data, N = check_data("data", data)
    kwargs = model_call_kwargs(svi.model, model_kwargs or {}, N)
    svi_key, data_key = jax.random.split(as_typed_key(key))
    svi_state = svi.init(svi_key, *(a[:batch_size] for a in data), **kwargs)
    stopping = EarlyStoppingState(
        jnp.asarray(jnp.inf, jnp.float32),
        jnp.zeros((), jnp.int32),
        jnp.zeros((), jnp.int32),
        svi.get_params(svi_state) if track_best else None,
    )
    return FitState(svi_state, jnp.zeros((), jnp.int32), jax.random.key_data(data_key), stopping)


def run_epoch(
    svi: SVI,
    state: FitState,
    data: tuple[Array, ...],
    *,
    batch_size: int,
    model_kwargs: dict | None = None,
    parallel: DataParallel | None = None,
    check_finite: bool = True,
) -> tuple[FitState, EpochInfo]:
    """One epoch: floor(N / B) SVI steps over a fresh permutation (module docstring).

    Args:
        svi, state: from `build_svi` / `init` (or a previous `run_epoch`).
        data: the tuple of arrays `init` saw (same N).
        batch_size: B.
        model_kwargs: as in `init`.
        parallel: a `sharding.DataParallel`: split each minibatch over its devices.
        check_finite: raise (under jit too, `eqx.branched_error_if`) if a step's loss is
            NaN or inf, naming the step.

    Returns:
        `(state, EpochInfo)`.

    Raises:
        equinox.EquinoxRuntimeError: a non-finite loss with `check_finite=True`.
    """
    data, N = check_data("data", data)
    steps = N // batch_size
    kwargs = model_call_kwargs(svi.model, model_kwargs or {}, N)
    perm_key = jax.random.fold_in(jax.random.wrap_key_data(state.key_data), state.epoch)
    order = jax.random.permutation(perm_key, N)[: steps * batch_size]

    def step(svi_state, idx):
        batch = tuple(jnp.take(a, idx, axis=0) for a in data)
        if parallel is not None:
            batch = parallel.constrain_batch(batch)
        return svi.update(svi_state, *batch, **kwargs)

    svi_state, losses = lax.scan(step, state.svi_state, order.reshape(steps, batch_size))
    bad = ~jnp.isfinite(losses)
    first = jnp.where(jnp.any(bad), jnp.argmax(bad), -1).astype(jnp.int32)
    if check_finite:
        messages = [
            f"non-finite loss (NaN or inf) at step {i + 1} of {steps}" for i in range(steps)
        ]
        losses = eqx.branched_error_if(losses, first >= 0, jnp.maximum(first, 0), messages)
    new = FitState(svi_state, state.epoch + 1, state.key_data, state.stopping)
    return new, EpochInfo(losses, first)


def update_early_stopping(
    stopping: EarlyStoppingState,
    value: Float[Array, ""],
    params: Any,
    epoch: Int[Array, ""],
    *,
    patience: int | None,
) -> EarlyStoppingState:
    """Record the validation metric `value` (lower is better) of 1-based `epoch`.

    An improvement resets `num_bad_epochs` and stores `params` as the best; otherwise the
    count grows. Once it reaches `patience` the state is frozen (the run has stopped: an
    ensemble member keeps the best of its own early-stopped run). Pure and vmappable.
    """
    active = jnp.bool_(True) if patience is None else stopping.num_bad_epochs < patience
    improved = active & (value < stopping.best_value)

    def pick(new, old):
        return jnp.where(improved, new, old)

    return EarlyStoppingState(
        pick(jnp.asarray(value, jnp.float32), stopping.best_value),
        pick(jnp.asarray(epoch, jnp.int32), stopping.best_epoch),
        jnp.where(improved, 0, stopping.num_bad_epochs + active.astype(jnp.int32)),
        jax.tree.map(pick, params, stopping.best_params),
    )


def validation_loss(
    svi: SVI,
    params: Any,
    val_data: tuple[Array, ...],
    *,
    key: PRNGKeyArray,
    model_kwargs: dict | None = None,
) -> Float[Array, ""]:
    """Default validation metric: the negative ELBO of `val_data` per example.

    -ELBO(params; val_data) / N_val under a fixed `key` (common random numbers across
    epochs), with the model called with `num_data=N_val`. Traceable.
    """
    val_data, n_val = check_data("validation.data", val_data)
    kwargs = dict(model_kwargs or {})
    kwargs.pop("num_data", None)
    kwargs = model_call_kwargs(svi.model, kwargs, n_val)
    return svi.loss.loss(key, params, svi.model, svi.guide, *val_data, **kwargs) / n_val
