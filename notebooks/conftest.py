"""pytest + nbmake: every notebook runs top to bottom in its fast mode.

nbmake starts one Jupyter kernel per notebook, in the notebook's folder, with the environment
of the pytest process, so what is set here at import reaches the kernel:

- `HETPROBIT_FAST=1`: the notebooks' small configuration (each well under a minute);
  the notebooks then write their figures to a temporary folder, not `notebooks/figures/`
  (those are the committed figures of the full run that the README shows);
- the repository root first on `PYTHONPATH`, so the kernel imports this checkout's
  `hetprobit`, `models` and `inference` whatever is installed;
- `JAX_PLATFORMS=cpu` unless set, and the fast-compile XLA flags of `tests/environment.py`.
"""

import os
import sys
from pathlib import Path

os.environ["HETPROBIT_FAST"] = "1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
_ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, _ROOT)
from tests.environment import use_fast_compiles  # noqa: E402

use_fast_compiles()
