"""Input checks shared by the metric modules (private to `hetprobit.metrics`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..validation import (
    check_array,
    check_finite,
    check_indicator_labels,
    check_positive_int,
    check_scores_and_labels,
    is_concrete,
)

PROB_TOL = 1e-5


def check_unit_interval(name: str, probs) -> None:
    """Raise ValueError naming `name` if a concrete `probs` leaves [0, 1] (tolerance 1e-5)."""
    if is_concrete(probs):
        host = np.asarray(probs)
        lo, hi = float(host.min()), float(host.max())
        if lo < -PROB_TOL or hi > 1 + PROB_TOL:
            bad = lo if lo < -PROB_TOL else hi
            raise ValueError(f"`{name}` must be probabilities in [0, 1], found {bad!r}")


def multiclass(probs, labels, *, name: str = "probs", unit: bool = True):
    """Validate `(..., K)` scores and `(...)` integer labels in [0, K)."""
    probs, labels = check_scores_and_labels(name, probs, labels)
    if unit:
        check_unit_interval(name, probs)
    return probs, labels


def flat(probs, labels):
    """Pool the leading axes: `(N, K)` scores and `(N,)` labels."""
    return probs.reshape(-1, probs.shape[-1]), labels.reshape(-1)


def multilabel(probs, labels, *, name: str = "probs", unit: bool = True):
    """Validate `(..., C)` scores and 0/1 indicator labels of the same shape."""
    probs = check_array(name, probs, min_ndim=1)
    check_finite(name, probs)
    if unit:
        check_unit_interval(name, probs)
    labels_arr = jnp.asarray(labels)
    if labels_arr.shape != probs.shape:
        raise ValueError(
            f"`labels` must have the shape of `{name}` {probs.shape} (multilabel 0/1 "
            f"indicators), got {labels_arr.shape}"
        )
    return probs, check_indicator_labels("labels", labels_arr)


def same_shape(name: str, x, like):
    """A finite array of the same shape as `like`."""
    x = check_array(name, x)
    if x.shape != like.shape:
        raise ValueError(f"`{name}` must have shape {like.shape}, got {x.shape}")
    return check_finite(name, x)


def n_bins_arg(n_bins) -> int:
    """`n_bins` as a Python int >= 1."""
    return check_positive_int("n_bins", n_bins, minimum=1)
