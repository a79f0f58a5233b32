r"""NumPyro distributions of the heteroscedastic probit generative process.

`HeteroscedasticChoice` (multiclass) and `HeteroscedasticIndicators` (multilabel):

- `sample` runs the true generative process, no relaxation: u = mu + eps, eps ~ N(0, Sigma),
  then y = argmax_j u_j, or y_c = 1{u_c > 0};
- `log_prob` is the estimate chosen by `likelihood=` (`hetprobit.Likelihood`, one table in
  `hetprobit.estimator`): "tempered" (default), the tempered Monte Carlo estimate of
  `hetprobit.likelihood`; "probit", the untempered estimator of `hetprobit.probit`
  (multiclass; `DiagonalNoise`, `LowRankNoise`, `ParameterEfficientNoise`) or the exact
  marginals log Phi(mu_c / sqrt(Sigma_cc)) (multilabel; any structure with noise). With
  "probit" `tau` is ignored.

When `log_prob` draws random numbers (tempered with noise, probit with a factor) it needs a
PRNG key; the probit with diagonal noise and the multilabel probit are deterministic. Pass
`key=` to the constructor for common random numbers (a deterministic objective: simulated
maximum likelihood, MCMC, arviz's `log_likelihood`, which supply no key). Leave it None
inside a NumPyro model: the
constructor then draws the key with the public `numpyro.prng_key()`, i.e. from the `seed`
handler the model runs under, and stores it. SVI seeds the model afresh at every step, so
every step gets fresh draws, and the key is already in the distribution when NumPyro
evaluates `log_prob` after the model has run (no handler is active then). Built outside any
`seed` handler with no key (and an estimate that needs draws), `log_prob` raises.

The Monte Carlo setting (samples, sampler, chunking, shared draws) is one
`hetprobit.MonteCarlo` value, validated where it is built; `with_monte_carlo(mc)` returns
a copy with another setting (e.g. more samples for prediction). Its default depends on the
likelihood (`Likelihood.default_monte_carlo()`: S = 256 plain MC draws for "tempered",
S_R = 64 QMC factor draws for "probit").
"""

from __future__ import annotations

import copy
import math
import warnings

import jax
import jax.numpy as jnp
import numpyro
from numpyro.distributions import Distribution, constraints

from .estimator import Likelihood
from .montecarlo import MonteCarlo
from .noise import Homoscedastic, NoiseStructure
from .validation import check_array, check_finite, check_positive

__all__ = ["HeteroscedasticChoice", "HeteroscedasticIndicators"]


def _model_key():
    """`numpyro.prng_key()` inside a seeded model; None (silently) outside any handler."""
    with warnings.catch_warnings():
        # numpyro warns (and returns None) when no seed handler is active: that case is
        # reported by `log_prob` with an error that says what to do.
        warnings.filterwarnings("ignore", message="Cannot generate JAX PRNG key")
        return numpyro.prng_key()


class _HeteroscedasticBase(Distribution):
    arg_constraints = {"mu": constraints.real_vector}
    pytree_data_fields = ("mu", "noise", "tau", "mc_key")
    pytree_aux_fields = ("monte_carlo", "likelihood")
    _multilabel = False

    def __init__(
        self,
        mu,
        noise: NoiseStructure | None = None,
        *,
        tau: float = 1.0,
        likelihood: str | Likelihood = "tempered",
        monte_carlo: MonteCarlo | None = None,
        key=None,
        num_samples: int | None = None,
        sampler: str | None = None,
        chunk_size: int | None = None,
        share_draws: bool | None = None,
        event_shape: tuple[int, ...] = (),
        validate_args=None,
    ):
        mu = check_array("mu", mu, min_ndim=1)
        check_finite("mu", mu)
        noise = Homoscedastic(mu.shape[-1]) if noise is None else noise
        if not isinstance(noise, NoiseStructure):
            raise TypeError(f"`noise` must be a NoiseStructure, got {type(noise).__name__}")
        if noise.num_classes != mu.shape[-1]:
            raise ValueError(f"`noise` has K={noise.num_classes}, `mu` has K={mu.shape[-1]}")
        check_positive("tau", tau)
        likelihood = Likelihood.of(likelihood)
        likelihood.check_noise(type(noise), multilabel=self._multilabel)
        if monte_carlo is not None and not isinstance(monte_carlo, MonteCarlo):
            raise TypeError(
                f"`monte_carlo` must be a hetprobit.MonteCarlo, got {type(monte_carlo).__name__}"
            )
        mc = (monte_carlo or likelihood.default_monte_carlo()).replace(
            num_samples=num_samples, sampler=sampler, chunk_size=chunk_size, share_draws=share_draws
        )
        batch_shape = jnp.broadcast_shapes(mu.shape[:-1], noise.batch_shape)
        mu = jnp.broadcast_to(mu, (*batch_shape, mu.shape[-1]))
        if key is None and likelihood.needs_key(
            type(noise), noise.rank, multilabel=self._multilabel
        ):
            key = _model_key()
        self.mu, self.noise, self.tau, self.mc_key = mu, noise, tau, key
        self.monte_carlo, self.likelihood = mc, likelihood
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @property
    def num_samples(self) -> int:
        """S of the Monte Carlo estimate (`monte_carlo.num_samples`)."""
        return self.monte_carlo.num_samples

    def with_monte_carlo(self, monte_carlo: MonteCarlo):
        """A copy of this distribution with another Monte Carlo setting (same key and noise).

        Raises:
            TypeError: `monte_carlo` is not a `hetprobit.MonteCarlo`.
        """
        if not isinstance(monte_carlo, MonteCarlo):
            raise TypeError(
                f"`monte_carlo` must be a hetprobit.MonteCarlo, got {type(monte_carlo).__name__}"
            )
        new = copy.copy(self)
        new.monte_carlo = monte_carlo
        return new

    @property
    def num_classes(self) -> int:
        return self.mu.shape[-1]

    def _mc_kwargs(self):
        key = self.mc_key
        noise = self.noise
        if key is None and self.likelihood.needs_key(
            type(noise), noise.rank, multilabel=self._multilabel
        ):
            raise RuntimeError(
                "log_prob is a Monte Carlo estimate and needs a key: pass key= to the "
                "distribution, or build it inside a NumPyro model run under a seed handler "
                "(SVI, Predictive, numpyro.handlers.seed), where it draws numpyro.prng_key()"
            )
        return dict(
            multilabel=self._multilabel, key=key, tau=self.tau, monte_carlo=self.monte_carlo
        )

    def _utilities(self, key, sample_shape):
        """Gaussian utilities u = mu + eps, shape `sample_shape + batch_shape + (K,)`."""
        n, K, nb = math.prod(sample_shape), self.num_classes, len(self.batch_shape)
        mu = self.mu[None]
        if isinstance(self.noise, Homoscedastic):
            u = jnp.broadcast_to(mu, (n, *self.batch_shape, K))
        else:
            eps = self.noise.sample(key, n)
            eps = eps.reshape(n, *(1,) * (nb - len(self.noise.batch_shape)), *eps.shape[1:])
            u = mu + eps
        return u.reshape(*sample_shape, *self.batch_shape, K)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        kwargs = self._mc_kwargs()
        return self._log_prob_batched(
            value,
            lambda y: self.likelihood.log_likelihood(self.mu, self.noise, y, **kwargs),
            len(self.event_shape),
        )

    def log_probs(self):
        """Log-probabilities of every class (multilabel: of y_c = 1), `(*batch, K)`, by the
        distribution's likelihood estimator."""
        return self.likelihood.log_probs(self.mu, self.noise, **self._mc_kwargs())

    def _log_prob_batched(self, value, fn, event_ndim):
        """Apply fn(value) for values with extra leading sample dims (same draws for each)."""
        extra = jnp.ndim(value) - len(self.batch_shape) - event_ndim
        if extra < 0 or jnp.shape(value)[extra:] != self.batch_shape + self.event_shape:
            raise ValueError(
                f"`value` must have shape (..., *{self.batch_shape + self.event_shape}), "
                f"got {jnp.shape(value)}"
            )
        for _ in range(extra):
            fn = jax.vmap(fn)
        return fn(value)


