"""SVI fitting, ensembles, predictive summaries (depends on `hetprobit` and `models`).

- `svi`: `fit` (JIT-compiled SVI, epochs under `lax.scan`, early stopping), `FitState`,
  `FitResult`.
- `optim`: `default_optimizer` (AdamW, warm-up + cosine, global-norm clipping).
- `checkpoint`: `save_checkpoint` / `load_checkpoint` (bit-exact resume).
- `predictive`: `predict_log_probs`, `predict_probs`, `evaluate` (via `hetprobit.metrics`).
- `sharding`: data-parallel placement used by `fit(..., devices=...)`.
"""

from .checkpoint import load_checkpoint as load_checkpoint, save_checkpoint as save_checkpoint
from .optim import default_optimizer as default_optimizer
from .predictive import (
    evaluate as evaluate,
    predict_log_probs as predict_log_probs,
    predict_probs as predict_probs,
)
from .sharding import DataParallel as DataParallel, data_parallel as data_parallel
from .svi import (
    FitResult as FitResult,
    FitState as FitState,
    FitTiming as FitTiming,
    build_svi as build_svi,
    empty_guide as empty_guide,
    fit as fit,
)

__all__ = [
    "DataParallel",
    "FitResult",
    "FitState",
    "FitTiming",
    "build_svi",
    "data_parallel",
    "default_optimizer",
    "empty_guide",
    "evaluate",
    "fit",
    "load_checkpoint",
    "predict_log_probs",
    "predict_probs",
    "save_checkpoint",
]
