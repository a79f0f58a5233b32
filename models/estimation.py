r"""Maximum-likelihood estimation for deterministic likelihoods: BFGS, compiled once per shape.

A *problem* is a hashable callable `problem(theta, data) -> (N,)` per-observation
log-likelihoods (e.g. `choice_likelihood.ChoiceModel`), `data` a pytree of arrays; an optional
attribute `score_mode = "reverse"` makes the per-observation scores use reverse mode (for
likelihoods with a custom VJP). Then

    theta_hat = argmax_theta  l(theta) = sum_n l_n(theta)

by optimistix's BFGS (Nocedal & Wright 2006, *Numerical Optimization*, ch. 6) on the mean
negative log-likelihood -l(u * scale) / N in rescaled coordinates u (`scale` puts the columns on a
common footing), from several starts; the start with the highest log-likelihood wins and its
*best* point is returned (never a worse last iterate). The solver, the Hessian and the scores are
module-level `jax.jit` functions with the problem and the solver settings as static arguments:
JAX compiles them once per (problem, data shapes, dtypes) and every later fit of the same shape
reuses the compiled code (`TRACE_COUNTS` counts the traces).

Inference (Newey & McFadden 1994, *Handbook of Econometrics* IV, ch. 36; White 1982):

    Var_hat(theta) = (-H)^{-1},  H = d^2 l / d theta^2  (autodiff Hessian)
    robust (sandwich):  (-H)^{-1} (sum_n s_n s_n^T) (-H)^{-1},  s_n = d l_n / d theta
    AIC = 2k - 2l,  BIC = k log N - 2l;  LR = 2 (l_full - l_restricted) ~ chi^2(k_full - k_r).

Singular Hessian policy (collinear columns, unidentified parameters): when the smallest
eigenvalue of -H is <= `SINGULAR_RTOL` times the largest (or negative), the fit is flagged
(`MLEstimate.singular`, a `SingularHessianWarning`), the parameters loading on the null
directions get standard error `inf` (never NaN) and the others a pseudo-inverse standard error.
"""

from __future__ import annotations

import collections
import functools
import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from scipy import stats

__all__ = [
    "Convergence",
    "MLEstimate",
    "LRTest",
    "SingularHessianWarning",
    "TRACE_COUNTS",
    "maximize_likelihood",
    "covariance_from_hessian",
    "evaluate_log_likelihood",
    "information_criteria",
    "lr_test",
]

SINGULAR_RTOL = 1e-10
TRACE_COUNTS: collections.Counter = collections.Counter()


class SingularHessianWarning(RuntimeWarning):
    """The Hessian at the optimum is singular or not negative definite."""


class Convergence(NamedTuple):
    """Convergence report of a maximum-likelihood fit.

    converged: the solver stopped successfully with max |grad|/n <= grad_tol, or, whatever the
        solver says, max |grad|/n <= grad_tol / 100 (the message then says so).
    num_steps: BFGS iterations of the winning start. grad_norm: max |d l / d theta| / N at the
    estimate. message: the solver's message. start: index of the winning start.
    start_log_likelihoods: the log-likelihood reached from every start.
    """

    converged: bool
    num_steps: int
    grad_norm: float
    message: str
    start: int
    start_log_likelihoods: tuple[float, ...]


class MLEstimate(NamedTuple):
    """Estimate, log-likelihood, covariance matrices, standard errors and the report."""

    params: np.ndarray
    log_likelihood: float
    num_obs: int
    cov: np.ndarray
    robust_cov: np.ndarray
    std_err: np.ndarray
    robust_std_err: np.ndarray
    hessian: np.ndarray
    singular: bool
    convergence: Convergence

    @property
    def num_params(self) -> int:
        return int(self.params.shape[0])


class LRTest(NamedTuple):
    """Likelihood-ratio test: statistic 2 (l_full - l_restricted), df and chi^2 p-value."""

    statistic: float
    df: int
    p_value: float


# ------------------------------------------------------------------ compiled pieces
@functools.partial(jax.jit, static_argnames=("problem", "max_steps", "rtol", "atol"))
def _solve(problem, u0, data, scale, *, max_steps, rtol, atol):
    TRACE_COUNTS["solve"] += 1
    solver = optx.BFGS(rtol=rtol, atol=atol)
    fn = lambda u, d: -jnp.mean(problem(u * scale, d))  # noqa: E731
    sol = optx.minimise(fn, solver, u0, args=data, max_steps=max_steps, throw=False)
    f_end = fn(sol.value, data)
    f_start = fn(u0, data)
    better = f_end <= f_start
    u = jnp.where(better, sol.value, u0)
    ok = sol.result == optx.RESULTS.successful
    return u, jnp.minimum(f_end, f_start), ok, sol.stats["num_steps"]


