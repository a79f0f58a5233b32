r"""Calibration errors (ECE, adaptive ECE, classwise ECE) and reliability diagrams.

Inputs are probabilities `(..., K)` and integer labels `(...)`, pooled into N examples.
Top-label quantities use conf_i = max_k p_ik and hit_i = 1[r_i = 0], r_i the rank of the
true class under the tie rule of `hetprobit.metrics.scores` (ties to the lowest class
index, as `accuracy`):

    ECE           = Σ_b (n_b/N) |acc_b - conf_b| = Σ_b |Σ_{i∈b} (hit_i - conf_i)| / N
    classwise ECE = 1/K Σ_k Σ_b (n_bk/N) |freq_bk - conf_bk|,  p_ik binned per class k

Equal-width bins (ECE, classwise ECE, reliability diagram) are right-closed,
(e_{b-1}, e_b] with e_b = b/B rounded to the dtype of `probs`, and a value of exactly 0
goes to the first bin. Tied values always share a bin.

Equal-mass bins (adaptive ECE). A confidence c_i has the *minimum rank*
m_i = #{j : c_j < c_i} (the number of strictly smaller confidences) and goes to bin
floor(m_i B / N). Tied confidences share m_i, hence one bin: a group of ties is never split
between bins, and the result does not depend on the order of the rows. Without ties every
bin holds floor(N/B) or ceil(N/B) examples; a tie group makes its bin larger (and may leave
later bins empty). Ten rows at confidence 0.7 with 7 correct fall in one bin: ACE =
|7 - 7 * 0.7| / 10 = 0 (up to float rounding), for any `n_bins` and any row order.

References: Naeini, Cooper & Hauskrecht (2015), "Obtaining well calibrated probabilities
using Bayesian binning", AAAI; Guo, Pleiss, Sun & Weinberger (2017), "On calibration of
modern neural networks", arXiv:1706.04599 (ECE, reliability diagrams); Nixon, Dusenberry,
Zhang, Jerfel & Tran (2019), "Measuring calibration in deep learning", arXiv:1904.01685
(adaptive, equal-mass binning); Kull, Perello-Nieto, Kängsepp, Silva Filho, Song & Flach
(2019), "Beyond temperature scaling: obtaining well-calibrated multiclass probabilities
with Dirichlet calibration", arXiv:1910.12656 (classwise ECE).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ._inputs import flat, multiclass, n_bins_arg
from .scores import label_rank

__all__ = [
    "ReliabilityDiagram",
    "expected_calibration_error",
    "adaptive_calibration_error",
    "classwise_calibration_error",
    "reliability_diagram",
]


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


def equal_width_bins(values, n_bins: int):
    """Right-closed equal-width bin index in [0, B) of values in [0, 1]; 0 -> bin 0."""
    edges = jnp.linspace(0.0, 1.0, n_bins + 1, dtype=values.dtype)
    # number of interior edges strictly below v = index of the bin (e_{b-1}, e_b] holding v
    interior = edges[1:-1].reshape((1,) * values.ndim + (n_bins - 1,))
    return jnp.sum(values[..., None] > interior, axis=-1), edges


def equal_mass_bins(values, n_bins: int):
    """Bin floor(m B / N) of each value of `(N,)`, m = #{values strictly smaller}."""
    n = values.shape[0]
    min_rank = jnp.searchsorted(jnp.sort(values), values, side="left").astype(jnp.int32)
    return (min_rank * n_bins) // n  # int32: fine for N * n_bins < 2**31


def _bin_sums(conf, hit, bin_ids, num_segments: int):
    seg = lambda v: jax.ops.segment_sum(v, bin_ids, num_segments=num_segments)
    return seg(jnp.ones_like(conf)), seg(conf), seg(hit)


def _top_label(probs, labels):
    conf = jnp.max(probs, axis=-1)
    hit = (label_rank(probs, labels) == 0).astype(probs.dtype)
    return conf, hit


def expected_calibration_error(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], n_bins: int = 15
) -> Float[Array, ""]:
    """Top-label ECE with `n_bins` equal-width bins: Σ_b (n_b/N) |acc_b - conf_b|.

    Args:
        probs: probabilities `(..., K)`; leading axes pooled.
        labels: integer labels `(...)`.
        n_bins: number of bins B (static under jit).
    Returns:
        scalar ECE in [0, 1].
    Raises:
        ValueError: `probs` outside [0, 1] (tolerance 1e-5), non-finite or empty; `labels`
            of another shape or outside [0, K); K < 2; `n_bins` < 1.
        TypeError: `labels` or `n_bins` not an integer.
    """
    return _ece(*multiclass(probs, labels), n_bins_arg(n_bins))


