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

The head returns log-probabilities `(K,)`, usable directly as logits, by the estimator
`likelihood=` chooses (`hetprobit.Likelihood`; the table lives in `hetprobit.estimator`):

    "tempered"  multiclass:  log (1/S) Σ_s softmax((mu + eps^(s)) / tau)
                multilabel:  log (1/S) Σ_s sigmoid((mu + eps^(s)) / tau)   (log P(y_c = 1))
    "probit"    multiclass:  log P(argmax_j u_j = k), u ~ N(mu, Sigma), no tau (quadrature
                             over diag(d^2), QMC over the R factor dimensions)
                multilabel:  log Phi(mu_c / sqrt(Sigma_cc))   (exact, no draws)

configured by two `hetprobit.MonteCarlo` values (training and evaluation).
`covariance="homoscedastic"` is exactly `jax.nn.log_softmax(linear(r))` (at tau = 1).
The mean layer is `eqx.nn.Linear`'s default; the noise outputs start at d ≈
`noise_init_scale` (`models.noise_outputs`). Temperature: fixed, or learned as
tau = lower + (upper - lower) * sigmoid(p).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hetprobit import HeteroscedasticChoice, HeteroscedasticIndicators, Likelihood, MonteCarlo
from hetprobit.noise import (
    DEFAULT_MIN_SCALE,
    NOISE_STRUCTURES,
    NoiseFamily,
    NoiseStructure,
    get_noise_family,
)
from hetprobit.validation import check_num_classes, check_positive, check_positive_int

from .noise_outputs import apply_linear, init_noise_outputs, noise_outputs

__all__ = ["HeteroscedasticHead", "COVARIANCE_TYPES"]

