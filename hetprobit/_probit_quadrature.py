r"""Mode-adapted Gauss-Legendre quadrature of the probit's one-dimensional inner integral.

For independent utilities U_j ~ N(m_j, d_j^2), j = 1..K, and e the standardised noise of
class k (U_k = m_k + d_k e),

    P(y = k | m, d) = P(U_k > U_j for all j != k)
                    = ∫ phi(e) prod_{j != k} Phi((m_k - m_j + d_k e) / d_j) de,

and this module returns log P(y = k | m, d): for the observed class (`_observed`) or for
every class (`_all_classes`). `hetprobit.probit` applies it to m = mu + V z_R per factor
draw z_R and averages over the draws.

The log integrand h(e) = log phi(e) + Σ_{j != k} log Phi(x_j),
x_j = (m_k - m_j + d_k e)/d_j, is strictly concave (h'' <= -1). Its mass can sit far from 0
(a class behind by 1e4 has its mass near e = 5e3), be narrow (many close competitors) or be
one-sided (a competitor with d_j << d_k cuts it off sharply), so the nodes follow it: c = the
mode of h (Newton from 0), and on each side the reach T_± where h has fallen by 36 nats
(Newton on the concave, monotone side; h'' <= -1 bounds T <= sqrt(72)). Each side gets a
Gauss-Legendre rule with ceil(n/2) nodes e_i = c ± T_± x_i, x_i in [0, 1]:

    log P(y = k | m, d) ≈ logsumexp_i [log w_i + log T_± + h(e_i)],

all in log space (`log_ndtr`, with a derivative lambda(x) = phi(x)/Phi(x) computed through
the scaled complementary error function, finite down to x = -1e7). c and T are held constant
under differentiation (the rule is valid for any c, T; only its accuracy depends on them).
A Gauss-Hermite rule centred at 0, or at the mode with the Laplace scale, was tried first and
needed ~2x more nodes for the same error and missed one-sided integrands entirely.

Source: mode-adapted quadrature in the spirit of Q. Liu and D. A. Pierce, 1994, "A note on
Gauss-Hermite quadrature", Biometrika 81(3).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import erfcx, log_ndtr as _jax_log_ndtr

_NEWTON_STEPS = 8
_REACH_STEPS = 5
_DROP = 36.0  # the rule covers h >= h(mode) - 36: the rest is below e^-36 of the mass
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


# ------------------------------------------------------------------ stable normal pieces
def _mills(x):
    """lambda(x) = phi(x)/Phi(x) and x + lambda(x), both without cancellation.

    Below x = -8 both come from the asymptotic series Phi(x) ~ phi(x)/(-x) D(x),
    D = 1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8 (relative error < 1e-6); above it through the
    scaled complementary error function. (jax's float32 `erfcx` returns 0 near 9.2-9.4, i.e.
    x near -13, so it is only used where its argument is below 5.7.)
    """
    sqrt2 = jnp.sqrt(2.0).astype(x.dtype)
    lam = jnp.sqrt(2.0 / jnp.pi).astype(x.dtype) / erfcx(-jnp.maximum(x, -8.0) / sqrt2)
    xs = jnp.minimum(x, -8.0)
    inv2 = 1.0 / xs**2
    one_minus_D = inv2 * (1.0 - inv2 * (3.0 - inv2 * (15.0 - 105.0 * inv2)))
    tail = x < -8.0
    lam = jnp.where(tail, -xs / (1.0 - one_minus_D), lam)
    return lam, jnp.where(tail, -xs * one_minus_D / (1.0 - one_minus_D), x + lam)


@jax.custom_jvp
def _log_ndtr(x):
    return _jax_log_ndtr(x)


@_log_ndtr.defjvp
def _log_ndtr_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    lam, _ = _mills(x)
    return _log_ndtr(x), lam * t


def _log_integrand(e, gap, ratio, inv_dj, mask):
    """h(e) = log phi(e) + Σ_j mask_j log Phi(gap_j/d_j + ratio_j e), e of shape (..., N)."""
    x = gap[..., None, :] * inv_dj[..., None, :] + ratio[..., None, :] * e[..., None]
    terms = jnp.where(mask[..., None, :], _log_ndtr(x), 0.0)
    return -0.5 * e**2 - _LOG_SQRT_2PI + jnp.sum(terms, axis=-1)


def _mode_and_reach(gap, ratio, inv_dj, mask):
    """Mode c of h (Newton from 0) and reaches T_-, T_+ with h(c -/+ T) = h(c) - _DROP.

    h is concave, so Newton on h' converges from 0, and on each side Newton for the concave,
    decreasing g(T) = h(c + σT) - h(c) + _DROP lands past the root after one step and then
    descends onto it. h'' <= -1 bounds both reaches by sqrt(2 _DROP).
    """

    def derivs(e):
        x = gap[..., None, :] * inv_dj[..., None, :] + ratio[..., None, :] * e[..., None]
        lam, x_plus_lam = _mills(x)
        w = ratio[..., None, :]
        m = mask[..., None, :]
        h1 = -e + jnp.sum(jnp.where(m, w * lam, 0.0), axis=-1)
        h2 = -1.0 - jnp.sum(jnp.where(m, w**2 * lam * x_plus_lam, 0.0), axis=-1)
        return h1, h2

    def newton(_, e):
        h1, h2 = derivs(e)
        return e - h1 / h2

    zero = jnp.zeros(gap.shape[:-1] + (1,), gap.dtype)
    c = lax.fori_loop(0, _NEWTON_STEPS, newton, zero)
    s0 = lax.rsqrt(-derivs(c)[1])
    h_c = _log_integrand(c, gap, ratio, inv_dj, mask)
    sign = _lead(jnp.asarray([-1.0, 1.0], gap.dtype), c.ndim)
    t_max = math.sqrt(2.0 * _DROP)

    def reach(_, t):
        e = c + sign * t
        g = _log_integrand(e, gap, ratio, inv_dj, mask) - h_c + _DROP
        slope = sign * derivs(e)[0]
        return jnp.clip(t - g / jnp.minimum(slope, -1e-30), 1e-12 * s0, t_max)

    t0 = jnp.broadcast_to(jnp.minimum(s0 * t_max, t_max), c.shape[:-1] + (2,))
    t = lax.fori_loop(0, _REACH_STEPS, reach, t0)
    return c, t


def _lead(x, ndim):
    """Prepend singleton axes up to `ndim` (explicit broadcasting, rank-promotion safe)."""
    return x.reshape((1,) * (ndim - x.ndim) + x.shape)


def _legendre_rule(num_nodes, dtype):
    """Gauss-Legendre nodes on [0, 1] and their log weights (Σ w = 1)."""
    x, w = np.polynomial.legendre.leggauss(num_nodes)
    return jnp.asarray((x + 1.0) / 2.0, dtype), jnp.asarray(np.log(w / 2.0), dtype)


def _log_choice_prob(m, d, m_k, d_k, mask, num_nodes):
    """log P(y = k | m, d) for independent utilities N(m_j, d_j^2), shape `m.shape[:-1]`.

    `m`, `d`, `mask` have shape (..., K) (mask False at j = k), `m_k`, `d_k` shape (...).
    Gauss-Legendre with ceil(n/2) nodes on each side of the mode, over [c - T_-, c + T_+].
    """
    gap = m_k[..., None] - m
    inv_dj = 1.0 / d
    ratio = d_k[..., None] * inv_dj
    c, t = _mode_and_reach(*(lax.stop_gradient(a) for a in (gap, ratio, inv_dj)), mask)
    c, t = lax.stop_gradient(c), lax.stop_gradient(t)  # (..., 1), (..., 2)
    x, log_w = _legendre_rule(-(-num_nodes // 2), m.dtype)
    sign = _lead(jnp.asarray([-1.0, 1.0], m.dtype), t.ndim)
    offsets = (sign * t)[..., :, None] * _lead(x, t.ndim + 1)  # (..., 2, n/2)
    e = c + offsets.reshape(*offsets.shape[:-2], -1)
    log_w = (_lead(log_w, t.ndim + 1) + jnp.log(t)[..., :, None]).reshape(e.shape)
    return jax.nn.logsumexp(log_w + _log_integrand(e, gap, ratio, inv_dj, mask), axis=-1)


def _observed(m, d, one_hot, num_nodes):
    """log P(y = label) with one-hot labels `(..., K)`; m, d broadcastable to it."""
    m_k = jnp.sum(m * one_hot, axis=-1)
    d_k = jnp.sum(d * one_hot, axis=-1)
    return _log_choice_prob(m, d, m_k, d_k, one_hot == 0, num_nodes)


def _all_classes(m, d, num_nodes, class_chunk):
    """log P(y = k) for every k, `(..., K)`: class k's integral in chunks of `class_chunk`."""
    K = m.shape[-1]
    m, d = jnp.broadcast_arrays(m, d)

    def one_class(k):
        return _log_choice_prob(m, d, m[..., k], d[..., k], jnp.arange(K) != k, num_nodes)

    out = lax.map(one_class, jnp.arange(K), batch_size=min(class_chunk, K))
    return jnp.moveaxis(out, 0, -1)


_observed_jit = jax.jit(_observed, static_argnums=(3,))
_all_classes_jit = jax.jit(_all_classes, static_argnums=(2, 3))
