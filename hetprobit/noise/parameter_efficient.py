"""`ParameterEfficientNoise`: V(x) = v(x) 1_R^T ⊙ W, W shared (registered as
"parameter_efficient")."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..validation import check_finite
from .base import ScaledNoise, apply_factor, check_scale, diag_embed, lift, per_draw, positive_scale
from .registry import NoiseFamily, RawOutput, register_noise_family

__all__ = ["ParameterEfficientNoise"]


class ParameterEfficientNoise(ScaledNoise):
    r"""Parameter-efficient low rank: V(x) = v(x) 1_R^T ⊙ W with one shared K x R matrix W.

    Sigma(x) = diag(d^2) + diag(v) W W^T diag(v); parameters O(DK + KR) instead of O(DKR).
    Collier et al., "Correlated input-dependent label noise in large-scale image
    classification" (2021, arXiv:2105.10305), section 2 and Algorithm 1. (The paper's text
    calls v(x) "a vector of dimension R", but the product requires v(x) in R^K; we use K.)
    With draws shared across the batch, W z_R is computed once per sample, not per example.

    Args:
        scale: d, shape `(..., K)`, strictly positive.
        v: input-dependent row multipliers, shape `(..., K)`.
        factor: W, the shared `(K, R)` matrix (not a function of x), 1 <= R < K.

    Raises:
        ValueError: shapes that do not match, R outside [1, K), non-finite values, or a
            non-positive scale.
    """

    scale: Float[Array, "... K"]
    v: Float[Array, "... K"]
    factor: Float[Array, "K R"]

    def __init__(self, scale, v, factor):
        scale, v, factor = jnp.asarray(scale), jnp.asarray(v), jnp.asarray(factor)
        if scale.ndim < 1 or v.shape != scale.shape:
            raise ValueError(f"`v` must have the shape of `scale` {scale.shape}, got {v.shape}")
        K = scale.shape[-1]
        if factor.ndim != 2 or factor.shape[0] != K:
            raise ValueError(f"`factor` must have shape (K={K}, R), got {factor.shape}")
        R = factor.shape[-1]
        if not 1 <= R < K:
            raise ValueError(f"rank R must satisfy 1 <= R < K={K}, got R={R}")
        check_scale("scale", scale)
        check_finite("v", v)
        check_finite("factor", factor)
        self.scale, self.v, self.factor = scale, v, factor

    @property
    def rank(self):
        return self.factor.shape[-1]

    def transform(self, z_K, z_R):
        # W z_R once per draw: (*b, S, K); with shared draws *b is all ones, so this costs
        # S K R flops instead of B S K R.
        n = z_K.ndim
        shared = lift(apply_factor(self.factor, z_R), n)
        return per_draw(self.scale, n) * z_K + per_draw(self.v, n) * shared

    def covariance(self):
        WWt = self.factor @ self.factor.T
        v = self.v
        return v[..., :, None] * lift(WWt, v.ndim + 1) * v[..., None, :] + diag_embed(self.scale**2)

    def variance(self):
        return self.scale**2 + self.v**2 * lift(jnp.sum(self.factor**2, axis=-1), self.v.ndim)

    def matvec(self, x):
        Wt_vx = jnp.einsum("kr,...k->...r", self.factor, self.v * x)
        return self.scale**2 * x + self.v * jnp.einsum("kr,...r->...k", self.factor, Wt_vx)


def _build(raw, *, num_classes, min_scale):
    return ParameterEfficientNoise(positive_scale(raw["scale"], min_scale), raw["v"], raw["factor"])


register_noise_family(
    NoiseFamily(
        name="parameter_efficient",
        structure=ParameterEfficientNoise,
        outputs=(
            RawOutput("scale", lambda K, R, D: (K,), init="scale"),
            # v(x) starts O(1); the shared K x R matrix starts small
            RawOutput("v", lambda K, R, D: (K,), init="default"),
            RawOutput("factor", lambda K, R, D: (K, R), kind="shared", init="small"),
        ),
        build=_build,
        rank_bound="num_classes",
        description="diagonal plus v(x)-scaled shared rank-R factor (O(D K + K R) parameters)",
    )
)
