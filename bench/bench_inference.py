"""Benchmark: `inference.fit`'s SVI step vs a plain equinox + optax loop; vmapped ensemble.

1. SVI step time. The same network (MLP backbone + low-rank `HeteroscedasticHead`), the
   same data, batch, optimiser (`default_optimizer`) and epoch structure (a jitted
   `lax.scan` over minibatches gathered by a per-epoch permutation) in both:
   - ours: `inference.fit`'s compiled epoch (NumPyro SVI, Trace_ELBO, `eqx_module`);
   - plain: `eqx.filter_value_and_grad` of -(N/B) Σ log-lik (`head.log_likelihood`) and
     `optax.update` on the equinox parameters.
   Goal: ours / plain <= 1.15.
2. Deep Ensemble of 4 members: one vmapped epoch (`fit_ensemble`'s program) vs 4 sequential
   single-member epochs (the same compiled loop called 4 times). Goal on CPU: no slower
   (ratio vmapped / sequential <= 1). End-to-end wall time (compile included) too.

Steady-state times are medians over `--repeats` epochs after a warm-up epoch.

    python bench/bench_inference.py            # full sizes (about a minute on 2 CPU cores)
    python bench/bench_inference.py --quick    # small sizes, seconds

Writes bench/results/inference.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax import lax  # noqa: E402

from inference import (  # noqa: E402
    build_svi,
    default_optimizer,
    fit,
    fit_ensemble,
    init,
    run_epoch,
)
from models import MLP, Classifier, HeteroscedasticHead, classifier_model  # noqa: E402
from models.synthetic import make_synthetic_classification  # noqa: E402

SIZES = {
    "full": dict(N=4096, B=128, K=10, p=16, width=128, depth=2, D=64, R=4, S=64, epochs=3),
    "quick": dict(N=1024, B=64, K=10, p=8, width=32, depth=1, D=16, R=2, S=16, epochs=2),
}


def make_net(key, cfg):
    k1, k2 = jax.random.split(key)
    return Classifier(
        MLP(cfg["p"], cfg["D"], width=cfg["width"], depth=cfg["depth"], key=k1),
        HeteroscedasticHead(cfg["D"], cfg["K"], rank=cfg["R"], num_train_samples=cfg["S"], key=k2),
    )


def median_time(fn, state, repeats):
    state = jax.block_until_ready(fn(state))  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        state = jax.block_until_ready(fn(state))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def svi_epoch(net, data, cfg, opt, key):
    """`inference.fit`'s compiled epoch: returns (run(state) -> state, state0)."""
    svi = build_svi(classifier_model, None, opt)
    dyn, static = eqx.partition({"net": net}, eqx.is_array)
    state = eqx.filter_jit(init)(svi, data, key=key, batch_size=cfg["B"], model_kwargs={"net": net})

    @jax.jit
    def epoch(s, data, dyn):
        kw = eqx.combine(dyn, static)
        return run_epoch(svi, s, data, batch_size=cfg["B"], model_kwargs=kw, check_finite=False)

    return (lambda s: epoch(s, data, dyn)[0]), state


