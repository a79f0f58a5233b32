r"""Multinomial probit regression for discrete-choice data (identified, Cholesky-parametrised).

Traveller n chooses among J alternatives with utilities

    U_nj = asc_j + x_nj^T beta + eps_nj,     y_n = argmax_j U_nj,

x_nj the `(p,)` attributes of alternative j (generic coefficients beta), asc_j an
alternative-specific constant with asc_base = 0. Only utility *differences* are identified,
so the noise is specified for the differences w.r.t. the base alternative:

    (eps_nj - eps_n,base)_{j != base} ~ N(0, Omega),  Omega = L L^T  ((J-1) x (J-1)),

with L lower triangular, positive diagonal exp(.) and L_00 = 1 fixed, which fixes the scale
(Omega_00 = 1). Equivalently the utility covariance Sigma has a zero row/column at the base
and Omega in the others (`utility_covariance`). This is `fit_choice(..., family="probit",
covariance="full")` on generic attributes; `fit_probit` is a thin array-level wrapper of it.

Likelihoods (`method=`):

- "exact": `hetprobit.exact_choice_log_probs` in log space (closed form K = 2, bivariate
  K = 3, trivariate K = 4, lattice SOV up to 10) with covariance Sigma + 1 1^T, which has the
  same choice probabilities (a common shock does not change the argmax) and a positive
  diagonal. Tail log-probabilities are exact (no floored probability).
- "tempered": the core's tempered-softmax MC likelihood with a *fixed* key (common random
  numbers: simulated maximum likelihood with a smooth, deterministic objective). Sigma is
  represented as `LowRankNoise(jitter, F)` with F the (J, J-1) factor [zero row at the base,
  L elsewhere] and a 1e-3 jitter on the diagonal (variance change 1e-6).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hetprobit import (
    LowRankNoise,
    exact_choice_log_probs,
    tempered_softmax_log_likelihood,
    tempered_softmax_log_probs,
)
from hetprobit.validation import check_array, check_labels, check_positive_int

from .choice_data import ChoiceData
from .choice_fit import fit_choice
from .choice_results import ChoiceResults
from .choice_spec import ChoiceSpec

__all__ = [
    "ProbitParams",
    "ProbitFit",
    "init_probit_params",
    "difference_cholesky",
    "difference_covariance",
    "utility_covariance",
    "systematic_utilities",
    "choice_log_probs",
    "choice_log_likelihood",
    "simulate_choices",
    "fit_probit",
    "params_from_covariance",
]

METHODS = ("exact", "tempered")
JITTER = 1e-3


class ProbitParams(NamedTuple):
    """Parameters of the identified multinomial probit.

    Attributes:
        asc: constants of the J - 1 non-base alternatives (in alternative order), `(J-1,)`.
        beta: generic attribute coefficients, `(p,)`.
        chol: unconstrained `(J-1, J-1)`; L = tril(chol, -1) + diag(exp(diag(chol))) with
            the (0, 0) entry fixed to 1 (chol[0, 0] is ignored).
    """

    asc: Float[Array, " Jm1"]
    beta: Float[Array, " p"]
    chol: Float[Array, "Jm1 Jm1"]


class ProbitFit(NamedTuple):
    """Result of `fit_probit`: fitted params (original attribute units), the exact
    log-likelihood at them and the full `ChoiceResults` (standard errors, convergence)."""

    params: ProbitParams
    log_likelihood: float
    results: ChoiceResults


def init_probit_params(num_alternatives: int, num_attributes: int) -> ProbitParams:
    """All-zero parameters: no constants, beta = 0, Omega = I."""
    J = check_positive_int("num_alternatives", num_alternatives, minimum=2)
    p = check_positive_int("num_attributes", num_attributes, minimum=0)
    return ProbitParams(jnp.zeros(J - 1), jnp.zeros(p), jnp.zeros((J - 1, J - 1)))


def difference_cholesky(params: ProbitParams) -> Float[Array, "Jm1 Jm1"]:
    """L with Omega = L L^T, positive diagonal, L_00 = 1."""
    c = params.chol
    log_diag = jnp.diagonal(c).at[0].set(0.0)
    return jnp.tril(c, -1) + jnp.diag(jnp.exp(log_diag))


def difference_covariance(params: ProbitParams) -> Float[Array, "Jm1 Jm1"]:
    """Omega = Cov(eps_j - eps_base, j != base), Omega_00 = 1."""
    L = difference_cholesky(params)
    return L @ L.T


def _insert_base(x: Array, base: int, axis: int = 0) -> Array:
    """Insert a zero slice at index `base` along `axis` (J-1 -> J)."""
    shape = list(x.shape)
    shape[axis] = 1
    zero = jnp.zeros(shape, x.dtype)
    parts = [
        lax.slice_in_dim(x, 0, base, axis=axis),
        zero,
        lax.slice_in_dim(x, base, None, axis=axis),
    ]
    return jnp.concatenate(parts, axis=axis)


def utility_covariance(params: ProbitParams, *, base: int = 0) -> Float[Array, "J J"]:
    """Sigma `(J, J)`: zero row and column at `base`, Omega elsewhere."""
    F = _insert_base(difference_cholesky(params), base, axis=0)
    return F @ F.T


def params_from_covariance(asc: Array, beta: Array, omega: Array) -> ProbitParams:
    """Build `ProbitParams` from constants, coefficients and an Omega with Omega_00 = 1.

    (Does not rescale: pass an Omega already normalised to Omega_00 = 1.)
    """
    omega = check_array("omega", omega, ndim=2)
    if not np.isclose(float(omega[0, 0]), 1.0, atol=1e-6):
        raise ValueError(
            f"`omega` must have omega[0, 0] = 1 (scale normalisation), got {omega[0, 0]}"
        )
    L = jnp.linalg.cholesky(omega)
    chol = jnp.tril(L, -1) + jnp.diag(jnp.log(jnp.diagonal(L)))
    return ProbitParams(jnp.asarray(asc, L.dtype), jnp.asarray(beta, L.dtype), chol)


def _check_data(params, attributes, base):
    attributes = check_array("attributes", attributes, ndim=3)
    N, J, p = attributes.shape
    if params.asc.shape != (J - 1,) or params.beta.shape != (p,):
        raise ValueError(
            f"params (asc {params.asc.shape}, beta {params.beta.shape}) do not match attributes "
            f"(N, J, p) = {attributes.shape}: need asc ({J - 1},), beta ({p},)"
        )
    if not (isinstance(base, int) and 0 <= base < J):
        raise ValueError(f"`base` must be an alternative index in [0, {J}), got {base!r}")
    return attributes


def systematic_utilities(
    params: ProbitParams, attributes: Float[Array, "N J p"], *, base: int = 0
) -> Float[Array, "N J"]:
    """V_nj = asc_j + x_nj^T beta (asc_base = 0)."""
    attributes = _check_data(params, attributes, base)
    asc = _insert_base(params.asc, base)
    return jnp.einsum("njp,p->nj", attributes, params.beta) + asc[None]


def _noise(params, base, J):
    F = _insert_base(difference_cholesky(params), base, axis=0)
    return LowRankNoise(jnp.full((J,), JITTER, F.dtype), F)


def _exact_log_probs(V, params, base):
    J = V.shape[-1]
    cov = utility_covariance(params, base=base) + jnp.ones((J, J), V.dtype)
    return exact_choice_log_probs(V, cov)


def choice_log_probs(
    params: ProbitParams,
    attributes: Float[Array, "N J p"],
    *,
    base: int = 0,
    method: str = "exact",
    key: PRNGKeyArray | None = None,
    tau: float = 0.1,
    num_samples: int = 512,
) -> Float[Array, "N J"]:
    """log P(y_n = j) for every alternative, `(N, J)` (see module docstring for `method`)."""
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    V = systematic_utilities(params, attributes, base=base)
    if method == "exact":
        return _exact_log_probs(V, params, base)
    if key is None:
        raise ValueError("method='tempered' needs key= (fixed key: common random numbers)")
    noise = _noise(params, base, V.shape[-1])
    return tempered_softmax_log_probs(V, noise, key=key, tau=tau, num_samples=num_samples)


def choice_log_likelihood(
    params: ProbitParams,
    attributes: Float[Array, "N J p"],
    choices: Int[Array, " N"],
    *,
    base: int = 0,
    method: str = "exact",
    key: PRNGKeyArray | None = None,
    tau: float = 0.1,
    num_samples: int = 512,
) -> Float[Array, " N"]:
    """Per-traveller log P(y_n = chosen), `(N,)`."""
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    V = systematic_utilities(params, attributes, base=base)
    N, J = V.shape
    choices = check_labels("choices", choices, J)
    if choices.shape != (N,):
        raise ValueError(f"`choices` must have shape ({N},), got {choices.shape}")
    if method == "exact":
        lp = _exact_log_probs(V, params, base)
        return jnp.take_along_axis(lp, choices[:, None].astype(jnp.int32), axis=-1)[:, 0]
    if key is None:
        raise ValueError("method='tempered' needs key= (fixed key: common random numbers)")
    noise = _noise(params, base, J)
    return tempered_softmax_log_likelihood(
        V, noise, choices, key=key, tau=tau, num_samples=num_samples
    )


def simulate_choices(
    params: ProbitParams,
    attributes: Float[Array, "N J p"],
    *,
    base: int = 0,
    key: PRNGKeyArray,
) -> Int[Array, " N"]:
    """Draw y_n = argmax_j (V_nj + eps_nj) from the model (exact generative process)."""
    V = systematic_utilities(params, attributes, base=base)
    N, J = V.shape
    F = _insert_base(difference_cholesky(params), base, axis=0)  # (J, J-1)
    z = jax.random.normal(key, (N, J - 1), V.dtype)
    return jnp.argmax(V + z @ F.T, axis=-1).astype(jnp.int32)


def fit_probit(
    attributes: Float[Array, "N J p"],
    choices: Int[Array, " N"],
    *,
    base: int = 0,
    method: str = "exact",
    key: PRNGKeyArray | None = None,
    tau: float = 0.1,
    num_samples: int = 512,
    init: ProbitParams | None = None,
    max_steps: int = 500,
) -> ProbitFit:
    """Maximum (simulated) likelihood fit: `fit_choice(family="probit", covariance="full")`.

    Args:
        attributes: `(N, J, p)` generic attributes; choices: `(N,)` chosen indices.
        base: index of the base alternative. method: "exact" | "tempered" (the latter needs a
            fixed `key`; `tau`, `num_samples` as in the module docstring).
        init: starting parameters (default: from the logit fit, see `fit_choice`).
        max_steps: BFGS iterations per start.

    Returns:
        `ProbitFit(params, log_likelihood, results)`: the best point found (BFGS from several
        starts, never a worse last iterate); `log_likelihood` is the exact log-likelihood.

    Raises:
        ValueError: bad shapes, labels, base or method; tempered without a key.
    """
    attributes = check_array("attributes", attributes, ndim=3)
    N, J, p = attributes.shape
    check_positive_int("max_steps", max_steps)
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    if method == "tempered" and key is None:
        raise ValueError("method='tempered' needs key= (fixed key: common random numbers)")
    if not (isinstance(base, int) and 0 <= base < J):
        raise ValueError(f"`base` must be an alternative index in [0, {J}), got {base!r}")
    choices = np.asarray(check_labels("choices", choices, J))
    if choices.shape != (N,):
        raise ValueError(f"`choices` must have shape ({N},), got {choices.shape}")
    alts = tuple(f"alt{j}" for j in range(J))
    names = tuple(f"x{i}" for i in range(p))
    data = ChoiceData.from_arrays(
        np.asarray(attributes, np.float64), choices.astype(np.int32), alternatives=alts,
        attribute_names=names,
    )  # fmt: skip
    spec = ChoiceSpec(base=alts[base], generic=names)
    starts = None
    if init is not None:
        _check_data(init, attributes, base)
        L = np.asarray(difference_cholesky(init), np.float64)
        raw = []
        for i in range(J - 1):
            raw += list(L[i, :i]) + ([float(np.log(L[i, i]))] if i else [])
        starts = np.concatenate([np.asarray(init.asc), np.asarray(init.beta), raw])[None]
    res = fit_choice(
        data, spec, family="probit", covariance="full", method=method, key=key, tau=tau,
        num_samples=num_samples, starts=starts, max_steps=max_steps,
    )  # fmt: skip
    theta = res.params
    with jax.enable_x64(True):  # Omega (J-1 x J-1), differences w.r.t. the base, Omega_00 = 1
        omega = np.asarray(res.model.difference_covariance(jnp.asarray(theta)), np.float64)
    L = np.linalg.cholesky(omega)
    chol = np.tril(L, -1) + np.diag(np.log(np.diagonal(L)))
    dtype = attributes.dtype
    params = ProbitParams(
        jnp.asarray(theta[: J - 1], dtype),
        jnp.asarray(theta[J - 1 : J - 1 + p], dtype),
        jnp.asarray(chol, dtype),
    )
    return ProbitFit(params, res.log_likelihood, res)
