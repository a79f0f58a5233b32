#!/usr/bin/env bash
# The scale benchmarks on one GPU, in a few minutes: run from the repository root,
#     bash bench/run_gpu.sh            # JSON into bench/results/, tables on stdout
# 1. bench_scale.py (full: K=21,843, R=50, S=1,000, B=256; PE and HET-XL; streamed vs
#    materialising loss + gradient; time, compiled and allocator peak memory);
# 2. bench_inference.py (SVI step vs plain equinox+optax; vmapped vs sequential ensemble).
# Each step has its own time limit so a slow one cannot eat the others' time.
set -u
export JAX_PLATFORMS="${JAX_PLATFORMS:-cuda}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # the allocator's peak is then the real peak
cd "$(dirname "$0")/.."
python -c "import jax; print(jax.devices())" || exit 1
timeout 300 python bench/bench_scale.py --full || echo "bench_scale.py failed or timed out ($?)"
timeout 180 python bench/bench_inference.py || echo "bench_inference.py failed or timed out ($?)"
ls -l bench/results/