@functools.partial(jax.jit, static_argnames=("problem",))
def _scores(problem, theta, data):
    TRACE_COUNTS["scores"] += 1
    per_obs = lambda t: problem(t, data)  # noqa: E731
    # forward mode (k JVPs) unless the problem says it only supports reverse mode
    jac = jax.jacrev if getattr(problem, "score_mode", "forward") == "reverse" else jax.jacfwd
    return per_obs(theta), jac(per_obs)(theta)


@functools.partial(jax.jit, static_argnames=("problem",))
def _hessian(problem, theta, data):
    TRACE_COUNTS["hessian"] += 1
    return jax.hessian(lambda t: jnp.sum(problem(t, data)))(theta)


def _hessian_by_differences(problem, theta, data, rel_step=1e-5):
    """Central differences of the autodiff gradient (reuses the compiled scores)."""
    k = theta.shape[0]
    H = np.zeros((k, k))
    for i in range(k):
        h = rel_step * max(1.0, abs(float(theta[i])))
        e = jnp.zeros(k, theta.dtype).at[i].set(h)
        g_plus = np.sum(np.asarray(_scores(problem, theta + e, data)[1]), axis=0)
        g_minus = np.sum(np.asarray(_scores(problem, theta - e, data)[1]), axis=0)
        H[:, i] = (g_plus - g_minus) / (2 * h)
    return 0.5 * (H + H.T)


@functools.partial(jax.jit, static_argnames=("problem",))
def _evaluate(problem, theta, data):
    TRACE_COUNTS["evaluate"] += 1
    return problem(theta, data)


def evaluate_log_likelihood(problem, theta, data) -> np.ndarray:
    """Per-observation log-likelihood `(N,)` at `theta` (compiled once per problem and shape)."""
    return np.asarray(_evaluate(problem, jnp.asarray(theta, jnp.result_type(float)), data))


def covariance_from_hessian(hessian: np.ndarray, *, rtol: float = SINGULAR_RTOL):
    """(-H)^{-1} with the singular-Hessian policy (module docstring).

    Returns:
        (cov, bad, singular): `(k, k)` (pseudo-)inverse, `(k,)` bool parameters on a null
        direction (their variances are set to inf), and the flag. A Hessian with non-finite
        entries (the log-likelihood is not twice differentiable there, e.g. a probability
        that underflowed in a finite difference) gives inf for every parameter it touches.
    """
    A = -0.5 * (hessian + hessian.T)
    nonfinite = ~np.isfinite(A)
    if nonfinite.any():
        bad = nonfinite.any(axis=1)
        cov = np.zeros_like(A)
        good = ~bad
        if good.any():
            cov[np.ix_(good, good)] = covariance_from_hessian(-A[np.ix_(good, good)], rtol=rtol)[0]
        cov[bad, :] = np.inf
        cov[:, bad] = np.inf
        return cov, bad, True
    w, Q = np.linalg.eigh(A)
    top = max(float(np.max(np.abs(w))), np.finfo(float).tiny)
    null = w <= rtol * top
    inv_w = np.where(null, 0.0, 1.0 / np.where(null, 1.0, w))
    cov = (Q * inv_w) @ Q.T
    bad = np.any(np.abs(Q[:, null]) > 1e-6, axis=1) if null.any() else np.zeros(len(w), bool)
    cov[bad, :] = np.inf
    cov[:, bad] = np.inf
    return cov, bad, bool(null.any())


