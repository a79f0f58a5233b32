r"""Second-order Taylor approximation of the heteroscedastic likelihood.

Collier et al. 2021, arXiv:2105.10305, Appendix C.

A deterministic, sample-free approximation. With s = softmax(mu / tau) and the Hessian
H s_k = s_k [(e_k - s)(e_k - s)^T - diag(s) + s s^T] of s_k with respect to its argument,

    E[softmax((mu + eps)/tau)]_k ≈ s_k + ½ tr(H s_k Sigma) / tau^2
                                = s_k + s_k/(2 tau^2) [Sigma_kk - 2 (Sigma s)_k
                                                      + 2 s^T Sigma s - Σ_j s_j Sigma_jj].

This uses only diag(Sigma) and Sigma s, so it costs O(K R) for the low-rank structures and
never forms Sigma. For diagonal Sigma it reduces to the paper's Eq. (9). The log version uses
log(1 + t) ≈ t (the paper's Eq. (10)): log p_k ≈ log s_k + ½ tr(H s_k Sigma) / (tau^2 s_k).
The approximation is only good for small Sigma / tau^2; for large noise the probabilities can
leave [0, 1] (they are returned as is, so the failure is visible, and still sum to 1).

Multilabel: E[sigmoid((mu_c + eps_c)/tau)] ≈ σ_c + ½ σ_c (1 - σ_c)(1 - 2σ_c) Sigma_cc / tau^2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .noise import NoiseStructure
from .validation import (
    check_array,
    check_covariance,
    check_finite,
    check_not_half,
    check_positive,
)

__all__ = ["taylor_softmax_probs", "taylor_softmax_log_probs", "taylor_sigmoid_probs"]


def _variance_and_matvec(mu, cov):
    """diag(Sigma) and a function x -> Sigma x, from a NoiseStructure or a dense array."""
    K = mu.shape[-1]
    if isinstance(cov, NoiseStructure):
        if cov.num_classes != K:
            raise ValueError(f"`cov` has K={cov.num_classes} classes, `mu` has K={K}")
        return cov.variance(), cov.matvec
    cov = check_covariance("cov", check_not_half("cov", cov))
    if cov.shape[-2:] != (K, K):
        raise ValueError(f"`cov` must have shape (..., {K}, {K}) to match `mu`, got {cov.shape}")
    return jnp.diagonal(cov, axis1=-2, axis2=-1), lambda x: jnp.einsum("...kj,...j->...k", cov, x)


def _second_order_term(mu, cov, tau):
    """s and the correction c_k = ½ tr(H s_k Sigma)/tau^2, both `(..., K)`."""
    mu = check_array("mu", check_not_half("mu", mu), min_ndim=1)
    check_finite("mu", mu)
    check_positive("tau", tau)
    variance, matvec = _variance_and_matvec(mu, cov)
    s = jax.nn.softmax(mu / tau, axis=-1)
    sigma_s = matvec(s)
    quad = jnp.sum(s * sigma_s, axis=-1, keepdims=True)
    mean_var = jnp.sum(s * variance, axis=-1, keepdims=True)
    bracket = variance - 2.0 * sigma_s + 2.0 * quad - mean_var
    return s, 0.5 * s * bracket / tau**2, 0.5 * bracket / tau**2


def taylor_softmax_probs(
    mu: Float[Array, "... K"], cov: NoiseStructure | Float[Array, "... K K"], *, tau: float = 1.0
) -> Float[Array, "... K"]:
    """E[softmax((mu+eps)/tau)] ≈ s + ½ tr(H s Sigma)/tau^2, shape `(..., K)`.

    Args:
        mu: mean utilities `(..., K)`.
        cov: a `NoiseStructure` or a dense covariance `(..., K, K)`.
        tau: temperature > 0.
    """
    s, correction, _ = _second_order_term(mu, cov, tau)
    return s + correction


def taylor_softmax_log_probs(
    mu: Float[Array, "... K"], cov: NoiseStructure | Float[Array, "... K K"], *, tau: float = 1.0
) -> Float[Array, "... K"]:
    """log p_k ≈ log s_k + ½ tr(H s_k Sigma)/(tau^2 s_k), shape `(..., K)`.

    (Collier et al. 2021, Eq. 10.)

    Computed as log_softmax(mu/tau) + the bracket term, so it never divides by an
    underflowed s_k.
    """
    _, _, relative = _second_order_term(mu, cov, tau)
    return jax.nn.log_softmax(jnp.asarray(mu) / tau, axis=-1) + relative


def taylor_sigmoid_probs(
    mu: Float[Array, "... K"], cov: NoiseStructure | Float[Array, "... K K"], *, tau: float = 1.0
) -> Float[Array, "... K"]:
    """E[sigmoid((mu_c+eps_c)/tau)] ≈ σ_c + ½ σ_c(1-σ_c)(1-2σ_c) Sigma_cc / tau^2."""
    mu = check_array("mu", check_not_half("mu", mu), min_ndim=1)
    check_finite("mu", mu)
    check_positive("tau", tau)
    variance, _ = _variance_and_matvec(mu, cov)
    sig = jax.nn.sigmoid(mu / tau)
    return sig + 0.5 * sig * (1.0 - sig) * (1.0 - 2.0 * sig) * variance / tau**2
