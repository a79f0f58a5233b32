"""Benchmark: observed-label tempered-softmax loss + gradient, ours vs a materialising reference.

The reference is what existing heteroscedastic layers do: draw all B x S x K utilities at
once, average the softmax over samples, take log(mean + eps-clip); every [B, S, K] tensor is
kept for backprop. Ours streams the samples in chunks with an online log-sum-exp and
rematerialisation. Both use the same low-rank noise (K=1000, R=15, B=128) and per-example
draws. Peak memory is XLA's compiled temporary-buffer size (`memory_analysis()`), which is
what the program needs beyond its inputs and outputs.

    python bench/bench_likelihood.py            # full sizes (a few minutes on 2 CPU cores)
    python bench/bench_likelihood.py --quick    # small sizes, seconds

Writes bench/results/likelihood.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from math import nan
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import hetprobit as hp  # noqa: E402
from hetprobit.likelihood import _draw_observed_log_softmax  # noqa: E402


def reference_loss(mu, scale, factor, labels, key, tau, S):
    """The B x S x K mean-of-softmax loss of existing layers (with an eps clip)."""
    B, K = mu.shape
    R = factor.shape[-1]
    k1, k2 = jax.random.split(key)
    z_K = jax.random.normal(k1, (B, S, K))
    z_R = jax.random.normal(k2, (B, S, R))
    u = mu[:, None, :] + scale[:, None, :] * z_K + jnp.einsum("bkr,bsr->bsk", factor, z_R)
    probs = jnp.mean(jax.nn.softmax(u / tau, axis=-1), axis=1)
    p_y = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    return -jnp.mean(jnp.log(jnp.clip(p_y, 1e-7, 1.0)))


def our_loss(mu, scale, factor, labels, key, tau, S, share_draws=False):
    noise = hp.LowRankNoise(scale, factor)
    ll = hp.tempered_softmax_log_likelihood(
        mu, noise, labels, key=key, tau=tau, num_samples=S, share_draws=share_draws
    )
    return -jnp.mean(ll)


def our_loss_two_pass(mu, scale, factor, labels, key, tau, S):
    """Ours with the previous two-pass gradient (the backward pass regenerates every draw)."""
    from hetprobit.likelihood import _estimate

    noise = hp.LowRankNoise(scale, factor)
    one_hot = jax.nn.one_hot(labels, mu.shape[-1], dtype=mu.dtype)
    ll = _estimate(
        mu, noise, key, tau, S, None, "mc", False, mu.shape[:-1], (),
        _draw_observed_log_softmax, aux=one_hot, one_pass=False,
    )  # fmt: skip
    return -jnp.mean(ll)


def our_loss_shared(mu, scale, factor, labels, key, tau, S):
    """Ours with one set of standard-normal draws for the whole batch (`share_draws=True`)."""
    return our_loss(mu, scale, factor, labels, key, tau, S, share_draws=True)


def measure(loss_fn, args, repeats):
    grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1, 2)), static_argnums=(6,))
    compiled = grad_fn.lower(*args).compile()
    mem = compiled.memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", float("nan")) if mem is not None else float("nan")
    jax.block_until_ready(compiled(*args[:6]))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args[:6]))
        times.append(time.perf_counter() - t0)
    return min(times), temp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples", type=int, nargs="*", help="S values (default: preset)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "likelihood.json"))
    opts = parser.parse_args()
    B, K, R, tau = (16, 100, 5, 0.5) if opts.quick else (128, 1000, 15, 0.5)
    sizes = [16, 64] if opts.quick else [16, 256, 1024]
    ours_only = [256] if opts.quick else [10_000]
    repeats = 2 if opts.quick else 3
    if opts.samples:
        sizes, ours_only = opts.samples, []

    key = jax.random.key(0)
    ks = jax.random.split(key, 4)
    mu = jax.random.normal(ks[0], (B, K))
    scale = hp.positive_scale(jax.random.normal(ks[1], (B, K)))
    factor = 0.1 * jax.random.normal(ks[2], (B, K, R))
    labels = jax.random.randint(ks[3], (B,), 0, K)

    rows = []
    for S in sizes + ours_only:
        args = (mu, scale, factor, labels, key, tau, S)
        t_ours, m_ours = measure(our_loss, args, repeats)
        t_shared, _ = measure(our_loss_shared, args, repeats)
        t_two, _ = measure(our_loss_two_pass, args, repeats)
        t_ref, m_ref = measure(reference_loss, args, repeats) if S in sizes else (nan, nan)
        rows.append(
            dict(
                S=S,
                ours_s=t_ours,
                ours_shared_s=t_shared,
                ref_s=t_ref,
                speedup=t_ref / t_ours,
                two_pass_s=t_two,
                speedup_two_pass=t_ref / t_two,
                speedup_shared=t_ref / t_shared,
                ours_temp_MB=m_ours / 2**20,
                ref_temp_MB=m_ref / 2**20,
                memory_ratio=m_ref / m_ours,
            )
        )
    print(f"loss+grad, low-rank noise, B={B} K={K} R={R} tau={tau}, {jax.devices()[0].platform}")
    print("  ours: per-example draws (as the reference), one-pass gradient; 2-pass: the previous")
    print("  gradient that regenerates the draws; shared: share_draws=True")
    print(
        f"{'S':>6} {'ref s':>8} {'ours s':>8} {'speedup':>8} {'2-pass s':>9} {'speedup':>8} "
        f"{'shared s':>9} {'speedup':>8} "
        f"{'ref MB':>8} {'ours MB':>8} {'mem x':>6}"
    )
    for r in rows:
        print(
            f"{r['S']:>6} {r['ref_s']:>8.4f} {r['ours_s']:>8.4f} {r['speedup']:>8.2f} "
            f"{r['two_pass_s']:>9.4f} {r['speedup_two_pass']:>8.2f} "
            f"{r['ours_shared_s']:>9.4f} {r['speedup_shared']:>8.2f} "
            f"{r['ref_temp_MB']:>8.1f} {r['ours_temp_MB']:>8.1f} {r['memory_ratio']:>6.1f}"
        )
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(dict(B=B, K=K, R=R, tau=tau, device=str(jax.devices()[0]), rows=rows), indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
