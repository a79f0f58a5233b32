"""Summaries: the main multiclass and multilabel metrics in one call, as a dict."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..validation import check_positive_int
from ._inputs import multiclass, multilabel, n_bins_arg, same_shape
from .calibration_error import _classwise_ece, _ece
from .ranking import global_average_precision, mean_average_precision
from .scores import _brier, _nll, _top_k, multilabel_nll

__all__ = ["classification_summary", "multilabel_summary"]


def classification_summary(
    probs: Float[Array, "... K"],
    labels: Int[Array, "..."],
    *,
    log_probs: Float[Array, "... K"] | None = None,
    n_bins: int = 15,
    top_k: int = 5,
) -> dict[str, Array]:
    """The main multiclass metrics as a dict of scalar arrays.

    Keys: accuracy, top{top_k}_accuracy, nll, brier, ece, adaptive_ece, classwise_ece
    (the functions of `scores` and `calibration_error`, with their tie rules).

    Args:
        probs: probabilities `(..., K)`.
        labels: integer labels `(...)`.
        log_probs: `(..., K)` log-probabilities for a stable NLL; otherwise
            log(max(probs, tiny)) is used.
        n_bins: bins of the calibration errors (static).
        top_k: k of the top-k accuracy (static).
    Returns:
        dict name -> scalar.
    Raises:
        ValueError: the input errors of `brier_score`; `log_probs` of another shape or
            non-finite; `n_bins` or `top_k` < 1.
        TypeError: `labels`, `n_bins` or `top_k` not an integer.
    """
    probs, labels = multiclass(probs, labels)
    if log_probs is not None:
        log_probs = same_shape("log_probs", log_probs, probs)
    top_k = check_positive_int("top_k", top_k, minimum=1)
    return _summary(probs, log_probs, labels, n_bins_arg(n_bins), top_k)


@partial(jax.jit, static_argnames=("n_bins", "top_k"))
def _summary(probs, log_probs, labels, n_bins, top_k):
    if log_probs is None:
        log_probs = jnp.log(jnp.clip(probs, jnp.finfo(probs.dtype).tiny, None))
    return {
        "accuracy": _top_k(probs, labels, 1),
        f"top{top_k}_accuracy": _top_k(probs, labels, top_k),
        "nll": _nll(log_probs, labels),
        "brier": _brier(probs, labels),
        "ece": _ece(probs, labels, n_bins),
        "adaptive_ece": _ece(probs, labels, n_bins, adaptive=True),
        "classwise_ece": _classwise_ece(probs, labels, n_bins),
    }


def multilabel_summary(
    probs: Float[Array, "... C"],
    labels: Float[Array, "... C"],
    *,
    log_probs: Float[Array, "... C"] | None = None,
) -> dict[str, Array]:
    """gAP, mAP and the binary NLL (`multilabel_nll`) as a dict of scalar arrays.

    Args:
        probs: probabilities `(..., C)` in [0, 1].
        labels: 0/1 indicators of the same shape.
        log_probs: log p `(..., C)`; the NLL then takes the complement by log1mexp. Without
            it the NLL uses log p and log(1 - p) of `probs` clipped to [tiny, 1]. For logits,
            call `multilabel_nll` directly.
    Returns:
        dict with keys gap, map, nll.
    Raises:
        ValueError: `probs` outside [0, 1], non-finite or empty; labels not 0/1 or of
            another shape; no positive label; `log_probs` of another shape.
    """
    probs, labels = multilabel(probs, labels)
    tiny = jnp.finfo(probs.dtype).tiny
    log_complement = None
    if log_probs is None:
        log_probs = jnp.log(jnp.clip(probs, tiny, 1.0))
        log_complement = jnp.log(jnp.clip(1.0 - probs, tiny, 1.0))
    return {
        "gap": global_average_precision(probs, labels),
        "map": mean_average_precision(probs, labels),
        "nll": multilabel_nll(
            same_shape("log_probs", log_probs, probs), labels, log_complement=log_complement
        ),
    }
