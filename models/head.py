r"""`HeteroscedasticHead`: a drop-in replacement for a final `eqx.nn.Linear(D, K)`.

From one representation r `(D,)` it computes the mean utilities mu = W_mu r + b_mu `(K,)`
and a noise structure Sigma(r) read from the core's registry
(`hetprobit.noise.get_noise_family(covariance)`): every per-example raw output the family
declares (e.g. "scale" `(K,)`, "factor" `(K, R)`) is a linear map of r, every shared output
(e.g. the parameter-efficient W `(K, R)`) a free parameter, and HET-XL's projection is the
mean layer's own weight W_mu; the family's `build` turns them into the `NoiseStructure`.
Collier et al., "Correlated input-dependent label noise in large-scale image
classification" (2021, arXiv:2105.10305), Algorithm 1; HET-XL: Collier et al., "Massively
scaling heteroscedastic classifiers" (2023, arXiv:2301.12860).

The head returns log-probabilities `(K,)`, usable directly as logits:

    multiclass:  log (1/S) Σ_s softmax((mu + eps^(s)) / tau)
    multilabel:  log (1/S) Σ_s sigmoid((mu + eps^(s)) / tau)     (log P(y_c = 1))

with the core's chunked tempered Monte Carlo estimators, configured by two
`hetprobit.MonteCarlo` values (training and evaluation). `covariance="homoscedastic"` is
exactly `jax.nn.log_softmax(linear(r))` (at tau = 1).

Initialisation (`RawOutput.init`): the mean layer is `eqx.nn.Linear`'s default; "scale"
outputs have weights scaled by `noise_init_scale` (1e-2) and a bias such that d ≈
`noise_init_scale`; "small" outputs have weights and bias of size `noise_init_scale`;
"default" outputs keep `eqx.nn.Linear`'s initialisation. So an untrained heteroscedastic
head is close to the homoscedastic one (and Adam still moves the noise parameters at the
usual speed). Temperature: fixed, or learned as tau = lower + (upper - lower) * sigmoid(p).
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
    MonteCarlo,
    tempered_sigmoid_log_likelihood,
    tempered_sigmoid_log_probs,
    tempered_softmax_log_likelihood,
    tempered_softmax_log_probs,
)
from hetprobit.noise import (
    DEFAULT_MIN_SCALE,
    NOISE_STRUCTURES,
    NoiseFamily,
    NoiseStructure,
    get_noise_family,
)
from hetprobit.validation import check_num_classes, check_positive, check_positive_int

__all__ = ["HeteroscedasticHead", "COVARIANCE_TYPES"]

# The registry's names: every registered structure can be a head's `covariance`.
COVARIANCE_TYPES = NOISE_STRUCTURES


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


def _init_output(output, shape, D, s, d_bias, *, layer_key, random_key):
    """A linear layer D -> prod(shape) (per-example output) or an array (shared output)."""
    size = math.prod(shape)
    if output.kind == "shared":
        return s * jax.random.normal(random_key, shape)
    if output.init == "scale":
        return _scaled_linear(D, size, s, jnp.full((size,), d_bias), key=layer_key)
    if output.init == "small":
        bias = s * jax.random.normal(random_key, (size,))
        return _scaled_linear(D, size, s, bias, key=layer_key)
    return eqx.nn.Linear(D, size, key=layer_key)


def _output_keys(key, i):
    """(layer key, random key) of the i-th raw output.

    Chosen so the built-in structures keep the initial weights of earlier versions of the
    head (seeded results stay reproducible): the first output's layer uses split 1, the
    others split 2 (folded for i > 1), random biases / shared arrays split 3.
    """
    _, k_first, k_layer, k_random = jax.random.split(key, 4)
    layer = k_first if i == 0 else (k_layer if i == 1 else jax.random.fold_in(k_layer, i))
    return layer, (k_random if i <= 2 else jax.random.fold_in(k_random, i))


def _make_monte_carlo(name, base, **fields) -> MonteCarlo:
    if base is None:
        base = MonteCarlo()
    elif not isinstance(base, MonteCarlo):
        raise TypeError(f"`{name}` must be a hetprobit.MonteCarlo, got {type(base).__name__}")
    return base.replace(**fields)


class HeteroscedasticHead(eqx.Module):
    r"""Heteroscedastic output layer: representation r `(D,)` -> log-probabilities `(K,)`.

    Args:
        in_features: representation width D.
        num_classes: K (>= 2; >= 1 for `multilabel=True`).
        covariance: a name of `hetprobit.noise.NOISE_STRUCTURES` ("homoscedastic",
            "diagonal", "low_rank", "parameter_efficient", "hetxl", "full", or a
            structure registered later; the older "lowrank" / "efficient" are aliases,
            `hetprobit.noise.NOISE_ALIASES`).
        rank: R, width of the correlated part, for structures with a factor: 1 <= R < K
            ("low_rank", "parameter_efficient") or 1 <= R < D ("hetxl"); default
            min(15, bound - 1). Must stay None for the others.
        tau: softmax/sigmoid temperature > 0 (its initial value when learned).
        learn_tau: learn tau = lower + (upper - lower) * sigmoid(p) within `tau_bounds`.
        tau_bounds: (lower, upper), 0 < lower < upper.
        train_monte_carlo: Monte Carlo setting of `inference=False` calls (default
            `MonteCarlo(num_samples=256)`).
        eval_monte_carlo: Monte Carlo setting of `inference=True` calls (default
            `MonteCarlo(num_samples=1024)`).
        num_train_samples, num_eval_samples, sampler: shortcuts replacing S of the two
            settings and the sampler of both ("mc", "antithetic" or "qmc").
        multilabel: return log P(y_c = 1) (tempered sigmoid) instead of log p_c.
        noise_init_scale: initial size of the noise (see module docstring).
        min_scale: floor of d = softplus(.) + min_scale.
        key: PRNG key for the initial weights (keyword-only).

    Raises:
        ValueError: an unknown `covariance`; a `rank` outside its bounds or given for a
            structure without a factor; bad `tau` / `tau_bounds`; an invalid Monte Carlo
            setting; `noise_init_scale <= min_scale`.
        TypeError: non-integer sizes, Monte Carlo settings that are not `MonteCarlo`.
    """

    mu: eqx.nn.Linear
    noise_layers: dict[str, eqx.nn.Linear]
    noise_shared: dict[str, Array]
    tau_param: Float[Array, ""] | float
    covariance_type: str = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    learn_tau: bool = eqx.field(static=True)
    tau_bounds: tuple[float, float] = eqx.field(static=True)
    train_monte_carlo: MonteCarlo = eqx.field(static=True)
    eval_monte_carlo: MonteCarlo = eqx.field(static=True)
    multilabel: bool = eqx.field(static=True)
    min_scale: float = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        covariance: str = "low_rank",
        rank: int | None = None,
        tau: float = 1.0,
        learn_tau: bool = False,
        tau_bounds: tuple[float, float] = (0.05, 5.0),
        train_monte_carlo: MonteCarlo | None = None,
        eval_monte_carlo: MonteCarlo | None = None,
        num_train_samples: int | None = None,
        num_eval_samples: int | None = None,
        sampler: str | None = None,
        multilabel: bool = False,
        noise_init_scale: float = 1e-2,
        min_scale: float = DEFAULT_MIN_SCALE,
        key: PRNGKeyArray,
    ):
        family = get_noise_family(covariance)
        D = check_positive_int("in_features", in_features)
        K = check_num_classes("num_classes", num_classes, minimum=1 if multilabel else 2)
        check_positive("tau", tau)
        lower, upper = self._check_bounds(tau_bounds)
        if learn_tau and not lower < tau < upper:
            raise ValueError(
                f"`tau` must lie strictly inside tau_bounds=({lower}, {upper}) when learned, "
                f"got tau={tau}"
            )
        if train_monte_carlo is None:
            train_monte_carlo = MonteCarlo(num_samples=256)
        if eval_monte_carlo is None:
            eval_monte_carlo = MonteCarlo(num_samples=1024)
        train_mc = _make_monte_carlo(
            "train_monte_carlo", train_monte_carlo, num_samples=num_train_samples, sampler=sampler
        )
        eval_mc = _make_monte_carlo(
            "eval_monte_carlo", eval_monte_carlo, num_samples=num_eval_samples, sampler=sampler
        )
        check_positive("min_scale", min_scale)
        check_positive("noise_init_scale", noise_init_scale)
        if noise_init_scale <= min_scale:
            raise ValueError(
                f"`noise_init_scale` must exceed min_scale={min_scale}, got {noise_init_scale}"
            )
        rank = family.resolve_rank(rank, num_classes=K, in_features=D)

        self.covariance_type, self.in_features, self.num_classes = family.name, D, K
        self.rank, self.learn_tau, self.tau_bounds = rank, bool(learn_tau), (lower, upper)
        self.train_monte_carlo, self.eval_monte_carlo = train_mc, eval_mc
        self.multilabel, self.min_scale = bool(multilabel), float(min_scale)
        if learn_tau:
            frac = (tau - lower) / (upper - lower)
            self.tau_param = jnp.asarray(math.log(frac / (1.0 - frac)))
        else:
            self.tau_param = float(tau)

        self.mu = eqx.nn.Linear(D, K, key=jax.random.split(key, 4)[0])
        s = float(noise_init_scale)
        # softplus(b) + min_scale = s  <=>  b = log(expm1(s - min_scale))
        d_bias = float(np.log(np.expm1(s - min_scale)))
        shapes = family.output_shapes(num_classes=K, rank=rank, in_features=D)
        layers, shared = {}, {}
        for i, output in enumerate(family.outputs):
            if output.kind == "mean_weight":
                continue
            shape = shapes[output.name]
            if math.prod(shape) == 0:  # e.g. the strictly-lower part of a 1 x 1 Cholesky
                continue
            k_layer, k_random = _output_keys(key, i)
            target = shared if output.kind == "shared" else layers
            target[output.name] = _init_output(
                output, shape, D, s, d_bias, layer_key=k_layer, random_key=k_random
            )
        self.noise_layers, self.noise_shared = layers, shared

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

    @property
    def family(self) -> NoiseFamily:
        """The registry entry of this head's noise structure."""
        return get_noise_family(self.covariance_type)

    @property
    def scale(self) -> eqx.nn.Linear | None:
        """The layer of the raw "scale" output (None for a structure without one)."""
        return self.noise_layers.get("scale")

    @property
    def factor(self) -> eqx.nn.Linear | None:
        """The layer of the per-example raw "factor" output (None if there is none)."""
        return self.noise_layers.get("factor")

    @property
    def num_train_samples(self) -> int:
        return self.train_monte_carlo.num_samples

    @property
    def num_eval_samples(self) -> int:
        return self.eval_monte_carlo.num_samples

    def raw_outputs(self, r: Float[Array, "*batch D"]) -> dict[str, Array]:
        """The noise family's raw outputs by name (per-example ones `(*batch, *shape)`)."""
        r = self._check_input(r)
        family, batch = self.family, r.shape[:-1]
        shapes = family.output_shapes(
            num_classes=self.num_classes, rank=self.rank, in_features=self.in_features
        )
        raw = {}
        for output in family.outputs:
            shape = shapes[output.name]
            if output.kind == "mean_weight":
                raw[output.name] = self.mu.weight
            elif output.kind == "shared":
                raw[output.name] = self.noise_shared[output.name]
            elif output.name in self.noise_layers:
                raw[output.name] = _apply(self.noise_layers[output.name], r).reshape(*batch, *shape)
            else:
                raw[output.name] = jnp.zeros((*batch, *shape), r.dtype)
        return raw

    def noise_parameters(self, r: Float[Array, "*batch D"]) -> tuple[Array, NoiseStructure]:
        """mu `(*batch, K)` and the `NoiseStructure` of Sigma(r) (batch shape `*batch`).

        Accepts one representation `(D,)` or a batch `(*batch, D)`.
        """
        r = self._check_input(r)
        noise = self.family.build(
            self.raw_outputs(r), num_classes=self.num_classes, min_scale=self.min_scale
        )
        return _apply(self.mu, r), noise

    def covariance(self, r: Float[Array, "*batch D"]) -> Float[Array, "*batch K K"]:
        """Dense Sigma(r) `(*batch, K, K)` (zeros for the homoscedastic head); small K only."""
        r = self._check_input(r)
        _, noise = self.noise_parameters(r)
        cov = noise.covariance()
        return jnp.broadcast_to(cov, (*r.shape[:-1], self.num_classes, self.num_classes))

    def monte_carlo(
        self,
        inference: bool = False,
        num_samples: int | None = None,
        monte_carlo: MonteCarlo | None = None,
    ) -> MonteCarlo:
        """The Monte Carlo setting of a call: `monte_carlo` if given, else the evaluation
        (`inference=True`) or training setting, with `num_samples` replacing S if given.

        Raises:
            TypeError: `monte_carlo` is not a `MonteCarlo`.
            ValueError: an invalid `num_samples` for the setting.
        """
        if monte_carlo is None:
            monte_carlo = self.eval_monte_carlo if inference else self.train_monte_carlo
        return _make_monte_carlo("monte_carlo", monte_carlo, num_samples=num_samples)

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
        monte_carlo: MonteCarlo | None = None,
    ) -> Float[Array, " K"]:
        """Log-probabilities `(K,)` of ONE example (multilabel: log P(y_c = 1)).

        `key` drives the Monte Carlo draws (required unless homoscedastic); `inference`
        selects `eval_monte_carlo` instead of `train_monte_carlo`; `num_samples` replaces S,
        `monte_carlo` the whole setting (see `monte_carlo()`). Batch with `jax.vmap`.
        """
        r = jnp.asarray(r)
        if r.shape != (self.in_features,):
            raise ValueError(
                f"`r` must be one example of shape (in_features={self.in_features},), got "
                f"{r.shape}; batch with jax.vmap, or use `noise_parameters` / `log_likelihood`"
            )
        return self.log_probs(
            r, key=key, inference=inference, num_samples=num_samples, monte_carlo=monte_carlo
        )

    def log_probs(
        self,
        r: Float[Array, "*batch D"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
        num_samples: int | None = None,
        monte_carlo: MonteCarlo | None = None,
    ) -> Float[Array, "*batch K"]:
        """Batched predictive log-probabilities `(*batch, K)`; see `__call__`."""
        self._require_key(key)
        mu, noise = self.noise_parameters(r)
        tau = self.tau
        if not self.is_stochastic:
            u = mu if (not self.learn_tau and tau == 1.0) else mu / tau
            return jax.nn.log_sigmoid(u) if self.multilabel else jax.nn.log_softmax(u, axis=-1)
        fn = tempered_sigmoid_log_probs if self.multilabel else tempered_softmax_log_probs
        mc = self.monte_carlo(inference, num_samples, monte_carlo)
        return fn(mu, noise, key=key, tau=tau, **mc.kwargs())

    def log_likelihood(
        self,
        r: Float[Array, "*batch D"],
        labels: Int[Array, "*batch"] | Float[Array, "*batch K"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
        num_samples: int | None = None,
        monte_carlo: MonteCarlo | None = None,
    ) -> Float[Array, "*batch"]:
        """Per-example tempered log-likelihood of observed labels, `(*batch,)`.

        Multiclass `labels` are integers `(*batch,)` (only the observed class's term is
        computed per draw); multilabel `labels` are 0/1 indicators `(*batch, K)`.
        """
        self._require_key(key)
        mu, noise = self.noise_parameters(r)
        fn = tempered_sigmoid_log_likelihood if self.multilabel else tempered_softmax_log_likelihood
        mc = self.monte_carlo(inference, num_samples, monte_carlo)
        return fn(mu, noise, labels, key=key, tau=self.tau, **mc.kwargs())

    def distribution(
        self,
        r: Float[Array, "*batch D"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
        num_samples: int | None = None,
        monte_carlo: MonteCarlo | None = None,
    ) -> HeteroscedasticChoice | HeteroscedasticIndicators:
        """The NumPyro distribution of labels given r `(*batch, D)`.

        Its `sample` is the exact generative process (argmax / threshold of Gaussian
        utilities); its `log_prob` the tempered estimate with `key` (None: the distribution
        draws `numpyro.prng_key()` when built inside a seeded model, see
        `hetprobit.distributions`).
        """
        mu, noise = self.noise_parameters(r)
        cls = HeteroscedasticIndicators if self.multilabel else HeteroscedasticChoice
        mc = self.monte_carlo(inference, num_samples, monte_carlo)
        return cls(mu, noise, tau=self.tau, monte_carlo=mc, key=key)
