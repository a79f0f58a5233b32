r"""Relaxation sweep: the bias-variance trade-off of the relaxation temperature tau.

The sweep is over the temperature tau of the tempered softmax that relaxes the probit's
argmax (Collier et al. 2020, "Analysis of softmax approximation for deep classifiers under
input-dependent label noise", arXiv:2003.06778) -- not post-hoc temperature scaling.

The relaxed likelihood p_c ≈ (1/S) Σ_s softmax(u^(s)/tau)_c is biased for tau > 0
(bias -> 0 as tau -> 0) while the variance of its gradient grows as tau -> 0. For a grid of
tau this module

- fits the model at every tau and picks the tau with the smallest validation NLL
  (`relaxation_sweep`);
- measures the relaxation bias against the exact probit probability
  (`relaxation_bias`: mean / max |p_tau - p_exact| over examples and classes, with
  `hetprobit.exact.exact_choice_probs` for K <= 10, and, above, a large-sample Monte Carlo
  reference at tau = 1e-3);
- measures the gradient variance (`gradient_variance`): the trace of the covariance, over
  independent Monte Carlo keys, of the gradient of the loss (negative ELBO) w.r.t. the
  unconstrained parameters, Σ_i Var_k[g_i(k)], at fixed parameters and minibatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from hetprobit import multilabel_nll, negative_log_likelihood, tempered_softmax_log_probs
from hetprobit.exact import MAX_EXACT_CLASSES, exact_choice_probs
from hetprobit.noise import NoiseStructure
from hetprobit.validation import check_array, check_positive, check_positive_int

from .data import as_typed_key, check_data, model_call_kwargs
from .driver import FitResult, fit
from .predictive import predict_log_probs

__all__ = [
    "RelaxationBias",
    "RelaxationSweep",
    "relaxation_bias",
    "gradient_variance",
    "relaxation_sweep",
]


class RelaxationBias(NamedTuple):
    """|p_tau - p_exact| per temperature: `mean_abs` and `max_abs`, each `(T,)`."""

    taus: np.ndarray
    mean_abs: np.ndarray
    max_abs: np.ndarray


class RelaxationSweep(NamedTuple):
    """Outcome of `relaxation_sweep` (arrays over the grid, `(T,)`).

    Attributes:
        taus: the grid.
        val_nll: validation NLL of each fit (predictive with the model's eval samples).
        best_tau, best_index: the grid point with the smallest validation NLL.
        grad_variance: `gradient_variance` at each fit's parameters.
        bias: `RelaxationBias` at the true (mu, Sigma) when `truth` was given, else None.
        fits: the `FitResult` of every tau.
    """

    taus: np.ndarray
    val_nll: np.ndarray
    best_tau: float
    best_index: int
    grad_variance: np.ndarray
    bias: RelaxationBias | None
    fits: tuple[FitResult, ...]


def _check_taus(taus) -> np.ndarray:
    taus = np.asarray(taus, dtype=float).reshape(-1)
    if taus.size == 0:
        raise ValueError("`taus` is empty")
    for t in taus:
        check_positive("taus", float(t))
    return taus


def relaxation_bias(
    mu: Float[Array, "N K"],
    noise: NoiseStructure,
    taus: Sequence[float],
    *,
    key: PRNGKeyArray,
    num_samples: int = 4096,
    reference_samples: int = 65536,
) -> RelaxationBias:
    """Bias of the tempered-softmax probabilities against the exact probit (module doc).

    Args:
        mu: mean utilities `(N, K)`; noise: their `NoiseStructure` (batch `(N,)` or `()`).
        taus: temperatures.
        key: PRNG key; the same draws serve every tau (common random numbers), so the
            differences between taus are not masked by Monte Carlo noise.
        num_samples: S of the tempered estimate (its MC error, ~ 1/sqrt(S), is a floor).
        reference_samples: S of the Monte Carlo reference used when K > 10.

    Raises:
        TypeError, ValueError: bad `mu` shape, a tau <= 0, non-positive sample counts.
    """
    mu = check_array("mu", mu, ndim=2)
    taus = _check_taus(taus)
    S = check_positive_int("num_samples", num_samples)
    key = as_typed_key(key)
    K = mu.shape[-1]
    if K <= MAX_EXACT_CLASSES:
        cov = jnp.broadcast_to(noise.covariance(), (*mu.shape, K))
        exact = exact_choice_probs(mu, cov)
    else:
        ref_s = check_positive_int("reference_samples", reference_samples)
        exact = jnp.exp(
            tempered_softmax_log_probs(
                mu, noise, key=jax.random.fold_in(key, 1), tau=1e-3, num_samples=ref_s
            )
        )
    mean_abs, max_abs = [], []
    for tau in taus:
        p = jnp.exp(tempered_softmax_log_probs(mu, noise, key=key, tau=float(tau), num_samples=S))
        err = jnp.abs(p - exact)
        mean_abs.append(float(jnp.mean(err)))
        max_abs.append(float(jnp.max(err)))
    return RelaxationBias(taus, np.asarray(mean_abs), np.asarray(max_abs))


def gradient_variance(
    result: FitResult,
    batch: Sequence[Array],
    *,
    key: PRNGKeyArray,
    num_keys: int = 32,
    num_data: int | None = None,
    **model_kwargs,
) -> float:
    """Σ_i Var_k[d loss(k) / d theta_i] over `num_keys` Monte Carlo keys (module doc).

    Args:
        result: a `FitResult` (its SVI, final state and loss).
        batch: one minibatch tuple like `fit`'s `data` (held fixed).
        key: PRNG key of the loss evaluations.
        num_keys: number of independent keys.
        num_data: N for the model's likelihood scaling (default: the batch size).
        **model_kwargs: as in `fit`.

    Raises:
        TypeError, ValueError: bad `batch`, `num_keys` < 2.
    """
    batch, B = check_data("batch", batch)
    n = check_positive_int("num_keys", num_keys, minimum=2)
    svi = result.svi
    kwargs = model_call_kwargs(svi.model, model_kwargs, B if num_data is None else num_data)
    dyn, static = eqx.partition(kwargs, eqx.is_array)
    unconstrained = svi.optim.get_params(result.state.svi_state.optim_state)
    keys = jax.random.split(as_typed_key(key), n)
    g = _loss_gradients(svi, static, unconstrained, keys, dyn, batch)
    return float(sum(jnp.sum(jnp.var(x, axis=0, ddof=1)) for x in jax.tree.leaves(g)))


@eqx.filter_jit
def _loss_gradients(svi, static, unconstrained, keys, dyn, batch):
    """d loss / d theta (unconstrained) at each key, leaves `(num_keys, ...)`. The SVI and the
    static kwargs are jit-static, so repeated calls on one fit compile once."""

    def loss(u, k):
        kw = eqx.combine(dyn, static)
        return svi.loss.loss(k, svi.constrain_fn(u), svi.model, svi.guide, *batch, **kw)

    return jax.vmap(jax.grad(loss), in_axes=(None, 0))(unconstrained, keys)


def relaxation_sweep(
    make_problem: Callable[[float], tuple[object, object, dict]],
    data: Sequence[Array],
    val_data: Sequence[Array],
    *,
    taus: Sequence[float],
    key: PRNGKeyArray,
    num_epochs: int,
    batch_size: int,
    multilabel: bool = False,
    num_grad_keys: int = 16,
    truth: tuple[Array, NoiseStructure] | None = None,
    num_eval_samples: int | None = None,
    **fit_kwargs,
) -> RelaxationSweep:
    """Fit at every tau, choose by validation NLL, report bias and gradient variance.

    Args:
        make_problem: `make_problem(tau) -> (model, guide, model_kwargs)`, e.g. a
            `classifier_model` with a head built at temperature tau.
        data, val_data: `(*inputs, labels)` tuples (labels last).
        taus: the temperature grid.
        key: PRNG key; every tau uses the same fit key (common random numbers).
        num_epochs, batch_size, **fit_kwargs: passed to `fit` (progress off by default).
        multilabel: labels are 0/1 indicators (binary NLL).
        num_grad_keys: keys for `gradient_variance` (on the first training minibatch).
        truth: optional (mu, noise) of the validation examples, for `relaxation_bias`.
        num_eval_samples: S of the validation predictive (None: the model's setting).

    Raises:
        TypeError, ValueError: an empty or non-positive `taus`, bad `data` / `val_data`
            (`val_data` needs labels last), and whatever `fit` raises.
    """
    taus = _check_taus(taus)
    data, _ = check_data("data", data)
    val_data, _ = check_data("val_data", val_data)
    if len(val_data) < 2:
        raise ValueError("`val_data` must be (*inputs, labels)")
    key = as_typed_key(key)
    k_fit, k_val, k_grad, k_bias = jax.random.split(key, 4)
    fit_kwargs.setdefault("progress", False)
    fits, nlls, gvars = [], [], []
    for tau in taus:
        model, guide, kwargs = make_problem(float(tau))
        res = fit(
            model,
            guide,
            data,
            num_epochs=num_epochs,
            batch_size=batch_size,
            key=k_fit,
            **fit_kwargs,
            **kwargs,
        )
        lp = predict_log_probs(
            model,
            guide,
            res.params,
            val_data[:-1],
            key=k_val,
            num_eval_samples=num_eval_samples,
            **kwargs,
        )
        labels = val_data[-1]
        nll = multilabel_nll(lp, labels) if multilabel else negative_log_likelihood(lp, labels)
        nlls.append(float(nll))
        batch = tuple(a[:batch_size] for a in data)
        gvars.append(
            gradient_variance(
                res,
                batch,
                key=k_grad,
                num_keys=num_grad_keys,
                num_data=data[0].shape[0],
                **kwargs,
            )
        )
        fits.append(res)
    bias = None
    if truth is not None:
        bias = relaxation_bias(truth[0], truth[1], taus, key=k_bias)
    best = int(np.argmin(nlls))
    return RelaxationSweep(
        taus, np.asarray(nlls), float(taus[best]), best, np.asarray(gvars), bias, tuple(fits)
    )
