r"""`Likelihood`: which estimator of the label likelihood a head or a distribution uses.

The one table from a (likelihood, multilabel) pair to the core functions, shared by
`models.HeteroscedasticHead` and the NumPyro distributions (`HeteroscedasticChoice`,
`HeteroscedasticIndicators`):

    likelihood  multiclass                              multilabel: log P(y_c = 1)
    "tempered"  tempered_softmax_log_probs/_likelihood  tempered_sigmoid_log_probs/_likelihood
                log (1/S) Σ_s softmax((mu + eps_s)/tau)  log (1/S) Σ_s sigmoid((mu_c + eps_sc)/tau)
    "probit"    probit_log_probs/probit_log_likelihood  exact marginals log Phi(mu_c/sqrt(Sigma_cc))
                no tau: Gauss-Legendre over diag(d^2),   no draws, no tau
                S_R draws of the R factor dims only

Structures. "tempered" takes every `NoiseStructure`. "probit" multiclass needs
Sigma = diag(d^2) + V V^T in class space (`DiagonalNoise`, `LowRankNoise`,
`ParameterEfficientNoise`); "probit" multilabel takes any structure with noise (it only reads
`noise.variance()`). "probit" never takes `Homoscedastic` (no noise: the probit would be a
hard argmax). `Likelihood.check_noise` raises a ValueError naming both at construction.

The multilabel likelihood of indicators y `(..., K)` is, for both choices, the sum of the
per-class marginal terms Σ_c log P(y_c) (as in Collier et al. 2021, arXiv:2105.10305,
Appendix A); with "probit" each term is exact: log Phi((2 y_c - 1) mu_c / sqrt(Sigma_cc)).

The temperature tau is ignored by "probit". `num_nodes` (quadrature nodes of the inner
integral, see `hetprobit.probit`) is a field of the choice because only the probit estimator
has it; `hetprobit.probit_quadrature_error` helps choose it. The draws of either estimator
are set by a `hetprobit.MonteCarlo` value; `Likelihood.default_monte_carlo` gives the
defaults (tempered: S = 256 plain MC for training, 1024 for evaluation; probit: S_R = 64
QMC factor draws for training, 256 for evaluation, since each factor draw costs n
quadrature nodes and the integrand is smooth in z_R).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._probit_quadrature import _log_ndtr
from .likelihood import (
    tempered_sigmoid_log_likelihood,
    tempered_sigmoid_log_probs,
    tempered_softmax_log_likelihood,
    tempered_softmax_log_probs,
)
from .montecarlo import MonteCarlo
from .noise import NOISE_STRUCTURES, Homoscedastic, NoiseStructure, get_noise_family
from .probit import _SUPPORTED, probit_log_likelihood, probit_log_probs
from .validation import check_array, check_finite, check_indicator_labels, check_positive_int

__all__ = ["LIKELIHOODS", "Likelihood"]

LIKELIHOODS = ("tempered", "probit")


# ------------------------------------------------------------------ exact multilabel marginals
def _marginal_z(mu, noise):
    """mu / sqrt(diag Sigma), broadcast to the common batch shape `(..., K)`."""
    mu = check_array("mu", mu, min_ndim=1)
    check_finite("mu", mu)
    if noise.num_classes != mu.shape[-1]:
        raise ValueError(f"`noise` has K={noise.num_classes}, `mu` has K={mu.shape[-1]}")
    var = noise.variance()
    shape = (*jnp.broadcast_shapes(mu.shape[:-1], var.shape[:-1]), mu.shape[-1])
    return jnp.broadcast_to(mu, shape) / jnp.sqrt(jnp.broadcast_to(var, shape))


def _marginal_log_probs(mu, noise, **_):
    """log P(y_c = 1) = log Phi(mu_c / sqrt(Sigma_cc)), `(..., K)` (stable derivative)."""
    return _log_ndtr(_marginal_z(mu, noise))


def _marginal_log_likelihood(mu, noise, labels, **_):
    """Σ_c log Phi((2 y_c - 1) mu_c / sqrt(Sigma_cc)), `(...)`."""
    z = _marginal_z(mu, noise)
    labels = check_indicator_labels("labels", labels).astype(z.dtype)
    if labels.shape != z.shape:
        raise ValueError(f"`labels` must have shape {z.shape}, got {labels.shape}")
    return jnp.sum(_log_ndtr((2.0 * labels - 1.0) * z), axis=-1)


# ------------------------------------------------------------------ the table
class _Estimator(NamedTuple):
    log_probs: Callable
    log_likelihood: Callable
    kwargs: Callable  # (likelihood, key, tau, monte_carlo) -> keyword arguments
    supports: Callable[[type], bool]  # NoiseStructure subclass -> usable
    draws: Callable[[type, int], bool]  # (structure, rank) -> needs a key


def _tempered_kwargs(lik, key, tau, mc):
    return dict(key=key, tau=tau, **mc.kwargs())


def _has_noise(cls):
    return not issubclass(cls, Homoscedastic)


_TABLE = {
    ("tempered", False): _Estimator(
        tempered_softmax_log_probs,
        tempered_softmax_log_likelihood,
        _tempered_kwargs,
        lambda cls: True,
        lambda cls, rank: _has_noise(cls),
    ),
    ("tempered", True): _Estimator(
        tempered_sigmoid_log_probs,
        tempered_sigmoid_log_likelihood,
        _tempered_kwargs,
        lambda cls: True,
        lambda cls, rank: _has_noise(cls),
    ),
    ("probit", False): _Estimator(
        probit_log_probs,
        probit_log_likelihood,
        lambda lik, key, tau, mc: dict(key=key, num_nodes=lik.num_nodes, **mc.kwargs()),
        lambda cls: issubclass(cls, _SUPPORTED),
        lambda cls, rank: rank > 0,
    ),
    ("probit", True): _Estimator(
        _marginal_log_probs,
        _marginal_log_likelihood,
        lambda lik, key, tau, mc: {},
        _has_noise,
        lambda cls, rank: False,
    ),
}


def _structure_name(cls) -> str:
    """The registry name of a structure class (its class name if unregistered)."""
    for name in NOISE_STRUCTURES:
        if get_noise_family(name).structure is cls:
            return name
    return cls.__name__


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """The likelihood estimator of a head or a distribution (see module docstring).

    Immutable and hashable: a static field of an Equinox module, an auxiliary field of a
    NumPyro distribution. Anywhere a `Likelihood` is taken, its name alone ("tempered",
    "probit") stands for `Likelihood(name)`.

    Args:
        name: one of `LIKELIHOODS`.
        num_nodes: n, Gauss-Legendre nodes of the probit's inner integral (>= 1; multiclass
            "probit" only, ignored otherwise).

    Raises:
        ValueError: an unknown `name`, a non-positive `num_nodes`.
        TypeError: a non-integer `num_nodes`.
    """

    name: str = "tempered"
    num_nodes: int = 32

    def __post_init__(self):
        if self.name not in LIKELIHOODS:
            raise ValueError(f"`likelihood` must be one of {LIKELIHOODS}, got {self.name!r}")
        object.__setattr__(self, "num_nodes", check_positive_int("num_nodes", self.num_nodes))

    @classmethod
    def of(cls, likelihood: str | Likelihood) -> Likelihood:
        """`likelihood` itself, or `Likelihood(likelihood)` for a name.

        Raises:
            TypeError: neither a `Likelihood` nor a string.
            ValueError: an unknown name.
        """
        if isinstance(likelihood, Likelihood):
            return likelihood
        if not isinstance(likelihood, str):
            raise TypeError(
                f"`likelihood` must be one of {LIKELIHOODS} or a hetprobit.Likelihood, got "
                f"{type(likelihood).__name__}"
            )
        return cls(likelihood)

    def replace(self, **changes) -> Likelihood:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def has_temperature(self) -> bool:
        """Whether tau enters the estimate ("tempered")."""
        return self.name == "tempered"

    def _entry(self, multilabel) -> _Estimator:
        return _TABLE[self.name, bool(multilabel)]

    def check_noise(self, structure: type[NoiseStructure], *, multilabel: bool) -> None:
        """Raise if this estimator cannot use the noise structure `structure` (a class).

        Raises:
            ValueError: naming `likelihood` and the covariance, and the supported ones.
        """
        if self._entry(multilabel).supports(structure):
            return
        ok = [
            n
            for n in NOISE_STRUCTURES
            if self._entry(multilabel).supports(get_noise_family(n).structure)
        ]
        kind = "multilabel" if multilabel else "multiclass"
        why = (
            "it has no noise (the probit would be a hard argmax): use likelihood='tempered'"
            if not _has_noise(structure)
            else "it is not diag(d^2) + V V^T in class space: use likelihood='tempered'"
        )
        raise ValueError(
            f"`likelihood={self.name!r}` ({kind}) does not support "
            f"covariance={_structure_name(structure)!r}: {why}; supported: {ok}"
        )

    def needs_key(self, structure: type[NoiseStructure], rank: int, *, multilabel: bool) -> bool:
        """Whether the estimate draws random numbers (and so needs a PRNG key).

        False for the homoscedastic tempered estimate, the probit with diagonal noise
        (rank 0: deterministic quadrature) and the multilabel probit (exact marginals).
        """
        return self._entry(multilabel).draws(structure, rank)

    def default_monte_carlo(self, inference: bool = False) -> MonteCarlo:
        """Default draws: tempered S = 256 (training) / 1024 (evaluation) plain MC; probit
        S_R = 64 / 256 QMC factor draws."""
        if self.name == "probit":
            return MonteCarlo(num_samples=256 if inference else 64, sampler="qmc")
        return MonteCarlo(num_samples=1024 if inference else 256)

    def log_probs(
        self,
        mu: Float[Array, "... K"],
        noise: NoiseStructure,
        *,
        multilabel: bool,
        key: PRNGKeyArray | None,
        tau: float | Array = 1.0,
        monte_carlo: MonteCarlo,
    ) -> Float[Array, "... K"]:
        """Log-probabilities of every class (multilabel: log P(y_c = 1)), `(..., K)`.

        Raises:
            As the table's core function (e.g. a missing key, mismatched shapes).
        """
        e = self._entry(multilabel)
        return e.log_probs(mu, noise, **e.kwargs(self, key, tau, monte_carlo))

    def log_likelihood(
        self,
        mu: Float[Array, "... K"],
        noise: NoiseStructure,
        labels: Array,
        *,
        multilabel: bool,
        key: PRNGKeyArray | None,
        tau: float | Array = 1.0,
        monte_carlo: MonteCarlo,
    ) -> Float[Array, "..."]:
        """Per-example log-likelihood of observed labels, `(...)`: integer classes `(...)`
        (multiclass) or 0/1 indicators `(..., K)` (multilabel).

        Raises:
            As the table's core function.
        """
        e = self._entry(multilabel)
        return e.log_likelihood(mu, noise, labels, **e.kwargs(self, key, tau, monte_carlo))
