"""hetprobit: heteroscedastic multinomial probit classification in JAX and NumPyro.

The core package: pure JAX functions for noise structures, tempered Monte Carlo
likelihoods, exact probit probabilities, the Taylor approximation, metrics and losses.
"""

from .calibration import (
    CALIBRATION_LOSSES as CALIBRATION_LOSSES,
    apply_temperature_scaling as apply_temperature_scaling,
    cross_entropy as cross_entropy,
    fit_temperature_scaling as fit_temperature_scaling,
    flsd53_loss as flsd53_loss,
    focal_loss as focal_loss,
    label_smoothing_loss as label_smoothing_loss,
    mbls_loss as mbls_loss,
    mbls_penalty as mbls_penalty,
)
from .distributions import (
    HeteroscedasticChoice as HeteroscedasticChoice,
    HeteroscedasticIndicators as HeteroscedasticIndicators,
)
from .estimator import LIKELIHOODS as LIKELIHOODS, Likelihood as Likelihood
from .exact import (
    MAX_EXACT_CLASSES as MAX_EXACT_CLASSES,
    bivariate_normal_cdf as bivariate_normal_cdf,
    exact_choice_log_probs as exact_choice_log_probs,
    exact_choice_probs as exact_choice_probs,
    exact_indicator_log_probs as exact_indicator_log_probs,
    exact_indicator_probs as exact_indicator_probs,
    mvn_cdf as mvn_cdf,
    mvn_log_cdf as mvn_log_cdf,
)
from .information import (
    MutualInformationEstimate as MutualInformationEstimate,
    mutual_information_estimate as mutual_information_estimate,
)
from .likelihood import (
    default_chunk_size as default_chunk_size,
    tempered_sigmoid_log_likelihood as tempered_sigmoid_log_likelihood,
    tempered_sigmoid_log_probs as tempered_sigmoid_log_probs,
    tempered_softmax_log_likelihood as tempered_softmax_log_likelihood,
    tempered_softmax_log_probs as tempered_softmax_log_probs,
)
from .metrics import (
    ReliabilityDiagram as ReliabilityDiagram,
    accuracy as accuracy,
    adaptive_calibration_error as adaptive_calibration_error,
    brier_score as brier_score,
    classification_summary as classification_summary,
    classwise_calibration_error as classwise_calibration_error,
    expected_calibration_error as expected_calibration_error,
    global_average_precision as global_average_precision,
    mean_average_precision as mean_average_precision,
    multilabel_nll as multilabel_nll,
    multilabel_summary as multilabel_summary,
    negative_log_likelihood as negative_log_likelihood,
    per_class_average_precision as per_class_average_precision,
    reliability_diagram as reliability_diagram,
    top_k_accuracy as top_k_accuracy,
)
from .montecarlo import MonteCarlo as MonteCarlo
from .noise import (
    NOISE_STRUCTURES as NOISE_STRUCTURES,
    DiagonalNoise as DiagonalNoise,
    FullNoise as FullNoise,
    HetXLNoise as HetXLNoise,
    Homoscedastic as Homoscedastic,
    LowRankNoise as LowRankNoise,
    NoiseFamily as NoiseFamily,
    NoiseStructure as NoiseStructure,
    ParameterEfficientNoise as ParameterEfficientNoise,
    get_noise_family as get_noise_family,
    positive_scale as positive_scale,
    register_noise_family as register_noise_family,
)
from .probit import (
    probit_log_likelihood as probit_log_likelihood,
    probit_log_probs as probit_log_probs,
    probit_quadrature_error as probit_quadrature_error,
)
from .sampling import SAMPLERS as SAMPLERS, standard_normal_draws as standard_normal_draws
from .taylor import (
    taylor_sigmoid_probs as taylor_sigmoid_probs,
    taylor_softmax_log_probs as taylor_softmax_log_probs,
    taylor_softmax_probs as taylor_softmax_probs,
)

__version__ = "0.1.0"

__all__ = [
    "accuracy",
    "adaptive_calibration_error",
    "apply_temperature_scaling",
    "bivariate_normal_cdf",
    "brier_score",
    "CALIBRATION_LOSSES",
    "classification_summary",
    "classwise_calibration_error",
    "cross_entropy",
    "default_chunk_size",
    "DiagonalNoise",
    "exact_choice_log_probs",
    "exact_choice_probs",
    "exact_indicator_log_probs",
    "exact_indicator_probs",
    "expected_calibration_error",
    "fit_temperature_scaling",
    "flsd53_loss",
    "FullNoise",
    "focal_loss",
    "get_noise_family",
    "global_average_precision",
    "HetXLNoise",
    "HeteroscedasticChoice",
    "HeteroscedasticIndicators",
    "Homoscedastic",
    "label_smoothing_loss",
    "Likelihood",
    "LIKELIHOODS",
    "LowRankNoise",
    "MAX_EXACT_CLASSES",
    "mbls_loss",
    "mbls_penalty",
    "mean_average_precision",
    "MonteCarlo",
    "multilabel_nll",
    "multilabel_summary",
    "mutual_information_estimate",
    "MutualInformationEstimate",
    "mvn_cdf",
    "mvn_log_cdf",
    "negative_log_likelihood",
    "NOISE_STRUCTURES",
    "NoiseStructure",
    "NoiseFamily",
    "ParameterEfficientNoise",
    "per_class_average_precision",
    "positive_scale",
    "probit_log_likelihood",
    "probit_log_probs",
    "probit_quadrature_error",
    "reliability_diagram",
    "register_noise_family",
    "ReliabilityDiagram",
    "SAMPLERS",
    "standard_normal_draws",
    "taylor_sigmoid_probs",
    "taylor_softmax_log_probs",
    "taylor_softmax_probs",
    "tempered_sigmoid_log_likelihood",
    "tempered_sigmoid_log_probs",
    "tempered_softmax_log_likelihood",
    "tempered_softmax_log_probs",
    "top_k_accuracy",
]
