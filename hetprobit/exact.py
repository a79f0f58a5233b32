r"""Exact multinomial-probit probabilities: the ground truth the Monte Carlo likelihood is
checked against.

Model: u ~ N(mu, Sigma) over K classes, y = argmax_j u_j. For class c, with the difference
matrix A_c (rows e_c - e_j, j != c),

    P(y = c) = P(A_c u > 0) = P(Z <= A_c mu),   Z ~ N(0, A_c Sigma A_c^T)

a (K-1)-dimensional Gaussian orthant probability (S_jk = Sigma_cc - Sigma_cj - Sigma_ck +
Sigma_jk). Methods (``method="auto"``):

* K = 2: Phi((mu_0 - mu_1) / sqrt(S_00 + S_11 - 2 S_01)), closed form.
* K = 3: bivariate normal CDF (Genz's BVND, ~1e-14 absolute in float64) with closed-form
  derivatives (`jax.custom_jvp`).
* K = 4: trivariate normal CDF by Plackett's reduction integrated with fixed Gauss-Legendre
  nodes (~1e-10 absolute in float64 for well-conditioned Sigma, ~1e-7 near-singular), with
  closed-form derivatives (`jax.custom_jvp`, Plackett 1954 / Genz & Bretz 2009 section 2.2:
  dPhi_3/dh_i = phi(h_i) Phi_2(conditional), dPhi_3/dr_ij = phi_2(h_i, h_j; r_ij)
  Phi(conditional)); the quadrature is never differentiated.
* 5 <= K <= 10: Genz's separation-of-variables (GHK) integral with Genz-Bretz reordering and
  fixed, randomly shifted rank-1 lattice points (``n_shifts`` shifts of ``n_points`` points;
  a smooth deterministic function of mu and Sigma). Accuracy ~1e-5 to 1e-6 for the defaults;
  the error estimate is 3.5 standard errors over the shifts. ``method="sov"`` forces this
  path for any K.
* K > 10: refused; use the Monte Carlo likelihood (`hetprobit.tempered_softmax_log_probs`).

The SOV integrals run in blocks of problems under `lax.scan` (about 2^16 lattice evaluations
at a time), so memory does not grow with the batch; for K = 3, 4 the log path evaluates the
log-space SOV only in blocks that contain a tail problem, and differentiates it by the same
identities in log space (`_mvn_tail`), never through the SOV loops.

Every entry point checks `cov` with `hetprobit.validation.check_covariance`: symmetric and
positive semi-definite up to rounding (ValueError naming its smallest eigenvalue; under jit,
`eqx.error_if`). float16 / bfloat16 inputs raise a TypeError naming the argument.

Multilabel: P(y_c = 1) = P(u_c > 0) = Phi(mu_c / sqrt(Sigma_cc)).
Everything works under jit/grad/vmap, in float32 and float64 (accuracy figures: float64).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, logsumexp, ndtr
from jaxtyping import Array, Float

from ._mvn import H_MAX, bvn_cdf, sov_log_cdf, tvn_cdf
from ._mvn_tail import tail_log_cdf
from .validation import (
    check_array,
    check_covariance,
    check_finite,
    check_not_half,
    check_positive_int,
    is_concrete,
)

__all__ = [
    "exact_choice_probs",
    "exact_choice_log_probs",
    "exact_indicator_probs",
    "exact_indicator_log_probs",
    "mvn_cdf",
    "mvn_log_cdf",
    "bivariate_normal_cdf",
    "MAX_EXACT_CLASSES",
]

MAX_EXACT_CLASSES = 10
_METHODS = ("auto", "sov")


def bivariate_normal_cdf(
    h: Float[Array, "..."], k: Float[Array, "..."], rho: Float[Array, "..."]
) -> Float[Array, "..."]:
    r"""Phi_2(h, k; rho) = P(X <= h, Y <= k), (X, Y) standard normal with correlation rho.

    Broadcasts its arguments. Closed-form derivatives: dPhi_2/dh = phi(h) Phi((k - rho h) /
    sqrt(1 - rho^2)) and dPhi_2/drho = phi_2(h, k; rho).
    """
    return bvn_cdf(jnp.asarray(h), jnp.asarray(k), jnp.asarray(rho))


# ------------------------------------------------------------------ validation
def _validate_cov(cov, K: int):
    cov = check_covariance("cov", check_not_half("cov", cov))
    if cov.shape[-1] != K:
        raise ValueError(f"`cov` must have shape (..., {K}, {K}) to match `mu`, got {cov.shape}")
    if is_concrete(cov):
        diag = np.diagonal(np.asarray(cov), axis1=-2, axis2=-1)
        if np.any(diag <= 0):
            bad = diag[diag <= 0].ravel()[0]
            raise ValueError(f"`cov` must have a strictly positive diagonal, found {bad!r}")
    return 0.5 * (cov + jnp.swapaxes(cov, -1, -2))


def _validate(mu, cov, *, max_k: int | None = MAX_EXACT_CLASSES, min_k: int = 2, name="mu"):
    mu = check_array(name, check_not_half(name, mu), min_ndim=1)
    check_finite(name, mu)
    K = mu.shape[-1]
    if K < min_k:
        raise ValueError(f"`{name}` must have at least {min_k} entries in its last axis, got {K}")
    if max_k is not None and K > max_k:
        raise ValueError(
            f"`{name}` has size {K} in its last axis; exact probabilities support K <= "
            f"{max_k}. For more classes use the Monte Carlo likelihood "
            "`hetprobit.tempered_softmax_log_probs`."
        )
    cov = _validate_cov(cov, K)
    try:
        batch = jnp.broadcast_shapes(mu.shape[:-1], cov.shape[:-2])
    except ValueError as err:
        raise ValueError(
            f"batch shapes of `{name}` {mu.shape} and `cov` {cov.shape} do not broadcast"
        ) from err
    dtype = jnp.result_type(mu.dtype, cov.dtype)
    mu = jnp.broadcast_to(mu.astype(dtype), batch + (K,))
    cov = jnp.broadcast_to(cov.astype(dtype), batch + (K, K))
    return mu, cov


def _check_method(method, n_points, n_shifts):
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}, got {method!r}")
    check_positive_int("n_points", n_points, minimum=16)
    check_positive_int("n_shifts", n_shifts, minimum=2)


# ------------------------------------------------------------------ difference problems
def _difference_problems(mu, cov):
    """b (..., K, K-1) = mu_c - mu_j and S (..., K, K-1, K-1) for every class c (j != c)."""
    K = mu.shape[-1]
    others = np.array([[j for j in range(K) if j != c] for c in range(K)])  # (K, K-1)
    cls = np.arange(K)
    b = mu[..., :, None] - mu[..., others]
    s_cc = cov[..., cls, cls][..., :, None, None]
    s_cj = cov[..., cls[:, None], others]  # (..., K, K-1)
    s_jk = cov[..., others[:, :, None], others[:, None, :]]  # (..., K, K-1, K-1)
    S = s_cc - s_cj[..., :, None] - s_cj[..., None, :] + s_jk
    return b, S


def _standardise(b, S):
    tiny = float(jnp.finfo(b.dtype).tiny) ** 0.5
    sd = jnp.sqrt(jnp.maximum(jnp.diagonal(S, axis1=-2, axis2=-1), tiny))
    h = b / sd
    R = jnp.clip(S / (sd[..., :, None] * sd[..., None, :]), -1.0, 1.0)
    return h, R


def _orthant(b, S, method, n_points, n_shifts, want_error):
    """P(Z <= b) and an absolute error estimate; b (..., m), S (..., m, m)."""
    m = b.shape[-1]
    eps = float(jnp.finfo(b.dtype).eps)
    if method == "auto" and m <= 3:
        h, R = _standardise(b, S)
        if m == 1:
            return ndtr(jnp.clip(h[..., 0], -H_MAX, H_MAX)), jnp.full(h.shape[:-1], 8 * eps)
        if m == 2:
            p = bvn_cdf(h[..., 0], h[..., 1], R[..., 0, 1])
            return p, jnp.full(p.shape, 64 * eps)
        args = (h[..., 0], h[..., 1], h[..., 2], R[..., 0, 1], R[..., 0, 2], R[..., 1, 2])
        if want_error:
            p, err = tvn_cdf(*args, return_error=True)
            return p, err + 64 * eps
        return tvn_cdf(*args), None
    est = jnp.exp(sov_log_cdf(b, S, n_points=n_points, n_shifts=n_shifts, log_space=False))
    p = jnp.mean(est, axis=-1)
    err = 3.5 * jnp.std(est, axis=-1, ddof=1) / math.sqrt(n_shifts) if want_error else None
    return p, err


# ------------------------------------------------------------------ public API
def exact_choice_probs(
    mu: Float[Array, "... K"],
    cov: Float[Array, "... K K"],
    *,
    method: str = "auto",
    n_points: int = 1021,
    n_shifts: int = 8,
    return_error: bool = False,
):
    r"""P(y = c) = P(argmax_j u_j = c), u ~ N(mu, cov), for every class c.

    Args:
      mu: `(..., K)` utility means, 2 <= K <= 10.
      cov: `(..., K, K)` symmetric positive (semi-)definite covariance; batch dims broadcast
        against those of `mu`.
      method: "auto" (closed form / bivariate / trivariate for K <= 4, lattice SOV above) or
        "sov" (lattice SOV for every K > 2).
      n_points, n_shifts: lattice size and number of random shifts for the SOV path.
      return_error: also return an absolute error estimate `(..., K)`.

    Returns:
      `(..., K)` probabilities P(y = c) = P(Z_c <= A_c mu), Z_c ~ N(0, A_c cov A_c^T), which sum
      to 1 (K >= 3 results are renormalised; the change is within the stated error). With
      `return_error=True`, a tuple (probs, abs_error_estimate).

    Raises:
      ValueError: non-finite `mu` / `cov`, K outside [2, 10], `cov` not symmetric, not
        positive semi-definite or with a non-positive diagonal, unbroadcastable batches.
      TypeError: half-precision `mu` or `cov`, `mu` None.
    """
    _check_method(method, n_points, n_shifts)
    mu, cov = _validate(mu, cov)
    return _choice_core(mu, cov, method, n_points, n_shifts, bool(return_error))


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _choice_core(mu, cov, method, n_points, n_shifts, return_error):
    K = mu.shape[-1]
    eps = float(jnp.finfo(mu.dtype).eps)
    if K == 2:
        var = cov[..., 0, 0] + cov[..., 1, 1] - 2.0 * cov[..., 0, 1]
        tiny = float(jnp.finfo(mu.dtype).tiny) ** 0.5
        z = jnp.clip((mu[..., 0] - mu[..., 1]) / jnp.sqrt(jnp.maximum(var, tiny)), -H_MAX, H_MAX)
        p = jnp.stack([ndtr(z), ndtr(-z)], axis=-1)
        return (p, jnp.full(p.shape, 8 * eps, p.dtype)) if return_error else p
    b, S = _difference_problems(mu, cov)
    p, err = _orthant(b, S, method, n_points, n_shifts, return_error)
    total = jnp.sum(p, axis=-1, keepdims=True)
    p = p / jnp.maximum(total, float(jnp.finfo(mu.dtype).tiny))
    if not return_error:
        return p
    return p, err + jnp.abs(total - 1.0)


def exact_choice_log_probs(
    mu: Float[Array, "... K"],
    cov: Float[Array, "... K K"],
    *,
    method: str = "auto",
    n_points: int = 1021,
    n_shifts: int = 8,
) -> Float[Array, "... K"]:
    r"""log P(y = c), accurate in relative terms also where P(y = c) underflows.

    Shapes and arguments as `exact_choice_probs`. K = 2: log Phi(.) via `log_ndtr`. K >= 3:
    log of the exact probability where it exceeds a dtype-dependent threshold (1e-10 float64
    / 1e-4 float32 for K = 3; 1e-8 / 1e-4 for K = 4), elsewhere (and for K >= 5) the lattice
    SOV estimate with its factors accumulated as log Phi and, for problems with log P below
    -600 (float64) / -60 (float32), its conditional draws in log space too (an inverse of
    log_ndtr), so tail log-probabilities of -1e3 and below stay finite (relative accuracy of
    the tail estimate ~1e-4 or better).
    """
    _check_method(method, n_points, n_shifts)
    mu, cov = _validate(mu, cov)
    return _log_core(mu, cov, method, n_points, n_shifts)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _log_core(mu, cov, method, n_points, n_shifts):
    K = mu.shape[-1]
    if K == 2:
        var = cov[..., 0, 0] + cov[..., 1, 1] - 2.0 * cov[..., 0, 1]
        tiny = float(jnp.finfo(mu.dtype).tiny) ** 0.5
        z = (mu[..., 0] - mu[..., 1]) / jnp.sqrt(jnp.maximum(var, tiny))
        z = jnp.clip(z, -1e4, 1e4)
        return jnp.stack([log_ndtr(z), log_ndtr(-z)], axis=-1)
    b, S = _difference_problems(mu, cov)
    log_p = _log_orthant(b, S, method, n_points, n_shifts)
    if method == "sov" or K > 4:  # the lattice estimates sum to 1 only within their error
        return log_p - logsumexp(log_p, axis=-1, keepdims=True)
    return log_p


def _log_mean_exp_shifts(log_est):
    return logsumexp(log_est, axis=-1) - math.log(log_est.shape[-1])


# log P below which the SOV conditional draws are redone in log space: the plain inverse
# ndtri(w e_i) is exact while every factor e_i stays above the dtype's smallest normal number,
# which holds whenever P = prod_i e_i does (P <= min_i e_i); the margin covers the estimate's
# spread over the lattice points.
_LOG_SPACE_BELOW = {jnp.dtype(jnp.float64): -600.0, jnp.dtype(jnp.float32): -60.0}


def _log_sov(b, S, n_points, n_shifts):
    """log P(Z <= b) by lattice SOV, b (..., m): the factors are always accumulated as
    log Phi; the conditional draws use the plain inverse CDF (6x cheaper) and are redone in
    log space (`_ndtri_exp`) only in blocks holding a problem whose log P is below
    `_LOG_SPACE_BELOW` (the other blocks are skipped by `sov_log_cdf(needed=...)`)."""
    plain = _log_mean_exp_shifts(
        sov_log_cdf(b, S, n_points=n_points, n_shifts=n_shifts, log_space=False)
    )
    ok = plain > _LOG_SPACE_BELOW[jnp.dtype(b.dtype)]
    deep = sov_log_cdf(b, S, n_points=n_points, n_shifts=n_shifts, needed=~ok)
    return jnp.where(ok, plain, _log_mean_exp_shifts(deep))


def _log_orthant(b, S, method, n_points, n_shifts):
    """log P(Z <= b), b (..., m), S (..., m, m): closed forms (m <= 3, method "auto") with the
    log-space tail below a threshold, lattice SOV (`_log_sov`) otherwise."""
    m = b.shape[-1]
    if m > 3 or (method == "sov" and m > 1):
        return _log_sov(b, S, n_points, n_shifts)
    h, R = _standardise(b, S)
    if m == 1:
        return log_ndtr(jnp.clip(h[..., 0], -1e4, 1e4))
    p, _ = _orthant(b, S, method, n_points, n_shifts, False)
    f64 = b.dtype == jnp.float64
    ok = p > ((1e-10 if m == 2 else 1e-8) if f64 else 1e-4)
    log_tail = tail_log_cdf(h, R, ~ok, n_points=n_points, n_shifts=n_shifts)
    return jnp.where(ok, jnp.log(jnp.where(ok, p, 1.0)), log_tail)


def exact_indicator_probs(
    mu: Float[Array, "... K"], cov: Float[Array, "... K K"]
) -> Float[Array, "... K"]:
    r"""Multilabel P(y_c = 1) = P(u_c > 0) = Phi(mu_c / sqrt(Sigma_cc)), shape `(..., K)`.

    Only the diagonal of `cov` matters (K >= 1, any K)."""
    mu, cov = _validate(mu, cov, max_k=None, min_k=1)
    sd = jnp.sqrt(jnp.diagonal(cov, axis1=-2, axis2=-1))
    return ndtr(mu / sd)


def exact_indicator_log_probs(
    mu: Float[Array, "... K"], cov: Float[Array, "... K K"]
) -> Float[Array, "... K"]:
    r"""log P(y_c = 1) = log Phi(mu_c / sqrt(Sigma_cc)) via `log_ndtr` (finite for any finite
    input). log P(y_c = 0) is `exact_indicator_log_probs(-mu, cov)`."""
    mu, cov = _validate(mu, cov, max_k=None, min_k=1)
    sd = jnp.sqrt(jnp.diagonal(cov, axis1=-2, axis2=-1))
    return log_ndtr(jnp.clip(mu / sd, -1e4, 1e4))


def mvn_cdf(
    upper: Float[Array, "... m"],
    cov: Float[Array, "... m m"],
    *,
    method: str = "auto",
    n_points: int = 1021,
    n_shifts: int = 8,
    return_error: bool = False,
):
    r"""P(Z <= upper) for Z ~ N(0, cov), dimension 1 <= m <= 9, shape `(...)`.

    m = 1: Phi; m = 2: bivariate (BVND); m = 3: trivariate (Plackett); m >= 4 (or
    method="sov"): lattice SOV. The orthant probability P(Z > a) is mvn_cdf(-a, cov).
    For m <= 3 (method="auto") the derivatives are closed forms (`jax.custom_jvp`; Plackett
    1954, Genz & Bretz 2009 section 2.2): dF/dh_i = phi(h_i) F_{m-1}(conditional) and
    dF/dr_ij = phi_2(h_i, h_j; r_ij) F_{m-2}(conditional) for the standardised bounds h and
    correlations r, so jit/grad never differentiate a quadrature.

    Raises:
      ValueError / TypeError: as `exact_choice_probs`, for `upper` (dimension 1..9) and `cov`.
    """
    _check_method(method, n_points, n_shifts)
    upper, cov = _validate(upper, cov, max_k=MAX_EXACT_CLASSES - 1, min_k=1, name="upper")
    return _mvn_core(upper, cov, method, n_points, n_shifts, bool(return_error))


def mvn_log_cdf(
    upper: Float[Array, "... m"],
    cov: Float[Array, "... m m"],
    *,
    method: str = "auto",
    n_points: int = 1021,
    n_shifts: int = 8,
) -> Float[Array, "..."]:
    r"""log P(Z <= upper) for Z ~ N(0, cov), dimension 1 <= m <= 9, shape `(...)`, accurate in
    relative terms where the probability underflows (log P of -1e3 and below stays finite).

    m = 1: log Phi (`log_ndtr`); m = 2, 3: log of the closed forms of `mvn_cdf` (closed-form
    derivatives) where P > 1e-10 / 1e-8 (float64; 1e-4 in float32), a log-space lattice SOV
    estimate below; m >= 4 (or method="sov"): lattice SOV with n_points * n_shifts points
    (Genz 1992, J. Comput. Graph. Stat. 1(2); Genz & Bretz 2009, *Computation of Multivariate
    Normal and t Probabilities*), its conditional draws in log space only for problems with
    log P below -600 (float64) / -60 (float32). This is the likelihood of one observed choice:
    log P(y = c) = mvn_log_cdf(A_c mu, A_c Sigma A_c^T) without the other K - 1 orthants
    that `exact_choice_log_probs` computes.

    Raises:
      ValueError / TypeError: as `exact_choice_probs`, for `upper` (dimension 1..9) and `cov`.
    """
    _check_method(method, n_points, n_shifts)
    upper, cov = _validate(upper, cov, max_k=MAX_EXACT_CLASSES - 1, min_k=1, name="upper")
    return _mvn_log_core(upper, cov, method, n_points, n_shifts)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _mvn_log_core(upper, cov, method, n_points, n_shifts):
    return _log_orthant(upper, cov, method, n_points, n_shifts)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _mvn_core(upper, cov, method, n_points, n_shifts, return_error):
    p, err = _orthant(upper, cov, method, n_points, n_shifts, return_error)
    return (p, err) if return_error else p
