r"""A backbone + heteroscedastic head, and the NumPyro model of its generative process.

`Classifier(backbone, head)` is an Equinox module: x -> r(x) -> log-probabilities, usable
as a plain network (`jax.vmap(lambda x: net(x, key=k))(xs)`).

`classifier_model(x, y=None, *, net, ...)` is the NumPyro model

    r_i = backbone(x_i),  (mu_i, Sigma_i) = head(r_i),
    u_i ~ N(mu_i, Sigma_i),  y_i = argmax_j u_ij   (multilabel: y_ic = 1{u_ic > 0})

with `HeteroscedasticChoice` / `HeteroscedasticIndicators` as the observation inside
`numpyro.plate("data", B)`. Without `y` the labels are *sampled* by the true argmax /
threshold process (so `numpyro.infer.Predictive` draws labels from the model); with `y` the
site contributes the tempered Monte Carlo log-likelihood.

Parameters. The network is registered with `numpyro.contrib.module.eqx_module` (one
`"{name}$params"` param site: point estimates, MAP with `AutoDelta` or plain SVI). With
`prior_scale` set, the head's mean weights and bias get N(0, prior_scale^2) priors
(Bayesian last layer) through `random_eqx_module(..., scope_divider=".")`: sample sites
`"{name}.head.mu.weight"` and `"{name}.head.mu.bias"` (dots, not numpyro's default "/",
which arviz refuses in variable names).

Minibatching (agreed with `inference/`): the caller passes the minibatch x `(B, ...)`;
`num_data=N` scales the likelihood by N / B with `numpyro.handlers.scale` (priors are not
scaled). No subsample indices are generated inside the model.

Monte Carlo key of the likelihood: `mc_key` if given (common random numbers: a
deterministic objective), otherwise the label distribution draws `numpyro.prng_key()` when
it is built, *while the model runs*, i.e. a fresh key per SVI step under the `seed` handler
SVI applies (see `hetprobit.distributions`).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray
from numpyro.contrib.module import eqx_module, random_eqx_module

import hetprobit as hp
from hetprobit.validation import check_positive, check_positive_int

from .head import HeteroscedasticHead

__all__ = ["Classifier", "classifier_model", "last_layer_prior"]


class Classifier(eqx.Module):
    """x -> backbone -> `HeteroscedasticHead` for ONE example; batch with `jax.vmap`.

    Args:
        backbone: an Equinox module mapping one example to r(x) `(D,)` (no key).
        head: a `HeteroscedasticHead` with `in_features = D`.
    """

    backbone: eqx.Module
    head: HeteroscedasticHead

    def __init__(self, backbone: eqx.Module, head: HeteroscedasticHead):
        if not isinstance(head, HeteroscedasticHead):
            raise TypeError(f"`head` must be a HeteroscedasticHead, got {type(head).__name__}")
        self.backbone, self.head = backbone, head

    def features(self, x) -> Float[Array, " D"]:
        """The representation r(x) of one example."""
        return self.backbone(x)

    def __call__(
        self, x, *, key: PRNGKeyArray | None = None, inference: bool = False
    ) -> Float[Array, " K"]:
        """Log-probabilities `(K,)` of one example (see `HeteroscedasticHead.__call__`)."""
        return self.head(self.backbone(x), key=key, inference=inference)


def last_layer_prior(prior_scale: float) -> dict[str, dist.Distribution]:
    """Priors of the Bayesian last layer: N(0, prior_scale^2) on the head's mean layer."""
    check_positive("prior_scale", prior_scale)
    normal = dist.Normal(0.0, prior_scale)
    return {"head.mu.weight": normal, "head.mu.bias": normal}


def classifier_model(
    x: Array,
    y: Array | None = None,
    *,
    net: Classifier,
    num_data: int | None = None,
    mc_key: PRNGKeyArray | None = None,
    prior_scale: float | None = None,
    inference: bool = False,
    name: str = "net",
    loss: str | Callable | None = None,
    loss_kwargs: dict | None = None,
):
    """NumPyro model of the heteroscedastic classifier (see module docstring).

    Args:
        x: a minibatch of inputs `(B, ...)` (each x[i] is what `net.backbone` takes).
        y: labels `(B,)` ints in [0, K) (multilabel: 0/1 `(B, K)`), or None to sample them.
        net: a `Classifier` (built eagerly, outside the model).
        num_data: total data size N; the likelihood is scaled by N / B. None: no scaling.
        mc_key: fixed key for the likelihood's draws (None: fresh `numpyro.prng_key()`).
        prior_scale: None for point-estimated weights; a float for N(0, prior_scale^2)
            priors on the head's mean weights and bias (Bayesian last layer).
        inference: use the head's `eval_monte_carlo` setting for the likelihood.
        name: prefix of the parameter / sample sites.
        loss: for a homoscedastic multiclass head only: replace the categorical likelihood of
            observed labels by a calibration loss on the logits, as the factor
            -(N/B) Σ_i loss(logits_i, y_i). A name from `hetprobit.CALIBRATION_LOSSES`
            ("ce", "ls", "focal", "flsd53", "mbls") or a callable `loss(logits, labels)`
            returning per-example losses; `loss_kwargs` are passed on (e.g. margin, lam).

    Returns:
        The observed or sampled labels.
    """
    if not isinstance(net, Classifier):
        raise TypeError(f"`net` must be a models.Classifier, got {type(net).__name__}")
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"`x` must be a batch (B, ...) with B >= 1, got shape {x.shape}")
    B = x.shape[0]
    if y is not None and jnp.shape(y)[:1] != (B,):
        raise ValueError(f"`y` must have leading dimension B={B} like `x`, got {jnp.shape(y)}")
    if num_data is not None:
        check_positive_int("num_data", num_data)
        if num_data < B:
            raise ValueError(f"`num_data` ({num_data}) must be >= the batch size B={B}")

    if prior_scale is None:
        net = eqx_module(name, net)
    else:
        net = random_eqx_module(name, net, prior=last_layer_prior(prior_scale), scope_divider=".")

    r = jax.vmap(net.backbone)(x)
    scale = 1.0 if num_data is None else num_data / B
    if loss is not None and y is not None:
        loss_fn = _calibration_loss(loss, net.head)
        logits = net.head.log_probs(r, key=None, inference=inference)
        per_example = loss_fn(logits, y, **(loss_kwargs or {}))
        numpyro.factor("y_loss", -scale * jnp.sum(per_example))
        return y
    label_dist = net.head.distribution(r, key=mc_key, inference=inference)
    with numpyro.handlers.scale(scale=scale), numpyro.plate("data", B):
        return numpyro.sample("y", label_dist, obs=y)


def _calibration_loss(loss, head) -> Callable:
    """Resolve `loss` (a name or a callable) for a homoscedastic multiclass head."""
    if head.is_stochastic or head.multilabel:
        raise ValueError(
            "`loss` replaces the likelihood of a homoscedastic multiclass head only; got "
            f"covariance={head.covariance_type!r}, multilabel={head.multilabel}"
        )
    if callable(loss):
        return loss
    if loss not in hp.CALIBRATION_LOSSES:
        raise ValueError(f"`loss` must be one of {sorted(hp.CALIBRATION_LOSSES)}, got {loss!r}")
    return hp.CALIBRATION_LOSSES[loss]
