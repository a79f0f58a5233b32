r"""Log orthant probabilities log P(Z <= b), Z ~ N(0, S), dimension m <= 3, for choice likelihoods.

The probit choice probability of the chosen alternative k is one orthant probability of the
utility differences (dimension J - 1): P(y = k) = P(Z <= b), b_j = V_k - V_j, S = A_k Sigma A_k^T.
For J <= 4 the value comes from the core's closed forms (`hetprobit.mvn_cdf`: Phi, bivariate
BVND, trivariate Plackett). The derivatives are given in closed form (`jax.custom_jvp`) from
lower-dimensional CDFs (Plackett 1954, *Biometrika* 41; Genz & Bretz 2009, *Computation of
Multivariate Normal and t Probabilities*, §2.2):

    dF/db_i = phi(b_i; S_ii) P(Z_{-i} <= b_{-i} | Z_i = b_i)
    d2F/db_i db_j = phi_2(b_i, b_j; S_[ij]) P(Z_rest <= b_rest | Z_i = b_i, Z_j = b_j)  (i != j)
    d2F/db_i^2 = -(b_i dF/db_i + sum_{j != i} S_ij d2F/db_i db_j) / S_ii
    dF = sum_i dF/db_i db_i + 1/2 sum_ij d2F/db_i db_j dS_ij      (heat equation, S symmetric)

so reverse- and forward-mode derivatives never differentiate the Plackett quadrature itself
(its autodiff program is what made the trivariate gradient slow to compile: 14 s vs 3 s).

Tails: where F <= `TAIL` (1e-10 in float64), log F of the closed form loses relative accuracy;
there the Mendell-Elston conditional approximation is used, computed in log space
(Mendell & Elston 1974, *Biometrics* 30; Kamakura 1989): variables in order of their
standardised bound, each contributing log Phi(t_i), the remaining ones conditioned on the
truncated mean and variance. Relative error of log F is about 1e-3 at log F ~ -50 (measured
in `tests/test_models_choice_likelihood.py`).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr

import hetprobit

__all__ = ["orthant_log_prob", "TAIL"]

TAIL = 1e-10
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _inv_small(M):
    """Inverse of a `(..., d, d)` matrix, d = 1 or 2, written out (no LAPACK call to compile)."""
    if M.shape[-1] == 1:
        return 1.0 / M
    a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
    det = a * d - b * c
    row0 = jnp.stack([d, -b], axis=-1)
    row1 = jnp.stack([-c, a], axis=-1)
    return jnp.stack([row0, row1], axis=-2) / det[..., None, None], det


def _cond(b, S, given):
    """Conditional bounds (b_rest - E[Z_rest | Z_given = b_given]) and covariance."""
    m = b.shape[-1]
    rest = [i for i in range(m) if i not in given]
    g = list(given)
    Sgg = S[..., g, :][..., :, g]
    Srg = S[..., rest, :][..., :, g]
    Srr = S[..., rest, :][..., :, rest]
    inv = _inv_small(Sgg)
    inv = inv[0] if isinstance(inv, tuple) else inv
    W = jnp.einsum("...rg,...gh->...rh", Srg, inv)  # (..., |rest|, |g|)
    mean = jnp.einsum("...rg,...g->...r", W, b[..., g])
    cov = Srr - jnp.einsum("...rg,...sg->...rs", W, Srg)
    return b[..., rest] - mean, cov


def _cdf_small(u, C):
    """P(X <= u), X ~ N(0, C), dimension 0, 1 or 2 (no derivative rule needed: closed forms)."""
    d = u.shape[-1]
    if d == 0:
        return jnp.ones(u.shape[:-1], u.dtype)
    tiny = float(jnp.finfo(u.dtype).tiny) ** 0.5
    sd = jnp.sqrt(jnp.maximum(jnp.diagonal(C, axis1=-2, axis2=-1), tiny))
    h = u / sd
    if d == 1:
        return ndtr(h[..., 0])
    rho = jnp.clip(C[..., 0, 1] / (sd[..., 0] * sd[..., 1]), -1.0, 1.0)
    return hetprobit.bivariate_normal_cdf(h[..., 0], h[..., 1], rho)


def _log_density(x, C):
    """log N(x; 0, C) for dimension 1 or 2 (written out)."""
    if x.shape[-1] == 1:
        v = C[..., 0, 0]
        return -0.5 * x[..., 0] ** 2 / v - 0.5 * jnp.log(v) - _LOG_SQRT_2PI
    inv, det = _inv_small(C)
    q = jnp.einsum("...i,...ij,...j->...", x, inv, x)
    return -0.5 * q - 0.5 * jnp.log(det) - 2 * _LOG_SQRT_2PI


def _value(b, S):
    m = b.shape[-1]
    if m <= 2:
        return _cdf_small(b, S)
    return hetprobit.mvn_cdf(b, S)


@jax.custom_jvp
def orthant_prob(b, S):
    """P(Z <= b), Z ~ N(0, S); b `(N, m)`, S `(N, m, m)`, 1 <= m <= 3."""
    return _value(b, S)


def _standard_bvn_args(u, C):
    tiny = float(jnp.finfo(u.dtype).tiny) ** 0.5
    sd = jnp.sqrt(jnp.maximum(jnp.diagonal(C, axis1=-2, axis2=-1), tiny))
    rho = jnp.clip(C[..., 0, 1] / (sd[..., 0] * sd[..., 1]), -1.0, 1.0)
    return u[..., 0] / sd[..., 0], u[..., 1] / sd[..., 1], rho


@orthant_prob.defjvp
def _orthant_prob_jvp(primals, tangents):
    b, S = primals
    db, dS = tangents
    m = b.shape[-1]
    F = orthant_prob(b, S)
    dS = 0.5 * (dS + jnp.swapaxes(dS, -1, -2))
    singles = [(i,) for i in range(m)]
    pairs = list(itertools.combinations(range(m), 2))
    dens1 = jnp.stack([jnp.exp(_log_density(b[..., [i]], S[..., [i], :][..., :, [i]]))
                       for (i,) in singles], axis=-1)  # fmt: skip
    dens2 = jnp.stack([jnp.exp(_log_density(b[..., [i, j]], S[..., [i, j], :][..., :, [i, j]]))
                       for i, j in pairs], axis=-1)  # fmt: skip
    conds1 = [_cond(b, S, g) for g in singles]  # dimension m - 1
    conds2 = [_cond(b, S, g) for g in pairs]  # dimension m - 2
    if m == 3:  # one batched bivariate CDF call for the three conditionals
        args = [_standard_bvn_args(u, C) for u, C in conds1]
        h, k, r = (jnp.stack(a, axis=-1) for a in zip(*args, strict=True))
        c1 = hetprobit.bivariate_normal_cdf(h, k, r)
        c2 = jnp.stack([_cdf_small(u, C) for u, C in conds2], axis=-1)
    else:
        c1 = jnp.stack([_cdf_small(u, C) for u, C in conds1], axis=-1)
        c2 = jnp.ones_like(dens2)
    grad = dens1 * c1  # (N, m)
    H2 = dens2 * c2  # (N, #pairs)
    H = {}
    for p, (i, j) in enumerate(pairs):
        H[i, j] = H[j, i] = H2[..., p]
    dF = jnp.sum(grad * db, axis=-1)
    for i in range(m):
        off = sum((S[..., i, j] * H[i, j] for j in range(m) if j != i), jnp.zeros_like(F))
        Hii = -(b[..., i] * grad[..., i] + off) / S[..., i, i]
        dF = dF + 0.5 * Hii * dS[..., i, i]
        for j in range(m):
            if j != i:
                dF = dF + 0.5 * H[i, j] * dS[..., i, j]
    return F, dF


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
