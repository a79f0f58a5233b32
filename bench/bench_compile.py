"""Benchmark: compile time against run time of the package's main entry points.

Each entry point runs in a FRESH Python process (nothing cached by an earlier one), so the
first call's cost is what a user meets. Per entry point: compile = first call (trace + XLA
compile + one run) minus one run; run = best of 3 later calls. Entry points:

- exact probit, K = 6, a batch of 200 problems (`exact_choice_probs`, float64);
- head loss + gradient: `HeteroscedasticHead` low_rank, K = 10, D = 64, B = 128, S = 64;
- one SVI epoch of `inference.fit` on 1024 synthetic examples (MLP + low-rank head);
- the travel-mode full-covariance probit fit (`fit_choice`), first and second call.

Reference printed beside each: the run time (the ratio compile / run says how much of a
first call is compilation). Each entry point runs twice: with XLA's default CPU code generation,
and with the test suite's fast-compile flags (`tests/environment.py`: LLVM -O0, loop emitters
instead of the MLIR fusion emitters), so the table shows what those flags save in compilation
and cost in run time. Writes bench/results/compile.json.
Usage: python bench/bench_compile.py [--quick]
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.environment import use_fast_compiles  # noqa: E402

PRELUDE = """
import json, time
import jax, jax.numpy as jnp, numpy as np

def timed(fn, *args):
    t0 = time.perf_counter(); jax.block_until_ready(fn(*args)); first = time.perf_counter() - t0
    runs = []
    for _ in range(3):
        t0 = time.perf_counter(); jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    run = min(runs)
    return {"compile_s": max(first - run, 0.0), "run_s": run}
"""

ENTRY_POINTS = {
    "exact probit K=6, B=200": """
jax.config.update("jax_enable_x64", True)
import hetprobit as hp
rng = np.random.default_rng(0)
mu = jnp.asarray(rng.normal(size=(200, 6)))
A = rng.normal(size=(200, 6, 6)); cov = jnp.asarray(A @ A.transpose(0, 2, 1) / 6 + 0.3 * np.eye(6))
out = timed(jax.jit(hp.exact_choice_probs), mu, cov)
""",
    "head loss+grad (low_rank K=10, B=128, S=64)": """
import equinox as eqx
from models import HeteroscedasticHead
head = HeteroscedasticHead(64, 10, covariance="low_rank", rank=3, num_train_samples=64,
                           key=jax.random.key(0))
r = jax.random.normal(jax.random.key(1), (128, 64)); y = jnp.arange(128) % 10
loss = eqx.filter_jit(eqx.filter_value_and_grad(
    lambda h, r, y: -h.log_likelihood(r, y, key=jax.random.key(2)).mean()))
out = timed(loss, head, r, y)
""",
    "one SVI epoch (1024 examples, B=64)": """
from models import MLP, Classifier, HeteroscedasticHead, classifier_model
from models import make_synthetic_classification
from inference import fit
d = make_synthetic_classification(num_data=1024, num_classes=6, key=jax.random.key(0))
net = Classifier(MLP(d.x.shape[-1], 32, key=jax.random.key(1)),
                 HeteroscedasticHead(32, 6, covariance="low_rank", rank=2, key=jax.random.key(2)))
t0 = time.perf_counter()
r1 = fit(classifier_model, None, (d.x, d.y), num_epochs=1, batch_size=64, key=jax.random.key(3),
         net=net, progress=False)
first = time.perf_counter() - t0
out = {"compile_s": float(r1.timing.compile_s), "run_s": float(np.min(r1.timing.epoch_s))}
""",
    "travel-mode full probit fit (fit_choice)": """
from models import ChoiceSpec, fit_choice, load_travel_mode
data = load_travel_mode()
spec = ChoiceSpec(base="car", generic=("gc", "ttme"), individual={"hinc": ("air",)})
t0 = time.perf_counter(); res = fit_choice(data, spec, family="probit", covariance="full")
first = time.perf_counter() - t0
t0 = time.perf_counter(); fit_choice(data, spec, family="probit", covariance="full")
second = time.perf_counter() - t0
out = {"compile_s": max(first - second, 0.0), "run_s": second, "first_call_s": first,
       "log_likelihood": float(res.log_likelihood)}
""",
}


def run_entry(code: str, timeout: int, *, fast_compiles: bool) -> dict:
    script = PRELUDE + textwrap.dedent(code) + "\nprint('RESULT' + json.dumps(out))\n"
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    if fast_compiles:
        use_fast_compiles(env)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT") :])
    return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the travel-mode probit fit")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per entry point")
    args = ap.parse_args()
    rows = []
    head = f"{'compile s':>10s} {'run s':>10s} {'compile/run':>12s}"
    print(f"{'entry point':44s} {'XLA code generation':20s} {head}")
    for name, code in ENTRY_POINTS.items():
        if args.quick and name.startswith("travel"):
            continue
        for fast in (False, True):
            res = run_entry(code, args.timeout, fast_compiles=fast)
            label = "fast-compile flags" if fast else "default"
            rows.append({"entry_point": name, "xla_flags": label, **res})
            if "error" in res:
                print(f"{name:44s} {label:20s} {'error: ' + str(res['error'])}")
                continue
            ratio = res["compile_s"] / max(res["run_s"], 1e-9)
            timings = f"{res['compile_s']:10.2f} {res['run_s']:10.4f} {ratio:12.1f}"
            print(f"{name:44s} {label:20s} {timings}")
    pairs = {}
    for row in rows:
        if "error" not in row:
            pairs.setdefault(row["entry_point"], {})[row["xla_flags"]] = row
    print(f"\n{'entry point':44s} {'compile: default / fast':>24s} {'run: fast / default':>20s}")
    for name, pair in pairs.items():
        if len(pair) == 2:
            d, f = pair["default"], pair["fast-compile flags"]
            c = d["compile_s"] / max(f["compile_s"], 1e-9)
            r = f["run_s"] / max(d["run_s"], 1e-9)
            print(f"{name:44s} {c:23.2f}x {r:19.2f}x")
    out = os.path.join(ROOT, "bench", "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "compile.json"), "w") as fh:
        json.dump({"results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
