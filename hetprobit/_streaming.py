r"""Streamed log-mean-exp over Monte Carlo draws, with its gradient in the same pass.

The core of the Monte Carlo likelihoods (`hetprobit.likelihood`, `hetprobit.probit`). For a
per-draw log value f_s = f(z_s; θ) of S standard-normal draws z_s it computes

    L = log (1/S) Σ_s exp f_s

(f is the caller's `per_draw`: the tempered log-softmax / log-sigmoid terms of
`hetprobit.likelihood`, the inner-integral quadrature per factor draw of `hetprobit.probit`)
without ever holding all S draws: the draws are generated chunk by chunk (C at a time, by
sample index, `hetprobit.sampling`) under `lax.scan`, and the sum is kept as a running
maximum M and a running sum s = Σ_s exp(f_s - M); when a chunk raises the maximum to M',
s is multiplied by exp(M - M') before the chunk's terms are added. At the end
L = M + log s - log S. Nothing under- or overflows, and the answer does not depend on C.

Gradient (a custom VJP), dL/dθ = Σ_s exp(f_s - L) ∂f_s/∂θ / S, two ways:

- one pass (`_StreamConfig.one_pass`, the observed-label path, every parameter leaf carrying
  the batch axes first, see `_per_example_noise`): the running gradient
  G = Σ_s exp(f_s - M) ∂f_s/∂θ is rescaled by exp(M - M') together with s, and
  dL/dθ = G / s. The forward pass then also yields the per-example gradient, which is the
  only residual (the size of the parameters);
- two passes (anything else, e.g. all K classes at once): the backward pass regenerates the
  same draws from the key and weights each chunk's vector-Jacobian product by the final
  exp(f_s - L) / S, so no per-chunk residual is stored.

Either way memory is one chunk plus O(batch x out) running sums, for any S.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

from .noise import DiagonalNoise, LowRankNoise, ParameterEfficientNoise
from .sampling import standard_normal_draws


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

# compiled once per configuration (cfg and the per-draw function are static): an eager call
# would otherwise retrace and recompile the chunk scan every time (~0.5 s per call)
streamed_log_mean_exp = jax.jit(_streamed_log_mean_exp, static_argnums=(0, 1))


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
