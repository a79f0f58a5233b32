r"""Choice probabilities and per-chooser log-likelihoods of logit and probit choice models.

U_nj = V_nj + eps_nj, y_n = argmax_j U_nj over the available alternatives, V = X theta_beta
(`choice_spec.design_matrix`). Families and their normalisations (only utility differences and
one scale are identified; Train 2009, *Discrete Choice Methods with Simulation*, ch. 2 and 5):

* `logit`: eps iid standard Gumbel (Var = pi^2 / 6): P_nj = softmax_j(V_n) (closed form).
* `probit`, covariance
    - `iid`: Sigma = I_J (Var(eps_j) = 1): coefficients compare with other packages' IID probit.
    - `heteroscedastic`: Sigma = diag(s^2), s_base = 1 fixed; parameters `ln_sd_<alt>`.
    - `full`: the covariance of the differences w.r.t. the base, Omega = Cov(eps_j - eps_base)
      `(J-1, J-1)` = L L^T, L lower triangular with positive diagonal exp(.) and L_00 = 1
      (Omega_00 = 1 fixes the scale); parameters `ln_chol_<alt>` (diagonal, rows 2..J-1) and
      `chol_<alt>_<alt>` (below the diagonal). Sigma has a zero row/column at the base.
    - `factor`: Sigma = I_J + W W^T, W `(J, R)` with a zero row at the base (only differences
      are identified) and W's non-base rows lower triangular (rotation); unit idiosyncratic
      variances fix the scale; parameters `load_<alt>_<r>`. Nests iid (W = 0) and is nested in
      full. Order condition: #parameters <= J (J - 1) / 2 - 1.

Likelihoods (`method=`): "exact": for J <= 4 one orthant probability per chooser, the chosen
alternative's, by `choice_orthant.orthant_log_prob` (the core's closed forms, closed-form
derivatives, log-space tail); for 5 <= J <= 10 `hetprobit.mvn_log_cdf` (Genz's lattice SOV /
GHK with `n_points * n_shifts` points, error estimate from the shifts), again one orthant per
chooser.
Predicted probabilities of every alternative: the same orthants, one per alternative.
"tempered" is the core's tempered-softmax Monte Carlo likelihood
with a fixed key (a logit-kernel probit; biased unless tau << the smallest noise s.d.).
Unavailable alternatives: logit masks them out of the softmax; probit moves their utility
40 noise s.d. below the lowest available one (probability < 1e-300, a constant shift).

"untempered" is the core's `hetprobit.probit_log_likelihood` (no temperature): for Sigma =
diag(d^2) + W W^T a 1-D mode-adapted quadrature with `num_nodes` nodes given the factor draws,
averaged over `num_samples` randomised-QMC factor draws with the fixed `arrays.key` (common
random numbers); deterministic for "iid" / "heteroscedastic" (no draws). Not for "full".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

import hetprobit

from .choice_orthant import orthant_log_prob
from .choice_spec import DesignLayout, design_matrix

__all__ = [
    "FAMILIES",
    "COVARIANCES",
    "METHODS",
    "ChoiceArrays",
    "ChoiceModel",
    "core_noise",
    "noise_parameter_names",
]

FAMILIES = ("logit", "probit")
COVARIANCES = ("iid", "heteroscedastic", "full", "factor")
METHODS = ("exact", "tempered", "untempered")
MASK_SD = 40.0

NORMALISATION = {
    "logit": "eps iid standard Gumbel (Var = pi^2/6); asc_base = 0",
    "iid": "Sigma = I (Var(eps_j) = 1); asc_base = 0",
    "heteroscedastic": "Sigma = diag(sd^2), sd_base = 1; asc_base = 0",
    "full": "Omega = Cov(eps_j - eps_base) = L L^T, Omega[0,0] = 1; asc_base = 0",
    "factor": "Sigma = I + W W^T, W[base] = 0, W lower triangular; asc_base = 0",
}


class ChoiceArrays(NamedTuple):
    """The arrays a likelihood evaluation needs (jit arguments, not static).

    attributes `(N, J, A)`, individual `(N, Q)`, available `(N, J)` bool, chosen `(N,)` int,
    key: the fixed PRNG key of the tempered Monte Carlo likelihood (common random numbers).
    """

    attributes: Float[Array, "N J A"]
    individual: Float[Array, "N Q"]
    available: Bool[Array, "N J"]
    chosen: Int[Array, " N"]
    key: Array


def _difference_matrices(J: int) -> np.ndarray:
    """`(J, J-1, J)`: row j of matrix k is e_k - e_j (j != k), so A_k u = (u_k - u_j)_{j != k}."""
    out = np.zeros((J, J - 1, J))
    for k in range(J):
        for r, j in enumerate(i for i in range(J) if i != k):
            out[k, r, k], out[k, r, j] = 1.0, -1.0
    return out


def _pick(values, chosen):
    return jnp.take_along_axis(values, chosen[:, None], axis=-1)[:, 0]


def noise_parameter_names(
    covariance: str, alternatives: tuple[str, ...], base: int, rank: int
) -> tuple[str, ...]:
    """Names of the free noise parameters, in the order of theta after the coefficients."""
    others = [a for j, a in enumerate(alternatives) if j != base]
    if covariance == "iid":
        return ()
    if covariance == "heteroscedastic":
        return tuple(f"ln_sd_{a}" for a in others)
    if covariance == "full":
        names = []
        for i, a in enumerate(others):
            for k in range(i):
                names.append(f"chol_{a}_{others[k]}")
            if i > 0:
                names.append(f"ln_chol_{a}")
        return tuple(names)
    return tuple(f"load_{a}_{r}" for i, a in enumerate(others) for r in range(min(i + 1, rank)))


def _fill_lower(values, m: int, rank: int):
    """Scatter the lower-triangular parameters into an `(m, rank)` matrix (row-major order)."""
    rows, cols = zip(*[(i, r) for i in range(m) for r in range(min(i + 1, rank))], strict=True)
    return jnp.zeros((m, rank), values.dtype).at[np.array(rows), np.array(cols)].set(values)


def _insert_base_row(M, base: int):
    zero = jnp.zeros((1,) + M.shape[1:], M.dtype)
    return jnp.concatenate([M[:base], zero, M[base:]], axis=0)


def _full_cholesky(raw, m: int):
    """L `(m, m)`: raw holds, row by row, the sub-diagonal entries then ln L_ii (i >= 1)."""
    L = jnp.zeros((m, m), raw.dtype).at[0, 0].set(1.0)
    pos = 0
    for i in range(m):
        if i:
            L = L.at[i, :i].set(raw[pos : pos + i])
            L = L.at[i, i].set(jnp.exp(raw[pos + i]))
            pos += i + 1
    return L


#: choice-model covariance name -> the core registry's noise structure
REGISTRY_NAMES = {"iid": "diagonal", "heteroscedastic": "diagonal", "full": "full",
                  "factor": "low_rank"}  # fmt: skip


def core_noise(covariance: str, raw, *, num_alternatives: int, base: int, rank: int):
    """Map a covariance name and its raw parameters to the core's noise structure.

    The structure class comes from the core's registry (`hetprobit.get_noise_family`, names
    in `REGISTRY_NAMES`), the same structures as the classifier head's: "iid" and
    "heteroscedastic" -> `DiagonalNoise`, "factor" -> `LowRankNoise(1, W)`, "full" ->
    `FullNoise(chol(F F^T + 1 1^T))` with F the `(J, J-1)` factor [zero row at the base, L
    elsewhere]: a common shock leaves every choice probability unchanged, so the choice
    probabilities are those of Omega = L L^T, and Sigma is positive definite.

    Returns:
        (noise, cov): the `hetprobit.NoiseStructure` and its `(J, J)` covariance.
    """
    J = num_alternatives
    dtype = raw.dtype
    family = hetprobit.get_noise_family(REGISTRY_NAMES[covariance])
    if covariance == "iid":
        noise = family.structure(jnp.ones(J, dtype))
    elif covariance == "heteroscedastic":
        sd = _insert_base_row(jnp.exp(raw), base) + jax.nn.one_hot(base, J, dtype=dtype)
        noise = family.structure(sd)
    elif covariance == "full":
        F = _insert_base_row(_full_cholesky(raw, J - 1), base)
        Sigma = F @ F.T + jnp.ones((J, J), dtype)
        noise = family.structure(jnp.linalg.cholesky(Sigma))
    else:
        W = _insert_base_row(_fill_lower(raw, J - 1, rank), base)
        noise = family.structure(jnp.ones(J, dtype), W)
    return noise, noise.covariance()


@dataclass(frozen=True)
class ChoiceModel:
    """Static description of a choice model (hashable: a jit static argument).

    theta = (coefficients in `layout` order, noise parameters in `noise_names` order).
    Calling the model, `model(theta, arrays)`, gives the per-chooser log-likelihood `(N,)`.
    """

    layout: DesignLayout
    family: str = "logit"
    covariance: str = "iid"
    rank: int = 1
    method: str = "exact"
    tau: float = 0.05
    num_samples: int = 1024
    n_points: int = 1021
    n_shifts: int = 8
    num_nodes: int = 32

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"`family` must be one of {FAMILIES}, got {self.family!r}")
        if self.covariance not in COVARIANCES:
            raise ValueError(f"`covariance` must be one of {COVARIANCES}, got {self.covariance!r}")
        if self.method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {self.method!r}")
        J = self.num_alternatives
        if self.family == "probit":
            if self.method == "exact" and J > hetprobit.MAX_EXACT_CLASSES:
                raise ValueError(
                    f"exact probit supports J <= {hetprobit.MAX_EXACT_CLASSES} alternatives, got "
                    f"{J}; use method='tempered'"
                )
            if self.covariance == "factor" and not 1 <= self.rank <= J - 2:
                raise ValueError(f"`rank` must be in [1, J-2={J - 2}], got {self.rank}")
            limit = J * (J - 1) // 2 - 1
            if len(self.noise_names) > limit:
                raise ValueError(
                    f"covariance={self.covariance!r} (rank {self.rank}) has "
                    f"{len(self.noise_names)} noise parameters but J={J} alternatives identify "
                    f"at most {limit} (order condition)"
                )
        if self.method == "untempered" and self.covariance == "full":
            raise ValueError(
                "method='untempered' needs Sigma = diag(d^2) + W W^T: covariance 'iid', "
                "'heteroscedastic' or 'factor', got covariance='full'"
            )
        if self.method == "tempered" and not self.tau > 0:
            raise ValueError(f"`tau` must be > 0, got {self.tau}")

    # ------------------------------------------------------------------ layout
    @property
    def num_alternatives(self) -> int:
        return len(self.layout.alternatives)

    @property
    def coef_names(self) -> tuple[str, ...]:
        return self.layout.names

    @property
    def noise_names(self) -> tuple[str, ...]:
        if self.family == "logit":
            return ()
        return noise_parameter_names(
            self.covariance, self.layout.alternatives, self.layout.base, self.rank
        )

    @property
    def names(self) -> tuple[str, ...]:
        return self.coef_names + self.noise_names

    @property
    def normalisation(self) -> str:
        return NORMALISATION["logit" if self.family == "logit" else self.covariance]

    def split(self, theta):
        P = len(self.coef_names)
        return theta[:P], theta[P:]

    # ------------------------------------------------------------------ maths
    def utilities(self, theta, attributes, individual) -> Float[Array, "N J"]:
        """V = X theta_beta, `(N, J)`."""
        beta, _ = self.split(theta)
        return design_matrix(self.layout, attributes, individual) @ beta

    def noise(self, theta):
        """(core noise structure, exact covariance) of the probit (see `core_noise`)."""
        _, raw = self.split(theta)
        return core_noise(
            self.covariance,
            raw,
            num_alternatives=self.num_alternatives,
            base=self.layout.base,
            rank=self.rank,
        )

    def difference_covariance(self, theta) -> Float[Array, "Jm1 Jm1"]:
        """Omega = Cov(eps_j - eps_base), j != base, `(J-1, J-1)` (logit: pi^2/6 (I + 1 1^T))."""
        J, b = self.num_alternatives, self.layout.base
        if self.family == "logit":
            Sigma = (math.pi**2 / 6) * jnp.eye(J)
        else:
            Sigma = self.noise(theta)[1]
        A = jnp.asarray(np.delete(np.eye(J), b, axis=0) - np.eye(J)[b][None], Sigma.dtype)
        return A @ Sigma @ A.T

    def _masked(self, V, available, cov=None):
        if cov is None:
            return jnp.where(available, V, -jnp.inf)
        low = jnp.min(jnp.where(available, V, jnp.inf), axis=-1, keepdims=True)
        shift = MASK_SD * jnp.sqrt(jnp.max(jnp.diagonal(cov)))
        return jnp.where(available, V, lax.stop_gradient(low - shift))

    def log_probs(self, theta, arrays: ChoiceArrays) -> Float[Array, "N J"]:
        """log P(y_n = j) `(N, J)`; -inf for unavailable alternatives. Probit "tempered" uses
        the Monte Carlo estimate with `arrays.key`."""
        V = self.utilities(theta, arrays.attributes, arrays.individual)
        if self.family == "logit":
            return jax.nn.log_softmax(self._masked(V, arrays.available), axis=-1)
        noise, cov = self.noise(theta)
        Vm = self._masked(V, arrays.available, cov)
        if self.method == "untempered":
            lp = hetprobit.probit_log_probs(
                Vm,
                noise,
                key=arrays.key if noise.rank else None,
                num_samples=self.num_samples,
                num_nodes=self.num_nodes,
            )
        elif self.method == "exact" and self.num_alternatives <= 4:
            lp = self._orthant_log_probs(Vm, cov)
        elif self.method == "exact":
            lp = hetprobit.exact_choice_log_probs(
                Vm, cov, n_points=self.n_points, n_shifts=self.n_shifts
            )
        else:
            lp = hetprobit.tempered_softmax_log_probs(
                Vm, noise, key=arrays.key, tau=self.tau, num_samples=self.num_samples
            )
        return jnp.where(arrays.available, lp, -jnp.inf)

    def __call__(self, theta, arrays: ChoiceArrays) -> Float[Array, " N"]:
        """Per-chooser log-likelihood log P(y_n = chosen_n), `(N,)`."""
        if self.family == "probit" and self.method == "tempered":
            V = self.utilities(theta, arrays.attributes, arrays.individual)
            noise, cov = self.noise(theta)
            return hetprobit.tempered_softmax_log_likelihood(
                self._masked(V, arrays.available, cov),
                noise,
                arrays.chosen,
                key=arrays.key,
                tau=self.tau,
                num_samples=self.num_samples,
            )
        if self.family == "probit" and self.method == "untempered":
            V = self.utilities(theta, arrays.attributes, arrays.individual)
            noise, cov = self.noise(theta)
            return hetprobit.probit_log_likelihood(
                self._masked(V, arrays.available, cov),
                noise,
                arrays.chosen,
                key=arrays.key if noise.rank else None,
                num_samples=self.num_samples,
                num_nodes=self.num_nodes,
            )
        if self.family == "probit":
            return self._orthant_log_likelihood(theta, arrays)
        lp = self.log_probs(theta, arrays)
        return _pick(lp, arrays.chosen)

    def _orthant_log_probs(self, Vm, cov):
        """J <= 4: log P(y_n = k) for every k, one orthant per (chooser, alternative)."""
        N, J = Vm.shape
        A = jnp.asarray(_difference_matrices(J), Vm.dtype)  # (J, J-1, J)
        b = jnp.einsum("kij,nj->nki", A, Vm).reshape(N * J, J - 1)
        S = jnp.einsum("kij,jl,kml->kim", A, cov, A)
        S = jnp.broadcast_to(S[None], (N, J, J - 1, J - 1)).reshape(N * J, J - 1, J - 1)
        return orthant_log_prob(b, S).reshape(N, J)

    def _orthant_log_likelihood(self, theta, arrays):
        """log P(y_n = chosen_n) as ONE orthant probability per chooser, dimension J - 1:
        b_j = V_k - V_j, S = A_k Sigma A_k^T (k the chosen alternative). J <= 4:
        `choice_orthant.orthant_log_prob` (closed forms with closed-form derivatives; log-space
        Mendell-Elston approximation below P = 1e-10); J >= 5: `hetprobit.mvn_log_cdf`
        (lattice GHK with `n_points * n_shifts` points), not the J orthants of every
        alternative that `log_probs` evaluates."""
        V = self.utilities(theta, arrays.attributes, arrays.individual)
        cov = self.noise(theta)[1]
        Vm = self._masked(V, arrays.available, cov)
        A = jnp.asarray(_difference_matrices(self.num_alternatives), V.dtype)[arrays.chosen]
        b = jnp.einsum("nij,nj->ni", A, Vm)
        S = jnp.einsum("nij,jk,nlk->nil", A, cov, A)
        if self.num_alternatives <= 4:
            return orthant_log_prob(b, S)
        return hetprobit.mvn_log_cdf(b, S, n_points=self.n_points, n_shifts=self.n_shifts)

    @property
    def score_mode(self) -> str:
        """The tempered likelihood has a custom VJP: its scores need reverse mode."""
        custom_vjp = self.family == "probit" and self.method in ("tempered", "untempered")
        return "reverse" if custom_vjp else "forward"

    @property
    def hessian_method(self) -> str:
        """How the engine computes the Hessian: the probit's is expensive to compile."""
        return "autodiff" if self.family == "logit" else "differences"

    def smallest_noise_sd(self, theta) -> float:
        """sqrt of the smallest eigenvalue of Omega: the noise scale the argmax sees."""
        w = jnp.linalg.eigvalsh(self.difference_covariance(theta))
        return float(jnp.sqrt(jnp.maximum(w[0], 0.0)))