def plain_epoch(net, data, cfg, opt, key):
    """The same epoch written directly with equinox + optax."""
    N, B = cfg["N"], cfg["B"]
    steps = N // B
    params, static = eqx.partition(net, eqx.is_inexact_array)

    def loss_fn(params, x, y, key):
        model = eqx.combine(params, static)
        r = jax.vmap(model.backbone)(x)
        return -(N / B) * jnp.sum(model.head.log_likelihood(r, y, key=key))

    @jax.jit
    def epoch(carry):
        params, opt_state, key, e = carry
        order = jax.random.permutation(jax.random.fold_in(key, e), N)[: steps * B]

        def step(c, idx):
            params, opt_state, k = c
            k, sub = jax.random.split(k)
            x, y = jnp.take(data[0], idx, axis=0), jnp.take(data[1], idx, axis=0)
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y, sub)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, k), loss

        (params, opt_state, k), _ = lax.scan(
            step, (params, opt_state, key), order.reshape(steps, B)
        )
        return params, opt_state, key, e + 1

    return epoch, (params, opt.init(params), key, jnp.zeros((), jnp.int32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "inference.json"))
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    cfg = SIZES[mode]
    repeats = args.repeats or (3 if args.quick else 5)
    M = args.members
    d = make_synthetic_classification(
        cfg["N"], cfg["K"], num_features=cfg["p"], key=jax.random.key(0)
    )
    data = (d.x, d.y)
    steps = cfg["N"] // cfg["B"]
    opt = default_optimizer(100 * steps)
    net = make_net(jax.random.key(1), cfg)

    run_svi, s_svi = svi_epoch(net, data, cfg, opt, jax.random.key(2))
    run_plain, s_plain = plain_epoch(net, data, cfg, opt, jax.random.key(2))
    t_svi = median_time(run_svi, s_svi, repeats) / steps
    t_plain = median_time(run_plain, s_plain, repeats) / steps

    # ensemble: one vmapped epoch vs M sequential single-member epochs (steady state)
    t0 = time.perf_counter()
    ens = fit_ensemble(
        classifier_model,
        None,
        data,
        num_members=M,
        num_epochs=cfg["epochs"],
        batch_size=cfg["B"],
        key=jax.random.key(3),
        optimizer=opt,
        member_kwargs=lambda k: {"net": make_net(k, cfg)},
        progress=False,
    )
    e2e_vmap = time.perf_counter() - t0
    t_vmap_epoch = ens.timing.train_s / cfg["epochs"]
    t_seq_epoch = M * t_svi * steps
    t0 = time.perf_counter()
    for m in range(M):
        fit(
            classifier_model,
            None,
            data,
            num_epochs=cfg["epochs"],
            batch_size=cfg["B"],
            key=jax.random.fold_in(jax.random.key(3), m),
            optimizer=opt,
            net=make_net(jax.random.fold_in(jax.random.key(4), m), cfg),
            progress=False,
        )
    e2e_seq = time.perf_counter() - t0

    result = {
        "mode": mode,
        "config": cfg,
        "members": M,
        "device": str(jax.devices()[0]),
        "backend": jax.default_backend(),
        "svi_step_s": t_svi,
        "plain_step_s": t_plain,
        "svi_over_plain": t_svi / t_plain,
        "svi_goal": 1.15,
        "ensemble_vmapped_epoch_s": t_vmap_epoch,
        "ensemble_sequential_epoch_s": t_seq_epoch,
        "vmapped_over_sequential": t_vmap_epoch / t_seq_epoch,
        "ensemble_vmapped_end_to_end_s": e2e_vmap,
        "ensemble_sequential_end_to_end_s": e2e_seq,
        "end_to_end_ratio": e2e_vmap / e2e_seq,
    }
    rows = [
        ("SVI step (ours)", f"{1e3 * t_svi:.3f} ms", ""),
        ("plain eqx+optax step", f"{1e3 * t_plain:.3f} ms", ""),
        ("ratio ours / plain", f"{t_svi / t_plain:.3f}", "goal <= 1.15"),
        (f"ensemble x{M} vmapped epoch", f"{t_vmap_epoch:.3f} s", ""),
        (f"{M} sequential epochs", f"{t_seq_epoch:.3f} s", ""),
        ("ratio vmapped / sequential", f"{t_vmap_epoch / t_seq_epoch:.3f}", "goal <= 1 (CPU)"),
        ("end-to-end vmapped (compile incl.)", f"{e2e_vmap:.2f} s", ""),
        ("end-to-end sequential", f"{e2e_seq:.2f} s", f"ratio {e2e_vmap / e2e_seq:.3f}"),
    ]
    print(
        f"bench_inference ({mode}, {result['device']}, N={cfg['N']} B={cfg['B']} "
        f"K={cfg['K']} S={cfg['S']})"
    )
    for name, value, note in rows:
        print(f"  {name:<36} {value:>12}  {note}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
