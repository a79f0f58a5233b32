"""XLA settings for fast compiles, shared by `tests/conftest.py` and `notebooks/conftest.py`.

The suite (and the notebooks' fast mode) is dominated by XLA compilation of small programs,
not by running them. Two CPU-backend flags cut that compile time; both change code generation
only, not the HLO optimisation passes:

- `--xla_backend_optimization_level=0`: LLVM at -O0 (15-20% less CPU on `tests/test_exact.py`
  and `tests/test_models_head.py`);
- `--xla_cpu_use_fusion_emitters=false`: XLA's loop emitters for fused elementwise code
  instead of the newer MLIR fusion emitters (a J = 3 full-covariance probit fit compiles in
  5.5 instead of 11.5 CPU s; the whole suite takes 11.6 instead of 16.9 CPU minutes). jaxlib
  0.12 no longer knows this flag, and XLA aborts on an unknown flag, so each flag is first
  tried in a subprocess (about 0.7 s) and only the accepted ones are used.

Results can differ from the default code generation in the last bits of floating point, which
every test's tolerance allows for. The subprocess tests inherit the flags through the
environment. A flag the user already set in `XLA_FLAGS` wins.
"""

import functools
import os
import subprocess
import sys

FAST_COMPILE_FLAGS = {
    "xla_backend_optimization_level": "0",
    "xla_cpu_use_fusion_emitters": "false",
}


@functools.lru_cache
def _accepted(flags: tuple[str, ...]) -> bool:
    """Whether this jaxlib's CPU backend starts with `XLA_FLAGS` = `flags` (asked once per
    process for each set)."""
    env = dict(os.environ, XLA_FLAGS=" ".join(flags), JAX_PLATFORMS="cpu")
    probe = subprocess.run(
        [sys.executable, "-c", "import jax; jax.devices()"], env=env, capture_output=True
    )
    return probe.returncode == 0


def use_fast_compiles(environ=os.environ) -> None:
    """Add the `FAST_COMPILE_FLAGS` this jaxlib accepts to `environ["XLA_FLAGS"]` (before JAX is
    imported), keeping any of them the user set."""
    flags = environ.get("XLA_FLAGS", "").split()
    new = [
        f"--{name}={value}"
        for name, value in FAST_COMPILE_FLAGS.items()
        if not any(flag.lstrip("-").split("=")[0] == name for flag in flags)
    ]
    if not new:
        return
    if not _accepted(tuple(flags + new)):
        new = [flag for flag in new if _accepted((*flags, flag))]
    environ["XLA_FLAGS"] = " ".join(flags + new)