# The registry's names: every registered structure can be a head's `covariance`.
COVARIANCE_TYPES = NOISE_STRUCTURES


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
        tau: softmax/sigmoid temperature > 0 (its initial value when learned); ignored by
            `likelihood="probit"`.
        learn_tau: learn tau = lower + (upper - lower) * sigmoid(p) within `tau_bounds`
            ("tempered" only).
        tau_bounds: (lower, upper), 0 < lower < upper.
        likelihood: "tempered" (default), "probit", or a `hetprobit.Likelihood` (e.g.
            `Likelihood("probit", num_nodes=48)`). Multiclass "probit" needs covariance
            "diagonal" (deterministic: no key), "low_rank" or "parameter_efficient";
            multilabel "probit" (exact marginals, no key) any covariance but "homoscedastic".
        train_monte_carlo: Monte Carlo setting of `inference=False` calls (default
            `likelihood.default_monte_carlo()`: S = 256 for "tempered", 64 QMC factor draws
            for "probit").
        eval_monte_carlo: Monte Carlo setting of `inference=True` calls (default: S = 1024
            for "tempered", 256 QMC factor draws for "probit").
        num_train_samples, num_eval_samples, sampler: shortcuts replacing S of the two
            settings and the sampler of both ("mc", "antithetic" or "qmc").
        multilabel: return log P(y_c = 1) (tempered sigmoid) instead of log p_c.
        noise_init_scale: initial size of the noise (`models.noise_outputs`); default 1e-2
            for "tempered" (near the homoscedastic softmax), 1.0 for "probit" (whose noise
            is its only smoothing: d = 1e-2 would start it near a hard argmax).
        min_scale: floor of d = softplus(.) + min_scale.
        key: PRNG key for the initial weights (keyword-only).

    Raises:
        ValueError: an unknown `covariance`; a `rank` outside its bounds or given for a
            structure without a factor; bad `tau` / `tau_bounds`; an invalid Monte Carlo
            setting; `noise_init_scale <= min_scale`; an unknown `likelihood`, one that
            does not support `covariance`, or `learn_tau=True` with "probit".
        TypeError: non-integer sizes, Monte Carlo settings that are not `MonteCarlo`, a
            `likelihood` that is neither a name nor a `Likelihood`.
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
    likelihood: Likelihood = eqx.field(static=True)
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
        likelihood: str | Likelihood = "tempered",
        train_monte_carlo: MonteCarlo | None = None,
        eval_monte_carlo: MonteCarlo | None = None,
        num_train_samples: int | None = None,
        num_eval_samples: int | None = None,
        sampler: str | None = None,
        multilabel: bool = False,
        noise_init_scale: float | None = None,
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
        likelihood = Likelihood.of(likelihood)
        likelihood.check_noise(family.structure, multilabel=bool(multilabel))
        if learn_tau and not likelihood.has_temperature:
            raise ValueError(
                f"`learn_tau=True` needs a temperature, but likelihood={likelihood.name!r} "
                "has none (tau is ignored): use learn_tau=False"
            )
        if train_monte_carlo is None:
            train_monte_carlo = likelihood.default_monte_carlo(inference=False)
        if eval_monte_carlo is None:
            eval_monte_carlo = likelihood.default_monte_carlo(inference=True)
        train_mc = _make_monte_carlo(
            "train_monte_carlo", train_monte_carlo, num_samples=num_train_samples, sampler=sampler
        )
        eval_mc = _make_monte_carlo(
            "eval_monte_carlo", eval_monte_carlo, num_samples=num_eval_samples, sampler=sampler
        )
        check_positive("min_scale", min_scale)
        if noise_init_scale is None:
            noise_init_scale = 1e-2 if likelihood.has_temperature else 1.0
        check_positive("noise_init_scale", noise_init_scale)
        if noise_init_scale <= min_scale:
            raise ValueError(
                f"`noise_init_scale` must exceed min_scale={min_scale}, got {noise_init_scale}"
            )
        rank = family.resolve_rank(rank, num_classes=K, in_features=D)

        self.covariance_type, self.in_features, self.num_classes = family.name, D, K
        self.rank, self.learn_tau, self.tau_bounds = rank, bool(learn_tau), (lower, upper)
        self.likelihood = likelihood
        self.train_monte_carlo, self.eval_monte_carlo = train_mc, eval_mc
        self.multilabel, self.min_scale = bool(multilabel), float(min_scale)
        if learn_tau:
            frac = (tau - lower) / (upper - lower)
            self.tau_param = jnp.asarray(math.log(frac / (1.0 - frac)))
        else:
            self.tau_param = float(tau)

        self.mu = eqx.nn.Linear(D, K, key=jax.random.split(key, 4)[0])
        self.noise_layers, self.noise_shared = init_noise_outputs(
            family,
            in_features=D,
            num_classes=K,
            rank=rank,
            noise_init_scale=noise_init_scale,
            min_scale=min_scale,
            key=key,
        )

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
        params = (self.noise_layers, self.noise_shared, self.mu.weight)
        r, K = self._check_input(r), self.num_classes
        return noise_outputs(self.family, r, *params, num_classes=K, rank=self.rank)

    def noise_parameters(self, r: Float[Array, "*batch D"]) -> tuple[Array, NoiseStructure]:
        """mu `(*batch, K)` and the `NoiseStructure` of Sigma(r) (batch shape `*batch`).

        Accepts one representation `(D,)` or a batch `(*batch, D)`.
        """
        r = self._check_input(r)
        noise = self.family.build(
            self.raw_outputs(r), num_classes=self.num_classes, min_scale=self.min_scale
        )
        return apply_linear(self.mu, r), noise

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

    @property
    def needs_key(self) -> bool:
        """Whether the head's estimate draws random numbers (False: homoscedastic, and
        "probit" with diagonal noise or multilabel)."""
        return self.likelihood.needs_key(
            self.family.structure, self.rank, multilabel=self.multilabel
        )

    def _estimate(self, r, inference, num_samples, monte_carlo, key):
        """(mu, noise) of r and the keyword arguments of the `Likelihood` methods."""
        if key is None and self.needs_key:
            raise ValueError(
                f"HeteroscedasticHead(covariance={self.covariance_type!r}, "
                f"likelihood={self.likelihood.name!r}) is a Monte Carlo estimate and needs a "
                "PRNG key: call it with key=jax.random.key(...)"
            )
        mu, noise = self.noise_parameters(r)
        mc = self.monte_carlo(inference, num_samples, monte_carlo)
        kwargs = dict(multilabel=self.multilabel, key=key, tau=self.tau, monte_carlo=mc)
        return mu, noise, kwargs

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

        `key` drives the Monte Carlo draws (required unless `needs_key` is False); `inference`
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
        mu, noise, kwargs = self._estimate(r, inference, num_samples, monte_carlo, key)
        if not self.is_stochastic:  # bit-exact with log_softmax(linear(r)) at tau = 1
            tau = self.tau
            u = mu if (not self.learn_tau and tau == 1.0) else mu / tau
            return jax.nn.log_sigmoid(u) if self.multilabel else jax.nn.log_softmax(u, axis=-1)
        return self.likelihood.log_probs(mu, noise, **kwargs)

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
        """Per-example log-likelihood of observed labels by the head's estimator, `(*batch,)`.

        Multiclass `labels` are integers `(*batch,)` (only the observed class's term is
        computed); multilabel `labels` are 0/1 indicators `(*batch, K)`.
        """
        mu, noise, kwargs = self._estimate(r, inference, num_samples, monte_carlo, key)
        return self.likelihood.log_likelihood(mu, noise, labels, **kwargs)

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
        utilities); its `log_prob` the head's `likelihood` estimate with `key` (None: the
        distribution draws `numpyro.prng_key()` when built inside a seeded model, see
        `hetprobit.distributions`).
        """
        mu, noise = self.noise_parameters(r)
        cls = HeteroscedasticIndicators if self.multilabel else HeteroscedasticChoice
        mc = self.monte_carlo(inference, num_samples, monte_carlo)
        return cls(mu, noise, tau=self.tau, likelihood=self.likelihood, monte_carlo=mc, key=key)
