r"""log P(Z <= h), Z ~ N(0, R) with R a correlation matrix, dimension m = 2 or 3, in log space
for the tail, with closed-form derivatives (no input validation here).

Value: the log-space lattice SOV estimate (`_mvn.sov_log_cdf`, averaged over the shifts).
Derivatives (`jax.custom_jvp`) from Plackett's identities (Plackett 1954, *Biometrika* 41;
Genz & Bretz 2009, *Computation of Multivariate Normal and t Probabilities*, section 2.2),
divided by F and evaluated in log space so they stay finite where F underflows:

    d log F / dh_i  = exp(log phi(h_i) + log F_{m-1}(h_{-i} | X_i = h_i) - log F)
    d log F / dr_ij = exp(log phi_2(h_i, h_j; r_ij) + log F_{m-2}(h_k | X_i = h_i, X_j = h_j)
                          - log F)

with F_1 = Phi (`log_ndtr`), F_0 = 1 and, for m = 3, the bivariate conditionals by this same
function (m = 2). So the gradient evaluates lattice estimates but never differentiates the
SOV loops, which made the gradient of `exact_choice_log_probs` slow to compile. The
derivative is that of the exact F, not of the lattice estimate (they differ by the
estimator's error, ~1e-4 relative). Diagonal tangents of R are ignored (unit diagonal).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, logsumexp

from ._mvn import sov_log_cdf

__all__ = ["tail_log_cdf"]

_LOG_2PI = math.log(2.0 * math.pi)


def _tiny(dtype) -> float:
    return float(jnp.finfo(dtype).tiny) ** 0.5


def tail_log_cdf(h, R, needed, *, n_points: int, n_shifts: int):
    """log P(Z <= h): h `(..., m)`, R `(..., m, m)` unit-diagonal, needed `(...)` bool (blocks
    of problems with no needed one are skipped and give garbage) -> `(...)`; m in {2, 3}."""
    m = h.shape[-1]
    if m not in (2, 3):
        raise ValueError(f"tail_log_cdf supports dimension 2 or 3, got {m}")
    return _tail(h, R, needed, n_points, n_shifts)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _tail(h, R, needed, n_points, n_shifts):
    est = sov_log_cdf(h, R, n_points=n_points, n_shifts=n_shifts, needed=needed)
    return logsumexp(est, axis=-1) - math.log(n_shifts)


def _cond1(h, R, i):
    """Standardised bounds and correlations of the other variables given X_i = h_i."""
    rest = [j for j in range(h.shape[-1]) if j != i]
    tiny = _tiny(h.dtype)
    r = R[..., i, rest]  # (..., m-1)
    sd = jnp.sqrt(jnp.maximum((1.0 - r) * (1.0 + r), tiny))
    hc = (h[..., rest] - r * h[..., i : i + 1]) / sd
    Rc = (R[..., rest, :][..., :, rest] - r[..., :, None] * r[..., None, :]) / (
        sd[..., :, None] * sd[..., None, :]
    )
    return hc, jnp.clip(Rc, -1.0, 1.0)


@_tail.defjvp
def _tail_jvp(n_points, n_shifts, primals, tangents):
    h, R, needed = primals
    dh, dR, _ = tangents
    m = h.shape[-1]
    logF = _tail(h, R, needed, n_points, n_shifts)
    tiny = _tiny(h.dtype)
    log_phi = -0.5 * h * h - 0.5 * _LOG_2PI
    # first derivatives
    conds = [_cond1(h, R, i) for i in range(m)]
    if m == 2:
        log_c1 = jnp.stack([log_ndtr(jnp.clip(hc[..., 0], -1e4, 1e4)) for hc, _ in conds], axis=-1)
    else:
        hc = jnp.stack([c[0] for c in conds], axis=-2)  # (..., 3, 2)
        Rc = jnp.stack([c[1] for c in conds], axis=-3)  # (..., 3, 2, 2)
        need = jnp.broadcast_to(needed[..., None], hc.shape[:-1])
        log_c1 = _tail(hc, Rc, need, n_points, n_shifts)
    g_h = jnp.exp(log_phi + log_c1 - logF[..., None])
    out = jnp.sum(g_h * dh, axis=-1)
    # correlation derivatives
    for i in range(m):
        for j in range(i + 1, m):
            r = R[..., i, j]
            om = jnp.maximum((1.0 - r) * (1.0 + r), tiny)
            hi, hj = h[..., i], h[..., j]
            log_dens = -0.5 * (hi * hi - 2.0 * r * hi * hj + hj * hj) / om
            log_dens = log_dens - _LOG_2PI - 0.5 * jnp.log(om)
            if m == 3:
                k = 3 - i - j
                rik, rjk = R[..., i, k], R[..., j, k]
                mean = ((rik - r * rjk) * hi + (rjk - r * rik) * hj) / om
                var = 1.0 - (rik * rik + rjk * rjk - 2.0 * r * rik * rjk) / om
                t = (h[..., k] - mean) / jnp.sqrt(jnp.maximum(var, tiny))
                log_dens = log_dens + log_ndtr(jnp.clip(t, -1e4, 1e4))
            dr = 0.5 * (dR[..., i, j] + dR[..., j, i])
            out = out + jnp.exp(log_dens - logF) * dr
    return logF, out
