"""Predictive metrics from probabilities / log-probabilities and labels (one implementation).

One concept per module:

- `scores`: accuracy, top-k accuracy (and their tie rule), NLL, Brier, multilabel NLL;
- `calibration_error`: ECE, adaptive (equal-mass) ECE, classwise ECE, reliability diagrams;
- `ranking`: multilabel average precision (gAP, per-class AP, mAP);
- `summary`: the main metrics of each kind in one dict.

Every metric is invariant to the order of the examples (rows). All functions are jittable
(`n_bins`, `k` static); value checks run eagerly on concrete inputs.
"""

from .calibration_error import (
    ReliabilityDiagram as ReliabilityDiagram,
    adaptive_calibration_error as adaptive_calibration_error,
    classwise_calibration_error as classwise_calibration_error,
    expected_calibration_error as expected_calibration_error,
    reliability_diagram as reliability_diagram,
)
from .ranking import (
    global_average_precision as global_average_precision,
    mean_average_precision as mean_average_precision,
    per_class_average_precision as per_class_average_precision,
)
from .scores import (
    accuracy as accuracy,
    brier_score as brier_score,
    multilabel_nll as multilabel_nll,
    negative_log_likelihood as negative_log_likelihood,
    top_k_accuracy as top_k_accuracy,
)
from .summary import (
    classification_summary as classification_summary,
    multilabel_summary as multilabel_summary,
)

__all__ = [
    "ReliabilityDiagram",
    "accuracy",
    "adaptive_calibration_error",
    "brier_score",
    "classification_summary",
    "classwise_calibration_error",
    "expected_calibration_error",
    "global_average_precision",
    "mean_average_precision",
    "multilabel_nll",
    "multilabel_summary",
    "negative_log_likelihood",
    "per_class_average_precision",
    "reliability_diagram",
    "top_k_accuracy",
]