def maximize_likelihood(
    problem,
    data: Any,
    starts,
    *,
    scale=None,
    max_steps: int = 500,
    rtol: float = 1e-9,
    atol: float = 1e-9,
    grad_tol: float = 1e-4,
    hessian: str = "autodiff",
) -> MLEstimate:
    """Maximise sum_n problem(theta, data)_n over theta from each of `starts`.

    Args:
        problem: hashable callable `(theta (k,), data) -> (N,)` per-observation log-likelihood.
        data: pytree of arrays (a jit argument; its shapes key the compile cache).
        starts: `(M, k)` or `(k,)` starting values of theta.
        scale: `(k,)` positive; BFGS runs in u = theta / scale (default ones).
        max_steps: BFGS iteration limit; rtol, atol: optimistix's step/function tolerances.
        grad_tol: `converged` needs max |gradient of the mean log-likelihood| <= grad_tol
            (and the solver's success flag, unless the gradient is below 1e-2 grad_tol).
        hessian: "autodiff" (`jax.hessian`) or "differences" (central differences of the
            autodiff gradient, step 1e-5 max(1, |theta_i|): no second-order program to compile,
            for likelihoods whose Hessian is expensive to compile, e.g. the exact probit).

    Returns:
        `MLEstimate` (see the module docstring for the covariance and the singular policy).

    Raises:
        ValueError: starts of the wrong shape or a non-finite log-likelihood at every start.
    """
    starts = np.atleast_2d(np.asarray(starts, np.float64))
    k = starts.shape[1]
    scale = np.ones(k) if scale is None else np.asarray(scale, np.float64)
    if hessian not in ("autodiff", "differences"):
        raise ValueError(f"`hessian` must be 'autodiff' or 'differences', got {hessian!r}")
    if scale.shape != (k,) or not np.all(scale > 0):
        raise ValueError(f"`scale` must be ({k},) and positive, got {scale}")
    dtype = jnp.result_type(float)
    scale_j = jnp.asarray(scale, dtype)
    results = []
    for s in starts:
        u, f, ok, steps = _solve(
            problem, jnp.asarray(s / scale, dtype), data, scale_j,
            max_steps=max_steps, rtol=rtol, atol=atol,
        )  # fmt: skip
        results.append((float(f), np.asarray(u) * scale, bool(ok), int(steps)))
    finite = [r for r in results if math.isfinite(r[0])]
    if not finite:
        raise ValueError("the log-likelihood is not finite at any start; check the data/starts")
    values = [r[0] if math.isfinite(r[0]) else math.inf for r in results]
    best = int(np.argmin(values))
    f, theta, ok, steps = results[best]
    theta_j = jnp.asarray(theta, dtype)
    per_obs, scores = _scores(problem, theta_j, data)
    ll, scores = float(jnp.sum(per_obs)), np.asarray(scores, np.float64)
    grad = scores.sum(axis=0)
    N = int(scores.shape[0])
    if hessian == "autodiff":
        hess = np.asarray(_hessian(problem, theta_j, data), np.float64)
    else:
        hess = _hessian_by_differences(problem, theta_j, data)
    cov, bad, singular = covariance_from_hessian(hess)
    meat = scores.T @ scores
    finite_cov = np.where(np.isfinite(cov), cov, 0.0)
    robust = finite_cov @ meat @ finite_cov
    robust[bad, :] = np.inf
    robust[:, bad] = np.inf
    if singular:
        idx = np.flatnonzero(bad).tolist()
        labels = getattr(problem, "names", None)
        which = [labels[i] for i in idx] if labels is not None else f"positions {idx}"
        warnings.warn(
            f"singular Hessian at the estimate (collinear or unidentified parameters: "
            f"{which}); their standard errors are set to inf",
            SingularHessianWarning,
            stacklevel=2,
        )
    grad_norm = float(np.max(np.abs(np.asarray(grad)))) / N if k else 0.0
    # BFGS's step/function tolerances can stall in the last digits at an optimum whose
    # gradient is already ~0 (flat directions: the step keeps exceeding rtol); a gradient 100x
    # below grad_tol counts as converged, and the message says which test was met
    first_order = grad_norm <= 1e-2 * grad_tol
    stop = f"max_steps = {max_steps} reached" if steps >= max_steps else "solver stopped early"
    if ok:
        message = "successful"
    elif first_order:
        message = (
            f"converged by the gradient (max |grad|/n <= {1e-2 * grad_tol:.0e}); BFGS's "
            f"step tolerance was not met: {stop}"
        )
    else:
        message = stop
    conv = Convergence(
        converged=bool((ok and grad_norm <= grad_tol) or first_order),
        num_steps=steps,
        grad_norm=grad_norm,
        message=message,
        start=best,
        start_log_likelihoods=tuple(-r[0] * N for r in results),
    )
    return MLEstimate(
        params=theta,
        log_likelihood=float(ll),
        num_obs=N,
        cov=cov,
        robust_cov=robust,
        std_err=np.sqrt(np.diagonal(cov).copy()),
        robust_std_err=np.sqrt(np.diagonal(robust).copy()),
        hessian=hess,
        singular=singular,
        convergence=conv,
    )


def information_criteria(log_likelihood: float, num_params: int, num_obs: int):
    """(AIC, BIC) = (2k - 2l, k log N - 2l)."""
    return 2 * num_params - 2 * log_likelihood, num_params * math.log(num_obs) - 2 * log_likelihood


def lr_test(restricted, full) -> LRTest:
    """Likelihood-ratio test of a restricted fit nested in a fuller one.

    Args:
        restricted, full: fits with `log_likelihood`, `num_params` and `num_obs`.

    Raises:
        ValueError: different numbers of observations, or `full` without more parameters.
    """
    if restricted.num_obs != full.num_obs:
        raise ValueError(f"fits use different data: num_obs {restricted.num_obs} vs {full.num_obs}")
    df = int(full.num_params - restricted.num_params)
    if df <= 0:
        raise ValueError(
            f"`full` must have more parameters than `restricted`, got {full.num_params} vs "
            f"{restricted.num_params}"
        )
    stat = 2.0 * (full.log_likelihood - restricted.log_likelihood)
    return LRTest(float(stat), df, float(stats.chi2.sf(max(stat, 0.0), df)))
