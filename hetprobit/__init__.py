"""hetprobit: heteroscedastic multinomial probit classification in JAX and NumPyro.

The core package: pure JAX functions for noise structures, tempered Monte Carlo
likelihoods, exact probit probabilities, the Taylor approximation, metrics and losses.
"""

from .distributions import (
    HeteroscedasticChoice as HeteroscedasticChoice,
    HeteroscedasticIndicators as HeteroscedasticIndicators,
)
from .likelihood import (
    default_chunk_size as default_chunk_size,
    tempered_sigmoid_log_likelihood as tempered_sigmoid_log_likelihood,
    tempered_sigmoid_log_probs as tempered_sigmoid_log_probs,
    tempered_softmax_log_likelihood as tempered_softmax_log_likelihood,
    tempered_softmax_log_probs as tempered_softmax_log_probs,
)
from .noise import (
    DiagonalNoise as DiagonalNoise,
    Homoscedastic as Homoscedastic,
    LowRankNoise as LowRankNoise,
    NoiseStructure as NoiseStructure,
    ParameterEfficientNoise as ParameterEfficientNoise,
    positive_scale as positive_scale,
)
from .sampling import SAMPLERS as SAMPLERS, standard_normal_draws as standard_normal_draws
from .taylor import (
    taylor_sigmoid_probs as taylor_sigmoid_probs,
    taylor_softmax_log_probs as taylor_softmax_log_probs,
    taylor_softmax_probs as taylor_softmax_probs,
)

__version__ = "0.1.0"

__all__ = [
    "DiagonalNoise",
    "HeteroscedasticChoice",
    "HeteroscedasticIndicators",
    "Homoscedastic",
    "LowRankNoise",
    "NoiseStructure",
    "ParameterEfficientNoise",
    "SAMPLERS",
    "default_chunk_size",
    "positive_scale",
    "standard_normal_draws",
    "tempered_sigmoid_log_likelihood",
    "tempered_sigmoid_log_probs",
    "tempered_softmax_log_likelihood",
    "tempered_softmax_log_probs",
    "taylor_sigmoid_probs",
    "taylor_softmax_log_probs",
    "taylor_softmax_probs",
]
