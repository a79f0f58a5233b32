"""Benchmark: the untempered probit estimator against the tempered Monte Carlo estimator.

1. Error against compute at K=5 (R=0 and R=2): mean |p - p_exact| (over 3 keys and the K
   classes) and the wall time of one jitted call, for the probit estimator (n nodes, S_R QMC
   factor draws) and the tempered softmax at small tau with mc / antithetic / qmc draws;
   "time to 1e-4" is the cheapest setting whose error is below 1e-4. p_exact: scipy quad of
   the 1-D integral (R=0), `exact_choice_probs` (R=2, Genz-Bretz lattice, ~1e-6).
2. Training loss + gradient (low-rank noise): the tempered estimator at S=256 against the
   probit estimator at the S_R whose gradient variance (w.r.t. mu, over 8 keys) matches it.
3. Gradient bias and variance against tau at K=5, R=2, B=8, with the probit estimator as the
   tau = 0 point (reference gradient: probit with 4096 QMC draws).

    PYTHONPATH=. python bench/bench_probit.py          # quick sizes (~2 min on one core)
    PYTHONPATH=. python bench/bench_probit.py --full   # section 2 at K=1000, R=15, B=128

Writes bench/results/probit.json and prints tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy import integrate  # noqa: E402
from scipy.stats import norm  # noqa: E402

import hetprobit as hp  # noqa: E402


def timed(fn, *args, repeats=3):
    jax.block_until_ready(fn(*args))
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def quad_probs(mu, d):
    K = len(mu)
    out = []
    for k in range(K):
        o = np.arange(K) != k
        f = lambda e, k=k, o=o: norm.pdf(e) * np.prod(norm.cdf((mu[k] - mu[o] + d[k] * e) / d[o]))
        out.append(integrate.quad(f, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-11)[0])
    return np.array(out)


def error_vs_compute(R, keys=3):
    rng = np.random.default_rng(R)
    K = 5
    mu = rng.normal(size=K)
    d = np.exp(0.3 * rng.normal(size=K))
    if R == 0:
        noise = hp.DiagonalNoise(jnp.asarray(d))
        exact = quad_probs(mu, d)
    else:
        noise = hp.LowRankNoise(jnp.asarray(d), jnp.asarray(0.7 * rng.normal(size=(K, R))))
        exact = np.asarray(hp.exact_choice_probs(jnp.asarray(mu), noise.covariance()))
    mu = jnp.asarray(mu)
    rows = []

    def record(name, setting, fn):
        fj = jax.jit(fn)
        errs = [
            np.abs(np.exp(np.asarray(fj(jax.random.key(i)))) - exact).mean() for i in range(keys)
        ]
        rows.append(
            dict(
                method=name,
                setting=setting,
                error=float(np.mean(errs)),
                time_s=timed(fj, jax.random.key(0)),
            )
        )

    samples = [1] if R == 0 else [64, 256, 1024, 4096]
    for n in (8, 16, 32):
        for S in samples:
            record(
                "probit",
                f"n={n} S_R={S}",
                lambda k, n=n, S=S: hp.probit_log_probs(
                    mu, noise, key=k, num_nodes=n, num_samples=S
                ),
            )
    for sampler in ("mc", "antithetic", "qmc"):
        for tau in (0.05, 0.01):
            for S in (1_000, 10_000, 100_000):
                record(
                    f"tempered-{sampler}",
                    f"tau={tau} S={S}",
                    lambda k, s=sampler, t=tau, S=S: hp.tempered_softmax_log_probs(
                        mu, noise, key=k, tau=t, num_samples=S, sampler=s
                    ),
                )
    return rows


def time_to(rows, method_prefix, target=1e-4):
    ok = [
        r["time_s"] for r in rows if r["method"].startswith(method_prefix) and r["error"] < target
    ]
    return min(ok) if ok else math.nan


def training(K, R, B, S_tempered=256, keys=8):
    ks = jax.random.split(jax.random.key(0), 4)
    mu = jax.random.normal(ks[0], (B, K))
    scale = hp.positive_scale(jax.random.normal(ks[1], (B, K)))
    factor = 0.3 * jax.random.normal(ks[2], (B, K, R))
    labels = jax.random.randint(ks[3], (B,), 0, K)
    noise = hp.LowRankNoise(scale, factor)

    def tempered(m, key):
        ll = hp.tempered_softmax_log_likelihood(
            m, noise, labels, key=key, tau=0.1, num_samples=S_tempered
        )
        return -jnp.mean(ll)

    def probit(S):
        def loss(m, key):
            return -jnp.mean(
                hp.probit_log_likelihood(m, noise, labels, key=key, num_samples=S, num_nodes=16)
            )

        return loss

    def grad_var(loss):
        g = jax.jit(jax.grad(loss))
        gs = np.stack([np.asarray(g(mu, jax.random.key(i))) for i in range(keys)])
        return float(gs.var(0, ddof=1).sum())

    var_t = grad_var(tempered)
    S0 = 4
    var_p0 = grad_var(probit(S0))
    S_match = max(1, math.ceil(S0 * var_p0 / var_t))  # var ~ 1/S (conservative for QMC)
    var_p = grad_var(probit(S_match))
    t_t = timed(jax.jit(jax.value_and_grad(tempered)), mu, jax.random.key(0))
    t_p = timed(jax.jit(jax.value_and_grad(probit(S_match))), mu, jax.random.key(0))
    return dict(
        K=K,
        R=R,
        B=B,
        tempered_S=S_tempered,
        tempered_tau=0.1,
        tempered_grad_var=var_t,
        probit_S_R=S_match,
        probit_nodes=16,
        probit_grad_var=var_p,
        tempered_s=t_t,
        probit_s=t_p,
        speedup=t_t / t_p,
    )


def bias_variance(keys=8, S=256):
    rng = np.random.default_rng(7)
    B, K, R = 8, 5, 2
    mu = jnp.asarray(rng.normal(size=(B, K)))
    noise = hp.LowRankNoise(
        jnp.asarray(np.exp(0.3 * rng.normal(size=(B, K)))),
        jnp.asarray(0.7 * rng.normal(size=(B, K, R))),
    )
    labels = jnp.asarray(rng.integers(0, K, size=B))

    def grads(loss):
        g = jax.jit(jax.grad(loss))
        return np.stack([np.asarray(g(mu, jax.random.key(i))) for i in range(keys)])

    ref = grads(
        lambda m, k: hp.probit_log_likelihood(m, noise, labels, key=k, num_samples=4096).sum()
    )[:2].mean(0)
    rows = []
    for tau in (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.0):
        if tau == 0.0:
            gs = grads(
                lambda m, k: hp.probit_log_likelihood(m, noise, labels, key=k, num_samples=S).sum()
            )
        else:
            gs = grads(
                lambda m, k, t=tau: hp.tempered_softmax_log_likelihood(
                    m, noise, labels, key=k, tau=t, num_samples=S
                ).sum()
            )
        bias = float(np.linalg.norm(gs.mean(0) - ref) / np.linalg.norm(ref))
        var = float(gs.var(0, ddof=1).sum() / np.sum(ref**2))
        rows.append(dict(tau=tau, relative_bias=bias, relative_variance=var))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="section 2 at K=1000, R=15, B=128")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "probit.json"))
    opts = parser.parse_args()
    platform = jax.devices()[0].platform
    result = dict(device=str(jax.devices()[0]))

    for R in (0, 2):
        with jax.enable_x64(True):
            rows = error_vs_compute(R)
        t_p, t_t = time_to(rows, "probit"), time_to(rows, "tempered")
        result[f"error_vs_compute_R{R}"] = {
            "rows": rows,
            "probit_time_to_1e-4": t_p,
            "tempered_time_to_1e-4": t_t,
        }
        print(f"\n1. error vs compute, K=5, R={R} (float64, {platform}); mean |p - p_exact|")
        print(f"{'method':>18} {'setting':>18} {'error':>10} {'time s':>9}")
        for r in rows:
            print(f"{r['method']:>18} {r['setting']:>18} {r['error']:>10.2e} {r['time_s']:>9.5f}")
        print(f"time to 1e-4: probit {t_p:.5f} s, tempered {t_t:.5f} s, ratio {t_t / t_p:.1f}x")
        if math.isnan(t_t):  # not reached: the best tempered setting bounds the ratio below
            best = min((r for r in rows if r["method"] != "probit"), key=lambda r: r["error"])
            bound = best["time_s"] / t_p
            print(
                f"tempered never reached 1e-4; its best, {best['error']:.1e} "
                f"({best['method']} {best['setting']}), took {bound:.0f}x the probit time"
            )

    K, R, B = (1000, 15, 128) if opts.full else (200, 5, 32)
    tr = training(K, R, B)
    result["training"] = tr
    print(f"\n2. loss + gradient, low-rank noise K={K} R={R} B={B}, float32")
    t, v = tr["tempered_s"], tr["tempered_grad_var"]
    print(f"   tempered S=256 tau=0.1: {t:.4f} s, grad var {v:.3e}")
    t, v = tr["probit_s"], tr["probit_grad_var"]
    print(f"   probit S_R={tr['probit_S_R']} n=16: {t:.4f} s, grad var {v:.3e}")
    print(f"   speedup (tempered / probit): {tr['speedup']:.2f}x; probit has no tau bias")

    with jax.enable_x64(True):
        bv = bias_variance()
    result["bias_variance_vs_tau"] = bv
    print("\n3. gradient bias and variance vs tau (K=5, R=2, B=8, S=256; tau=0: probit)")
    print(f"{'tau':>6} {'rel bias':>10} {'rel var':>10}")
    for r in bv:
        print(f"{r['tau']:>6} {r['relative_bias']:>10.2e} {r['relative_variance']:>10.2e}")

    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
