"""`LowRankNoise`: Sigma = diag(d^2) + V V^T (registered as "low_rank")."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..validation import check_finite
from .base import ScaledNoise, apply_factor, check_scale, diag_embed, lift, per_draw, positive_scale
from .registry import NoiseFamily, RawOutput, register_noise_family

__all__ = ["LowRankNoise"]


class LowRankNoise(ScaledNoise):
    """Low-rank plus diagonal (HET): Sigma = diag(d^2) + V V^T, V of shape K x R.

    Collier et al., "Correlated input-dependent label noise in large-scale image
    classification" (2021, arXiv:2105.10305).

    Args:
        scale: d, shape `(..., K)`, strictly positive.
        factor: V, shape `(..., K, R)` with 1 <= R < K.

    Raises:
        ValueError: shapes that do not match, R outside [1, K), non-finite values, or a
            non-positive scale.
    """

    scale: Float[Array, "... K"]
    factor: Float[Array, "... K R"]

    def __init__(self, scale, factor):
        scale, factor = jnp.asarray(scale), jnp.asarray(factor)
        if scale.ndim < 1:
            raise ValueError(f"`scale` must have shape (..., K), got {scale.shape}")
        if factor.ndim < 2 or factor.shape[:-1] != scale.shape:
            raise ValueError(
                f"`factor` must have shape scale.shape + (R,) = {scale.shape} + (R,), "
                f"got {factor.shape}"
            )
        check_scale("scale", scale)
        check_finite("factor", factor)
        R, K = factor.shape[-1], scale.shape[-1]
        if not 1 <= R < K:
            raise ValueError(f"rank R must satisfy 1 <= R < K={K}, got R={R}")
        self.scale, self.factor = scale, factor

    @property
    def rank(self):
        return self.factor.shape[-1]

    def transform(self, z_K, z_R):
        n = z_K.ndim
        return per_draw(self.scale, n) * z_K + lift(apply_factor(self.factor, z_R), n)

    def covariance(self):
        V = self.factor
        return V @ jnp.swapaxes(V, -1, -2) + diag_embed(self.scale**2)

    def variance(self):
        return self.scale**2 + jnp.sum(self.factor**2, axis=-1)

    def matvec(self, x):
        Vt_x = jnp.einsum("...kr,...k->...r", self.factor, x)
        return self.scale**2 * x + jnp.einsum("...kr,...r->...k", self.factor, Vt_x)


def _build(raw, *, num_classes, min_scale):
    return LowRankNoise(positive_scale(raw["scale"], min_scale), raw["factor"])


register_noise_family(
    NoiseFamily(
        name="low_rank",
        structure=LowRankNoise,
        outputs=(
            RawOutput("scale", lambda K, R, D: (K,), init="scale"),
            RawOutput("factor", lambda K, R, D: (K, R), init="small"),
        ),
        build=_build,
        rank_bound="num_classes",
        description="diagonal plus rank-R, Sigma = diag(d^2) + V V^T (O(D K R) parameters)",
    )
)
