r"""Controlled, input-dependent and class-correlated label noise for clean data sets.

Clean benchmark labels (scikit-learn's digits) carry almost no aleatoric noise, so a
heteroscedastic model has nothing to learn there. `inject_label_noise` plants noise of the
kind the heteroscedastic probit describes: labels are swapped only within a few
*confusable pairs* of classes (a, b), and the swap probability grows with how ambiguous the
input is between the two classes.

Ambiguity. For an example x of class a in the pair (a, b), with class means m_a, m_b
(computed on the data given), its position along the segment from m_a to m_b is

    t(x) = <x - m_a, m_b - m_a> / ||m_b - m_a||^2      (0 at m_a, 1 at m_b).

Swap probability. p(x) = min(p_max, c w(x)),  w(x) = exp(kappa t(x)),

with c > 0 solved (bisection) so that the average swap probability over the examples of the
two classes equals `rate`; the cap p_max = 0.5 keeps the clean label the most likely one, so
the noise is identifiable. Examples of classes in no pair keep their labels.

The true noise structure is returned with the labels: the pairs, each example's swap
probability, and the class transition matrix T[a, b] = mean P(noisy = b | clean = a), so a
learned covariance can be scored against it (`pair_recovery`).

Confusable pairs are chosen from the data (`confusable_pairs`): the greedy disjoint pairs of
classes with the closest means. On digits (pixels / 16) they are (1, 8), (3, 9), ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from hetprobit.validation import check_positive_int

__all__ = ["LabelNoise", "confusable_pairs", "inject_label_noise", "pair_recovery"]

MAX_SWAP_PROBABILITY = 0.5


class LabelNoise(NamedTuple):
    """Noisy labels and the ground truth of the process that made them.

    Attributes:
        labels: noisy labels `(N,)`, int32.
        clean: the labels given, `(N,)`.
        swap_probability: P(label of example n is swapped), `(N,)`.
        swapped: whether it was, `(N,)` bool.
        pairs: the confusable pairs `((a, b), ...)`, a < b.
        transition: T `(K, K)`, T[a, b] = mean over class-a examples of P(noisy = b).
    """

    labels: np.ndarray
    clean: np.ndarray
    swap_probability: np.ndarray
    swapped: np.ndarray
    pairs: tuple[tuple[int, int], ...]
    transition: np.ndarray


def _class_means(x: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    missing = [k for k in range(num_classes) if not np.any(y == k)]
    if missing:
        raise ValueError(f"`y` has no example of class(es) {missing}")
    return np.stack([x[y == k].mean(axis=0) for k in range(num_classes)])


def _check_xy(x, y) -> tuple[np.ndarray, np.ndarray, int]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim < 2 or y.shape != x.shape[:1]:
        raise ValueError(f"`x` must be (N, ...) and `y` (N,), got {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("`x` contains non-finite values")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"`y` must hold non-negative integer labels, got dtype {y.dtype}")
    return x.reshape(len(x), -1), y.astype(np.int64), int(y.max()) + 1


def _capped_scaling(w: np.ndarray, rate: float) -> np.ndarray:
    """min(p_max, c w) with c such that its mean is `rate` (<= p_max), by bisection on c."""
    lo, hi = 0.0, MAX_SWAP_PROBABILITY / w.min()  # at hi every entry is capped: mean = p_max
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.minimum(MAX_SWAP_PROBABILITY, mid * w).mean() < rate else (lo, mid)
    return np.minimum(MAX_SWAP_PROBABILITY, hi * w)


def confusable_pairs(x, y, *, num_pairs: int = 3) -> tuple[tuple[int, int], ...]:
    """Greedy disjoint class pairs with the closest class means (squared Euclidean).

    Args:
        x: inputs `(N, ...)` (flattened per example).
        y: integer labels `(N,)` in [0, K).
        num_pairs: how many disjoint pairs, 1 <= num_pairs <= K // 2.

    Returns:
        `((a, b), ...)` with a < b, closest first.

    Raises:
        ValueError: bad shapes, non-finite `x`, a class without examples, or too many pairs.
    """
    x, y, K = _check_xy(x, y)
    check_positive_int("num_pairs", num_pairs)
    if num_pairs > K // 2:
        raise ValueError(f"`num_pairs` must be <= K // 2 = {K // 2}, got {num_pairs}")
    means = _class_means(x, y, K)
    dist = ((means[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    i, j = np.triu_indices(K, k=1)
    used: set[int] = set()
    pairs = []
    for n in np.argsort(dist[i, j], kind="stable"):
        a, b = int(i[n]), int(j[n])
        if a not in used and b not in used:
            pairs.append((a, b))
            used |= {a, b}
            if len(pairs) == num_pairs:
                break
    return tuple(pairs)


def inject_label_noise(
    x,
    y,
    *,
    rate: float,
    seed: int,
    pairs: Sequence[tuple[int, int]] | None = None,
    num_pairs: int = 3,
    sharpness: float = 4.0,
) -> LabelNoise:
    """Swap labels within confusable pairs with a probability that grows with ambiguity.

    Args:
        x: inputs `(N, ...)`.
        y: clean integer labels `(N,)` in [0, K).
        rate: average swap probability within the pair classes, 0 <= rate <= 0.5.
        seed: seed of the swaps (numpy `default_rng`), keyword-only.
        pairs: disjoint class pairs; default `confusable_pairs(x, y, num_pairs=num_pairs)`.
        num_pairs: used when `pairs` is None.
        sharpness: kappa >= 0 in w(x) = exp(kappa t(x)); 0 gives input-independent swaps.

    Returns:
        A `LabelNoise` (see the module docstring for the process).

    Raises:
        ValueError: `rate` outside [0, 0.5], negative `sharpness`, pairs that overlap, repeat
            a class, or name a class outside [0, K).
    """
    x, y, K = _check_xy(x, y)
    if not 0.0 <= float(rate) <= MAX_SWAP_PROBABILITY:
        raise ValueError(f"`rate` must lie in [0, {MAX_SWAP_PROBABILITY}], got {rate}")
    if not (np.isfinite(sharpness) and sharpness >= 0):
        raise ValueError(f"`sharpness` must be finite and >= 0, got {sharpness}")
    pairs = confusable_pairs(x, y, num_pairs=num_pairs) if pairs is None else pairs
    pairs = tuple((min(int(a), int(b)), max(int(a), int(b))) for a, b in pairs)
    flat = [c for p in pairs for c in p]
    if len(set(flat)) != len(flat) or any(not 0 <= c < K for c in flat):
        raise ValueError(
            f"`pairs` must be disjoint pairs of distinct classes in [0, {K}), got {pairs}"
        )

    means = _class_means(x, y, K)
    partner = np.full(K, -1)
    prob = np.zeros(len(y))
    for a, b in pairs:
        partner[a], partner[b] = b, a
        members = np.flatnonzero((y == a) | (y == b))
        own, other = means[y[members]], means[partner[y[members]]]
        direction = other - own
        t = np.sum((x[members] - own) * direction, axis=1) / np.sum(direction**2, axis=1)
        w = np.exp(sharpness * (t - t.max()))  # shifted for overflow safety; c absorbs it
        prob[members] = _capped_scaling(w, rate)

    swapped = np.random.default_rng(seed).random(len(y)) < prob
    noisy = np.where(swapped, partner[y], y).astype(np.int32)
    transition = np.zeros((K, K))
    for k in range(K):
        p_k = prob[y == k].mean()
        transition[k, k] = 1.0 - p_k
        if partner[k] >= 0:
            transition[k, partner[k]] = p_k
    return LabelNoise(noisy, y.astype(np.int32), prob, swapped, pairs, transition)


def pair_recovery(ranked_pairs, true_pairs) -> dict[str, float]:
    """How well a ranked table of class pairs recovers the planted pairs.

    Args:
        ranked_pairs: pairs ranked by a learned statistic (e.g. `covariance_summary(...)
            .top_correlation` with `top_k=None`), each `(i, j)` or a `ClassPair`.
        true_pairs: the planted pairs, e.g. `LabelNoise.pairs`.

    Returns:
        `{"recall_at_P": fraction of the P planted pairs among the top P ranked,
        "mean_reciprocal_rank": mean of 1 / (1 + rank) over planted pairs (0 if absent)}`.
    """
    ranked = [frozenset((int(p[0]), int(p[1]))) for p in ranked_pairs]
    truth = [frozenset((int(a), int(b))) for a, b in true_pairs]
    if not truth:
        raise ValueError("`true_pairs` is empty")
    top = set(ranked[: len(truth)])
    rank = {p: n for n, p in enumerate(ranked)}
    mrr = [1.0 / (1 + rank[p]) if p in rank else 0.0 for p in truth]
    return {
        "recall_at_P": sum(p in top for p in truth) / len(truth),
        "mean_reciprocal_rank": float(np.mean(mrr)),
    }
