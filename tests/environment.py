"""XLA settings for fast compiles, shared by `tests/conftest.py` and `notebooks/conftest.py`.

The suite (and the notebooks' fast mode) is dominated by XLA compilation of small programs,
not by running them. Two CPU-backend flags cut that compile time; both change code generation
only, not the HLO optimisation passes:

- `--xla_backend_optimization_level=0`: LLVM at -O0 (15-20% less CPU on `tests/test_exact.py`
  and `tests/test_models_head.py`);
- `--xla_cpu_use_fusion_emitters=false`: XLA's loop emitters for fused elementwise code
  instead of the newer MLIR fusion emitters (a J = 3 full-covariance probit fit compiles in
  5.5 instead of 11.5 CPU s; the exact-probit gradient tests in 30 instead of 45).

Results can differ from the default code generation in the last bits of floating point, which
every test's tolerance allows for. The subprocess tests inherit the flags through the
environment. A flag the user already set in `XLA_FLAGS` wins.
"""

import os

FAST_COMPILE_FLAGS = {
    "xla_backend_optimization_level": "0",
    "xla_cpu_use_fusion_emitters": "false",
}


def use_fast_compiles(environ=os.environ) -> None:
    """Add `FAST_COMPILE_FLAGS` to `environ["XLA_FLAGS"]` (before JAX is imported), keeping
    any of them the user set."""
    flags = environ.get("XLA_FLAGS", "").split()
    for name, value in FAST_COMPILE_FLAGS.items():
        if not any(flag.lstrip("-").split("=")[0] == name for flag in flags):
            flags.append(f"--{name}={value}")
    environ["XLA_FLAGS"] = " ".join(flags)
