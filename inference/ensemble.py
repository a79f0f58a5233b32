r"""Deep Ensembles (seed 002, §4.3): M members trained in parallel under `jax.vmap`.

Member m has its own key: `init_keys, fit_keys = ensemble_keys(key, M)`. The member's
network is built from `init_keys[m]` (`member_kwargs(init_keys[m])`, mapped over the keys
with `eqx.filter_vmap`, so the stacked networks come out of one program, as equinox builds
stacked layers) and the member is fitted with `key=fit_keys[m]`. Initialisation, the SVI
step and the epoch (a `lax.scan` over minibatches) are the same pure functions as in `fit`,
vmapped over the member axis: member m of `fit_ensemble` equals
`fit(..., key=fit_keys[m], **member_kwargs(init_keys[m]))` up to float rounding.

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
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from hetprobit.validation import check_positive_int

from .optim import default_optimizer
from .predictive import log_probs_fn
from .svi import (
    FitState,
    as_typed_key,
    build_svi,
    check_data,
    init_state,
    make_epoch,
    model_call_kwargs,
)

__all__ = [
    "EnsembleResult",
    "EnsemblePrediction",
    "ensemble_keys",
    "fit_ensemble",
    "ensemble_predict",
    "entropy_decomposition",
]


class EnsembleResult(NamedTuple):
    """Outcome of `fit_ensemble`; every array has a leading member axis M.

    Attributes:
        params: stacked constrained parameters of the members.
        losses: mean loss per epoch, `(M, E)`.
        step_losses: `(M, E, steps_per_epoch)`.
        state: stacked `FitState`.
        member_kwargs: the stacked array part of the members' model kwargs (e.g. `net`),
            with the shared static part; pass it back to `ensemble_predict`.
        compile_s: compile time of the vmapped epoch; train_s: time running epochs.
        svi: the shared `numpyro.infer.SVI`.
    """

    params: dict
    losses: np.ndarray
    step_losses: np.ndarray
    state: FitState
    member_kwargs: dict
    compile_s: float
    train_s: float
    svi: object


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
    """(init_keys, fit_keys), each `(M,)`: member m's network key and its `fit` key."""
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
    """Average members' probabilities and split the entropy (module docstring)."""
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
    progress: bool = True,
    **model_kwargs,
) -> EnsembleResult:
    """Train `num_members` members in one vmapped program (module docstring).

    Args:
        model, guide, data, num_epochs, batch_size, optimizer, progress, **model_kwargs:
            as in `fit` (shared by all members).
        num_members: M.
        key: PRNG key; member keys from `ensemble_keys(key, M)`.
        member_kwargs: `member_kwargs(init_key) -> dict` of per-member model kwargs, e.g.
            `lambda k: {"net": make_net(k)}`; mapped over the members' init keys.

    Returns:
        An `EnsembleResult` (no early stopping: every member runs `num_epochs`).
    """
    data, N = check_data("data", data)
    M = check_positive_int("num_members", num_members)
    num_epochs = check_positive_int("num_epochs", num_epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if batch_size > N:
        raise ValueError(f"`batch_size` ({batch_size}) must be <= the number of examples {N}")
    steps = N // batch_size
    svi = build_svi(model, guide, optimizer or default_optimizer(num_epochs * steps))
    init_keys, fit_keys = ensemble_keys(key, M)
    member = {} if member_kwargs is None else eqx.filter_vmap(member_kwargs)(init_keys)
    overlap = set(member) & set(model_kwargs)
    if overlap:
        raise ValueError(f"{sorted(overlap)} given both in `member_kwargs` and as model kwargs")
    kwargs = model_call_kwargs(model, {**model_kwargs, **member}, N)
    member_dyn, member_static = eqx.partition(
        {k: v for k, v in kwargs.items() if k in member}, eqx.is_array
    )
    shared_dyn, shared_static = eqx.partition(
        {k: v for k, v in kwargs.items() if k not in member}, eqx.is_array
    )
    static = {**member_static, **shared_static}

    def merge(m_dyn, s_dyn):
        return {**m_dyn, **s_dyn}

    def init_one(k, m_dyn, s_dyn):
        return init_state(svi, k, data, merge(m_dyn, s_dyn), static, batch_size)

    epoch = make_epoch(svi, num_data=N, batch_size=batch_size, static_kwargs=static)
    init = jax.jit(jax.vmap(init_one, in_axes=(0, 0, None)))
    run = jax.jit(
        jax.vmap(lambda st, d, m, s: epoch(st, d, merge(m, s)), in_axes=(0, None, 0, None))
    )
    state = init(fit_keys, member_dyn, shared_dyn)
    t0 = time.perf_counter()
    compiled = run.lower(state, data, member_dyn, shared_dyn).compile()
    compile_s = time.perf_counter() - t0

    bar = range(num_epochs)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc=f"ensemble x{M}", unit="epoch")
    step_losses = []
    t0 = time.perf_counter()
    for _ in bar:
        state, ls = compiled(state, data, member_dyn, shared_dyn)
        step_losses.append(np.asarray(ls))
        if progress:
            bar.set_postfix(loss=f"{float(step_losses[-1].mean()):.4g}")
    train_s = time.perf_counter() - t0
    step_losses = np.stack(step_losses, axis=1)  # (M, E, steps)
    params = jax.vmap(svi.get_params)(state.svi_state)
    return EnsembleResult(
        params=params,
        losses=step_losses.mean(axis=-1),
        step_losses=step_losses,
        state=state,
        member_kwargs=eqx.combine(member_dyn, member_static),
        compile_s=compile_s,
        train_s=train_s,
        svi=svi,
    )


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

    @jax.jit
    def run(params, m_dyn, s_dyn, keys):
        return jax.vmap(lambda p, m, k: fn(p, inputs, k, {**m, **s_dyn}), in_axes=(0, 0, 0))(
            params, m_dyn, keys
        )

    member_lp = run(result.params, member_dyn, shared_dyn, keys)
    return entropy_decomposition(member_lp, multilabel=multilabel)
