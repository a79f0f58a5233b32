r"""`FullNoise`: a full covariance Sigma = L L^T from its Cholesky factor (registered as "full").

The unrestricted covariance of the multinomial probit (Train, "Discrete choice methods
with simulation", 2nd ed. 2009, chapter 5): with L lower-triangular with a positive
diagonal, Sigma = L L^T is any symmetric positive-definite matrix, and eps = L z for
z ~ N(0, I_K) has covariance Sigma. It needs K standard normals per draw and O(K^2) work per
draw, so it suits the small K of discrete choice rather than large classifiers.

From raw network outputs it is built as L = diag(d) + strictly-lower(l), with
d = positive_scale(raw scale) `(K,)` and the K(K-1)/2 entries l filling the strictly lower
triangle row by row (`numpy.tril_indices(K, -1)` order).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..validation import check_finite, is_concrete
from .base import NoiseStructure, check_scale, diag_embed, lift, positive_scale
from .registry import NoiseFamily, RawOutput, register_noise_family

__all__ = ["FullNoise"]


class FullNoise(NoiseStructure):
    """Full covariance Sigma = L L^T, L lower-triangular with a positive diagonal.

    Args:
        cholesky: L, shape `(..., K, K)`; lower-triangular, diagonal strictly positive.

    Raises:
        ValueError: `cholesky` not square `(..., K, K)`, non-finite, with a non-positive
            diagonal entry or a non-zero entry above the diagonal (concrete values only).
    """

    cholesky: Float[Array, "... K K"]

    def __init__(self, cholesky):
        L = jnp.asarray(cholesky)
        if L.ndim < 2 or L.shape[-1] != L.shape[-2] or L.shape[-1] < 1:
            raise ValueError(f"`cholesky` must have shape (..., K, K), got {L.shape}")
        check_finite("cholesky", L)
        check_scale("cholesky diagonal", jnp.diagonal(L, axis1=-2, axis2=-1))
        if is_concrete(L):
            upper = np.triu(np.asarray(L), 1)
            if np.any(upper != 0):
                raise ValueError(
                    "`cholesky` must be lower-triangular, got a non-zero entry above the "
                    f"diagonal (largest |L_ij|, j > i: {float(np.max(np.abs(upper)))})"
                )
        self.cholesky = L

    @property
    def num_classes(self) -> int:
        return self.cholesky.shape[-1]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.cholesky.shape[:-2]

    def transform(self, z_K, z_R=None):
        # eps_k = sum_j L_kj z_j = (z L^T)_k; L `(*nb, K, K)` is lifted to the draws' rank
        # (a batch of one L broadcasts over shared or per-example draws).
        Lt = jnp.swapaxes(self.cholesky, -1, -2)
        return jnp.matmul(z_K, lift(Lt, z_K.ndim))

    def covariance(self):
        L = self.cholesky
        return L @ jnp.swapaxes(L, -1, -2)

    def variance(self):
        return jnp.sum(self.cholesky**2, axis=-1)

    def matvec(self, x):
        Lt_x = jnp.einsum("...jk,...j->...k", self.cholesky, x)
        return jnp.einsum("...kj,...j->...k", self.cholesky, Lt_x)


def _build(raw, *, num_classes, min_scale):
    d = positive_scale(raw["scale"], min_scale)
    K = num_classes
    rows, cols = np.tril_indices(K, -1)
    lower = raw["lower"]
    L = diag_embed(d)
    if rows.size:
        L = L.at[..., rows, cols].set(lower)
    return FullNoise(L)


register_noise_family(
    NoiseFamily(
        name="full",
        structure=FullNoise,
        outputs=(
            RawOutput("scale", lambda K, R, D: (K,), init="scale"),
            RawOutput("lower", lambda K, R, D: (K * (K - 1) // 2,), init="small"),
        ),
        build=_build,
        description="unrestricted Sigma = L L^T from a Cholesky factor (O(D K^2) parameters)",
    )
)
