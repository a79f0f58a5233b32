"""Benchmark: travel-mode full-covariance probit, ours (fresh process, compile included) vs a scipy
BFGS fit on a numpy likelihood with scipy's MVN CDF; J = 6 likelihood evaluations per second.

    python bench/bench_choice.py [--quick]

1. End to end. Ours: `fit_choice(load_travel_mode(), spec, family="probit", covariance="full")`
   in a fresh `python` subprocess (import, compile, logit start, BFGS, Hessian, SEs), timed from
   the parent. Reference: `scipy.optimize.minimize(method="BFGS")` (finite-difference gradient)
   on the same parametrisation (asc, gc, ttme, hinc_air; Omega = L L^T with L_00 = 1, rows of
   `chol_*` and `ln_chol_*`), each chooser's probability the orthant P(Z <= b), Z ~ N(0, A_k
   Sigma A_k^T), from `scipy.stats.multivariate_normal.cdf` with a fixed seed and a fixed
   number of points (`SCIPY_MVN`: smooth in theta), started from the same point (the
   probit start of `fit_choice`, from the logit fit). Both log-likelihoods are reported.
2. J = 6, N choosers: log-likelihood evaluations per second, one 5-d orthant per chooser,
   core lattice GHK (`hetprobit.mvn_log_cdf`, compiled; also value + gradient) vs scipy's MVN
   CDF on the same orthants.

Writes a table with the ratios and bench/results/bench_choice.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import optimize, stats

ROOT = Path(__file__).resolve().parents[1]
OURS = """
import time, json
t0 = time.perf_counter()
from models import ChoiceSpec, fit_choice, load_travel_mode
data = load_travel_mode()
spec = ChoiceSpec(base="car", generic=("gc", "ttme"), individual={"hinc": ("air",)})
fit = fit_choice(data, spec, family="probit", covariance="full")
t1 = time.perf_counter()
again = fit_choice(data, spec, family="probit", covariance="full")
t2 = time.perf_counter()
print(json.dumps({"ll": fit.log_likelihood, "params": fit.params.tolist(),
                  "first_s": t1 - t0, "second_s": t2 - t1,
                  "converged": bool(fit.convergence.converged)}))
