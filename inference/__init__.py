"""SVI fitting, ensembles, predictive summaries (depends on `hetprobit` and `models`).

- `svi`: the training loop as pure functions, `init` / `run_epoch` (SVI, one `lax.scan`
  per epoch), `FitState`, `EarlyStoppingState`, `EpochInfo`, `update_early_stopping`.
- `driver`: `fit`, the thin driver (validation and early stopping via `Validation`,
  checkpoints, devices, progress), `FitResult`, `FitTiming`.
- `data`: `validate_data` (the whole data set checked once, eagerly, before compiling).
- `optim`: `default_optimizer` (AdamW, warm-up + cosine, global-norm clipping).
- `checkpoint`: `save_checkpoint` / `load_checkpoint` (bit-exact resume).
- `predictive`: `predict_log_probs`, `predict_probs`, `evaluate` (via `hetprobit.metrics`).
- `ensemble`: `fit_ensemble` (the same loop under vmap), `ensemble_predict`,
  `entropy_decomposition` (total = aleatoric + epistemic).
- `relaxation`: `relaxation_sweep` (over the relaxation temperature tau),
  `relaxation_bias`, `gradient_variance`.
- `arviz_export`: `to_arviz`, `summarize`, `plot_posterior`, `plot_losses`.
- `studies`: the studies behind the command, one module each: `compare` (`run_compare`,
  `write_compare`), `bias` (`run_bias`, `write_bias`), `methods` (`METHODS`, `noisy_digits`).
- `cli`: the `hetprobit` command, a subcommand per study (`compare` by default, `bias`).
- `sharding`: data-parallel placement used by `fit(..., devices=...)`.
- `distributed`: several processes (hosts): `initialize`, `global_data` (each process
  holds its part of the data), then the same `fit(..., devices=jax.devices())`.
"""

from .arviz_export import (
    plot_losses as plot_losses,
    plot_posterior as plot_posterior,
    summarize as summarize,
    to_arviz as to_arviz,
)
from .checkpoint import load_checkpoint as load_checkpoint, save_checkpoint as save_checkpoint
from .data import validate_data as validate_data
from .driver import (
    FitResult as FitResult,
    FitTiming as FitTiming,
    Validation as Validation,
    fit as fit,
)
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
from .relaxation import (
    RelaxationBias as RelaxationBias,
    RelaxationSweep as RelaxationSweep,
    gradient_variance as gradient_variance,
    relaxation_bias as relaxation_bias,
    relaxation_sweep as relaxation_sweep,
)
from .sharding import DataParallel as DataParallel, data_parallel as data_parallel
from .studies.bias import BiasResults as BiasResults, run_bias as run_bias, write_bias as write_bias
from .studies.compare import (
    CompareResults as CompareResults,
    run_compare as run_compare,
    write_compare as write_compare,
)
from .svi import (
    EarlyStoppingState as EarlyStoppingState,
    EpochInfo as EpochInfo,
    FitState as FitState,
    build_svi as build_svi,
    empty_guide as empty_guide,
    init as init,
    run_epoch as run_epoch,
    update_early_stopping as update_early_stopping,
    validation_loss as validation_loss,
)

__all__ = [
    "BiasResults",
    "build_svi",
    "CompareResults",
    "data_parallel",
    "DataParallel",
    "default_optimizer",
    "EarlyStoppingState",
    "empty_guide",
    "ensemble_keys",
    "ensemble_predict",
    "EnsemblePrediction",
    "EnsembleResult",
    "entropy_decomposition",
    "EpochInfo",
    "evaluate",
    "fit",
    "fit_ensemble",
    "FitResult",
    "FitState",
    "FitTiming",
    "gradient_variance",
    "init",
    "load_checkpoint",
    "plot_losses",
    "plot_posterior",
    "predict_log_probs",
    "predict_probs",
    "relaxation_bias",
    "relaxation_sweep",
    "run_bias",
    "run_compare",
    "RelaxationBias",
    "RelaxationSweep",
    "run_epoch",
    "save_checkpoint",
    "summarize",
    "to_arviz",
    "update_early_stopping",
    "Validation",
    "validate_data",
    "validation_loss",
    "write_bias",
    "write_compare",
]
