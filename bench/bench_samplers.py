"""Benchmark: estimator accuracy per unit of compute, plain MC vs antithetic vs quasi-MC.

For a K=5 low-rank probit problem at a small temperature, find the number of samples S each
sampler needs so that the root-mean-square error of the tempered estimate of
(p_1, ..., p_K) against the exact probit probabilities (scipy, abseps 1e-10) is <= 1e-3,
over independent keys (random shifts for QMC). Also reports the wall time of one estimate
at that S, so "accuracy per unit of compute" is samples and seconds side by side.

    python bench/bench_samplers.py [--quick]

Writes bench/results/samplers.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import multivariate_normal  # noqa: E402

import hetprobit as hp  # noqa: E402


def exact_probit(mu, cov):
    K = len(mu)
    out = []
    for c in range(K):
        A = np.zeros((K - 1, K))
        A[:, c] = 1.0
        A[np.arange(K - 1), [j for j in range(K) if j != c]] = -1.0
        dist = multivariate_normal(
            np.zeros(K - 1), A @ cov @ A.T, abseps=1e-10, releps=1e-10, maxpts=5_000_000
        )
        out.append(dist.cdf(A @ mu))
    return np.array(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "samplers.json"))
    opts = parser.parse_args()
    target, tau, reps = 1e-3, 0.002, 8 if opts.quick else 16
    max_log2 = 14 if opts.quick else 19

    rng = np.random.default_rng(0)
    K, R = 5, 2
    mu = rng.normal(size=K) * 0.5
    d = rng.uniform(0.6, 1.2, size=K)
    V = rng.normal(size=(K, R)) * 0.6
    exact = exact_probit(mu, np.diag(d**2) + V @ V.T)
    noise = hp.LowRankNoise(jnp.asarray(d, jnp.float32), jnp.asarray(V, jnp.float32))
    mu32 = jnp.asarray(mu, jnp.float32)
    keys = jax.random.split(jax.random.key(1), reps)

    rows = []
    for sampler in ("mc", "antithetic", "qmc"):
        found = None
        curve = []
        for log2 in range(6, max_log2 + 1):
            S = 2**log2
            est = jax.jit(
                jax.vmap(
                    lambda k, S=S, sampler=sampler: jnp.exp(
                        hp.tempered_softmax_log_probs(
                            mu32, noise, key=k, tau=tau, num_samples=S, sampler=sampler
                        )
                    )
                )
            )
            p = np.asarray(est(keys))
            rmse = float(np.sqrt(np.mean((p - exact) ** 2)))
            curve.append((S, rmse))
            if rmse <= target:
                one = jax.jit(
                    lambda k, S=S, sampler=sampler: hp.tempered_softmax_log_probs(
                        mu32, noise, key=k, tau=tau, num_samples=S, sampler=sampler
                    )
                )
                jax.block_until_ready(one(keys[0]))
                t0 = time.perf_counter()
                for k in keys[:4]:
                    jax.block_until_ready(one(k))
                found = dict(S=S, rmse=rmse, seconds=(time.perf_counter() - t0) / 4)
                break
        rows.append(dict(sampler=sampler, needed=found, curve=curve))

    base = rows[0]["needed"]
    print(f"samples for RMSE <= {target} vs exact probit, K={K}, R={R}, tau={tau}, {reps} keys")
    print(f"{'sampler':>11} {'S needed':>9} {'rmse':>9} {'s/estimate':>11} {'S ratio vs mc':>14}")
    for r in rows:
        n = r["needed"]
        if n is None:
            print(f"{r['sampler']:>11} {'> 2^' + str(max_log2):>9}")
            continue
        ratio = base["S"] / n["S"] if base else float("nan")
        print(
            f"{r['sampler']:>11} {n['S']:>9} {n['rmse']:>9.2e} {n['seconds']:>11.4f} {ratio:>14.1f}"
        )
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            dict(K=K, R=R, tau=tau, target=target, exact=exact.tolist(), rows=rows), indent=2
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
