r"""HET-XL noise: Gaussian noise added to the D-dimensional representation, then projected.

HET-XL (Collier et al., "Massively scaling heteroscedastic classifiers", 2023,
arXiv:2301.12860; registered as "hetxl") perturbs the pre-logits instead of the logits:

    u = W (r + eps_D) + b = mu + W eps_D,   eps_D ~ N(0, diag(d_D^2) + V_D V_D^T),

with d_D `(D,)` and V_D `(D, R)` computed from r. The utility noise is eps = W eps_D, so

    Sigma(x) = W diag(d_D^2) W^T + (W V_D)(W V_D)^T        (K x K, rank <= D),

and no parameter grows as K x D x R: the noise heads are D -> D and D -> D R, and the
K-way projection W is the mean layer's own weight.

Implementation choice (exact, no approximation): `HetXLNoise` is a `NoiseStructure` whose
`transform` builds eps_D with the core's `LowRankNoise` over D "classes" (so it follows the
core's conventions for batch and sample axes) and maps it through W. It needs D + R standard
normals per draw (`num_draws`), which the core likelihoods hand to `transform_draws`;
everything else — chunked streaming, custom VJP, samplers — is the core's.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import NoiseStructure, positive_scale
from .low_rank import LowRankNoise
from .registry import NoiseFamily, RawOutput, register_noise_family

__all__ = ["HetXLNoise"]


class HetXLNoise(NoiseStructure):
    """eps = W eps_D, eps_D ~ N(0, diag(d_D^2) + V_D V_D^T): noise in representation space.

    Args:
        scale: d_D, shape `(..., D)`, strictly positive.
        factor: V_D, shape `(..., D, R)`, 1 <= R < D.
        projection: W, the shared `(K, D)` mean-layer weight.

    Raises:
        ValueError: `scale` / `factor` as in `LowRankNoise` over D dimensions (1 <= R < D,
            naming in_features D), or `projection` not of shape `(K, D)`.
    """

    inner: LowRankNoise
    projection: Float[Array, "K D"]

    def __init__(self, scale, factor, projection):
        scale, factor = jnp.asarray(scale), jnp.asarray(factor)
        if scale.ndim >= 1 and factor.ndim >= 2 and not 1 <= factor.shape[-1] < scale.shape[-1]:
            raise ValueError(
                "rank R of the representation factor must satisfy 1 <= R < in_features "
                f"D={scale.shape[-1]}, got R={factor.shape[-1]}"
            )
        self.inner = LowRankNoise(scale, factor)
        projection = jnp.asarray(projection)
        D = self.inner.num_classes
        if projection.ndim != 2 or projection.shape[1] != D:
            raise ValueError(f"`projection` must have shape (K, D={D}), got {projection.shape}")
        self.projection = projection

    @property
    def num_classes(self) -> int:
        return self.projection.shape[0]

    @property
    def representation_dim(self) -> int:
        return self.inner.num_classes

    @property
    def representation_rank(self) -> int:
        return self.inner.rank

    @property
    def rank(self) -> int:
        return self.representation_rank

    @property
    def num_draws(self) -> int:
        return self.representation_dim + self.representation_rank

    def transform_draws(self, z):
        D = self.representation_dim
        return self.transform(z[..., :D], z[..., D:])

    @property
    def batch_shape(self):
        return self.inner.batch_shape

    def transform(self, z_D, z_R):
        """eps = W (d_D ⊙ z_D + V_D z_R) for draws z_D `(*b, S, D)`, z_R `(*b, S, R)`."""
        eps_D = self.inner.transform(z_D, z_R)
        return jnp.einsum("...d,kd->...k", eps_D, self.projection)

    def representation_covariance(self) -> Float[Array, "... D D"]:
        """Sigma_D = diag(d_D^2) + V_D V_D^T, shape `batch_shape + (D, D)`."""
        return self.inner.covariance()

    def covariance(self):
        W = self.projection
        return jnp.einsum("kd,...de,le->...kl", W, self.inner.covariance(), W)

    def variance(self):
        W = self.projection
        d2 = self.inner.scale**2
        WV = jnp.einsum("kd,...dr->...kr", W, self.inner.factor)
        return jnp.einsum("kd,...d->...k", W**2, d2) + jnp.sum(WV**2, axis=-1)

    def matvec(self, x):
        W = self.projection
        return jnp.einsum("kd,...d->...k", W, self.inner.matvec(jnp.einsum("kd,...k->...d", W, x)))


def _build(raw, *, num_classes, min_scale):
    return HetXLNoise(positive_scale(raw["scale"], min_scale), raw["factor"], raw["projection"])


register_noise_family(
    NoiseFamily(
        name="hetxl",
        structure=HetXLNoise,
        outputs=(
            RawOutput("scale", lambda K, R, D: (D,), init="scale"),
            RawOutput("factor", lambda K, R, D: (D, R), init="small"),
            RawOutput("projection", lambda K, R, D: (K, D), kind="mean_weight", init="none"),
        ),
        build=_build,
        rank_bound="in_features",
        description="noise on the D-dim representation, projected by the mean weight (HET-XL)",
    )
)
