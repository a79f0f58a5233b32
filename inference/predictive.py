r"""Posterior predictive class probabilities and their metric summaries.

For inputs x, posterior draws theta_p ~ q(theta) of the guide (p = 1..P; one point for MAP)
and the model's label distribution at site `site`,

    log p(y = c | x) = log (1/P) Σ_p p(y = c | x, theta_p)            (log-mean-exp over p)

where p(y = c | x, theta) is the distribution's own full predictive: `log_probs()` of
`HeteroscedasticChoice` / `HeteroscedasticIndicators` (the tempered Monte Carlo estimate
with `num_eval_samples` draws; multilabel: log P(y_c = 1)), or the logits of a NumPyro
`Categorical` / `Bernoulli`. The model is run with the inputs only (labels None) under
`seed`, with the fitted params and each posterior draw substituted.

Monte Carlo keys: the inputs are processed in chunks of `batch_size` examples (all at
once by default), and the key of chunk i is `fold_in(key, i)`: the result is a
deterministic function of `key` and `batch_size`.

Metrics come from the one implementation in `hetprobit.metrics` (`evaluate`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray
from numpyro import handlers

from hetprobit import classification_summary, multilabel_summary
from hetprobit.validation import check_positive_int

from .svi import as_typed_key, check_data

__all__ = ["LogProbsFn", "predict_log_probs", "predict_probs", "evaluate", "log_probs_fn"]


def _distribution_log_probs(fn, num_eval_samples: int | None) -> Array:
    """Per-class log-probabilities `(*batch, K)` of a label distribution."""
    while isinstance(fn, dist.MaskedDistribution | dist.ExpandedDistribution):
        fn = fn.base_dist
    if hasattr(fn, "log_probs"):
        if num_eval_samples is not None and hasattr(fn, "with_monte_carlo"):
            fn = fn.with_monte_carlo(fn.monte_carlo.replace(num_samples=num_eval_samples))
        return fn.log_probs()
    if isinstance(fn, dist.Independent):
        fn = fn.base_dist
        if isinstance(fn, dist.BernoulliLogits | dist.BernoulliProbs):
            return jax.nn.log_sigmoid(fn.logits)
    if isinstance(fn, dist.CategoricalLogits | dist.CategoricalProbs):
        return jax.nn.log_softmax(fn.logits, axis=-1)
    raise TypeError(
        f"cannot read class probabilities from a {type(fn).__name__}: the site needs a "
        "distribution with `log_probs()` (hetprobit) or a Categorical / Bernoulli"
    )


class LogProbsFn(eqx.Module):
    """The pure function `(params, inputs, key, dyn_kwargs) -> log p(y | x)` `(B, K)`.

    Traceable and vmappable (the ensemble maps it over stacked member params). An Equinox
    module whose leaves are all static (the model, guide, settings and the non-array model
    kwargs): `eqx.filter_jit` compares them by value, so `predict_log_probs` /
    `predict_ensemble` compile once per configuration and input shape, and a second identical
    call does not recompile (it used to, ~1-2 s per call).
    """

    model: Callable
    guide: object
    num_posterior_samples: int = 1
    num_eval_samples: int | None = None
    site: str = "y"
    static_kwargs: dict = eqx.field(default_factory=dict)

    def _one_draw(self, params, latent, inputs, key, kwargs):
        m = handlers.substitute(handlers.substitute(self.model, data=params), data=latent)
        trace = handlers.trace(handlers.seed(m, key)).get_trace(*inputs, **kwargs)
        if self.site not in trace:
            raise KeyError(f"the model has no site {self.site!r}; sites: {list(trace)}")
        with handlers.seed(rng_seed=jax.random.fold_in(key, 1)):
            return _distribution_log_probs(trace[self.site]["fn"], self.num_eval_samples)

    def __call__(self, params, inputs, key, dyn_kwargs):
        kwargs = eqx.combine(dyn_kwargs, self.static_kwargs)
        k_post, k_model = jax.random.split(key)
        P, guide = self.num_posterior_samples, self.guide
        if guide is not None and hasattr(guide, "sample_posterior"):
            # one draw per key under vmap (numpyro's sample_shape path broadcasts by rank)
            latents = jax.vmap(lambda k: guide.sample_posterior(k, params, *inputs, **kwargs))(
                jax.random.split(k_post, P)
            )
        else:
            latents = {}
        keys = jax.random.split(k_model, P)
        lps = jax.vmap(lambda lat, k: self._one_draw(params, lat, inputs, k, kwargs))(latents, keys)
        return jax.nn.logsumexp(lps, axis=0) - math.log(P)


def log_probs_fn(
    model,
    guide,
    *,
    num_posterior_samples: int = 1,
    num_eval_samples: int | None = None,
    site: str = "y",
    static_kwargs=None,
) -> LogProbsFn:
    """The pure function `(params, inputs, key, dyn_kwargs) -> log p(y | x)` `(B, K)`
    (`LogProbsFn`); `static_kwargs`: the model kwargs that are not arrays."""
    return LogProbsFn(
        model, guide, num_posterior_samples, num_eval_samples, site, dict(static_kwargs or {})
    )


def predict_log_probs(
    model,
    guide,
    params: dict,
    inputs,
    *,
    key: PRNGKeyArray,
    num_posterior_samples: int = 1,
    num_eval_samples: int | None = None,
    batch_size: int | None = None,
    site: str = "y",
    **model_kwargs,
) -> Float[Array, "N K"]:
    """Posterior predictive log-probabilities `(N, K)` (module docstring).

    Args:
        model: the NumPyro model, called as `model(*inputs, **model_kwargs)` (labels None).
        guide: the fitted guide (None, or a guide without latent sites, for pure params).
        params: fitted parameters (`FitResult.params`).
        inputs: one array `(N, ...)` or a tuple of arrays: the model's leading arguments.
        key: PRNG key (posterior draws and Monte Carlo draws).
        num_posterior_samples: P draws from the guide (1 suffices for `AutoDelta`).
        num_eval_samples: Monte Carlo samples S of the likelihood's predictive (None: the
            model's own setting, e.g. the head's `num_eval_samples` with `inference=True`).
        batch_size: examples per chunk (None: all at once).
        site: name of the label site.
        **model_kwargs: as in `fit` (e.g. `net=`, `inference=True`).
    """
    inputs, N = check_data("inputs", inputs if isinstance(inputs, tuple | list) else (inputs,))
    P = check_positive_int("num_posterior_samples", num_posterior_samples)
    if num_eval_samples is not None:
        check_positive_int("num_eval_samples", num_eval_samples)
    B = N if batch_size is None else min(check_positive_int("batch_size", batch_size), N)
    key = as_typed_key(key)
    dyn, static = eqx.partition(dict(model_kwargs), eqx.is_array)
    fn = log_probs_fn(
        model,
        guide,
        num_posterior_samples=P,
        num_eval_samples=num_eval_samples,
        site=site,
        static_kwargs=static,
    )
    return _chunked(fn, params, inputs, key, dyn, B)


@eqx.filter_jit
def _chunked(fn, params, inputs, key, dyn, B):
    N = inputs[0].shape[0]
    n_chunks = -(-N // B)
    pad = n_chunks * B - N
    padded = tuple(
        jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad, *a.shape[1:]))]) if pad else a
        for a in inputs
    )
    chunks = tuple(a.reshape(n_chunks, B, *a.shape[1:]) for a in padded)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n_chunks))
    out = jax.lax.map(lambda c: fn(params, c[0], c[1], dyn), (chunks, keys))
    return out.reshape(n_chunks * B, *out.shape[2:])[:N]


def predict_probs(model, guide, params: dict, inputs, *, key: PRNGKeyArray, **kwargs):
    """`exp(predict_log_probs(...))`: probabilities `(N, K)` (multilabel: P(y_c = 1))."""
    return jnp.exp(predict_log_probs(model, guide, params, inputs, key=key, **kwargs))


def evaluate(
    log_probs: Float[Array, "N K"],
    labels,
    *,
    multilabel: bool = False,
    n_bins: int = 15,
    top_k: int = 5,
) -> dict[str, float]:
    """Metric summary of predictive log-probabilities via `hetprobit.metrics`.

    Multiclass: accuracy, top-k accuracy (k clipped to K), NLL, Brier, ECE (15 equal-width
    bins, top-label), adaptive ECE, classwise ECE. Multilabel (`log_probs` = log P(y_c=1)):
    gAP, mAP, binary NLL. Reliability-diagram data: `hetprobit.reliability_diagram`.
    """
    log_probs = jnp.asarray(log_probs)
    probs = jnp.exp(log_probs)
    if multilabel:
        out = multilabel_summary(probs, labels, log_probs=log_probs)
    else:
        k = min(int(top_k), log_probs.shape[-1])
        out = classification_summary(probs, labels, log_probs=log_probs, n_bins=n_bins, top_k=k)
    return {name: float(v) for name, v in out.items()}
