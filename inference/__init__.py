"""SVI fitting, ensembles, predictive summaries (depends on `hetprobit` and `models`).

- `svi`: `fit` (JIT-compiled SVI, epochs under `lax.scan`, early stopping), `FitState`,
  `FitResult`.
- `optim`: `default_optimizer` (AdamW, warm-up + cosine, global-norm clipping).
- `checkpoint`: `save_checkpoint` / `load_checkpoint` (bit-exact resume).
- `predictive`: `predict_log_probs`, `predict_probs`, `evaluate` (via `hetprobit.metrics`).
- `ensemble`: `fit_ensemble` (members trained under vmap), `ensemble_predict`,
  `entropy_decomposition` (total = aleatoric + epistemic).
- `temperature`: `temperature_sweep`, `relaxation_bias`, `gradient_variance`.
- `arviz_export`: `to_arviz`, `summarize`, `plot_posterior`, `plot_losses`.
- `cli`: the `hetprobit` command (digits study).
- `sharding`: data-parallel placement used by `fit(..., devices=...)`; multi-host notes.
"""

from .arviz_export import (
    plot_losses as plot_losses,
    plot_posterior as plot_posterior,
    summarize as summarize,
    to_arviz as to_arviz,
)
from .checkpoint import load_checkpoint as load_checkpoint, save_checkpoint as save_checkpoint
from .ensemble import (
    EnsemblePrediction as EnsemblePrediction,
    EnsembleResult as EnsembleResult,
    ensemble_keys as ensemble_keys,
    ensemble_predict as ensemble_predict,
    entropy_decomposition as entropy_decomposition,
    fit_ensemble as fit_ensemble,
)
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
from .temperature import (
    RelaxationBias as RelaxationBias,
    TemperatureSweep as TemperatureSweep,
    gradient_variance as gradient_variance,
    relaxation_bias as relaxation_bias,
    temperature_sweep as temperature_sweep,
)

__all__ = [
    "build_svi",
    "data_parallel",
    "DataParallel",
    "default_optimizer",
    "empty_guide",
    "ensemble_keys",
    "ensemble_predict",
    "EnsemblePrediction",
    "EnsembleResult",
    "entropy_decomposition",
    "evaluate",
    "fit",
    "fit_ensemble",
    "FitResult",
    "FitState",
    "FitTiming",
    "gradient_variance",
    "load_checkpoint",
    "plot_losses",
    "plot_posterior",
    "predict_log_probs",
    "predict_probs",
    "relaxation_bias",
    "RelaxationBias",
    "save_checkpoint",
    "summarize",
    "temperature_sweep",
    "TemperatureSweep",
    "to_arviz",
]