@partial(jax.jit, static_argnames=("n_bins", "adaptive"))
def _ece(probs, labels, n_bins, adaptive=False):
    conf, hit = _top_label(*flat(probs, labels))
    bins = equal_mass_bins(conf, n_bins) if adaptive else equal_width_bins(conf, n_bins)[0]
    _, s_conf, s_hit = _bin_sums(conf, hit, bins, n_bins)
    return jnp.sum(jnp.abs(s_hit - s_conf)) / conf.shape[0]


def adaptive_calibration_error(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], n_bins: int = 15
) -> Float[Array, ""]:
    """Top-label ECE with equal-mass bins (module docstring: tied confidences share a bin).

    Σ_b (n_b/N) |acc_b - conf_b| with example i in bin floor(m_i B / N), m_i the number of
    confidences strictly below conf_i (Nixon et al. 2019, arXiv:1904.01685).

    Args:
        probs: probabilities `(..., K)`; leading axes pooled.
        labels: integer labels `(...)`.
        n_bins: number of bins B (static under jit).
    Returns:
        scalar adaptive ECE in [0, 1], invariant to the order of the examples.
    Raises:
        ValueError: `probs` outside [0, 1] (tolerance 1e-5), non-finite or empty; `labels`
            of another shape or outside [0, K); K < 2; `n_bins` < 1.
        TypeError: `labels` or `n_bins` not an integer.
    """
    return _ece(*multiclass(probs, labels), n_bins_arg(n_bins), adaptive=True)


def classwise_calibration_error(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], n_bins: int = 15
) -> Float[Array, ""]:
    """Classwise ECE 1/K Σ_k Σ_b (n_bk/N) |freq_bk - conf_bk| (Kull et al. 2019).

    For class k every example's p_ik is binned (equal-width); freq_bk is the fraction of
    the bin's examples with y_i = k.

    Args:
        probs: probabilities `(..., K)`; leading axes pooled.
        labels: integer labels `(...)`.
        n_bins: number of bins B (static under jit).
    Returns:
        scalar classwise ECE in [0, 1].
    Raises:
        ValueError: `probs` outside [0, 1] (tolerance 1e-5), non-finite or empty; `labels`
            of another shape or outside [0, K); K < 2; `n_bins` < 1.
        TypeError: `labels` or `n_bins` not an integer.
    """
    return _classwise_ece(*multiclass(probs, labels), n_bins_arg(n_bins))


@partial(jax.jit, static_argnames=("n_bins",))
def _classwise_ece(probs, labels, n_bins):
    probs, labels = flat(probs, labels)
    N, K = probs.shape
    one_hot = jax.nn.one_hot(labels, K, dtype=probs.dtype)
    bins, _ = equal_width_bins(probs, n_bins)
    flat_bins = (bins + n_bins * jnp.arange(K)[None, :]).reshape(-1)
    _, s_conf, s_hit = _bin_sums(probs.reshape(-1), one_hot.reshape(-1), flat_bins, K * n_bins)
    return jnp.sum(jnp.abs(s_hit - s_conf)) / (N * K)


def reliability_diagram(
    probs: Float[Array, "... K"], labels: Int[Array, "..."], n_bins: int = 15
) -> ReliabilityDiagram:
    """Top-label reliability-diagram data with equal-width bins (Guo et al. 2017).

    Σ_b count_b/N · |accuracy_b - confidence_b| over non-empty bins equals the ECE.

    Args:
        probs: probabilities `(..., K)`; leading axes pooled.
        labels: integer labels `(...)`.
        n_bins: number of bins B (static under jit).
    Returns:
        `ReliabilityDiagram(edges, confidence, accuracy, count)`.
    Raises:
        ValueError: `probs` outside [0, 1] (tolerance 1e-5), non-finite or empty; `labels`
            of another shape or outside [0, K); K < 2; `n_bins` < 1.
        TypeError: `labels` or `n_bins` not an integer.
    """
    return _reliability(*multiclass(probs, labels), n_bins_arg(n_bins))


@partial(jax.jit, static_argnames=("n_bins",))
def _reliability(probs, labels, n_bins):
    conf, hit = _top_label(*flat(probs, labels))
    bins, edges = equal_width_bins(conf, n_bins)
    count, s_conf, s_hit = _bin_sums(conf, hit, bins, n_bins)
    safe = jnp.where(count > 0, count, 1.0)
    nan = jnp.asarray(jnp.nan, probs.dtype)
    return ReliabilityDiagram(
        edges=edges,
        confidence=jnp.where(count > 0, s_conf / safe, nan),
        accuracy=jnp.where(count > 0, s_hit / safe, nan),
        count=count,
    )
