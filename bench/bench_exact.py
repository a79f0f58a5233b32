"""Benchmark: exact probit choice probabilities (K = 3, 4) against scipy.

A "case" is one (mu, Sigma) -> all K probabilities (K orthant probabilities of dimension
K-1). Our time: jit-compiled, float64, best of 3 after compilation, over the whole batch.
scipy time: `multivariate_normal.cdf` per orthant with its default tolerances, on a subset,
extrapolated per case. Accuracy: max abs error vs scipy run with abseps=1e-10 on a smaller
subset. Writes bench/results/exact.json.  Usage: python bench/bench_exact.py [--quick]
"""

import argparse
import json
import os
import time

import jax
import numpy as np
from scipy.stats import multivariate_normal

jax.config.update("jax_enable_x64", True)

from hetprobit.exact import exact_choice_probs  # noqa: E402


def make_cases(rng, n, K):
    mu = rng.normal(size=(n, K))
    A = rng.normal(size=(n, K, K))
    return mu, A @ A.transpose(0, 2, 1) / K + 0.3 * np.eye(K)


def scipy_case(mu, S, **kw):
    K = len(mu)
    out = np.empty(K)
    for c in range(K):
        others = [j for j in range(K) if j != c]
        A = np.zeros((K - 1, K))
        A[np.arange(K - 1), c] = 1.0
        A[np.arange(K - 1), others] = -1.0
        out[c] = multivariate_normal.cdf(A @ mu, np.zeros(K - 1), A @ S @ A.T, rng=0, **kw)
    return out


def run(K, n, n_time, n_acc):
    rng = np.random.default_rng(K)
    mu, S = make_cases(rng, n, K)
    f = jax.jit(exact_choice_probs)
    f(mu, S).block_until_ready()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        ours = f(mu, S).block_until_ready()
        times.append(time.perf_counter() - t)
    ours = np.asarray(ours)
    t = time.perf_counter()
    for i in range(n_time):
        scipy_case(mu[i], S[i])
    scipy_per_case = (time.perf_counter() - t) / n_time
    ref = np.array([scipy_case(mu[i], S[i], abseps=1e-10, releps=0) for i in range(n_acc)])
    ours_s = min(times)
    return {
        "K": K,
        "n_cases": n,
        "ours_s": ours_s,
        "ours_us_per_case": 1e6 * ours_s / n,
        "scipy_s_extrapolated": scipy_per_case * n,
        "scipy_us_per_case": 1e6 * scipy_per_case,
        "scipy_timed_cases": n_time,
        "speedup": scipy_per_case * n / ours_s,
        "max_abs_err_vs_scipy_1e-10": float(np.abs(ours[:n_acc] - ref).max()),
        "accuracy_cases": n_acc,
        "max_abs_sum_minus_1": float(np.abs(ours.sum(-1) - 1).max()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n, n_time, n_acc = (10_000, 200, 10) if args.quick else (100_000, 2_000, 50)
    rows = [run(K, n, n_time, n_acc) for K in (3, 4)]
    hdr = f"{'K':>2} {'cases':>7} {'ours s':>8} {'scipy s':>9} {'us/case':>8} {'sp us/case':>10} "
    print(hdr + f"{'ratio':>8} {'max err':>9}")
    for r in rows:
        print(
            f"{r['K']:>2} {r['n_cases']:>7} {r['ours_s']:>8.3f} {r['scipy_s_extrapolated']:>9.1f} "
            f"{r['ours_us_per_case']:>8.2f} {r['scipy_us_per_case']:>10.1f} {r['speedup']:>8.0f} "
            f"{r['max_abs_err_vs_scipy_1e-10']:>9.2e}"
        )
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "exact.json"), "w") as fh:
        json.dump({"device": jax.devices()[0].device_kind, "results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