"""


def _design():
    from models import load_travel_mode

    data = load_travel_mode()
    N = data.num_choosers
    X = np.zeros((N, 4, 6))
    X[:, 0, 0] = X[:, 1, 1] = X[:, 2, 2] = 1.0
    X[..., 3] = data.attributes[..., data.attribute_names.index("gc")]
    X[..., 4] = data.attributes[..., data.attribute_names.index("ttme")]
    X[:, 0, 5] = data.individual[:, data.individual_names.index("hinc")]
    return X, np.asarray(data.chosen)


def _sigma(raw, base=3, J=4):
    """Sigma = F F^T + 1 1^T, F (J, J-1): zero row at base, L (L_00 = 1) elsewhere."""
    m = J - 1
    L = np.zeros((m, m))
    L[0, 0] = 1.0
    pos = 0
    for i in range(1, m):
        L[i, :i] = raw[pos : pos + i]
        L[i, i] = np.exp(raw[pos + i])
        pos += i + 1
    F = np.insert(L, base, 0.0, axis=0)
    return F @ F.T + np.ones((J, J))


def _chosen_orthants(V, Sigma, y):
    """b (N, J-1) = A_k V_n and S (N, J-1, J-1) = A_k Sigma A_k^T, k = y_n the chosen one."""
    N, J = V.shape
    b, S = np.zeros((N, J - 1)), np.zeros((N, J - 1, J - 1))
    for n in range(N):
        k = y[n]
        D = np.zeros((J - 1, J))
        for r, j in enumerate(j for j in range(J) if j != k):
            D[r, k], D[r, j] = 1.0, -1.0
        b[n], S[n] = D @ V[n], D @ Sigma @ D.T
    return b, S


# scipy's MVN CDF is a randomised, adaptive QMC: at its defaults the log-likelihood is noisy
# in theta and finite-difference BFGS stops at iteration 0 ("precision loss"; measured here:
# LL -213.95 at the start). Fixed seed and a fixed number of points (abseps = releps = 0 never
# stop early) make it a smooth deterministic function, as a careful user would set it.
SCIPY_MVN = {"seed": 0, "maxpts": 4000, "abseps": 0.0, "releps": 0.0}


def scipy_log_likelihood(theta, X, y):
    V = X @ theta[:6]
    b, S = _chosen_orthants(V, _sigma(theta[6:]), y)
    total = 0.0
    for n in range(len(y)):
        p = stats.multivariate_normal(np.zeros(len(b[n])), S[n], **SCIPY_MVN).cdf(b[n])
        total += np.log(max(p, 1e-300))
    return total


def end_to_end(quick: bool):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", OURS], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    ours_wall = time.perf_counter() - t
    ours = json.loads(out.stdout.strip().splitlines()[-1])
    # the same start as fit_choice: logit estimate * sqrt(6)/pi/sqrt(2), Omega = (I + 11^T)/2
    import jax

    from models import ChoiceSpec, fit_choice, load_travel_mode

    spec = ChoiceSpec(base="car", generic=("gc", "ttme"), individual={"hinc": ("air",)})
    logit = fit_choice(load_travel_mode(), spec, family="logit")
    del jax
    L = np.linalg.cholesky(0.5 * (np.eye(3) + np.ones((3, 3))))
    raw = [L[1, 0], np.log(L[1, 1]), L[2, 0], L[2, 1], np.log(L[2, 2])]
    start = np.concatenate([logit.params * np.sqrt(6) / np.pi / np.sqrt(2), raw])
    X, y = _design()
    t = time.perf_counter()
    res = optimize.minimize(
        lambda th: -scipy_log_likelihood(th, X, y),
        start,
        method="BFGS",
        options={"maxiter": 20 if quick else 500, "gtol": 1e-4},
    )
    scipy_s = time.perf_counter() - t
    return {
        "ours_process_s": ours_wall,
        "ours_first_fit_s": ours["first_s"],
        "ours_second_fit_s": ours["second_s"],
        "ours_ll": ours["ll"],
        "ours_ll_scipy_likelihood": scipy_log_likelihood(np.asarray(ours["params"]), X, y),
        "scipy_s": scipy_s,
        "scipy_ll": -float(res.fun),
        "scipy_iterations": int(res.nit),
        "scipy_message": str(res.message),
    }


def evals_per_second(quick: bool, N: int = 50, J: int = 6):
    """The J = 6 probit log-likelihood sum_n log P(y_n): one 5-d orthant per chooser, ours
    (`hetprobit.mvn_log_cdf`, lattice GHK 1021 x 8 points, compiled; the function
    `fit_choice` evaluates) against scipy's `multivariate_normal.cdf` (Genz's QMC at its
    default abseps 1e-5), same orthants; also ours with its value and gradient."""
    import jax
    import jax.numpy as jnp

    import hetprobit

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    V = rng.normal(size=(N, J))
    A = rng.normal(size=(J, J))
    Sigma = A @ A.T / J + np.eye(J)
    y = rng.integers(0, J, N)
    b, S = _chosen_orthants(V, Sigma, y)
    f = jax.jit(lambda bb, ss: jnp.sum(hetprobit.mvn_log_cdf(bb, ss)))
    g = jax.jit(jax.value_and_grad(lambda bb, ss: jnp.sum(hetprobit.mvn_log_cdf(bb, ss))))
    bj, Sj = jnp.asarray(b), jnp.asarray(S)
    ll_ours = float(f(bj, Sj))
    jax.block_until_ready(g(bj, Sj))
    reps = 3 if quick else 10
    t = time.perf_counter()
    for _ in range(reps):
        jax.block_until_ready(f(bj, Sj))
    ours = reps / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(reps):
        jax.block_until_ready(g(bj, Sj))
    ours_grad = reps / (time.perf_counter() - t)
    t = time.perf_counter()
    ll_sp = sum(
        np.log(stats.multivariate_normal(np.zeros(J - 1), S[n]).cdf(b[n])) for n in range(N)
    )
    scipy_rate = 1.0 / (time.perf_counter() - t)
    return {"J": J, "N": N, "ours_per_s": ours, "ours_value_and_grad_per_s": ours_grad,
            "scipy_per_s": scipy_rate, "ll_ours": ll_ours, "ll_scipy": float(ll_sp)}  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer scipy iterations / repeats")
    args = parser.parse_args(argv)
    e2e = end_to_end(args.quick)
    rate = evals_per_second(args.quick)
    print("| measurement | ours | scipy | ratio scipy/ours |")
    print("|---|---|---|---|")
    print(f"| travel-mode full probit, wall s (fresh process) | {e2e['ours_process_s']:.1f} | "
          f"{e2e['scipy_s']:.1f} | {e2e['scipy_s'] / e2e['ours_process_s']:.2f} |")  # fmt: skip
    print(f"| log-likelihood reached | {e2e['ours_ll']:.4f} | {e2e['scipy_ll']:.4f} | |")
    speed = rate["ours_per_s"] / rate["scipy_per_s"]
    print(f"| J=6 LL evaluations / s (N={rate['N']}) | {rate['ours_per_s']:.2f} | "
          f"{rate['scipy_per_s']:.2f} | {speed:.2f} (ours/scipy) |")  # fmt: skip
    print(f"| J=6 LL value+gradient / s (scipy: value only) | "
          f"{rate['ours_value_and_grad_per_s']:.2f} | {rate['scipy_per_s']:.2f} | |")  # fmt: skip
    print(f"| J=6 log-likelihood | {rate['ll_ours']:.6f} | {rate['ll_scipy']:.6f} | |")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_choice.json").write_text(
        json.dumps({"quick": args.quick, "end_to_end": e2e, "evals_J6": rate}, indent=2)
    )


if __name__ == "__main__":
    main()
