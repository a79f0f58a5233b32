r"""Softmax cross-entropy as a mutual-information estimator (Qin, Kim & Gedeon 2019).

For a classifier q(y|x) = softmax(l(x))_y, the cross-entropy upper-bounds the conditional
entropy, E[CE] = E[-log q(y|x)] >= H(Y|X), so

    I(X;Y) = H(Y) - H(Y|X)  >=  Î = H(Y) - E[CE],

with equality when q equals the true p(y|x). With balanced classes H(Y) = log K and the
estimate is log K - E[CE]. The pointwise (per-example) version is

    i(x, y) = log q(y|x) - log p(y)           (= log softmax_y(l(x)) + log K if balanced),

whose mean is Î whenever p(y) are the empirical label frequencies or uniform.

p(y) comes from `class_priors`: None -> the empirical label frequencies of `labels`,
"uniform" -> 1/K, or a `(K,)` probability vector (e.g. the training-set frequencies).
H(Y) = -Σ_c p(c) log p(c) (0 log 0 = 0). Everything is in nats.

Reference: Qin, Kim & Gedeon (2019), "Softmax is not an artificial trick: an
information-theoretic view of softmax in neural networks", arXiv:1910.02629.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .validation import check_array, check_finite, check_scores_and_labels, is_concrete

__all__ = ["MutualInformationEstimate", "mutual_information_estimate"]


class MutualInformationEstimate(NamedTuple):
    """Result of `mutual_information_estimate`.

    Attributes:
        mi: scalar Î = H(Y) - E[CE] in nats.
        pointwise: `(...)` per-example log q(y|x) - log p(y).
        entropy_y: scalar H(Y) of the class prior used.
    """

    mi: Float[Array, ""]
    pointwise: Float[Array, "..."]
    entropy_y: Float[Array, ""]


def _priors(class_priors, labels, K, dtype):
    if class_priors is None:
        counts = jnp.zeros((K,), dtype).at[labels.reshape(-1)].add(1.0)
        return counts / labels.size
    if isinstance(class_priors, str):
        if class_priors != "uniform":
            raise ValueError(
                f"`class_priors` must be None, 'uniform' or a (K,) array, got {class_priors!r}"
            )
        return jnp.full((K,), 1.0 / K, dtype)
    priors = check_array("class_priors", class_priors, ndim=1)
    check_finite("class_priors", priors)
    if priors.shape != (K,):
        raise ValueError(f"`class_priors` must have shape ({K},), got {priors.shape}")
    if is_concrete(priors):
        host = np.asarray(priors, dtype=np.float64)
        if np.any(host < 0) or abs(host.sum() - 1.0) > 1e-4:
            raise ValueError(
                f"`class_priors` must be non-negative and sum to 1, got sum {host.sum():.6g} "
                f"and min {host.min():.6g}"
            )
        if is_concrete(labels) and np.any(host[np.asarray(labels)] <= 0):
            raise ValueError("`class_priors` gives probability 0 to a class present in `labels`")
    return priors.astype(dtype)


def mutual_information_estimate(
    logits: Float[Array, "... K"],
    labels: Int[Array, "..."],
    *,
    class_priors: Float[Array, " K"] | str | None = None,
) -> MutualInformationEstimate:
    """Estimate I(X;Y) as H(Y) - E[CE] and the pointwise log q(y|x) - log p(y).

    Args:
        logits: classifier logits `(..., K)` (log-probabilities work too).
        labels: integer labels `(...)` drawn from the data distribution.
        class_priors: None (empirical label frequencies), "uniform", or a `(K,)` vector.
    Returns:
        `MutualInformationEstimate(mi, pointwise, entropy_y)`.
    Raises:
        ValueError: `logits` non-finite or empty, K < 2, `labels` of another shape or
            outside [0, K); `class_priors` a string other than "uniform", not of shape
            `(K,)`, negative, not summing to 1 (tolerance 1e-4), or 0 for a class present in
            `labels`.
        TypeError: `labels` not integer.
    """
    logits, labels = check_scores_and_labels("logits", logits, labels)
    K = logits.shape[-1]
    priors = _priors(class_priors, labels, K, logits.dtype)
    log_priors = jnp.log(jnp.where(priors > 0, priors, 1.0))
    entropy_y = -jnp.sum(jnp.where(priors > 0, priors * log_priors, 0.0))
    log_q = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), labels[..., None], axis=-1)
    log_q = log_q[..., 0]
    pointwise = log_q - log_priors[labels]
    return MutualInformationEstimate(
        mi=entropy_y + jnp.mean(log_q), pointwise=pointwise, entropy_y=entropy_y
    )
