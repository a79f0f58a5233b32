r"""Which class pairs does a fitted head make noisy together?

Collier et al. 2021, arXiv:2105.10305, §4.1, Table 4.

From a head and a data set of representations r_1..r_N, rebuild the dense

    Sigma(x_n) = diag(d(x_n)^2) + V(x_n) V(x_n)^T        (or the head's own structure)

for modest K, average it over the data set, Sigma_bar = (1/N) Σ_n Sigma(x_n), and list the
off-diagonal class pairs (i < j) with the largest |Sigma_bar_ij| and the largest
|Corr_ij| = |Sigma_bar_ij| / sqrt(Sigma_bar_ii Sigma_bar_jj) (the correlation of the
averaged covariance). Sigma(x_n) is formed in batches of `batch_size` examples, so memory
is O(batch_size K^2), not O(N K^2).

Note on identification (multiclass): argmax is unchanged by adding one common random shift
to all utilities, so Sigma is identified only up to Sigma + 1 b^T + b 1^T (and jointly with
mu, up to scale). `center=True` reports the identified part instead: the centred covariance
M Sigma_bar M with M = I - 1 1^T / K (the covariance of u - mean_j u_j), which is invariant
to that ambiguity. Use it to compare multiclass fits with the truth; the default (raw
Sigma_bar) is the paper's Table 4 quantity and the right one for multilabel heads, where
Sigma itself is identified up to scale.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from hetprobit.validation import check_array, check_positive_int

from .head import HeteroscedasticHead

__all__ = [
    "ClassPair",
    "CovarianceSummary",
    "average_covariance",
    "centre_covariance",
    "top_pairs",
    "covariance_summary",
    "pair_ranks",
]


class ClassPair(NamedTuple):
    """One entry of a ranked pair table: classes i < j and the value for the pair."""

    i: int
    j: int
    value: float


class CovarianceSummary(NamedTuple):
    """Averaged covariance and its top pairs.

    Attributes:
        covariance: Sigma_bar `(K, K)`, the average of Sigma(x) over the data set.
        correlation: Sigma_bar_ij / sqrt(Sigma_bar_ii Sigma_bar_jj), `(K, K)`.
        top_covariance: pairs sorted by |Sigma_bar_ij|, descending (all K(K-1)/2 pairs
            when `top_k` is None).
        top_correlation: pairs sorted by |correlation_ij|, descending.
    """

    covariance: np.ndarray
    correlation: np.ndarray
    top_covariance: tuple[ClassPair, ...]
    top_correlation: tuple[ClassPair, ...]


def centre_covariance(cov: Float[Array, "... K K"]) -> Float[Array, "... K K"]:
    """M Sigma M with M = I - 1 1^T / K: the covariance of u - mean_j(u_j)."""
    cov = jnp.asarray(cov)
    K = cov.shape[-1]
    M = jnp.eye(K, dtype=cov.dtype) - jnp.full((K, K), 1.0 / K, cov.dtype)
    return jnp.einsum("ij,...jk,kl->...il", M, cov, M)


def average_covariance(
    head: HeteroscedasticHead,
    r: Float[Array, "N D"],
    *,
    batch_size: int = 512,
    center: bool = False,
) -> Float[Array, "K K"]:
    """(1/N) Σ_n Sigma(r_n), computed in batches of `batch_size` (centred if `center`)."""
    if not isinstance(head, HeteroscedasticHead):
        raise TypeError(f"`head` must be a HeteroscedasticHead, got {type(head).__name__}")
    r = check_array("r", r, ndim=2)
    check_positive_int("batch_size", batch_size)
    N, K = r.shape[0], head.num_classes
    total = jnp.zeros((K, K), r.dtype)
    for start in range(0, N, batch_size):
        total = total + jnp.sum(head.covariance(r[start : start + batch_size]), axis=0)
    total = total / N
    return centre_covariance(total) if center else total


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.clip(np.diag(cov), np.finfo(cov.dtype).tiny, None))
    return cov / (sd[:, None] * sd[None, :])


def top_pairs(matrix, *, top_k: int | None = 10) -> tuple[ClassPair, ...]:
    """Off-diagonal pairs (i < j) of a symmetric `(K, K)` matrix sorted by |value|, descending.

    Ties keep (i, j) lexicographic order (stable sort). `top_k=None` returns all pairs.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"`matrix` must be square (K, K), got shape {m.shape}")
    if top_k is not None:
        check_positive_int("top_k", top_k)
    i, j = np.triu_indices(m.shape[0], k=1)
    values = m[i, j]
    order = np.argsort(-np.abs(values), kind="stable")
    if top_k is not None:
        order = order[:top_k]
    return tuple(ClassPair(int(i[o]), int(j[o]), float(values[o])) for o in order)


def covariance_summary(
    head: HeteroscedasticHead,
    r: Float[Array, "N D"],
    *,
    top_k: int | None = 10,
    batch_size: int = 512,
    center: bool = False,
) -> CovarianceSummary:
    """Average Sigma(x) over representations `r` `(N, D)` and rank class pairs (Table 4).

    `center=True` ranks the identified, centred covariance (see module docstring).
    """
    cov = average_covariance(head, r, batch_size=batch_size, center=center)
    cov = np.asarray(cov, dtype=np.float64)
    corr = _correlation(cov)
    return CovarianceSummary(cov, corr, top_pairs(cov, top_k=top_k), top_pairs(corr, top_k=top_k))


def pair_ranks(table, pairs) -> list[int | None]:
    """Rank (0 = first) of each (i, j) of `pairs` in a ranked `table`; None if absent.

    Pairs are unordered: (j, i) matches (i, j).
    """
    lookup = {frozenset((p.i, p.j)): n for n, p in enumerate(table)}
    return [lookup.get(frozenset((int(p[0]), int(p[1])))) for p in pairs]
