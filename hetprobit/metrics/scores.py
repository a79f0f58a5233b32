r"""Accuracy, top-k accuracy and proper scoring rules (NLL, Brier, multilabel NLL).

Multiclass inputs are `probs` (or any monotone score) of shape `(..., K)` and integer
`labels` of shape `(...)`; the leading axes are pooled into N examples and every metric is a
mean over them:

    accuracy       = 1/N Σ_i 1[r_i = 0]
    top-k accuracy = 1/N Σ_i 1[r_i < k]
    NLL            = -1/N Σ_i log p_iy_i                          (from log-probs)
    Brier          = 1/N Σ_i Σ_k (p_ik - 1[k = y_i])^2             (Brier 1950)

Tie rule. r_i is the 0-based rank of the true class y_i when the K classes are ordered by
score, descending, with tied scores ordered by class index, ascending:

    r_i = #{j : p_ij > p_iy_i} + #{j < y_i : p_ij = p_iy_i}.

This is the order of `numpy.argsort(-p, kind="stable")` and the tie-break of `numpy.argmax`
/ `jax.numpy.argmax` (first index wins), so `accuracy == top_k_accuracy(k=1)` always, and the
top-k set of each example holds exactly min(k, K) classes: a tie never lets more than k
classes count as hits, and a class counts only if the tie-broken ranking puts it in the top
k (with `[1, 0, 0, 0]` the top-2 set is {0, 1}, so label 3 is a miss). On tie-free scores it
equals scikit-learn's `top_k_accuracy_score`; scikit-learn breaks ties the other way (its
stable ascending sort is reversed, so the *highest* index wins), which also makes its top-1
disagree with `accuracy_score(y, p.argmax(1))` on ties. All-tied scores give accuracy =
top-1 = fraction of labels equal to 0.

The multilabel NLL is the binary log score summed over C classes, averaged over examples.
Proper scores: Gneiting & Raftery (2007), "Strictly proper scoring rules, prediction, and
estimation", JASA 102(477). Brier (1950), "Verification of forecasts expressed in terms of
probability", Monthly Weather Review 78(1).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..validation import check_positive_int
from ._inputs import flat, multiclass, multilabel, same_shape

__all__ = [
    "accuracy",
    "top_k_accuracy",
    "negative_log_likelihood",
    "brier_score",
    "multilabel_nll",
]


def label_rank(probs: Float[Array, "N K"], labels: Int[Array, " N"]) -> Int[Array, " N"]:
    """0-based rank r_i of the true class under the tie rule of the module docstring."""
    p_true = jnp.take_along_axis(probs, labels[:, None], axis=-1)
    idx = jnp.arange(probs.shape[-1])[None, :]
    ahead = (probs > p_true) | ((probs == p_true) & (idx < labels[:, None]))
    return jnp.sum(ahead, axis=-1)


def accuracy(probs: Float[Array, "... K"], labels: Int[Array, "..."]) -> Float[Array, ""]:
    """Top-1 accuracy 1/N Σ_i 1[argmax_k p_ik = y_i], ties to the lowest class index.

    Any monotone transform of the scores (logits, log-probs) gives the same value; equal to
    `top_k_accuracy(probs, labels, k=1)` (see the tie rule in the module docstring).

    Args:
        probs: scores `(..., K)`, finite; leading axes pooled into N examples.
        labels: integer labels `(...)` in [0, K).
    Returns:
        scalar accuracy in [0, 1].
    Raises:
        ValueError: shapes disagree, an input is empty or non-finite, a label is outside
            [0, K), or K < 2.
        TypeError: `labels` is not integer.
    """
    return _top_k(*multiclass(probs, labels, unit=False), 1)


def top_k_accuracy(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], k: int = 5
) -> Float[Array, ""]:
    """Top-k accuracy 1/N Σ_i 1[r_i < k]: the true class is among the k highest scores.

    r_i counts the classes scoring strictly higher plus the tied classes with a lower
    index (module docstring), so ties never add hits beyond the tie-broken top k. Equal to
    `sklearn.metrics.top_k_accuracy_score` on tie-free scores; 1 for k >= K.

    Args:
        probs: scores `(..., K)`, finite.
        labels: integer labels `(...)` in [0, K).
        k: number of top classes that count, >= 1 (static under jit).
    Returns:
        scalar top-k accuracy in [0, 1].
    Raises:
        ValueError: `k` < 1, or the input errors of `accuracy`.
        TypeError: `k` is not an integer, or `labels` is not integer.
    """
    k = check_positive_int("k", k, minimum=1)
    return _top_k(*multiclass(probs, labels, unit=False), k)


@partial(jax.jit, static_argnames=("k",))
def _top_k(probs, labels, k):
    probs, labels = flat(probs, labels)
    return jnp.mean(label_rank(probs, labels) < k)


def negative_log_likelihood(
    log_probs: Float[Array, "... K"], labels: Int[Array, "..."]
) -> Float[Array, ""]:
    """Mean NLL (log score) -1/N Σ_i log p_iy_i from log-probabilities.

    Taking log-probabilities (e.g. `jax.nn.log_softmax`) avoids log(softmax) underflow.

    Args:
        log_probs: `(..., K)` log-probabilities, finite.
        labels: integer labels `(...)` in [0, K).
    Returns:
        scalar mean NLL in nats.
    Raises:
        ValueError: `log_probs` non-finite or empty, shapes disagree, a label out of range.
        TypeError: `labels` is not integer.
    """
    return _nll(*multiclass(log_probs, labels, name="log_probs", unit=False))


@jax.jit
def _nll(log_probs, labels):
    log_probs, labels = flat(log_probs, labels)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


def brier_score(probs: Float[Array, "... K"], labels: Int[Array, "..."]) -> Float[Array, ""]:
    """Multiclass Brier score 1/N Σ_i Σ_k (p_ik - 1[k = y_i])^2, in [0, 2] (Brier 1950).

    Args:
        probs: probabilities `(..., K)` in [0, 1].
        labels: integer labels `(...)` in [0, K).
    Returns:
        scalar Brier score.
    Raises:
        ValueError: `probs` outside [0, 1] (tolerance 1e-5), or the input errors of
            `accuracy`.
        TypeError: `labels` is not integer.
    """
    return _brier(*multiclass(probs, labels))


@jax.jit
def _brier(probs, labels):
    probs, labels = flat(probs, labels)
    one_hot = jax.nn.one_hot(labels, probs.shape[-1], dtype=probs.dtype)
    return jnp.mean(jnp.sum((probs - one_hot) ** 2, axis=-1))


def _log1mexp(x):
    """log(1 - exp(x)) for x <= 0, stable at both ends.

    Mächler (2012), "Accurately computing log(1 - exp(-|a|))", Rmpfr package vignette.
    """
    return jnp.where(x > -jnp.log(2.0), jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


def multilabel_nll(
    log_probs: Float[Array, "... C"],
    labels: Float[Array, "... C"],
    *,
    log_complement: Float[Array, "... C"] | None = None,
) -> Float[Array, ""]:
    """Binary NLL, summed over classes and averaged over examples:

        -1/N Σ_i Σ_c [y_ic log p_ic + (1 - y_ic) log(1 - p_ic)].

    Args:
        log_probs: log p_ic `(..., C)` (e.g. `jax.nn.log_sigmoid(z)`), finite.
        labels: 0/1 indicators of the same shape.
        log_complement: log(1 - p_ic) of the same shape (e.g. `jax.nn.log_sigmoid(-z)`, the
            stable choice from logits). If omitted it is log1mexp(log p), which is -inf where
            p rounds to 1 (then the NLL is inf for a 0 label).
    Returns:
        scalar NLL in nats.
    Raises:
        ValueError: a non-finite or empty input, labels not 0/1, or shapes that disagree.
    """
    log_probs, labels = multilabel(log_probs, labels, name="log_probs", unit=False)
    if log_complement is None:
        log_complement = _log1mexp(jnp.minimum(log_probs, 0.0))
    else:
        log_complement = same_shape("log_complement", log_complement, log_probs)
    return _multilabel_nll(log_probs, labels, log_complement)


@jax.jit
def _multilabel_nll(log_probs, labels, log_complement):
    C = log_probs.shape[-1]
    per_pair = labels * log_probs + (1.0 - labels) * log_complement
    return -jnp.mean(jnp.sum(per_pair.reshape(-1, C), axis=-1))