class HeteroscedasticChoice(_HeteroscedasticBase):
    """Multiclass choice y = argmax_j (mu_j + eps_j), eps ~ N(0, Sigma) (multinomial probit).

    Args:
        mu: mean utilities `(..., K)`; the batch shape is `mu.shape[:-1]`, event shape `()`.
        noise: a `NoiseStructure` (default `Homoscedastic`: a tempered softmax).
        tau: temperature of the softmax relaxation used by `log_prob` (> 0; ignored by
            `likelihood="probit"`).
        likelihood: "tempered", "probit" or a `hetprobit.Likelihood` (e.g.
            `Likelihood("probit", num_nodes=48)`); see module docstring.
        monte_carlo: the Monte Carlo setting of `log_prob` / `log_probs` (default
            `likelihood.default_monte_carlo()`: S = 256 plain MC draws for "tempered",
            64 QMC factor draws for "probit").
        key: key for `log_prob`'s draws (see module docstring); None -> `numpyro.prng_key()`
            drawn here, at construction, when built inside a seeded NumPyro model.
        num_samples, sampler, chunk_size, share_draws: shortcuts that replace the fields of
            `monte_carlo` (validated by `MonteCarlo`).

    Raises:
        ValueError: non-finite `mu`, `noise` with another K, `tau` <= 0, an invalid Monte
            Carlo setting (unknown sampler, odd S with antithetic pairs, S < 1), an unknown
            `likelihood` or one that does not support the noise structure (e.g. "probit"
            with `Homoscedastic`, `HetXLNoise` or `FullNoise` noise, multiclass).
        TypeError: `noise` not a `NoiseStructure`, `monte_carlo` not a `MonteCarlo`,
            `likelihood` neither a name nor a `Likelihood`.
    """

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.num_classes - 1)

    def sample(self, key, sample_shape=()):
        return jnp.argmax(self._utilities(key, sample_shape), axis=-1)

    def enumerate_support(self, expand=True):
        values = jnp.arange(self.num_classes).reshape((-1,) + (1,) * len(self.batch_shape))
        return jnp.broadcast_to(values, (self.num_classes, *self.batch_shape)) if expand else values


class HeteroscedasticIndicators(_HeteroscedasticBase):
    """Multilabel indicators y_c = 1{mu_c + eps_c > 0}, eps ~ N(0, Sigma).

    Event shape `(K,)`; `log_prob` sums the per-class Bernoulli terms log P(y_c): tempered
    sigmoid estimates, or with `likelihood="probit"` the exact marginals
    log Phi((2 y_c - 1) mu_c / sqrt(Sigma_cc)) (no draws, no key). Arguments as in
    `HeteroscedasticChoice`.
    """

    _multilabel = True

    def __init__(self, mu, noise=None, **kwargs):
        mu = check_array("mu", mu, min_ndim=1)
        super().__init__(mu, noise, event_shape=(mu.shape[-1],), **kwargs)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.independent(constraints.boolean, 1)

    def sample(self, key, sample_shape=()):
        return (self._utilities(key, sample_shape) > 0).astype(jnp.int32)
