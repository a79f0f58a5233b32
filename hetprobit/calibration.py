r"""Calibration losses on logits and post-hoc temperature scaling (Guo et al. 2017).

Every loss has the signature `loss(logits, labels, **hyper)` with logits `(..., K)` and
integer labels `(...)`, and returns the per-example loss `(...)`; the caller reduces.
With p = softmax(l) (always computed as log p = log_softmax(l)) and y the label:

    cross_entropy      -log p_y
    label_smoothing    -Σ_k q_k log p_k,  q = (1 - alpha) e_y + alpha / K
    focal (gamma)      -(1 - p_y)^gamma log p_y                      (Lin et al. 2017)
    FLSD-53            focal with gamma = 5 if p_y < 0.2 else 3      (Mukhoti et al. 2020)
    MbLS               -log p_y + lambda * 1/K Σ_j max(0, max_k l_k - l_j - m)
                                                                    (Liu et al. 2022)

MbLS defaults m = 10, lambda = 0.1 are the paper's. The penalty is the mean over the K
classes (as the authors' code, `relu(diff - margin).mean()`), so lambda is on the scale of
one class's hinge; the class attaining the max contributes 0. log(1 - p_y) in the focal
factor is computed as logsumexp_{k≠y} l_k - logsumexp_k l_k, never as log(1 - exp(...)), so
it stays finite (and differentiable) even when p_y rounds to 1.

Temperature scaling (Guo et al. 2017): T* = argmin_T 1/N Σ_i -log softmax(l_i / T)_{y_i},
found with optax L-BFGS over log T (bounded to [t_min, t_max]); `fit_temperature_scaling`
fits T on validation logits and `apply_temperature_scaling` divides test logits by it. (This
post-hoc T is unrelated to the relaxation temperature tau of the tempered likelihoods.)

References:
    Lin, Goyal, Girshick, He & Dollár (2017), "Focal loss for dense object detection",
        arXiv:1708.02002.
    Guo, Pleiss, Sun & Weinberger (2017), "On calibration of modern neural networks",
        arXiv:1706.04599.
    Müller, Kornblith & Hinton (2019), "When does label smoothing help?", arXiv:1906.02629.
    Mukhoti, Kulharia, Sanyal, Golodetz, Torr & Dokania (2020), "Calibrating deep neural
        networks using focal loss", arXiv:2002.09437.
    Liu, Ben Ayed, Galdran & Dolz (2022), "The devil is in the margin: margin-based label
        smoothing for network calibration", arXiv:2111.15430.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu
from jaxtyping import Array, Float, Int

from .validation import (
    check_array,
    check_finite,
    check_positive,
    check_scores_and_labels,
    is_concrete,
)

__all__ = [
    "cross_entropy",
    "label_smoothing_loss",
    "focal_loss",
    "flsd53_loss",
    "mbls_loss",
    "mbls_penalty",
    "CALIBRATION_LOSSES",
    "fit_temperature_scaling",
    "apply_temperature_scaling",
]


def _validate(logits, labels):
    return check_scores_and_labels("logits", logits, labels)


def _check_unit(name: str, value, *, closed_right: bool = True):
    if is_concrete(value):
        v = float(value)
        ok = 0.0 <= v <= 1.0 if closed_right else 0.0 <= v < 1.0
        if not ok:
            raise ValueError(f"`{name}` must lie in [0, 1], got {value!r}")


def _check_nonnegative(name: str, value):
    if is_concrete(value):
        v = np.asarray(value)
        if not np.all(np.isfinite(v)) or not np.all(v >= 0):
            raise ValueError(f"`{name}` must be finite and >= 0, got {value!r}")


def _take(x, labels):
    return jnp.take_along_axis(x, labels[..., None], axis=-1)[..., 0]


def cross_entropy(logits: Float[Array, "... K"], labels: Int[Array, "..."]) -> Float[Array, "..."]:
    """Per-example cross-entropy -log softmax(l)_y, shape `(...)`.

    Raises:
        ValueError: `logits` non-finite or empty, K < 2, `labels` of another shape than
            `logits[..., 0]` or outside [0, K).
        TypeError: `labels` not integer.
    """
    return _ce(*_validate(logits, labels))


@jax.jit
def _ce(logits, labels):
    return -_take(jax.nn.log_softmax(logits, axis=-1), labels)


def label_smoothing_loss(
    logits: Float[Array, "... K"], labels: Int[Array, "..."], *, alpha: float = 0.1
) -> Float[Array, "..."]:
    """Label smoothing -Σ_k q_k log p_k, q = (1 - alpha) one_hot(y) + alpha/K, shape `(...)`.

    Szegedy et al. (2016), arXiv:1512.00567; Müller et al. (2019), arXiv:1906.02629.

    Raises:
        ValueError: `logits` non-finite or empty, K < 2, `labels` of another shape than
            `logits[..., 0]` or outside [0, K); `alpha` outside [0, 1].
        TypeError: `labels` not integer.
    """
    _check_unit("alpha", alpha)
    return _ls(*_validate(logits, labels), alpha)


@jax.jit
def _ls(logits, labels, alpha):
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -(1.0 - alpha) * _take(log_p, labels) - alpha * jnp.mean(log_p, axis=-1)


def _log_p_and_log_rest(logits, labels):
    """(log p_y, log(1 - p_y)) stably, both `(...)`."""
    lse = jax.nn.logsumexp(logits, axis=-1)
    mask = jax.nn.one_hot(labels, logits.shape[-1], dtype=bool)
    lse_rest = jax.nn.logsumexp(jnp.where(mask, -jnp.inf, logits), axis=-1)
    return _take(logits, labels) - lse, lse_rest - lse


@jax.jit
def _focal(logits, labels, gamma):
    log_p, log_rest = _log_p_and_log_rest(logits, labels)
    return -jnp.exp(gamma * log_rest) * log_p


def focal_loss(
    logits: Float[Array, "... K"], labels: Int[Array, "..."], *, gamma: float = 3.0
) -> Float[Array, "..."]:
    """Focal loss -(1 - p_y)^gamma log p_y, shape `(...)`; gamma >= 0 (scalar or `(...)`).

    gamma = 0 is cross-entropy. The gradient flows through the modulating factor
    (Lin et al. 2017, arXiv:1708.02002).

    Raises:
        ValueError: `logits` non-finite or empty, K < 2, `labels` of another shape than
            `logits[..., 0]` or outside [0, K); `gamma` negative or
            non-finite.
        TypeError: `labels` not integer.
    """
    _check_nonnegative("gamma", gamma)
    logits, labels = _validate(logits, labels)
    return _focal(logits, labels, jnp.asarray(gamma, logits.dtype))


def flsd53_loss(
    logits: Float[Array, "... K"],
    labels: Int[Array, "..."],
    *,
    threshold: float = 0.2,
    gamma_low: float = 5.0,
    gamma_high: float = 3.0,
) -> Float[Array, "..."]:
    """Sample-dependent focal loss FLSD-53: gamma = gamma_low (5) if p_y < threshold (0.2)
    else gamma_high (3). The schedule is piecewise constant, so no gradient flows through
    the choice of gamma (it is taken on stop_gradient(p_y)). Mukhoti et al. (2020),
    arXiv:2002.09437.

    Raises:
        ValueError: `logits` non-finite or empty, K < 2, `labels` of another shape than
            `logits[..., 0]` or outside [0, K); `threshold` outside
            [0, 1]; `gamma_low` or `gamma_high` negative.
        TypeError: `labels` not integer.
    """
    _check_unit("threshold", threshold)
    _check_nonnegative("gamma_low", gamma_low)
    _check_nonnegative("gamma_high", gamma_high)
    return _flsd(*_validate(logits, labels), threshold, gamma_low, gamma_high)


@jax.jit
def _flsd(logits, labels, threshold, gamma_low, gamma_high):
    log_p = jax.lax.stop_gradient(jax.nn.log_softmax(logits, axis=-1))
    p_y = jnp.exp(_take(log_p, labels))
    gamma = jnp.where(p_y < threshold, gamma_low, gamma_high).astype(logits.dtype)
    return _focal(logits, labels, gamma)


def mbls_penalty(logits: Float[Array, "... K"], *, margin: float = 10.0) -> Float[Array, "..."]:
    """MbLS inequality penalty 1/K Σ_j max(0, max_k l_k - l_j - m), shape `(...)`.

    Zero when every logit is within `margin` of the largest one (Liu et al. 2022,
    arXiv:2111.15430).

    Raises:
        ValueError: `logits` non-finite or empty; `margin` negative or non-finite.
    """
    _check_nonnegative("margin", margin)
    logits = check_array("logits", logits, min_ndim=1)
    check_finite("logits", logits)
    return _penalty(logits, margin)


@jax.jit
def _penalty(logits, margin):
    gaps = jnp.max(logits, axis=-1, keepdims=True) - logits
    return jnp.mean(jax.nn.relu(gaps - margin), axis=-1)


def mbls_loss(
    logits: Float[Array, "... K"],
    labels: Int[Array, "..."],
    *,
    margin: float = 10.0,
    lam: float = 0.1,
) -> Float[Array, "..."]:
    """Margin-based label smoothing (MbLS): CE + lam * `mbls_penalty(logits, margin)`.

    Defaults m = 10, lambda = 0.1 (Liu et al. 2022, arXiv:2111.15430); both are tunable.

    Raises:
        ValueError: `logits` non-finite or empty, K < 2, `labels` of another shape than
            `logits[..., 0]` or outside [0, K); `margin` or `lam`
            negative.
        TypeError: `labels` not integer.
    """
    _check_nonnegative("lam", lam)
    _check_nonnegative("margin", margin)
    return _mbls(*_validate(logits, labels), margin, lam)


@jax.jit
def _mbls(logits, labels, margin, lam):
    return _ce(logits, labels) + lam * _penalty(logits, margin)


CALIBRATION_LOSSES: dict[str, Callable[..., Array]] = {
    "ce": cross_entropy,
    "ls": label_smoothing_loss,
    "focal": focal_loss,
    "flsd53": flsd53_loss,
    "mbls": mbls_loss,
}
"""Name -> loss, all with the signature `loss(logits, labels, **hyper) -> (...)`."""


# ---------------------------------------------------------------------- temperature scaling


def apply_temperature_scaling(logits: Float[Array, "... K"], temperature) -> Float[Array, "... K"]:
    """Temperature-scaled logits l / T, shape `(..., K)` (Guo et al. 2017, arXiv:1706.04599).

    softmax of the result is the calibrated predictive; T comes from
    `fit_temperature_scaling` on validation data.

    Raises:
        ValueError: `temperature` not a finite scalar > 0; `logits` empty.
        TypeError: `temperature` not a real number.
    """
    check_positive("temperature", temperature)
    logits = check_array("logits", logits, min_ndim=1)
    return logits / temperature


def _mean_nll(log_t, logits, labels, lo, hi):
    log_t = jnp.clip(log_t, lo, hi)
    log_p = jax.nn.log_softmax(logits * jnp.exp(-log_t), axis=-1)
    return -jnp.mean(_take(log_p, labels))


def _fit_log_t(logits, labels, init, lo, hi, max_iter, tol):
    fun = lambda log_t: _mean_nll(log_t, logits, labels, lo, hi)
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fun)

    def step(carry):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=fun)
        return optax.apply_updates(params, updates), state

    def keep_going(carry):
        _, state = carry
        count = otu.tree_get(state, "count")
        err = jnp.abs(otu.tree_get(state, "grad"))
        return (count == 0) | ((count < max_iter) & (err >= tol))

    log_t, _ = jax.lax.while_loop(keep_going, step, (init, opt.init(init)))
    return jnp.clip(log_t, lo, hi)


_fit_log_t_jit = jax.jit(_fit_log_t, static_argnames=("max_iter",))


def fit_temperature_scaling(
    logits: Float[Array, "N K"],
    labels: Int[Array, " N"],
    *,
    init: float = 1.0,
    t_min: float = 1e-2,
    t_max: float = 1e2,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> Float[Array, ""]:
    """Temperature T > 0 minimising the validation NLL 1/N Σ_i -log softmax(l_i / T)_{y_i}.

    L-BFGS (optax, zoom line search) over log T, starting at `init`, stopping when
    |d NLL / d log T| < `tol` or after `max_iter` iterations. The NLL is quasi-convex in
    log T (it is convex in 1/T), so the local minimum is global. T is confined to
    [t_min, t_max] (the objective is flat outside). If there is no interior optimum, e.g.
    perfectly separated validation data where the NLL keeps falling as T -> 0, T moves
    towards the bound until the gradient falls below `tol` (the NLL is then ~0).

    Args:
        logits: validation logits `(..., K)` (leading axes pooled).
        labels: integer labels `(...)`.
        init: starting temperature, > 0.
        t_min, t_max: bounds of T, 0 < t_min < t_max.
        max_iter: maximum L-BFGS iterations, >= 1.
        tol: stopping tolerance on |d NLL / d log T|, > 0.
    Returns:
        scalar T; use `apply_temperature_scaling(logits, T)` at test time.
    Raises:
        ValueError: `init`, `t_min`, `t_max` or `tol` not > 0; `t_min >= t_max`;
            `max_iter` < 1; the `logits` / `labels` errors of `cross_entropy`.
    """
    for name, v in (("init", init), ("t_min", t_min), ("t_max", t_max), ("tol", tol)):
        check_positive(name, v)
    if not t_min < t_max:
        raise ValueError(f"`t_min` must be < `t_max`, got t_min={t_min}, t_max={t_max}")
    if max_iter < 1:
        raise ValueError(f"`max_iter` must be >= 1, got {max_iter}")
    logits, labels = _validate(logits, labels)
    K = logits.shape[-1]
    logits, labels = logits.reshape(-1, K), labels.reshape(-1)
    dtype = logits.dtype
    lo, hi = jnp.log(jnp.asarray(t_min, dtype)), jnp.log(jnp.asarray(t_max, dtype))
    init_log_t = jnp.clip(jnp.log(jnp.asarray(init, dtype)), lo, hi)
    log_t = _fit_log_t_jit(logits, labels, init_log_t, lo, hi, int(max_iter), tol)
    return jnp.exp(log_t)
