r"""`HeteroscedasticHead`: a drop-in replacement for a final `eqx.nn.Linear(D, K)`.

From one representation r `(D,)` it computes (seed 002, Algorithm 1)

    mu   = W_mu r + b_mu                                    (K,)
    d    = positive_scale(W_d r + b_d)   = softplus(.) + min_scale
    V(r) = reshape(W_V r + b_V, (K, R))                     "lowrank"   (O(D K R) params)
    v(r) = W_v r + b_v, V(r) = v(r) 1_R^T ⊙ V_shared        "efficient" (O(D K + K R))
    HET-XL: u = W_mu (r + eps_D) + b_mu, eps_D ~ N(0, diag(d_D^2) + V_D V_D^T) in D dims
            ("hetxl", see `models.hetxl.HetXLNoise`; O(D^2 R), nothing grows as K D R)

and returns log-probabilities `(K,)`, usable directly as logits:

    multiclass:  log (1/S) Σ_s softmax((mu + eps^(s)) / tau)
    multilabel:  log (1/S) Σ_s sigmoid((mu + eps^(s)) / tau)     (log P(y_c = 1))

with the core's chunked tempered Monte Carlo estimators. `covariance="homoscedastic"` is
exactly `jax.nn.log_softmax(linear(r))` (at tau = 1).

Initialisation: the mean layer is `eqx.nn.Linear`'s default; the noise layers' weights are
scaled by `noise_init_scale` (1e-2) and the scale bias is set so d ≈ `noise_init_scale`,
so an untrained heteroscedastic head is close to the homoscedastic one (and Adam still moves
the noise parameters at the usual speed). Temperature: fixed, or learned as
tau = lower + (upper - lower) * sigmoid(p).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hetprobit import (
    HeteroscedasticChoice,
    HeteroscedasticIndicators,
    tempered_sigmoid_log_likelihood,
    tempered_sigmoid_log_probs,
    tempered_softmax_log_likelihood,
    tempered_softmax_log_probs,
)
from hetprobit.validation import (
    check_num_classes,
    check_positive,
    check_positive_int,
    check_rank,
)
from hetprobit.noise import (
    DEFAULT_MIN_SCALE,
    DiagonalNoise,
    Homoscedastic,
    LowRankNoise,
    NoiseStructure,
    ParameterEfficientNoise,
    positive_scale,
)
from hetprobit.sampling import SAMPLERS

from .hetxl import HetXLNoise

__all__ = ["HeteroscedasticHead", "COVARIANCE_TYPES"]

COVARIANCE_TYPES = ("homoscedastic", "diagonal", "lowrank", "efficient", "hetxl")


def _scaled_linear(in_features, out_features, scale, bias, *, key):
    """eqx.nn.Linear with its weight multiplied by `scale` and its bias replaced."""
    layer = eqx.nn.Linear(in_features, out_features, key=key)
    return eqx.tree_at(lambda m: (m.weight, m.bias), layer, (layer.weight * scale, bias))


def _apply(layer: eqx.nn.Linear, r: Array) -> Array:
    """Apply a one-example layer to r `(*batch, D)` (vmapped over flattened batch axes)."""
    if r.ndim == 1:
        return layer(r)
    flat = jax.vmap(layer)(r.reshape(-1, r.shape[-1]))
    return flat.reshape(*r.shape[:-1], flat.shape[-1])


class HeteroscedasticHead(eqx.Module):
    r"""Heteroscedastic output layer: representation r `(D,)` -> log-probabilities `(K,)`.

    Args:
        in_features: representation width D.
        num_classes: K (>= 2; >= 1 for `multilabel=True`).
        covariance: one of "homoscedastic", "diagonal", "lowrank", "efficient", "hetxl".
        rank: R, width of the correlated part: 1 <= R < K ("lowrank", "efficient") or
            1 <= R < D ("hetxl"). Default min(15, K - 1) (resp. min(15, D - 1)).
        tau: softmax/sigmoid temperature > 0 (its initial value when learned).
        learn_tau: learn tau = lower + (upper - lower) * sigmoid(p) within `tau_bounds`.
        tau_bounds: (lower, upper), 0 < lower < upper.
        num_train_samples: S for `inference=False` calls.
        num_eval_samples: S for `inference=True` calls.
        multilabel: return log P(y_c = 1) (tempered sigmoid) instead of log p_c.
        sampler: "mc", "antithetic" or "qmc" (see `hetprobit.sampling`).
        noise_init_scale: initial size of d and V (see module docstring).
        min_scale: floor of d = softplus(.) + min_scale.
        key: PRNG key for the initial weights (keyword-only).
    """

    mu: eqx.nn.Linear
    scale: eqx.nn.Linear | None
    factor: eqx.nn.Linear | None
    shared_factor: Float[Array, "K R"] | None
    tau_param: Float[Array, ""] | float
    covariance_type: str = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    learn_tau: bool = eqx.field(static=True)
    tau_bounds: tuple[float, float] = eqx.field(static=True)
    num_train_samples: int = eqx.field(static=True)
    num_eval_samples: int = eqx.field(static=True)
    multilabel: bool = eqx.field(static=True)
    sampler: str = eqx.field(static=True)
    min_scale: float = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        covariance: str = "lowrank",
        rank: int | None = None,
        tau: float = 1.0,
        learn_tau: bool = False,
        tau_bounds: tuple[float, float] = (0.05, 5.0),
        num_train_samples: int = 256,
        num_eval_samples: int = 1024,
        multilabel: bool = False,
        sampler: str = "mc",
        noise_init_scale: float = 1e-2,
        min_scale: float = DEFAULT_MIN_SCALE,
        key: PRNGKeyArray,
    ):
        if covariance not in COVARIANCE_TYPES:
            raise ValueError(f"`covariance` must be one of {COVARIANCE_TYPES}, got {covariance!r}")
        D = check_positive_int("in_features", in_features)
        K = check_num_classes("num_classes", num_classes, minimum=1 if multilabel else 2)
        check_positive("tau", tau)
        lower, upper = self._check_bounds(tau_bounds)
        if learn_tau and not lower < tau < upper:
            raise ValueError(
                f"`tau` must lie strictly inside tau_bounds=({lower}, {upper}) when learned, "
                f"got tau={tau}"
            )
        check_positive_int("num_train_samples", num_train_samples)
        check_positive_int("num_eval_samples", num_eval_samples)
        if sampler not in SAMPLERS:
            raise ValueError(f"`sampler` must be one of {SAMPLERS}, got {sampler!r}")
        check_positive("min_scale", min_scale)
        check_positive("noise_init_scale", noise_init_scale)
        if noise_init_scale <= min_scale:
            raise ValueError(
                f"`noise_init_scale` must exceed min_scale={min_scale}, got {noise_init_scale}"
            )
        if covariance in ("lowrank", "efficient"):
            rank = check_rank(min(15, K - 1) if rank is None else rank, K)
        elif covariance == "hetxl":
            rank = check_rank(min(15, D - 1) if rank is None else rank, D, name="rank")
        else:
            if rank is not None:
                check_positive_int("rank", rank)
            rank = 0

        self.covariance_type, self.in_features, self.num_classes = covariance, D, K
        self.rank, self.learn_tau, self.tau_bounds = rank, bool(learn_tau), (lower, upper)
        self.num_train_samples, self.num_eval_samples = num_train_samples, num_eval_samples
        self.multilabel, self.sampler, self.min_scale = bool(multilabel), sampler, float(min_scale)
        if learn_tau:
            frac = (tau - lower) / (upper - lower)
            self.tau_param = jnp.asarray(math.log(frac / (1.0 - frac)))
        else:
            self.tau_param = float(tau)

        k_mu, k_d, k_v, k_w = jax.random.split(key, 4)
        self.mu = eqx.nn.Linear(D, K, key=k_mu)
        s = float(noise_init_scale)
        # softplus(b) + min_scale = s  <=>  b = log(expm1(s - min_scale))
        d_bias = float(np.log(np.expm1(s - min_scale)))
        self.scale = self.factor = self.shared_factor = None
        if covariance == "homoscedastic":
            return
        width = D if covariance == "hetxl" else K
        self.scale = _scaled_linear(D, width, s, jnp.full((width,), d_bias), key=k_d)
        if covariance == "lowrank":
            bias = s * jax.random.normal(k_w, (K * rank,))
            self.factor = _scaled_linear(D, K * rank, s, bias, key=k_v)
        elif covariance == "efficient":
            # v(x) = W_v r + b_v starts O(1); the shared K x R matrix starts small
            self.factor = eqx.nn.Linear(D, K, key=k_v)
            self.shared_factor = s * jax.random.normal(k_w, (K, rank))
        elif covariance == "hetxl":
            bias = s * jax.random.normal(k_w, (D * rank,))
            self.factor = _scaled_linear(D, D * rank, s, bias, key=k_v)

    @staticmethod
    def _check_bounds(tau_bounds):
        try:
            lower, upper = (float(b) for b in tau_bounds)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"`tau_bounds` must be a pair (lower, upper), got {tau_bounds!r}"
            ) from err
        if not (math.isfinite(lower) and math.isfinite(upper) and 0 < lower < upper):
            raise ValueError(
                f"`tau_bounds` must satisfy 0 < lower < upper (finite), got {tau_bounds!r}"
            )
        return lower, upper

    # ------------------------------------------------------------------ parameters
    @property
    def tau(self) -> Float[Array, ""] | float:
        """Temperature: fixed, or lower + (upper - lower) * sigmoid(p) when learned."""
        if not self.learn_tau:
            return self.tau_param
        lower, upper = self.tau_bounds
        return lower + (upper - lower) * jax.nn.sigmoid(self.tau_param)

    @property
    def is_stochastic(self) -> bool:
        return self.covariance_type != "homoscedastic"

    def _check_input(self, r) -> Array:
        r = jnp.asarray(r)
        if r.ndim < 1 or r.shape[-1] != self.in_features:
            raise ValueError(
                f"`r` must have shape (..., in_features={self.in_features}), got {r.shape}"
            )
        return r

    def noise_parameters(self, r: Float[Array, "*batch D"]) -> tuple[Array, NoiseStructure]:
        """mu `(*batch, K)` and the `NoiseStructure` of Sigma(r) (batch shape `*batch`).

        Accepts one representation `(D,)` or a batch `(*batch, D)`.
        """
        r = self._check_input(r)
        batch, K, R = r.shape[:-1], self.num_classes, self.rank
        mu = _apply(self.mu, r)
        kind = self.covariance_type
        if kind == "homoscedastic":
            return mu, Homoscedastic(K)
        d = positive_scale(_apply(self.scale, r), self.min_scale)
        if kind == "diagonal":
            return mu, DiagonalNoise(d)
        raw = _apply(self.factor, r)
        if kind == "lowrank":
            return mu, LowRankNoise(d, raw.reshape(*batch, K, R))
        if kind == "efficient":
            return mu, ParameterEfficientNoise(d, raw, self.shared_factor)
        return mu, HetXLNoise(d, raw.reshape(*batch, self.in_features, R), self.mu.weight)

    def covariance(self, r: Float[Array, "*batch D"]) -> Float[Array, "*batch K K"]:
        """Dense Sigma(r) `(*batch, K, K)` (zeros for the homoscedastic head); small K only."""
        r = self._check_input(r)
        _, noise = self.noise_parameters(r)
        cov = noise.covariance()
        return jnp.broadcast_to(cov, (*r.shape[:-1], self.num_classes, self.num_classes))

    def _num_samples(self, inference: bool, num_samples: int | None) -> int:
        if num_samples is not None:
            return check_positive_int("num_samples", num_samples)
        return self.num_eval_samples if inference else self.num_train_samples

    def _require_key(self, key):
        if key is None and self.is_stochastic:
            raise ValueError(
                f"HeteroscedasticHead(covariance={self.covariance_type!r}) is a Monte Carlo "
                "estimate and needs a PRNG key: call it with key=jax.random.key(...)"
            )

    # ------------------------------------------------------------------ outputs
    def __call__(
        self,
        r: Float[Array, " D"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
        num_samples: int | None = None,
    ) -> Float[Array, " K"]:
        """Log-probabilities `(K,)` of ONE example (multilabel: log P(y_c = 1)).

        `key` drives the Monte Carlo draws (required unless homoscedastic); `inference`
        selects `num_eval_samples` instead of `num_train_samples`. Batch with `jax.vmap`.
        """
        r = jnp.asarray(r)
        if r.shape != (self.in_features,):
            raise ValueError(
                f"`r` must be one example of shape (in_features={self.in_features},), got "
                f"{r.shape}; batch with jax.vmap, or use `noise_parameters` / `log_likelihood`"
            )
        return self.log_probs(r, key=key, inference=inference, num_samples=num_samples)

    def log_probs(
        self,
        r: Float[Array, "*batch D"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
        num_samples: int | None = None,
    ) -> Float[Array, "*batch K"]:
        """Batched predictive log-probabilities `(*batch, K)`; see `__call__`."""
        self._require_key(key)
        mu, noise = self.noise_parameters(r)
        tau = self.tau
        if not self.is_stochastic:
            u = mu if (not self.learn_tau and tau == 1.0) else mu / tau
            return jax.nn.log_sigmoid(u) if self.multilabel else jax.nn.log_softmax(u, axis=-1)
        fn = tempered_sigmoid_log_probs if self.multilabel else tempered_softmax_log_probs
        S = self._num_samples(inference, num_samples)
        return fn(mu, noise, key=key, tau=tau, num_samples=S, sampler=self.sampler)

    def log_likelihood(
        self,
        r: Float[Array, "*batch D"],
        labels: Int[Array, "*batch"] | Float[Array, "*batch K"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
        num_samples: int | None = None,
    ) -> Float[Array, "*batch"]:
        """Per-example tempered log-likelihood of observed labels, `(*batch,)`.

        Multiclass `labels` are integers `(*batch,)` (only the observed class's term is
        computed per draw); multilabel `labels` are 0/1 indicators `(*batch, K)`.
        """
        self._require_key(key)
        mu, noise = self.noise_parameters(r)
        fn = tempered_sigmoid_log_likelihood if self.multilabel else tempered_softmax_log_likelihood
        S = self._num_samples(inference, num_samples)
        return fn(mu, noise, labels, key=key, tau=self.tau, num_samples=S, sampler=self.sampler)

    def distribution(
        self,
        r: Float[Array, "*batch D"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
        num_samples: int | None = None,
    ) -> HeteroscedasticChoice | HeteroscedasticIndicators:
        """The NumPyro distribution of labels given r `(*batch, D)`.

        Its `sample` is the exact generative process (argmax / threshold of Gaussian
        utilities); its `log_prob` the tempered estimate with `key` (None: a fresh key from
        `numpyro.prng_key()` at evaluation time, see `hetprobit.distributions`).
        """
        mu, noise = self.noise_parameters(r)
        cls = HeteroscedasticIndicators if self.multilabel else HeteroscedasticChoice
        S = self._num_samples(inference, num_samples)
        return cls(mu, noise, tau=self.tau, num_samples=S, key=key, sampler=self.sampler)
