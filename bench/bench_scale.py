"""Benchmark: the head's loss + gradient at ImageNet-21k shape, streamed vs materialising.

Loss = -mean_b log p_{y_b}, the tempered softmax log-likelihood of observed labels, and its
gradient with respect to mu and every array of the noise structure, for the
parameter-efficient structure (Collier et al. 2021, arXiv:2105.10305) and HET-XL (Collier
et al. 2023, arXiv:2301.12860):

- ours: `hetprobit.tempered_softmax_log_likelihood` (samples streamed in chunks under
  `lax.scan`, custom VJP: memory O(B C K) whatever S);
- reference: the materialising formulation of the same estimator, all S draws at once
  (`(B, S, K)` utilities, `logsumexp` over classes then over samples), as a layer written
  without streaming would. It is compiled first; where its compiled memory exceeds the
  device's memory it is skipped with a note.

Per device and formulation: compiled memory (`memory_analysis()`: arguments + outputs +
temporaries), on GPU also the allocator's peak (`memory_stats()["peak_bytes_in_use"]`,
streamed measured first), and the median time of a jitted value-and-gradient call.

Class shards (`--class-shards`, CPU: forced host devices): the compiled per-device memory
of `hetprobit.sharded.class_sharded_log_likelihood` (+ gradient) with the class axis split
over 1, 2, 4 devices, compile only (K rounded up to a multiple of 4 so that mu and the
noise arrays are placed split over the shards).

    python bench/bench_scale.py --quick          # CPU, < 2 minutes
    python bench/bench_scale.py                  # full: K=21,843, R=50, S=1,000, B=256
    python bench/bench_scale.py --compile-only --class-shards   # full-size memory, on CPU
    bench/run_gpu.sh                             # this + bench_inference.py on a GPU

HET-XL's draws are projected by the (K, D) mean weight: B S K D multiply-adds per pass
(D = `--hetxl-dim`, 128 at full size to keep it to seconds on one GPU).
Writes bench/results/scale[_quick].json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if "--class-shards" in sys.argv and "cuda" not in os.environ.get("JAX_PLATFORMS", ""):
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

from hetprobit import tempered_softmax_log_likelihood  # noqa: E402
from hetprobit.noise import HetXLNoise, ParameterEfficientNoise  # noqa: E402
from hetprobit.sharded import (  # noqa: E402
    CLASS_AXIS,
    DATA_AXIS,
    class_mesh,
    class_sharded_log_likelihood,
    noise_partition_spec,
)

SIZES = {
    "full": dict(B=256, K=21843, R=50, S=1000, D=128, repeats=3),
    "quick": dict(B=32, K=2000, R=15, S=64, D=32, repeats=3),
}
TAU = 1.0


def make_problem(kind, cfg, key):
    B, K, R, D = cfg["B"], cfg["K"], cfg["R"], cfg["D"]
    k = jax.random.split(key, 5)
    mu = jax.random.normal(k[0], (B, K))
    labels = jax.random.randint(k[1], (B,), 0, K)
    scale = 0.5 + jax.nn.softplus(jax.random.normal(k[2], (B, K if kind == "pe" else D)))
    if kind == "pe":
        noise = ParameterEfficientNoise(
            scale, jax.random.normal(k[3], (B, K)), 0.1 * jax.random.normal(k[4], (K, R))
        )
    else:
        noise = HetXLNoise(
            scale,
            0.1 * jax.random.normal(k[3], (B, D, R)),
            jax.random.normal(k[4], (K, D)) / np.sqrt(D),
        )
    return mu, noise, labels


def streamed_loss(mu, noise, labels, key, S, chunk_size):
    ll = tempered_softmax_log_likelihood(
        mu, noise, labels, key=key, tau=TAU, num_samples=S, chunk_size=chunk_size
    )
    return -jnp.mean(ll)


def materialised_loss(mu, noise, labels, key, S):
    """All S draws at once: (B, S, K) utilities, log-softmax, log-mean-exp over S."""
    z = jax.random.normal(key, (mu.shape[0], S, noise.num_draws), mu.dtype)
    u = (mu[:, None, :] + noise.transform_draws(z)) / TAU
    one_hot = jax.nn.one_hot(labels, mu.shape[-1], dtype=u.dtype)
    per_draw = jnp.sum(u * one_hot[:, None, :], -1) - jax.nn.logsumexp(u, axis=-1)
    return -jnp.mean(jax.nn.logsumexp(per_draw, axis=-1) - jnp.log(S))


def compiled_bytes(compiled) -> int:
    m = compiled.memory_analysis()
    if m is None:
        return -1
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def device_limit() -> int:
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)  # CPU: half RAM


def peak_bytes() -> int | None:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def measure(loss, args, repeats):
    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    return compiled, compile_s


def run_one(kind, cfg, chunk_size, limit, compile_only=False):
    mu, noise, labels = make_problem(kind, cfg, jax.random.key(0))
    key, S = jax.random.key(1), cfg["S"]
    out = {}
    for name, loss in (
        ("streamed", lambda m, n: streamed_loss(m, n, labels, key, S, chunk_size)),
        ("materialised", lambda m, n: materialised_loss(m, n, labels, key, S)),
    ):
        compiled, compile_s = measure(loss, (mu, noise), cfg["repeats"])
        mem = compiled_bytes(compiled)
        row = {"compiled_bytes": mem, "compile_s": compile_s}
        if mem > 0.9 * limit:
            row["skipped"] = f"compiled memory {mem / 2**30:.1f} GiB > 90% of {limit / 2**30:.1f}"
            out[name] = row
            continue
        if compile_only:
            out[name] = row
            continue
        value, _ = jax.block_until_ready(compiled(mu, noise))  # warm-up
        times = []
        for _ in range(cfg["repeats"]):
            t = time.perf_counter()
            jax.block_until_ready(compiled(mu, noise))
            times.append(time.perf_counter() - t)
        row.update(loss=float(value), time_s=float(np.median(times)), peak_bytes=peak_bytes())
        out[name] = row
    return out


def class_shard_memory(kind, cfg):
    """Per-device compiled bytes of the class-sharded loss + gradient, 1 / 2 / 4 shards.

    K is rounded up to a multiple of 4 here so the arguments (mu, the noise arrays) can be
    placed split over the class shards, as a class-sharded model holds them.
    """
    cfg = dict(cfg, K=-(-cfg["K"] // 4) * 4)
    mu0, noise0, labels = make_problem(kind, cfg, jax.random.key(0))
    out = {}
    for shards in (1, 2, 4):
        if shards > len(jax.devices()):
            break
        mesh = class_mesh(jax.devices()[:shards], num_class_shards=shards)
        specs = (PartitionSpec(DATA_AXIS, CLASS_AXIS), noise_partition_spec(noise0))
        mu, noise = jax.tree.map(
            lambda x, s, mesh=mesh: jax.device_put(x, NamedSharding(mesh, s)),
            (mu0, noise0),
            specs,
        )

        def loss(m, n, mesh=mesh):
            ll = class_sharded_log_likelihood(
                m, n, labels, key=jax.random.key(1), mesh=mesh, tau=TAU, num_samples=cfg["S"]
            )
            return -jnp.mean(ll)

        compiled, _ = measure(loss, (mu, noise), 1)
        m = compiled.memory_analysis()
        out[shards] = {
            "total": compiled_bytes(compiled),
            "temp": int(m.temp_size_in_bytes),
            "arguments": int(m.argument_size_in_bytes),
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CPU size (< 2 min)")
    parser.add_argument("--full", action="store_true", help="ImageNet-21k size (default)")
    parser.add_argument("--chunk-size", type=int, default=None, help="samples per chunk")
    parser.add_argument("--hetxl-dim", type=int, default=None, help="HET-XL's D")
    parser.add_argument("--class-shards", action="store_true", help="per-device memory")
    parser.add_argument("--compile-only", action="store_true", help="memory only, no timing")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    cfg = dict(SIZES[mode])
    if args.hetxl_dim:
        cfg["D"] = args.hetxl_dim
    limit = device_limit()
    results = {
        "mode": mode,
        "config": cfg,
        "chunk_size": args.chunk_size,
        "device": str(jax.devices()[0]),
        "backend": jax.default_backend(),
        "device_limit_bytes": limit,
    }
    rows = []
    for kind, label in (("pe", "parameter-efficient"), ("hetxl", "HET-XL")):
        r = run_one(kind, cfg, args.chunk_size, limit, args.compile_only)
        results[kind] = r
        s, m = r["streamed"], r["materialised"]
        ratio_t = (m["time_s"] / s["time_s"]) if "time_s" in m else None
        rows.append(
            (
                label,
                f"{s['time_s'] * 1e3:.1f} ms" if "time_s" in s else "not run",
                f"{s['compiled_bytes'] / 2**20:.0f} MiB",
                m.get("skipped") or (f"{m['time_s'] * 1e3:.1f} ms" if "time_s" in m else "not run"),
                f"{m['compiled_bytes'] / 2**20:.0f} MiB",
                "-" if ratio_t is None else f"{ratio_t:.2f}",
                f"{m['compiled_bytes'] / s['compiled_bytes']:.1f}",
            )
        )
        if "loss" in m:  # the same estimator: agree within Monte Carlo error
            r["loss_gap"] = abs(m["loss"] - s["loss"])
        if args.class_shards:
            results[kind]["class_shard_bytes"] = class_shard_memory(kind, cfg)
    B, K, R, S = cfg["B"], cfg["K"], cfg["R"], cfg["S"]
    print(f"loss + gradient, B={B} K={K} R={R} S={S} (HET-XL D={cfg['D']}), {jax.devices()[0]}")
    head = ("head", "streamed", "mem", "materialised", "mem", "time ratio", "mem ratio")
    print(" | ".join(head))
    for row in rows:
        print(" | ".join(row))
    if args.class_shards:
        for kind in ("pe", "hetxl"):
            for shards, v in results[kind]["class_shard_bytes"].items():
                print(
                    f"class-sharded {kind}, {shards} class shard(s), per device: "
                    f"{v['total'] / 2**20:.1f} MiB (temporaries {v['temp'] / 2**20:.1f} MiB, "
                    f"arguments {v['arguments'] / 2**20:.1f} MiB)"
                )
    out = args.out or str(
        Path(__file__).parent / "results" / ("scale_quick.json" if args.quick else "scale.json")
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
