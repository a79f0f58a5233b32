r"""Deep Ensembles (Lakshminarayanan, Pritzel & Blundell 2017, arXiv:1612.01474; used as a
baseline by Collier et al. 2021, arXiv:2105.10305, §4.3): M members trained under `jax.vmap`.

Member m has its own key: `init_keys, fit_keys = ensemble_keys(key, M)`. The member's
network is built from `init_keys[m]` (`member_kwargs(init_keys[m])`, mapped over the keys
with `eqx.filter_vmap`, so the stacked networks come out of one program, as equinox builds
stacked layers) and the member is fitted with `key=fit_keys[m]`. Initialisation, the SVI
step and the epoch (a `lax.scan` over minibatches) are the same pure functions as in `fit`,
vmapped over the member axis: member m of `fit_ensemble` equals
`fit(..., key=fit_keys[m], **member_kwargs(init_keys[m]))` up to float rounding
(`fit_ensemble` calls the same driver, `driver.run_training`, with stacked keys).

Validation and early stopping are per member: each member records its own validation
metric, best epoch and best parameters (`EarlyStoppingState`, stacked); a member that has
gone `patience` epochs without improving is frozen at its best (its counters stop, it keeps
the best of its own early-stopped run, which equals `fit` of that member alone), and the
vmapped run stops when every member has stopped. Checkpoints hold the stacked state.

Prediction averages the members' probabilities, p̄ = (1/M) Σ_m p_m, and splits the total
predictive entropy (Lakshminarayanan et al. 2017; Depeweg et al. 2018):

    H[p̄]                    total
    (1/M) Σ_m H[p_m]        expected entropy: aleatoric (label noise each member models)
    H[p̄] - (1/M) Σ_m H[p_m]  mutual information I(y; member): epistemic (disagreement)

computed from log-probabilities (0 log 0 = 0). Multilabel: per-class Bernoulli entropies,
summed over classes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from hetprobit.validation import check_positive_int

from .data import as_typed_key, check_data
from .driver import FitTiming, Validation, run_training
from .predictive import log_probs_fn
from .svi import FitState

__all__ = [
    "EnsembleResult",
    "EnsemblePrediction",
    "ensemble_keys",
    "fit_ensemble",
    "ensemble_predict",
    "entropy_decomposition",
]


class EnsembleResult(NamedTuple):
    """Outcome of `fit_ensemble`: the fields of `FitResult` with a leading member axis M.

    Attributes:
        params: stacked constrained parameters (each member's best epoch when validating).
        losses: `(M, E)`; step_losses: `(M, E, steps_per_epoch)`; val_history: `(M, E)`.
        best_epoch: `(M,)` 1-based epoch of each member's `params`.
        state: stacked `FitState` (resume from it with `init_state=`).
        timing: `FitTiming` of the vmapped program.
        svi: the shared `numpyro.infer.SVI`.
        member_kwargs: the members' model kwargs (e.g. stacked `net`); pass it back to
            `ensemble_predict`.
    """

    params: dict
    losses: np.ndarray
    step_losses: np.ndarray
    val_history: np.ndarray
    best_epoch: np.ndarray
    state: FitState
    timing: FitTiming
    svi: object
    member_kwargs: dict


class EnsemblePrediction(NamedTuple):
    """Averaged prediction and its entropy split.

    Attributes:
        log_probs: log p̄, `(N, K)`.
        member_log_probs: log p_m, `(M, N, K)`.
        total_entropy: H[p̄] `(N,)`.
        expected_entropy: (1/M) Σ_m H[p_m] `(N,)` (aleatoric).
        mutual_information: total - expected, `(N,)` (epistemic, >= 0).
    """

    log_probs: Float[Array, "N K"]
    member_log_probs: Float[Array, "M N K"]
    total_entropy: Float[Array, " N"]
    expected_entropy: Float[Array, " N"]
    mutual_information: Float[Array, " N"]


def ensemble_keys(key: PRNGKeyArray, num_members: int) -> tuple[Array, Array]:
    """(init_keys, fit_keys), each `(M,)`: member m's network key and its `fit` key.

    Raises:
        TypeError, ValueError: `num_members` is not an integer >= 1; `key` is None.
    """
    M = check_positive_int("num_members", num_members)
    keys = jax.random.split(as_typed_key(key), (M, 2))
    return keys[:, 0], keys[:, 1]


def _entropy(log_p, multilabel: bool):
    p = jnp.exp(log_p)
    if not multilabel:
        return -jnp.sum(jnp.where(p > 0, p * log_p, 0.0), axis=-1)
    log_q = jnp.log1p(-jnp.minimum(p, 1.0))
    q = 1.0 - p
    terms = jnp.where(p > 0, p * log_p, 0.0) + jnp.where(q > 0, q * log_q, 0.0)
    return -jnp.sum(terms, axis=-1)


def entropy_decomposition(
    member_log_probs: Float[Array, "M N K"], *, multilabel: bool = False
) -> EnsemblePrediction:
    """Average members' probabilities and split the entropy (module docstring).

    Args:
        member_log_probs: log p_m, `(M, ..., K)`.
        multilabel: per-class Bernoulli entropies summed over classes.

    Raises:
        ValueError: `member_log_probs` has fewer than 2 dimensions.
    """
    lp = jnp.asarray(member_log_probs)
    if lp.ndim < 2:
        raise ValueError(f"`member_log_probs` must be (M, ..., K), got shape {lp.shape}")
    mean_lp = jax.nn.logsumexp(lp, axis=0) - math.log(lp.shape[0])
    total = _entropy(mean_lp, multilabel)
    expected = jnp.mean(_entropy(lp, multilabel), axis=0)
    mi = jnp.maximum(total - expected, 0.0)  # >= 0 by concavity; clip rounding
    return EnsemblePrediction(mean_lp, lp, total, expected, mi)


def fit_ensemble(
    model,
    guide,
    data: Sequence[Array],
    *,
    num_members: int,
    num_epochs: int,
    batch_size: int,
    key: PRNGKeyArray,
    member_kwargs: Callable[[PRNGKeyArray], dict] | None = None,
    optimizer: optax.GradientTransformation | None = None,
    validation: Validation | None = None,
    init_state: FitState | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    callback: Callable[[int, FitState, np.ndarray], bool | None] | None = None,
    **model_kwargs,
) -> EnsembleResult:
    """Train `num_members` members in one vmapped program (module docstring).

    Args:
        model, guide, data, num_epochs, batch_size, optimizer, init_state, checkpoint_path,
            devices, progress, **model_kwargs: as in `fit` (shared by all members; the
            state is stacked over members; `devices`: each minibatch is split over them).
        num_members: M.
        key: PRNG key; member keys from `ensemble_keys(key, M)`.
        member_kwargs: `member_kwargs(init_key) -> dict` of per-member model kwargs, e.g.
            `lambda k: {"net": make_net(k)}`; mapped over the members' init keys.
        validation: as in `fit`, per member (module docstring); a custom metric is called
            once per member as `metric(params_m, *data, **member_m_kwargs)`.
        callback: `callback(epoch, state, mean_losses (M,))`; return True to stop.

    Returns:
        An `EnsembleResult`.

    Raises:
        TypeError, ValueError: as `fit`; a kwarg given both in `member_kwargs` and directly.
        FloatingPointError: a member's loss became NaN / inf (epoch, step, member).
    """
    M = check_positive_int("num_members", num_members)
    init_keys, fit_keys = ensemble_keys(key, M)
    if member_kwargs is not None:  # the names only, traced abstractly: fails before any work
        overlap = set(eqx.filter_eval_shape(member_kwargs, init_keys[0])) & set(model_kwargs)
        if overlap:
            raise ValueError(f"{sorted(overlap)} given both in `member_kwargs` and as model kwargs")
    member = {} if member_kwargs is None else eqx.filter_vmap(member_kwargs)(init_keys)
    result = run_training(
        model,
        guide,
        data,
        keys=fit_keys,
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
        member_kwargs=member,
        desc=f"ensemble x{M}",
    )
    return EnsembleResult(*result, member_kwargs=member)


def ensemble_predict(
    model,
    guide,
    result: EnsembleResult,
    inputs,
    *,
    key: PRNGKeyArray,
    num_posterior_samples: int = 1,
    num_eval_samples: int | None = None,
    multilabel: bool = False,
    site: str = "y",
    **model_kwargs,
) -> EnsemblePrediction:
    """Members' predictive log-probabilities (vmapped), their average and entropy split.

    Arguments as in `predict_log_probs`; member m uses `fold_in(key, m)`. All inputs are
    processed in one chunk per member.

    Raises:
        TypeError, ValueError: bad `inputs` or `num_posterior_samples` (as `predict_log_probs`).
    """
    inputs, _ = check_data("inputs", inputs if isinstance(inputs, tuple | list) else (inputs,))
    member_dyn, member_static = eqx.partition(result.member_kwargs, eqx.is_array)
    shared_dyn, shared_static = eqx.partition(dict(model_kwargs), eqx.is_array)
    fn = log_probs_fn(
        model,
        guide,
        num_posterior_samples=check_positive_int("num_posterior_samples", num_posterior_samples),
        num_eval_samples=num_eval_samples,
        site=site,
        static_kwargs={**member_static, **shared_static},
    )
    M = jax.tree.leaves(result.params)[0].shape[0]
    keys = jax.vmap(lambda m: jax.random.fold_in(as_typed_key(key), m))(jnp.arange(M))

    member_lp = _members_log_probs(fn, result.params, inputs, member_dyn, shared_dyn, keys)
    return entropy_decomposition(member_lp, multilabel=multilabel)


@eqx.filter_jit
def _members_log_probs(fn, params, inputs, m_dyn, s_dyn, keys):
    """Every member's log p(y | x) `(M, N, K)`; `fn` (a `LogProbsFn`) is static and hashable
    by its configuration, so identical calls compile once."""
    return jax.vmap(lambda p, m, k: fn(p, inputs, k, {**m, **s_dyn}))(params, m_dyn, keys)
