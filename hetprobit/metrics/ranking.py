r"""Multilabel ranking metrics: average precision pooled (gAP) and per class (mAP).

Inputs are scores `probs` and 0/1 `labels` of the same shape `(..., C)`. Average precision
is scikit-learn's `average_precision_score` (step-wise, no interpolation):

    AP = Σ_n (R_n - R_{n-1}) P_n = (1/P) Σ_{i: y_i = 1} P(s_i)

over the distinct score thresholds, P(t) the precision of {s >= t} and P the number of
positives. Tied scores enter as one threshold, so every member of a tie group is scored
with the group's precision: AP does not depend on the order of tied items (nor of rows).
gAP pools all (example, class) pairs into one ranking; mAP is the mean over classes of the
per-class AP, skipping classes without a positive label (their AP is undefined and
`per_class_average_precision` reports NaN).

Reference: Manning, Raghavan & Schütze (2008), "Introduction to Information Retrieval",
Cambridge University Press, ch. 8 (average precision); gAP as in Collier, Mustafa,
Kokiopoulou, Jenatton & Berent (2021), "Correlated input-dependent label noise in
large-scale image classification", arXiv:2105.10305.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..validation import is_concrete
from ._inputs import multilabel

__all__ = [
    "global_average_precision",
    "per_class_average_precision",
    "mean_average_precision",
]


@jax.jit
def _ap_1d(scores, targets):
    """sklearn's step-wise AP of one score vector; NaN if there is no positive."""
    order = jnp.argsort(-scores, stable=True)
    s, y = scores[order], targets[order]
    n = s.shape[0]
    tp = jnp.cumsum(y)
    is_last = jnp.concatenate([s[1:] != s[:-1], jnp.ones((1,), bool)])
    idx = jnp.arange(n)
    # End of each tie group: every tied example is scored at the group's threshold.
    end = jax.lax.cummin(jnp.where(is_last, idx, n), axis=0, reverse=True)
    precision_at_end = tp[end] / (end + 1).astype(s.dtype)
    return jnp.sum(y * precision_at_end) / tp[-1]


def global_average_precision(
    probs: Float[Array, "... C"], labels: Float[Array, "... C"]
) -> Float[Array, ""]:
    """gAP: average precision of all (example, class) pairs pooled into one ranking.

    Equal to `sklearn.metrics.average_precision_score(labels.ravel(), probs.ravel())`; a
    1-D input is a single binary ranking.

    Args:
        probs: scores `(..., C)`, finite.
        labels: 0/1 indicators of the same shape.
    Returns:
        scalar gAP in [0, 1].
    Raises:
        ValueError: no positive label (gAP undefined); `probs` non-finite or empty;
            labels not 0/1 or of another shape.
    """
    probs, labels = multilabel(probs, labels, unit=False)
    if is_concrete(labels) and not bool(jnp.any(labels > 0)):
        raise ValueError("`labels` has no positive entry: gAP is undefined")
    return _ap_1d(jnp.ravel(probs), jnp.ravel(labels))


def per_class_average_precision(
    probs: Float[Array, "... C"], labels: Float[Array, "... C"]
) -> Float[Array, " C"]:
    """Average precision of each class over the pooled examples; NaN if it has no positive.

    Args:
        probs: scores `(..., C)`, finite.
        labels: 0/1 indicators of the same shape.
    Returns:
        `(C,)` per-class AP.
    Raises:
        ValueError: `probs` non-finite or empty; labels not 0/1 or of another shape.
    """
    return _per_class_ap(*multilabel(probs, labels, unit=False))


@jax.jit
def _per_class_ap(probs, labels):
    C = probs.shape[-1]
    return jax.vmap(_ap_1d, in_axes=1)(probs.reshape(-1, C), labels.reshape(-1, C))


def mean_average_precision(
    probs: Float[Array, "... C"], labels: Float[Array, "... C"]
) -> Float[Array, ""]:
    """mAP: mean over classes of the per-class AP, skipping classes with no positive label.

    Args:
        probs: scores `(..., C)`, finite.
        labels: 0/1 indicators of the same shape.
    Returns:
        scalar mAP in [0, 1].
    Raises:
        ValueError: no class has a positive label (mAP undefined); `probs` non-finite or
            empty; labels not 0/1 or of another shape.
    """
    ap = per_class_average_precision(probs, labels)
    valid = ~jnp.isnan(ap)
    if is_concrete(ap) and not bool(jnp.any(valid)):
        raise ValueError("`labels` has no positive entry in any class: mAP is undefined")
    return jnp.sum(jnp.where(valid, ap, 0.0)) / jnp.maximum(jnp.sum(valid), 1)
