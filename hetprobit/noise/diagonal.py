"""`DiagonalNoise`: Sigma = diag(d^2) (registered as "diagonal")."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import ScaledNoise, check_scale, diag_embed, per_draw, positive_scale
from .registry import NoiseFamily, RawOutput, register_noise_family

__all__ = ["DiagonalNoise"]


class DiagonalNoise(ScaledNoise):
    """Independent per-class noise, Sigma = diag(d^2).

    Kendall & Gal, "What uncertainties do we need in Bayesian deep learning for computer
    vision?" (2017, arXiv:1703.04977); Collier et al., "A simple probabilistic method for
    deep classification under input-dependent label noise" (2020, arXiv:2003.06778).

    Args:
        scale: d, shape `(..., K)`, strictly positive. Every class has its own scale and
            its own standard-normal draw (not one scalar shared by all classes).

    Raises:
        ValueError: `scale` not of shape `(..., K)`, non-finite or not positive.
    """

    scale: Float[Array, "... K"]

    def __init__(self, scale):
        scale = jnp.asarray(scale)
        if scale.ndim < 1 or scale.shape[-1] < 1:
            raise ValueError(f"`scale` must have shape (..., K), got {scale.shape}")
        check_scale("scale", scale)
        self.scale = scale

    def transform(self, z_K, z_R=None):
        return per_draw(self.scale, z_K.ndim) * z_K

    def covariance(self):
        return diag_embed(self.scale**2)

    def variance(self):
        return self.scale**2

    def matvec(self, x):
        return self.scale**2 * x


def _build(raw, *, num_classes, min_scale):
    return DiagonalNoise(positive_scale(raw["scale"], min_scale))


register_noise_family(
    NoiseFamily(
        name="diagonal",
        structure=DiagonalNoise,
        outputs=(RawOutput("scale", lambda K, R, D: (K,), init="scale"),),
        build=_build,
        description="independent per-class noise, Sigma = diag(d^2)",
    )
)
