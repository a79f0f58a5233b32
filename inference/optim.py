r"""The default optimiser of `fit`: AdamW, warm-up + cosine schedule, global-norm clipping.

As in Collier et al. 2021, "Correlated input-dependent label noise in large-scale image
classification", arXiv:2105.10305, App. B (linear warm-up, weight decay, gradients clipped
to L2 norm 1.0), with Adam instead of momentum SGD because the networks here are small:

    lr(t) = peak * t / warmup                       for t < warmup
          = peak * (1 + cos(pi (t - warmup) / (T - warmup))) / 2 * (1 - a) + a * peak
    update = AdamW(clip_by_global_norm(grad, clip_norm), lr(t), weight_decay)

with a = `end_fraction`. The transformation is plain optax; `fit` hands it to NumPyro's SVI
through `numpyro.optim.optax_to_numpyro`.
"""

from __future__ import annotations

import optax

from hetprobit.validation import check_positive, check_positive_int

__all__ = ["default_optimizer"]


def default_optimizer(
    num_steps: int,
    *,
    learning_rate: float = 3e-3,
    warmup_fraction: float = 0.05,
    end_fraction: float = 0.01,
    weight_decay: float = 1e-4,
    clip_norm: float = 1.0,
) -> optax.GradientTransformation:
    """AdamW with linear warm-up, cosine decay and global-norm gradient clipping.

    Args:
        num_steps: total number of optimiser steps T (epochs x steps per epoch).
        learning_rate: peak learning rate.
        warmup_fraction: fraction of T spent in the linear warm-up (0 <= f < 1).
        end_fraction: final learning rate as a fraction of the peak.
        weight_decay: decoupled weight decay of AdamW (>= 0).
        clip_norm: maximum global L2 norm of the gradient.

    Returns:
        An `optax.GradientTransformation`.

    Raises:
        TypeError, ValueError: an argument outside its range (named with its value).
    """
    num_steps = check_positive_int("num_steps", num_steps)
    check_positive("learning_rate", learning_rate)
    check_positive("clip_norm", clip_norm)
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"`warmup_fraction` must lie in [0, 1), got {warmup_fraction}")
    if not 0.0 <= end_fraction <= 1.0:
        raise ValueError(f"`end_fraction` must lie in [0, 1], got {end_fraction}")
    if not weight_decay >= 0.0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}")
    warmup = int(round(warmup_fraction * num_steps))
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else learning_rate,
        peak_value=learning_rate,
        warmup_steps=warmup,
        decay_steps=max(num_steps, warmup + 1),
        end_value=learning_rate * end_fraction,
    )
    return optax.chain(
        optax.clip_by_global_norm(clip_norm),
        optax.adamw(schedule, weight_decay=weight_decay),
    )
