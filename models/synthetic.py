r"""Synthetic classification data drawn from the exact heteroscedastic probit process.

    x ~ N(0, I_p)
    mu(x) = mean_scale * A x + b                            ("linear")
          = mean_scale * A2 tanh(A1 x) + b                   ("nonlinear")
    h(x)  = 1 + noise_growth * tanh(2 x_0)                   noise grows with x_0 (0 <= g < 1)
    d(x)  = base_scale * h(x) * 1_K
    V(x)[:, r] = pair_strength * h(x) * (e_i + s_r e_j)      one column per planted pair
    Sigma(x) = diag(d(x)^2) + V(x) V(x)^T
    u = mu(x) + d(x) ⊙ z_K + V(x) z_R,   y = argmax_j u_j  (multilabel: y_c = 1{u_c > 0})

Planted pair r = (i, j, s_r) uses the disjoint classes (2r, 2r + 1): s_r = -1 makes them
*substitutes* (negative noise covariance: labels swap between i and j), s_r = +1 makes them
*co-occur* (positive covariance). Signs alternate starting with -1 unless `pair_signs` is
given. The truth (mu, d, V at every x) is returned with the data.

Note on signs: these names follow the issue's wording. Seed 002's Table 4 reads the signs the
other way round in the multiclass case, where confusable classes (similar dog breeds) get
*positive* covariance and complementary ones (tennis ball / racket) negative. In the argmax
model a positive covariance between i and j makes u_i - u_j less noisy, so the pair is
confused *less* often relative to the other classes. Read the pair's sign from `sign`, not
from its name.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hetprobit.noise import LowRankNoise
from hetprobit.validation import check_num_classes, check_positive, check_positive_int

__all__ = ["SyntheticClassification", "PlantedPair", "make_synthetic_classification"]


class PlantedPair(NamedTuple):
    """Classes i < j whose noise is correlated with sign `sign` (-1 substitutes, +1 co-occur)."""

    i: int
    j: int
    sign: int


class SyntheticClassification(NamedTuple):
    """A synthetic data set with its generating truth.

    Attributes:
        x: inputs `(N, p)`.
        y: labels `(N,)` int32 (multilabel: 0/1 int32 `(N, K)`).
        mu: true mean utilities `(N, K)`.
        scale: true d(x) `(N, K)`.
        factor: true V(x) `(N, K, R)` (R = number of planted pairs).
        pairs: the planted pairs, a tuple of `PlantedPair`.
        multilabel: whether `y` holds indicators.
    """

    x: Float[Array, "N p"]
    y: Int[Array, "N ..."]
    mu: Float[Array, "N K"]
    scale: Float[Array, "N K"]
    factor: Float[Array, "N K R"]
    pairs: tuple[PlantedPair, ...]
    multilabel: bool

    @property
    def noise(self) -> LowRankNoise:
        """The true noise structure, batch shape `(N,)`."""
        return LowRankNoise(self.scale, self.factor)

    def covariance(self) -> Float[Array, "N K K"]:
        """True Sigma(x) = diag(d^2) + V V^T for every example."""
        return self.noise.covariance()


def make_synthetic_classification(
    num_data: int,
    num_classes: int,
    *,
    num_features: int = 4,
    num_pairs: int = 2,
    pair_signs: tuple[int, ...] | None = None,
    mean: str = "linear",
    mean_scale: float = 1.5,
    mean_offset: float = 0.0,
    base_scale: float = 0.3,
    pair_strength: float = 1.5,
    noise_growth: float = 0.8,
    multilabel: bool = False,
    key: PRNGKeyArray,
) -> SyntheticClassification:
    """Draw `num_data` examples from the heteroscedastic probit process (module docstring).

    Args:
        num_data: N.
        num_classes: K (>= 2 multiclass; >= 2 also for multilabel, pairs need two classes).
        num_features: p, input dimension (>= 1; x_0 drives the noise growth).
        num_pairs: planted pairs (R); needs 2 * num_pairs <= K.
        pair_signs: sign per pair (+1 co-occur, -1 substitutes); default alternating -1, +1.
        mean: "linear" or "nonlinear" mu(x).
        mean_scale: size of mu's dependence on x.
        mean_offset: constant added to every mu_c (e.g. negative for sparse multilabel y).
        base_scale: d(x) where the noise is smallest.
        pair_strength: size of the planted columns of V(x).
        noise_growth: g in [0, 1): h(x) = 1 + g tanh(2 x_0) scales d and V, so the noise is
            small for x_0 < 0 and large for x_0 > 0 (0: homogeneous noise).
        multilabel: threshold (y_c = 1{u_c > 0}) instead of argmax.
        key: PRNG key (keyword-only).
    """
    N = check_positive_int("num_data", num_data)
    K = check_num_classes("num_classes", num_classes)
    p = check_positive_int("num_features", num_features)
    R = check_positive_int("num_pairs", num_pairs)
    if 2 * R > K:
        raise ValueError(f"`num_pairs`={R} needs 2 * num_pairs <= num_classes={K}")
    if pair_signs is None:
        pair_signs = tuple(-1 if r % 2 == 0 else 1 for r in range(R))
    if len(pair_signs) != R or any(s not in (-1, 1) for s in pair_signs):
        raise ValueError(f"`pair_signs` must be {R} values in (-1, +1), got {pair_signs!r}")
    if mean not in ("linear", "nonlinear"):
        raise ValueError(f"`mean` must be 'linear' or 'nonlinear', got {mean!r}")
    for name, value in (
        ("mean_scale", mean_scale),
        ("base_scale", base_scale),
        ("pair_strength", pair_strength),
    ):
        check_positive(name, value)
    if not 0 <= noise_growth < 1:
        raise ValueError(f"`noise_growth` must lie in [0, 1), got {noise_growth}")

    k_x, k_a1, k_a2, k_b, k_z = jax.random.split(key, 5)
    x = jax.random.normal(k_x, (N, p))
    if mean == "linear":
        A = jax.random.normal(k_a1, (K, p)) / np.sqrt(p)
        mu = mean_scale * x @ A.T
    else:
        hidden = 2 * p + 4
        A1 = jax.random.normal(k_a1, (hidden, p)) * (2.0 / np.sqrt(p))
        A2 = jax.random.normal(k_a2, (K, hidden)) / np.sqrt(hidden)
        mu = mean_scale * jnp.tanh(x @ A1.T) @ A2.T
    b = 0.3 * jax.random.normal(k_b, (K,)) + mean_offset
    mu = mu + b[None]

    growth = 1.0 + noise_growth * jnp.tanh(2.0 * x[:, 0])  # (N,)
    scale = base_scale * growth[:, None] * jnp.ones((1, K))
    columns = np.zeros((K, R), np.float32)
    pairs = []
    for r, s in enumerate(pair_signs):
        i, j = 2 * r, 2 * r + 1
        columns[i, r], columns[j, r] = 1.0, float(s)
        pairs.append(PlantedPair(i, j, int(s)))
    factor = pair_strength * growth[:, None, None] * jnp.asarray(columns)[None]

    z = jax.random.normal(k_z, (N, K + R))
    u = mu + scale * z[:, :K] + jnp.einsum("nkr,nr->nk", factor, z[:, K:])
    y = (u > 0).astype(jnp.int32) if multilabel else jnp.argmax(u, axis=-1).astype(jnp.int32)
    return SyntheticClassification(x, y, mu, scale, factor, tuple(pairs), bool(multilabel))
