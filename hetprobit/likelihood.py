r"""Tempered Monte Carlo likelihoods of the heteroscedastic probit model.

With u^(s) = mu + eps^(s), eps^(s) ~ N(0, Sigma) (a `NoiseStructure`) and temperature tau:

    multiclass:  log p_c ≈ log (1/S) Σ_s softmax(u^(s) / tau)_c
    multilabel:  log p_c ≈ log (1/S) Σ_s sigmoid(u_c^(s) / tau)

(the logit-smoothed accept-reject simulator; tau -> 0 recovers the exact probit probability).
Everything is computed in log space: the per-sample terms are `log_softmax` / `log_sigmoid`
and the average over samples is a log-mean-exp, so nothing underflows for |mu| up to 1e4 and
tau down to 1e-3 in float32, and no probability is ever clipped.

Memory does not grow as batch x samples x classes: samples are processed in chunks of
`chunk_size` under `lax.scan` with an online (streaming) log-sum-exp. The gradient is a
custom VJP. On the observed-label (training) path it is accumulated in the same streamed
pass as the value when differentiating: the running gradient Σ_s e^{f_s - M} ∂f_s/∂θ is
rescaled whenever the running maximum M moves, exactly as the running sum is, and the
per-example gradient (the size of the parameters) is the only residual. The full predictive
path streams the same draws a second time with the exact weights exp(f_s - L)/S. Either way
no per-chunk residual is kept: peak memory is O(B C K) for the chunk plus O(B) (observed
label) or O(B K) (full predictive) for the running sums, whatever S. Prediction without a
gradient runs the plain forward pass only.
The observed-label path never forms the averaged K-vector. Gradients flow to mu, to the
noise structure's arrays and to tau (so a learned temperature works).

Draws come from an explicit key (`hetprobit.sampling`); same key, same answer, and
the answer does not depend on `chunk_size`. `sampler="antithetic"` or `"qmc"` reduce the
variance at equal S. `share_draws=True` uses one set of standard-normal draws for the whole
batch (as several existing layers do); the parameter-efficient structure then computes its
correlated part W z_R once per sample instead of once per example.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .noise import (
    DiagonalNoise,
    Homoscedastic,
    LowRankNoise,
    NoiseStructure,
    ParameterEfficientNoise,
)
from .sampling import SAMPLERS, standard_normal_draws
from .validation import (
    check_array,
    check_finite,
    check_indicator_labels,
    check_key,
    check_labels,
    check_not_half,
    check_positive,
    check_positive_int,
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
    check_positive_int("num_samples", num_samples)
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)
    if sampler not in SAMPLERS:
        raise ValueError(f"`sampler` must be one of {SAMPLERS}, got {sampler!r}")
    if sampler == "antithetic" and num_samples % 2:
        raise ValueError(f"`num_samples` must be even for antithetic pairs, got {num_samples}")
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


class _StreamConfig(NamedTuple):
    """Static description of a streamed estimate (hashable: a custom_vjp nondiff argument)."""

    num_samples: int
    chunk_size: int
    draw_shape: tuple[int, ...]  # (*batch or ones, num_draws); samples go at axis `batch_ndim`
    sampler: str
    batch_ndim: int
    out_tail: tuple[int, ...]  # () for the observed-label path, (K,) for all classes
    num_draws: int
    one_pass: bool = False  # gradient accumulated with the value (all leaves per-example)
    raw_draws: bool = False  # per_draw(params, z, aux) gets the standard normals themselves


def _per_draw_log_values(cfg, per_draw, params, aux, key, chunk):
    """Per-draw log values for one chunk, `(*batch, C, *out_tail)`.

    Tempered path: f(u^(s)/tau) with u^(s) = mu + eps^(s). With `cfg.raw_draws` the draws
    `(*batch or ones, C, num_draws)` go to `per_draw(params, z, aux)` as they are (the probit
    estimator draws only the R factor dimensions).
    """
    C, a = cfg.chunk_size, cfg.batch_ndim
    idx = chunk * C + jnp.arange(C)
    dtype = params[0].dtype
    z = standard_normal_draws(key, idx, cfg.draw_shape, sampler=cfg.sampler, dtype=dtype, axis=a)
    if cfg.raw_draws:
        return per_draw(params, z, aux)
    mu, noise, tau = params
    u = mu[..., None, :] + noise.transform_draws(z)
    # a per-example tau (one-pass path) broadcasts over the chunk and class axes
    tau = tau if tau.ndim == 0 else tau.reshape(tau.shape + (1, 1))
    return per_draw(u / tau, aux)


def _valid_draws(cfg, chunk):
    """Mask of draws inside [0, S) for a (possibly padded) final chunk, broadcastable."""
    idx = chunk * cfg.chunk_size + jnp.arange(cfg.chunk_size)
    shape = (1,) * cfg.batch_ndim + (cfg.chunk_size,) + (1,) * len(cfg.out_tail)
    return (idx < cfg.num_samples).reshape(shape)


def _num_chunks(cfg):
    return -(-cfg.num_samples // cfg.chunk_size)


def _forward(cfg, per_draw, params, aux, key):
    """log (1/S) Σ_s exp f(z_s), streamed over chunks with an online log-sum-exp."""
    mu = params[0]
    a = cfg.batch_ndim
    out_shape = mu.shape[:-1] + cfg.out_tail

    def body(carry, chunk):
        running_max, running_sum = carry
        vals = _per_draw_log_values(cfg, per_draw, params, aux, key, chunk)
        vals = jnp.where(_valid_draws(cfg, chunk), vals, -jnp.inf)
        new_max = jnp.maximum(running_max, jnp.max(vals, axis=a))
        new_sum = running_sum * jnp.exp(running_max - new_max) + jnp.sum(
            jnp.exp(vals - jnp.expand_dims(new_max, a)), axis=a
        )
        return (new_max, new_sum), None

    init = (jnp.full(out_shape, -jnp.inf, mu.dtype), jnp.zeros(out_shape, mu.dtype))
    (m, total), _ = lax.scan(body, init, jnp.arange(_num_chunks(cfg)))
    return m + jnp.log(total) - jnp.log(jnp.asarray(cfg.num_samples, mu.dtype))


def _per_example(x, batch_ndim, like):
    """Reshape a `(*batch,)` array to broadcast against a leaf `like` with leading batch axes."""
    return x.reshape(x.shape + (1,) * (like.ndim - batch_ndim))


def _forward_with_grad(cfg, per_draw, params, aux, key):
    """Value and per-example gradient ∂L_b/∂θ_b in ONE streamed pass (observed-label path).

    Every leaf of `params` carries the batch axes first (`_estimate` broadcasts shared ones),
    so example b's gradient lives in slice b of each leaf. Like the online log-sum-exp, the
    running sum s_b = Σ_s e^{f_s - M_b} and the running gradient G_b = Σ_s e^{f_s - M_b}
    ∂f_s/∂θ_b are both rescaled by e^{M_old - M_new} when the running maximum M_b moves; at
    the end ∂L_b/∂θ_b = G_b / s_b. Memory: one copy of `params` plus one chunk.
    """
    mu = params[0]
    a = cfg.batch_ndim
    out_shape = mu.shape[:-1]

    def body(carry, chunk):
        running_max, running_sum, running_grad = carry
        vals, vjp_fn = jax.vjp(
            lambda p: _per_draw_log_values(cfg, per_draw, p, aux, key, chunk), params
        )
        valid = _valid_draws(cfg, chunk)
        vals = jnp.where(valid, vals, -jnp.inf)
        new_max = jnp.maximum(running_max, jnp.max(vals, axis=a))
        rescale = jnp.exp(running_max - new_max)
        weights = jnp.where(valid, jnp.exp(vals - jnp.expand_dims(new_max, a)), 0.0)
        (d_params,) = vjp_fn(weights)
        new_grad = jax.tree_util.tree_map(
            lambda G, d: G * _per_example(rescale, a, G) + d, running_grad, d_params
        )
        new_sum = running_sum * rescale + jnp.sum(weights, axis=a)
        return (new_max, new_sum, new_grad), None

    init = (
        jnp.full(out_shape, -jnp.inf, mu.dtype),
        jnp.zeros(out_shape, mu.dtype),
        jax.tree_util.tree_map(jnp.zeros_like, params),
    )
    (m, total, grad), _ = lax.scan(body, init, jnp.arange(_num_chunks(cfg)))
    out = m + jnp.log(total) - jnp.log(jnp.asarray(cfg.num_samples, mu.dtype))
    grad = jax.tree_util.tree_map(lambda G: G / _per_example(total, a, G), grad)
    return out, grad


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _streamed_log_mean_exp(cfg, per_draw, params, aux, key):
    return _forward(cfg, per_draw, params, aux, key)


def _streamed_fwd(cfg, per_draw, params, aux, key):
    if cfg.one_pass:
        out, grad = _forward_with_grad(cfg, per_draw, params, aux, key)
        return out, (grad, None, None, out)
    out = _forward(cfg, per_draw, params, aux, key)
    return out, (params, aux, key, out)


def _streamed_bwd(cfg, per_draw, residuals, g):
    """Cotangent of the parameters.

    One-pass (`cfg.one_pass`): the forward pass saved ∂L_b/∂θ_b; multiply by g_b.

    Two-pass (full predictive): stream the same draws again,
    d/dθ log mean_s e^{f_s} = Σ_s e^{f_s - L} ∂f_s/∂θ / S. The weights use the final L from
    the forward pass, so nothing is rescaled on the fly and no per-chunk residual is stored:
    memory stays O(chunk) for any S.
    """
    if cfg.one_pass:
        grad = residuals[0]
        a = cfg.batch_ndim
        return jax.tree_util.tree_map(lambda G: G * _per_example(g, a, G), grad), None, None
    params, aux, key, out = residuals
    a = cfg.batch_ndim
    log_S = jnp.log(jnp.asarray(cfg.num_samples, out.dtype))

    def body(acc, chunk):
        vals, vjp_fn = jax.vjp(
            lambda p: _per_draw_log_values(cfg, per_draw, p, aux, key, chunk), params
        )
        weights = jnp.exp(vals - jnp.expand_dims(out, a) - log_S) * jnp.expand_dims(g, a)
        (d_params,) = vjp_fn(jnp.where(_valid_draws(cfg, chunk), weights, 0.0))
        return jax.tree_util.tree_map(jnp.add, acc, d_params), None

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    grads, _ = lax.scan(body, zeros, jnp.arange(_num_chunks(cfg)))
    return grads, None, None


_streamed_log_mean_exp.defvjp(_streamed_fwd, _streamed_bwd)


def _per_example_noise(noise, batch):
    """`noise` with every array leaf broadcast to carry the batch axes first, or None.

    Needed by the one-pass gradient, which keeps one gradient per example. Only the core
    structures are known leaf by leaf (the parameter-efficient W is shared by design);
    anything else returns None and takes the two-pass gradient.
    """

    def bc(x, shared=False):
        core = x.shape if shared else x.shape[len(noise.batch_shape) :]
        return jnp.broadcast_to(x, tuple(batch) + core)

    if type(noise) is DiagonalNoise:
        return eqx.tree_at(lambda n: n.scale, noise, bc(noise.scale))
    if type(noise) is LowRankNoise:
        return eqx.tree_at(
            lambda n: (n.scale, n.factor), noise, (bc(noise.scale), bc(noise.factor))
        )
    if type(noise) is ParameterEfficientNoise:
        return eqx.tree_at(
            lambda n: (n.scale, n.v, n.factor),
            noise,
            (bc(noise.scale), bc(noise.v), bc(noise.factor, shared=True)),
        )
    return None


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
    return _streamed_log_mean_exp(cfg, per_draw, params, aux, key)


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
