r"""Predictive metrics from probabilities / log-probabilities and labels (one implementation).

Multiclass inputs are `probs` of shape `(..., K)` and integer `labels` of shape `(...)`;
all leading axes are pooled into N examples. Every metric is a mean over the N examples:

    accuracy       = 1/N Σ_i 1[argmax_k p_ik = y_i]
    top-k accuracy = 1/N Σ_i 1[#{k : p_ik > p_iy_i} < k]        (ties count as hits)
    NLL            = -1/N Σ_i log p_iy_i                          (from log-probs)
    Brier          = 1/N Σ_i Σ_k (p_ik - 1[k = y_i])^2
    ECE            = Σ_b (n_b/N) |acc_b - conf_b|                 (top-label, equal width)

Binning. Equal-width bins are right-closed, (e_{b-1}, e_b] with e_b = b/B, and a value of
exactly 0 goes to the first bin (the convention of Guo et al. 2017). Adaptive (equal-mass)
bins sort the N confidences (stable sort) and put the example of rank r in bin
floor(r B / N), so every bin holds floor(N/B) or ceil(N/B) examples. Classwise ECE is
(Kull et al. 2019) 1/K Σ_k Σ_b (n_bk/N) |freq_bk - conf_bk| with p_ik binned per class.

Multilabel inputs are `probs` and 0/1 `labels` of the same shape `(..., C)`.
Average precision follows scikit-learn's `average_precision_score` exactly (step-wise,
no interpolation): AP = Σ_n (R_n - R_{n-1}) P_n over the distinct score thresholds, so tied
scores enter as one threshold. gAP pools all (example, class) pairs; mAP is the mean over
classes of the per-class AP, where classes without any positive label are skipped (their AP
is undefined) — `per_class_average_precision` reports them as NaN.

All functions are jittable (`n_bins`, `k` static); value checks run on concrete inputs only.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .validation import (
    check_array,
    check_finite,
    check_indicator_labels,
    check_positive_int,
    check_scores_and_labels,
    is_concrete,
)

__all__ = [
    "ReliabilityDiagram", "accuracy", "top_k_accuracy", "negative_log_likelihood",
    "brier_score", "expected_calibration_error", "adaptive_calibration_error",
    "classwise_calibration_error", "reliability_diagram", "global_average_precision",
    "per_class_average_precision", "mean_average_precision", "multilabel_nll",
    "classification_summary", "multilabel_summary",
]  # fmt: skip

_PROB_TOL = 1e-5


class ReliabilityDiagram(NamedTuple):
    """Per-bin data of a top-label reliability diagram with B equal-width bins.

    Attributes:
        edges: `(B+1,)` bin edges 0, 1/B, ..., 1.
        confidence: `(B,)` mean top-label confidence per bin (NaN for empty bins).
        accuracy: `(B,)` fraction correct per bin (NaN for empty bins).
        count: `(B,)` number of examples per bin.
    """

    edges: Float[Array, " B1"]
    confidence: Float[Array, " B"]
    accuracy: Float[Array, " B"]
    count: Float[Array, " B"]


# ------------------------------------------------------------------------------ validation


def _check_unit_interval(name: str, probs):
    if is_concrete(probs):
        host = np.asarray(probs)
        lo, hi = float(host.min()), float(host.max())
        if lo < -_PROB_TOL or hi > 1 + _PROB_TOL:
            bad = lo if lo < -_PROB_TOL else hi
            raise ValueError(f"`{name}` must be probabilities in [0, 1], found {bad!r}")


def _multiclass(probs, labels, *, name: str = "probs", unit: bool = True):
    """Validate `(..., K)` scores and `(...)` integer labels."""
    probs, labels = check_scores_and_labels(name, probs, labels)
    if unit:
        _check_unit_interval(name, probs)
    return probs, labels


def _flat(probs, labels):
    return probs.reshape(-1, probs.shape[-1]), labels.reshape(-1)


def _multilabel(probs, labels, *, name: str = "probs", unit: bool = True):
    probs = check_array(name, probs, min_ndim=1)
    check_finite(name, probs)
    if unit:
        _check_unit_interval(name, probs)
    labels_arr = jnp.asarray(labels)
    if labels_arr.shape != probs.shape:
        raise ValueError(
            f"`labels` must have the shape of `{name}` {probs.shape} (multilabel 0/1 "
            f"indicators), got {labels_arr.shape}"
        )
    return probs, check_indicator_labels("labels", labels_arr)


def _same_shape(name: str, x, like):
    """A finite array of the same shape as `like`."""
    x = check_array(name, x)
    if x.shape != like.shape:
        raise ValueError(f"`{name}` must have shape {like.shape}, got {x.shape}")
    return check_finite(name, x)


def _n_bins(n_bins) -> int:
    return check_positive_int("n_bins", n_bins, minimum=1)


# ------------------------------------------------------------------------- multiclass basics


def accuracy(probs: Float[Array, "... K"], labels: Int[Array, "..."]) -> Float[Array, ""]:
    """Top-1 accuracy 1/N Σ_i 1[argmax_k p_ik = y_i] (first index wins ties).

    Any monotone score (logits, log-probs) gives the same value.
    """
    return _accuracy(*_multiclass(probs, labels, unit=False))


@jax.jit
def _accuracy(probs, labels):
    probs, labels = _flat(probs, labels)
    return jnp.mean(jnp.argmax(probs, axis=-1) == labels)


def top_k_accuracy(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], k: int = 5
) -> Float[Array, ""]:
    """Top-k accuracy: the true class is among the k highest scores.

    Rule: hit iff fewer than k classes score strictly higher than the true class, so ties
    resolve in the label's favour (as scikit-learn's `top_k_accuracy_score` does for
    distinct scores). For k >= K it is 1.
    """
    k = check_positive_int("k", k, minimum=1)
    return _top_k(*_multiclass(probs, labels, unit=False), k)


@partial(jax.jit, static_argnames=("k",))
def _top_k(probs, labels, k):
    probs, labels = _flat(probs, labels)
    p_true = jnp.take_along_axis(probs, labels[:, None], axis=-1)
    n_higher = jnp.sum(probs > p_true, axis=-1)
    return jnp.mean(n_higher < k)


def negative_log_likelihood(
    log_probs: Float[Array, "... K"], labels: Int[Array, "..."]
) -> Float[Array, ""]:
    """Mean NLL -1/N Σ_i log p_iy_i from log-probabilities (e.g. `jax.nn.log_softmax`).

    Taking log-probs avoids log(softmax) underflow; `log_probs` must be finite.
    """
    return _nll(*_multiclass(log_probs, labels, name="log_probs", unit=False))


@jax.jit
def _nll(log_probs, labels):
    log_probs, labels = _flat(log_probs, labels)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


def brier_score(probs: Float[Array, "... K"], labels: Int[Array, "..."]) -> Float[Array, ""]:
    """Multiclass Brier score 1/N Σ_i Σ_k (p_ik - 1[k = y_i])^2, in [0, 2]."""
    return _brier(*_multiclass(probs, labels))


@jax.jit
def _brier(probs, labels):
    probs, labels = _flat(probs, labels)
    one_hot = jax.nn.one_hot(labels, probs.shape[-1], dtype=probs.dtype)
    return jnp.mean(jnp.sum((probs - one_hot) ** 2, axis=-1))


# ------------------------------------------------------------------------------ calibration


def _equal_width_bins(values, n_bins: int):
    """Right-closed equal-width bin index in [0, B) of values in [0, 1]; 0 -> bin 0."""
    edges = jnp.linspace(0.0, 1.0, n_bins + 1, dtype=values.dtype)
    # number of interior edges strictly below v = index of the bin (e_{b-1}, e_b] holding v
    interior = edges[1:-1].reshape((1,) * values.ndim + (n_bins - 1,))
    return jnp.sum(values[..., None] > interior, axis=-1), edges


def _equal_mass_bins(values, n_bins: int):
    """Bin floor(rank * B / N) of each value, ranks from a stable ascending sort."""
    n = values.shape[0]
    order = jnp.argsort(values, stable=True)
    rank = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    return (rank * n_bins) // n  # int32: fine for N * n_bins < 2**31


def _bin_sums(conf, hit, bin_ids, num_segments: int):
    seg = lambda v: jax.ops.segment_sum(v, bin_ids, num_segments=num_segments)
    return seg(jnp.ones_like(conf)), seg(conf), seg(hit)


def _top_label(probs, labels):
    conf = jnp.max(probs, axis=-1)
    hit = (jnp.argmax(probs, axis=-1) == labels).astype(probs.dtype)
    return conf, hit


def expected_calibration_error(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], n_bins: int = 15
) -> Float[Array, ""]:
    """Top-label ECE with `n_bins` equal-width bins: Σ_b (n_b/N) |acc_b - conf_b|.

    conf_i = max_k p_ik, acc: argmax correct. Computed as Σ_b |Σ_{i∈b}(hit_i - conf_i)| / N.
    """
    return _ece(*_multiclass(probs, labels), _n_bins(n_bins))


@partial(jax.jit, static_argnames=("n_bins", "adaptive"))
def _ece(probs, labels, n_bins, adaptive=False):
    conf, hit = _top_label(*_flat(probs, labels))
    bins = _equal_mass_bins(conf, n_bins) if adaptive else _equal_width_bins(conf, n_bins)[0]
    _, s_conf, s_hit = _bin_sums(conf, hit, bins, n_bins)
    return jnp.sum(jnp.abs(s_hit - s_conf)) / conf.shape[0]


def adaptive_calibration_error(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], n_bins: int = 15
) -> Float[Array, ""]:
    """Top-label ECE with equal-mass bins (rank r -> bin floor(rB/N)), weights n_b/N."""
    return _ece(*_multiclass(probs, labels), _n_bins(n_bins), adaptive=True)


def classwise_calibration_error(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], n_bins: int = 15
) -> Float[Array, ""]:
    """Classwise ECE 1/K Σ_k Σ_b (n_bk/N) |freq_bk - conf_bk| (equal-width bins).

    For class k every example's p_ik is binned; freq_bk is the fraction with y_i = k.
    """
    return _classwise_ece(*_multiclass(probs, labels), _n_bins(n_bins))


@partial(jax.jit, static_argnames=("n_bins",))
def _classwise_ece(probs, labels, n_bins):
    probs, labels = _flat(probs, labels)
    N, K = probs.shape
    one_hot = jax.nn.one_hot(labels, K, dtype=probs.dtype)
    bins, _ = _equal_width_bins(probs, n_bins)
    flat_bins = (bins + n_bins * jnp.arange(K)[None, :]).reshape(-1)
    _, s_conf, s_hit = _bin_sums(probs.reshape(-1), one_hot.reshape(-1), flat_bins, K * n_bins)
    return jnp.sum(jnp.abs(s_hit - s_conf)) / (N * K)


def reliability_diagram(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], n_bins: int = 15
) -> ReliabilityDiagram:
    """Top-label reliability-diagram data with equal-width bins (see `ReliabilityDiagram`).

    Σ_b count_b/N · |accuracy_b - confidence_b| over non-empty bins equals the ECE.
    """
    return _reliability(*_multiclass(probs, labels), _n_bins(n_bins))


@partial(jax.jit, static_argnames=("n_bins",))
def _reliability(probs, labels, n_bins):
    conf, hit = _top_label(*_flat(probs, labels))
    bins, edges = _equal_width_bins(conf, n_bins)
    count, s_conf, s_hit = _bin_sums(conf, hit, bins, n_bins)
    safe = jnp.where(count > 0, count, 1.0)
    nan = jnp.asarray(jnp.nan, probs.dtype)
    return ReliabilityDiagram(
        edges=edges,
        confidence=jnp.where(count > 0, s_conf / safe, nan),
        accuracy=jnp.where(count > 0, s_hit / safe, nan),
        count=count,
    )


# ------------------------------------------------------------------------------- multilabel


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
    """gAP: average precision over all (example, class) pairs pooled into one ranking.

        AP = Σ_n (R_n - R_{n-1}) P_n over distinct thresholds = (1/P) Σ_{i: y_i=1} P(s_i),

    P(t) the precision at threshold t (ties share one threshold), exactly as
    `sklearn.metrics.average_precision_score`; a 1-D input is a single binary ranking.
    """
    probs, labels = _multilabel(probs, labels, unit=False)
    if is_concrete(labels) and not bool(jnp.any(labels > 0)):
        raise ValueError("`labels` has no positive entry: gAP is undefined")
    return _ap_1d(jnp.ravel(probs), jnp.ravel(labels))


def per_class_average_precision(
    probs: Float[Array, "... C"], labels: Float[Array, "... C"]
) -> Float[Array, " C"]:
    """Average precision of each class `(C,)` over the pooled examples; NaN if no positive."""
    return _per_class_ap(*_multilabel(probs, labels, unit=False))


@jax.jit
def _per_class_ap(probs, labels):
    C = probs.shape[-1]
    return jax.vmap(_ap_1d, in_axes=1)(probs.reshape(-1, C), labels.reshape(-1, C))


def mean_average_precision(
    probs: Float[Array, "... C"], labels: Float[Array, "... C"]
) -> Float[Array, ""]:
    """mAP: mean over classes of the per-class AP, skipping classes with no positive label."""
    ap = per_class_average_precision(probs, labels)
    valid = ~jnp.isnan(ap)
    if is_concrete(ap) and not bool(jnp.any(valid)):
        raise ValueError("`labels` has no positive entry in any class: mAP is undefined")
    return jnp.sum(jnp.where(valid, ap, 0.0)) / jnp.maximum(jnp.sum(valid), 1)


def _log1mexp(x):
    """log(1 - exp(x)) for x <= 0, stable on both ends (Mächler 2012)."""
    return jnp.where(x > -jnp.log(2.0), jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


def multilabel_nll(
    log_probs: Float[Array, "... C"],
    labels: Float[Array, "... C"],
    *,
    log_complement: Float[Array, "... C"] | None = None,
) -> Float[Array, ""]:
    """Binary NLL, summed over classes and averaged over examples:

        -1/N Σ_i Σ_c [y_ic log p_ic + (1 - y_ic) log(1 - p_ic)].

    `log_probs` = log p_ic (e.g. `jax.nn.log_sigmoid(z)`); `log_complement` = log(1 - p_ic)
    (e.g. `jax.nn.log_sigmoid(-z)`, the stable choice from logits). If omitted it is
    log1mexp(log p), which is -inf where p rounds to 1 (then the NLL is inf for a 0 label).
    """
    log_probs, labels = _multilabel(log_probs, labels, name="log_probs", unit=False)
    if log_complement is None:
        log_complement = _log1mexp(jnp.minimum(log_probs, 0.0))
    else:
        log_complement = _same_shape("log_complement", log_complement, log_probs)
    return _multilabel_nll(log_probs, labels, log_complement)


@jax.jit
def _multilabel_nll(log_probs, labels, log_complement):
    C = log_probs.shape[-1]
    per_pair = labels * log_probs + (1.0 - labels) * log_complement
    return -jnp.mean(jnp.sum(per_pair.reshape(-1, C), axis=-1))


# -------------------------------------------------------------------------------- summaries


def classification_summary(
    probs: Float[Array, "... K"],
    labels: Int[Array, "..."],
    *,
    log_probs: Float[Array, "... K"] | None = None,
    n_bins: int = 15,
    top_k: int = 5,
) -> dict[str, Array]:
    """The main multiclass metrics as a dict of scalar arrays.

    Keys: accuracy, top{top_k}_accuracy, nll, brier, ece, adaptive_ece, classwise_ece.
    Pass `log_probs` for a stable NLL; otherwise log(max(probs, tiny)) is used.
    """
    probs, labels = _multiclass(probs, labels)
    if log_probs is not None:
        log_probs = _same_shape("log_probs", log_probs, probs)
    top_k = check_positive_int("top_k", top_k, minimum=1)
    return _summary(probs, log_probs, labels, _n_bins(n_bins), top_k)


@partial(jax.jit, static_argnames=("n_bins", "top_k"))
def _summary(probs, log_probs, labels, n_bins, top_k):
    if log_probs is None:
        log_probs = jnp.log(jnp.clip(probs, jnp.finfo(probs.dtype).tiny, None))
    return {
        "accuracy": _accuracy(probs, labels),
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

    The NLL uses `log_probs` (log p, complement by log1mexp) when given, else log p and
    log(1 - p) of `probs` clipped to [tiny, 1]. For logits, call `multilabel_nll` directly.
    """
    probs, labels = _multilabel(probs, labels)
    tiny = jnp.finfo(probs.dtype).tiny
    log_complement = None
    if log_probs is None:
        log_probs = jnp.log(jnp.clip(probs, tiny, 1.0))
        log_complement = jnp.log(jnp.clip(1.0 - probs, tiny, 1.0))
    return {
        "gap": global_average_precision(probs, labels),
        "map": mean_average_precision(probs, labels),
        "nll": multilabel_nll(
            _same_shape("log_probs", log_probs, probs), labels, log_complement=log_complement
        ),
    }
