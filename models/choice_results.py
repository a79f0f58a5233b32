r"""The results value of a choice-model fit: estimates, inference, predictions, elasticities.

`ChoiceResults` holds everything a report, a command or a Bayesian comparison needs: the static
model (`model`, `spec`), theta (`params`), named coefficients with Hessian and robust
(sandwich) standard errors, z and p-values, the log-likelihood (exact / GHK; for tempered fits
also the maximised tempered `objective`), AIC/BIC, the convergence report, the implied noise
covariance and the normalisation. Predictions and elasticities work on new `ChoiceData` with
the same alternatives and variables.

Elasticities (Train 2009, *Discrete Choice Methods with Simulation*, §3.6):

    E_n[j, k] = d log P_nj / d log x_nk = x_nk * d log P_nj / d x_nk

for an attribute x of alternative k: direct (j = k) and cross (j != k). Computed by automatic
differentiation through the exact choice probabilities (logit: equals beta x_nk (1[j=k] - P_nk)).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from .choice_data import ChoiceData
from .choice_likelihood import ChoiceArrays, ChoiceModel
from .choice_spec import ChoiceSpec, design_layout
from .estimation import MLEstimate

__all__ = ["ChoiceResults", "choice_arrays"]


def choice_arrays(data: ChoiceData, key=None) -> ChoiceArrays:
    """The jit arguments of a likelihood evaluation (float64 under the caller's x64 context)."""
    dtype = jnp.result_type(float)
    return ChoiceArrays(
        jnp.asarray(data.attributes, dtype),
        jnp.asarray(data.individual, dtype),
        jnp.asarray(data.available),
        jnp.asarray(data.chosen, jnp.int32),
        jax.random.key(0) if key is None else key,
    )


@dataclass(frozen=True, eq=False)
class ChoiceResults:
    """Result of `fit_choice` (see the module docstring).

    Attributes:
        model: the static `ChoiceModel` (family, covariance, method, layout).
        spec: the `ChoiceSpec`. params: theta `(k,)` in `names` order.
        estimate: the engine's `MLEstimate` (Hessian, covariances, convergence report).
        log_likelihood: exact (J <= 4) or lattice-GHK log-likelihood at the estimate.
        log_likelihood_error: absolute error estimate of `log_likelihood` (0 for logit).
        objective: the maximised objective (= log_likelihood unless method="tempered").
        null_log_likelihood: equal shares among available alternatives.
        fit_seconds: wall time of the fit, compilation included.
        warnings: messages about the fit (tau not small, singular Hessian, no convergence).
    """

    model: ChoiceModel
    spec: ChoiceSpec
    params: np.ndarray
    estimate: MLEstimate
    log_likelihood: float
    log_likelihood_error: float
    objective: float
    null_log_likelihood: float
    fit_seconds: float
    warnings: tuple[str, ...] = ()

    # ------------------------------------------------------------------ saving
    def save(self, path) -> Path:
        """Write this result to one `.npz` file; `ChoiceResults.load(path)` reloads it exactly
        (format in `models.choice_io`). Returns the path written."""
        from .choice_io import save_choice_results

        return save_choice_results(self, path)

    @classmethod
    def load(cls, path) -> ChoiceResults:
        """Reload a result written by `save` (raises ValueError for any other file)."""
        from .choice_io import load_choice_results

        return load_choice_results(path)

    # ------------------------------------------------------------------ named values
    @property
    def names(self) -> tuple[str, ...]:
        return self.model.names

    def _series(self, values) -> pd.Series:
        return pd.Series(np.asarray(values, float), index=list(self.names))

    @property
    def coef(self) -> pd.Series:
        return self._series(self.params)

    @property
    def std_err(self) -> pd.Series:
        return self._series(self.estimate.std_err)

    @property
    def robust_std_err(self) -> pd.Series:
        return self._series(self.estimate.robust_std_err)

    @property
    def z(self) -> pd.Series:
        # + 0.0: an infinite standard error gives z = 0, not "-0" for a negative estimate
        return self._series(self.params / self.estimate.std_err + 0.0)

    @property
    def p_values(self) -> pd.Series:
        return self._series(2 * stats.norm.sf(np.abs(self.params / self.estimate.std_err)))

    @property
    def cov_params(self) -> pd.DataFrame:
        return pd.DataFrame(self.estimate.cov, index=list(self.names), columns=list(self.names))

    @property
    def num_obs(self) -> int:
        return self.estimate.num_obs

    @property
    def num_params(self) -> int:
        return self.estimate.num_params

    @property
    def aic(self) -> float:
        return 2 * self.num_params - 2 * self.log_likelihood

    @property
    def bic(self) -> float:
        return self.num_params * math.log(self.num_obs) - 2 * self.log_likelihood

    @property
    def rho_squared(self) -> float:
        """McFadden's 1 - l / l_0 against equal shares."""
        return 1.0 - self.log_likelihood / self.null_log_likelihood

    @property
    def convergence(self):
        return self.estimate.convergence

    @property
    def singular(self) -> bool:
        return self.estimate.singular

    @property
    def difference_covariance(self) -> np.ndarray:
        """Omega = Cov(eps_j - eps_base) `(J-1, J-1)` at the estimate (its normalisation)."""
        with jax.enable_x64(True):
            return np.asarray(self.model.difference_covariance(jnp.asarray(self.params)))

    def table(self) -> pd.DataFrame:
        """estimate, std_err, z, p_value, robust_std_err per parameter."""
        return pd.DataFrame(
            {
                "estimate": self.coef,
                "std_err": self.std_err,
                "z": self.z,
                "p_value": self.p_values,
                "robust_std_err": self.robust_std_err,
            }
        )

    def summary(self) -> str:
        """A printable report: the table, LL, AIC, BIC, n, the normalisation and convergence."""
        m = self.model
        label = "logit" if m.family == "logit" else f"probit, covariance={m.covariance!r}"
        if m.family == "probit" and m.covariance == "factor":
            label += f", rank={m.rank}"
        if m.family == "probit":
            label += f", method={m.method!r}"
            if m.method == "tempered":
                label += f" (tau={m.tau}, S={m.num_samples})"
            elif m.num_alternatives > 4:
                label += f" (lattice GHK, {m.n_points} x {m.n_shifts} points)"
        c = self.convergence
        lines = [
            f"Discrete choice: {label}",
            f"alternatives: {', '.join(m.layout.alternatives)} "
            f"(base {m.layout.alternatives[m.layout.base]})",
            f"normalisation: {m.normalisation}",
            "",
            self.table().to_string(float_format=lambda v: f"{v:.6g}"),
            "",
            f"log-likelihood: {self.log_likelihood:.4f}"
            + (
                f" (+/- {self.log_likelihood_error:.1e})"
                if self.log_likelihood_error > 1e-8
                else ""
            ),
        ]
        if m.family == "probit" and m.method == "tempered":
            lines.append(f"tempered objective (maximised): {self.objective:.4f}")
        lines += [
            f"null log-likelihood: {self.null_log_likelihood:.4f}   rho^2: {self.rho_squared:.4f}",
            f"AIC: {self.aic:.4f}   BIC: {self.bic:.4f}   n: {self.num_obs}   k: {self.num_params}",
            f"converged: {c.converged} ({c.message}; {c.num_steps} BFGS steps, max |grad|/n "
            f"{c.grad_norm:.1e}, best of {len(c.start_log_likelihoods)} starts)",
            f"fit time: {self.fit_seconds:.2f} s",
        ]
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)

    # ------------------------------------------------------------------ prediction
    def _prediction_model(self) -> ChoiceModel:
        m = self.model
        return dataclasses.replace(m, method="exact") if m.family == "probit" else m

    def _check(self, data: ChoiceData) -> ChoiceModel:
        if data.alternatives != self.model.layout.alternatives:
            raise ValueError(
                f"`data` has alternatives {data.alternatives}, the fit "
                f"{self.model.layout.alternatives}"
            )
        layout = design_layout(self.spec, data)
        if layout != self.model.layout:
            raise ValueError("`data` does not provide the fitted variables in the same layout")
        return self._prediction_model()

    def probabilities(self, data: ChoiceData) -> np.ndarray:
        """Predicted choice probabilities `(N, J)` (0 for unavailable alternatives); probit
        fits use the exact probabilities whatever the fitting method."""
        model = self._check(data)
        with jax.enable_x64(True):
            lp = model.log_probs(jnp.asarray(self.params), choice_arrays(data))
            return np.exp(np.asarray(lp))

    def shares(self, data: ChoiceData) -> pd.Series:
        """Predicted market shares: mean choice probabilities over choosers, `(J,)`."""
        return pd.Series(self.probabilities(data).mean(axis=0), index=list(data.alternatives))

    def elasticities(self, data: ChoiceData, attribute: str) -> np.ndarray:
        """E `(N, J, J)`: E[n, j, k] = d log P_nj / d log x_nk for `attribute` (module doc).

        Raises:
            ValueError: an unknown attribute or data that does not match the fit.
        """
        model = self._check(data)
        if attribute not in data.attribute_names:
            raise ValueError(f"unknown attribute {attribute!r}; have {data.attribute_names}")
        a = data.attribute_names.index(attribute)
        with jax.enable_x64(True):
            arrays = choice_arrays(data)
            theta = jnp.asarray(self.params)

            def summed(x):  # (N, J) -> (J,): sum_n log P_nj (choosers are independent)
                attrs = arrays.attributes.at[:, :, a].set(x)
                lp = model.log_probs(theta, arrays._replace(attributes=attrs))
                return jnp.sum(jnp.where(arrays.available, lp, 0.0), axis=0)

            x = arrays.attributes[:, :, a]
            jac = jax.jacrev(summed)(x)  # (J, N, J_k)
            E = jnp.transpose(jac, (1, 0, 2)) * x[:, None, :]
            return np.asarray(E)

    def mean_elasticities(self, data: ChoiceData, attribute: str) -> pd.DataFrame:
        """Average over choosers of `elasticities`: rows j (probability), columns k."""
        E = self.elasticities(data, attribute).mean(axis=0)
        alts = list(data.alternatives)
        return pd.DataFrame(E, index=alts, columns=alts)
