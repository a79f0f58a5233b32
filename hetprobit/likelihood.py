r"""Tempered Monte Carlo likelihoods of the heteroscedastic probit model.

With u^(s) = mu + eps^(s), eps^(s) ~ N(0, Sigma) (a `NoiseStructure`) and temperature tau:

    multiclass:  log p_c ≈ log (1/S) Σ_s softmax(u^(s) / tau)_c
    multilabel:  log p_c ≈ log (1/S) Σ_s sigmoid(u_c^(s) / tau)

(the logit-smoothed accept-reject simulator; tau -> 0 recovers the exact probit probability).
Everything is computed in log space: the per-sample terms are `log_softmax` / `log_sigmoid`
and the average over samples is a log-mean-exp, so nothing underflows for |mu| up to 1e4 and
tau down to 1e-3 in float32, and no probability is ever clipped.

Memory does not grow as batch x samples x classes: samples are processed in chunks of
`chunk_size` under `lax.scan` with an online (streaming) log-sum-exp, and the gradient is a
custom VJP accumulated in the same streamed pass on the observed-label (training) path, or in
a second pass over the same draws for the full predictive (`hetprobit._streaming`). Peak
memory is O(B C K) for the chunk plus O(B) (observed label) or O(B K) (full predictive) for
the running sums, whatever S. Prediction without a gradient runs the forward pass only.
The observed-label path never forms the averaged K-vector. Gradients flow to mu, to the
noise structure's arrays and to tau (so a learned temperature works).

Draws come from an explicit key (`hetprobit.sampling`); same key, same answer, and
the answer does not depend on `chunk_size`. `sampler="antithetic"` or `"qmc"` reduce the
variance at equal S. `share_draws=True` uses one set of standard-normal draws for the whole
batch (as several existing layers do); the parameter-efficient structure then computes its
correlated part W z_R once per sample instead of once per example.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._streaming import _per_example_noise, _StreamConfig, streamed_log_mean_exp
from .montecarlo import MonteCarlo
from .noise import Homoscedastic, NoiseStructure, ParameterEfficientNoise
from .validation import (
    check_array,
    check_finite,
    check_indicator_labels,
    check_key,
    check_labels,
    check_not_half,
    check_positive,
)

__all__ = [
    "tempered_softmax_log_probs",
    "tempered_softmax_log_likelihood",
    "tempered_sigmoid_log_probs",
    "tempered_sigmoid_log_likelihood",
    "default_chunk_size",
]

CHUNK_ELEMENTS = 2**21  # target number of utility entries (C x B x K) per chunk


def default_chunk_size(num_samples: int, batch_size: int, num_classes: int) -> int:
    """Largest chunk C <= S with C * B * K <= 2^21 entries (at least 1)."""
    return int(max(1, min(num_samples, CHUNK_ELEMENTS // max(1, batch_size * num_classes))))


def _validate(mu, noise, tau, num_samples, chunk_size, sampler, key):
    check_key("key", key, allow_none=True)
    mu = check_array("mu", check_not_half("mu", mu), min_ndim=1)
    check_finite("mu", mu)
    if not isinstance(noise, NoiseStructure):
        raise TypeError(f"`noise` must be a hetprobit NoiseStructure, got {type(noise).__name__}")
    K = mu.shape[-1]
    if noise.num_classes != K:
        raise ValueError(
            f"`noise` has K={noise.num_classes} classes but `mu` has K={K} (shape {mu.shape})"
        )
    try:
        batch = jnp.broadcast_shapes(mu.shape[:-1], noise.batch_shape)
    except ValueError:
        batch = None
    if batch is None or any(s not in ((), batch) for s in (mu.shape[:-1], noise.batch_shape)):
        raise ValueError(
            f"batch shapes of `mu` {mu.shape[:-1]} and `noise` {noise.batch_shape} must be "
            "equal (or one of them empty)"
        )
    check_positive("tau", tau)
    MonteCarlo(num_samples=num_samples, sampler=sampler, chunk_size=chunk_size)  # validates
    if key is None and not isinstance(noise, Homoscedastic):
        raise TypeError("`key` is required: pass a PRNG key for the Monte Carlo draws")
    return mu, tuple(batch)


# Per-draw log values. `u` holds tempered utilities of one chunk, `(*batch, C, K)`; the
# sample axis sits right after the batch axes (see `NoiseStructure.transform`).


def _draw_log_softmax(u, aux):
    return jax.nn.log_softmax(u, axis=-1)


def _draw_log_sigmoid(u, aux):
    return jax.nn.log_sigmoid(u)


def _draw_signed_log_sigmoid(u, sign):
    return jax.nn.log_sigmoid(sign[..., None, :] * u)


def _draw_observed_log_softmax(u, one_hot):
    # one-hot contraction instead of take_along_axis: its gradient is a product, not a scatter
    return jnp.sum(u * one_hot[..., None, :], axis=-1) - jax.nn.logsumexp(u, axis=-1)


def _estimate(
    mu,
    noise,
    key,
    tau,
    num_samples,
    chunk_size,
    sampler,
    share_draws,
    batch,
    out_tail,
    per_draw,
    aux=None,
    *,
    one_pass=None,
):
    """Streamed tempered estimate log (1/S) Σ_s exp per_draw(u^(s)/tau, aux).

    The observed-label path (`out_tail == ()`) takes the one-pass gradient when every noise
    leaf can be made per-example (`one_pass=None`: automatic; False forces two passes).
    With shared draws the parameter-efficient W z_R is computed once per sample only on the
    two-pass path, so that case keeps it.
    """
    K = noise.num_classes
    batch_size = int(np.prod(batch, dtype=np.int64))
    chunk = min(chunk_size or default_chunk_size(num_samples, batch_size, K), num_samples)
    mu_full = jnp.broadcast_to(mu, (*batch, K))
    tau = jnp.asarray(tau, mu.dtype)
    noise_b = _per_example_noise(noise, batch) if out_tail == () and batch else None
    if one_pass is None:
        one_pass = noise_b is not None and not (
            share_draws and isinstance(noise, ParameterEfficientNoise)
        )
    elif one_pass and noise_b is None:
        raise ValueError("the one-pass gradient needs a batched observed-label estimate")
    cfg = _StreamConfig(
        num_samples=num_samples,
        chunk_size=chunk,
        draw_shape=((1,) * len(batch) if share_draws else batch) + (noise.num_draws,),
        sampler=sampler,
        batch_ndim=len(batch),
        out_tail=tuple(out_tail),
        num_draws=noise.num_draws,
        one_pass=bool(one_pass),
    )
    if one_pass:
        params = (mu_full, noise_b, jnp.broadcast_to(tau, batch))
    else:
        params = (mu_full, noise, tau)
    return streamed_log_mean_exp(cfg, per_draw, params, aux, key)


def tempered_softmax_log_probs(
    mu: Float[Array, "... K"],
    noise: NoiseStructure,
    *,
    key: PRNGKeyArray | None,
    tau: float = 1.0,
    num_samples: int = 256,
    chunk_size: int | None = None,
    sampler: str = "mc",
    share_draws: bool = False,
) -> Float[Array, "... K"]:
    """Full predictive log-probabilities log p_c = log (1/S) Σ_s softmax(u^(s)/tau)_c.

    Args:
        mu: mean utilities, shape `(..., K)`.
        noise: a `NoiseStructure` over K classes with batch shape `mu.shape[:-1]` or `()`.
        key: PRNG key for the draws (may be None only for `Homoscedastic`).
        tau: softmax temperature > 0.
        num_samples: S, Monte Carlo samples.
        chunk_size: samples per chunk (default: keeps C x B x K <= 2^21).
        sampler: "mc", "antithetic" or "qmc" (see `hetprobit.sampling`).
        share_draws: one set of standard-normal draws for all examples.

    Returns:
        `(..., K)` log-probabilities; `logsumexp(·, -1)` is 0 up to rounding.
    """
    mu, batch = _validate(mu, noise, tau, num_samples, chunk_size, sampler, key)
    if isinstance(noise, Homoscedastic):
        return jax.nn.log_softmax(mu / tau, axis=-1)
    return _estimate(
        mu,
        noise,
        key,
        tau,
        num_samples,
        chunk_size,
        sampler,
        share_draws,
        batch,
        (mu.shape[-1],),
        _draw_log_softmax,
    )


def tempered_softmax_log_likelihood(
    mu: Float[Array, "... K"],
    noise: NoiseStructure,
    labels: Int[Array, "..."],
    *,
    key: PRNGKeyArray | None,
    tau: float = 1.0,
    num_samples: int = 256,
    chunk_size: int | None = None,
    sampler: str = "mc",
    share_draws: bool = False,
) -> Float[Array, "..."]:
    """Per-example log-likelihood log p_y of observed labels y, shape `mu.shape[:-1]`.

    log p_y ≈ log (1/S) Σ_s exp(u_y^(s)/tau - logsumexp_j u_j^(s)/tau); only the observed
    class's term is kept per sample. Arguments as in `tempered_softmax_log_probs`; `labels`
    are integers in [0, K) with shape `mu.shape[:-1]` (no broadcasting).
    """
    mu, batch = _validate(mu, noise, tau, num_samples, chunk_size, sampler, key)
    labels = check_labels("labels", labels, mu.shape[-1])
    if labels.shape != batch:
        raise ValueError(f"`labels` must have shape {batch} (the batch shape), got {labels.shape}")
    if isinstance(noise, Homoscedastic):
        lp = jax.nn.log_softmax(mu / tau, axis=-1)
        return jnp.take_along_axis(lp, labels[..., None], axis=-1)[..., 0]

    one_hot = jax.nn.one_hot(labels, mu.shape[-1], dtype=mu.dtype)
    return _estimate(
        mu,
        noise,
        key,
        tau,
        num_samples,
        chunk_size,
        sampler,
        share_draws,
        batch,
        (),
        _draw_observed_log_softmax,
        aux=one_hot,
    )


def tempered_sigmoid_log_probs(
    mu: Float[Array, "... K"],
    noise: NoiseStructure,
    *,
    key: PRNGKeyArray | None,
    tau: float = 1.0,
    num_samples: int = 256,
    chunk_size: int | None = None,
    sampler: str = "mc",
    share_draws: bool = False,
) -> Float[Array, "... K"]:
    """Multilabel marginals log P(y_c = 1) ≈ log (1/S) Σ_s sigmoid(u_c^(s)/tau), `(..., K)`.

    log P(y_c = 0) is estimated by `tempered_sigmoid_log_probs(-mu, noise, ...)` (Gaussian
    noise is symmetric; with `sampler="antithetic"` the two estimates use mirrored draws and
    sum to one exactly). Arguments as in `tempered_softmax_log_probs`.
    """
    mu, batch = _validate(mu, noise, tau, num_samples, chunk_size, sampler, key)
    if isinstance(noise, Homoscedastic):
        return jax.nn.log_sigmoid(mu / tau)
    return _estimate(
        mu,
        noise,
        key,
        tau,
        num_samples,
        chunk_size,
        sampler,
        share_draws,
        batch,
        (mu.shape[-1],),
        _draw_log_sigmoid,
    )


def tempered_sigmoid_log_likelihood(
    mu: Float[Array, "... K"],
    noise: NoiseStructure,
    labels: Float[Array, "... K"],
    *,
    key: PRNGKeyArray | None,
    tau: float = 1.0,
    num_samples: int = 256,
    chunk_size: int | None = None,
    sampler: str = "mc",
    share_draws: bool = False,
) -> Float[Array, "..."]:
    """Multilabel log-likelihood Σ_c [y_c log p_c + (1 - y_c) log(1 - p_c)], shape `(...)`.

    Each class uses its marginal tempered estimate (Collier et al. 2021, arXiv:2105.10305,
    App. A); log(1 - p_c) is
    the log-mean-exp of log_sigmoid(-u_c/tau), never log(1 - p_c) of a rounded p_c.
    `labels` are 0/1 indicators with the shape of `mu`.
    """
    mu, batch = _validate(mu, noise, tau, num_samples, chunk_size, sampler, key)
    labels = check_indicator_labels("labels", labels).astype(mu.dtype)
    if labels.shape != (*batch, mu.shape[-1]):
        raise ValueError(f"`labels` must have shape {(*batch, mu.shape[-1])}, got {labels.shape}")
    sign = 2.0 * labels - 1.0
    if isinstance(noise, Homoscedastic):
        return jnp.sum(jax.nn.log_sigmoid(sign * mu / tau), axis=-1)
    per_class = _estimate(
        mu,
        noise,
        key,
        tau,
        num_samples,
        chunk_size,
        sampler,
        share_draws,
        batch,
        (mu.shape[-1],),
        _draw_signed_log_sigmoid,
        aux=sign,
    )
    return jnp.sum(per_class, axis=-1)
