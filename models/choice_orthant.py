r"""Log orthant probabilities log P(Z <= b), Z ~ N(0, S), dimension m <= 3, for choice likelihoods.

The probit choice probability of the chosen alternative k is one orthant probability of the
utility differences (dimension J - 1): P(y = k) = P(Z <= b), b_j = V_k - V_j, S = A_k Sigma A_k^T.
For J <= 4 the value comes from the core's closed forms (Phi, and `hetprobit.mvn_cdf`:
bivariate BVND, trivariate Plackett). Their derivatives are the core's
closed forms (`jax.custom_jvp`) from lower-dimensional CDFs (Plackett 1954, *Biometrika* 41;
Genz & Bretz 2009, *Computation of Multivariate Normal and t Probabilities*, §2.2), for the
standardised bounds h and correlations R:

    dF/dh_i = phi(h_i) P(Z_{-i} <= h_{-i} | Z_i = h_i)
    dF/dR_ij = phi_2(h_i, h_j; R_ij) P(Z_rest <= h_rest | Z_i = h_i, Z_j = h_j)   (i != j)

so reverse- and forward-mode derivatives never differentiate the Plackett quadrature itself.

Tails: where F <= `TAIL` (1e-10 in float64), log F of the closed form loses relative accuracy;
there the Mendell-Elston conditional approximation is used, computed in log space
(Mendell & Elston 1974, *Biometrics* 30; Kamakura 1989): variables in order of their
standardised bound, each contributing log Phi(t_i), the remaining ones conditioned on the
truncated mean and variance. Relative error of log F is about 1e-3 at log F ~ -50 (measured
in `tests/test_models_choice_likelihood.py`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

import hetprobit

__all__ = ["orthant_log_prob", "TAIL"]

TAIL = 1e-10
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def orthant_prob(b, S):
    """P(Z <= b), Z ~ N(0, S); b `(N, m)`, S `(N, m, m)`: the core's `hetprobit.mvn_cdf`
    (bivariate BVND / trivariate Plackett, closed-form derivatives; module docstring)."""
    return hetprobit.mvn_cdf(b, S)


def _mendell_elston_log(b, S):
    """log P(Z <= b) by the Mendell-Elston conditional approximation, in log space."""
    m = b.shape[-1]
    tiny = float(jnp.finfo(b.dtype).tiny) ** 0.5
    sd0 = jnp.sqrt(jnp.maximum(jnp.diagonal(S, axis1=-2, axis2=-1), tiny))
    order = jnp.argsort(jax.lax.stop_gradient(b / sd0), axis=-1)
    b = jnp.take_along_axis(b, order, axis=-1)
    S = jnp.take_along_axis(
        jnp.take_along_axis(S, order[..., :, None], -2), order[..., None, :], -1
    )
    mean = jnp.zeros_like(b)
    cov = S
    logp = jnp.zeros(b.shape[:-1], b.dtype)
    for i in range(m):
        v = jnp.maximum(cov[..., i, i], tiny)
        s = jnp.sqrt(v)
        t = jnp.clip((b[..., i] - mean[..., i]) / s, -1e4, 1e4)
        lphi = log_ndtr(t)
        logp = logp + lphi
        if i == m - 1:
            break
        lam = jnp.exp(-0.5 * t * t - _LOG_SQRT_2PI - lphi)  # phi(t) / Phi(t)
        e_shift = -s * lam  # E[Z_i | Z_i <= b_i] - mean_i
        shrink = jnp.clip(t * lam + lam * lam, 0.0, 1.0)  # 1 - Var_trunc / Var
        w = cov[..., :, i] / v[..., None]
        mean = mean + w * e_shift[..., None]
        cov = cov - shrink[..., None, None] * v[..., None, None] * w[..., :, None] * w[..., None, :]
    return logp


def orthant_log_prob(b, S, *, tail: float = TAIL):
    """log P(Z <= b), Z ~ N(0, S): closed form with closed-form derivatives where P > `tail`,
    the log-space Mendell-Elston approximation below (module docstring).

    Args:
        b: `(N, m)` upper bounds, 1 <= m <= 3. S: `(N, m, m)` positive-definite covariances.

    Returns:
        `(N,)` log-probabilities.
    """
    m = b.shape[-1]
    if not 1 <= m <= 3:
        raise ValueError(f"orthant dimension must be in [1, 3], got {m}")
    if m == 1:
        sd = jnp.sqrt(S[..., 0, 0])
        return log_ndtr(jnp.clip(b[..., 0] / sd, -1e4, 1e4))
    p = orthant_prob(b, S)
    ok = p > tail
    return jnp.where(ok, jnp.log(jnp.where(ok, p, 1.0)), _mendell_elston_log(b, S))
