"""NumPyro generative models with Equinox backbones (depends on `hetprobit`, never `inference`).

- `backbones`: `MLP`, `ResNet` (one example -> representation r(x)).
- `head`: `HeteroscedasticHead`, drop-in for a final `eqx.nn.Linear(D, K)`; its noise
  structures come from the core's registry (`hetprobit.noise`); `COVARIANCE_TYPES` are
  the registry's names.
- `classifier`: `Classifier` (backbone + head) and the NumPyro `classifier_model`.
- `synthetic`: data from the exact generative process with planted class pairs.
- `probit_regression`: multinomial probit for discrete choice; `modechoice` loader.
- `choice_data`, `choice_spec`, `choice_likelihood`, `choice_fit`, `choice_results`,
  `choice_datasets`: logit and probit discrete-choice models (`ChoiceSpec`, `fit_choice`).
- `estimation`: maximum likelihood with BFGS (compiled once per shape), standard errors, LR tests.
- `covariance_analysis`: average Sigma(x) over a data set, top class pairs
  (Collier et al. 2021, Table 4).
"""

from hetprobit.noise import HetXLNoise as HetXLNoise  # re-export: defined in the core

from .backbones import MLP as MLP, ResidualBlock as ResidualBlock, ResNet as ResNet
from .choice_data import ChoiceData as ChoiceData
from .choice_datasets import (
    load_catsup as load_catsup,
    load_fishing as load_fishing,
    load_heating as load_heating,
    load_mode as load_mode,
    load_train as load_train,
    load_travel_mode as load_travel_mode,
    load_travel_mode_aer as load_travel_mode_aer,
    load_yogurt as load_yogurt,
)
from .choice_fit import (
    NonConvergenceWarning as NonConvergenceWarning,
    TemperatureWarning as TemperatureWarning,
    fit_choice as fit_choice,
)
from .choice_io import (
    load_choice_results as load_choice_results,
    save_choice_results as save_choice_results,
)
from .choice_likelihood import ChoiceArrays as ChoiceArrays, ChoiceModel as ChoiceModel
from .choice_results import ChoiceResults as ChoiceResults
from .choice_spec import ChoiceSpec as ChoiceSpec
from .classifier import (
    Classifier as Classifier,
    classifier_model as classifier_model,
    last_layer_prior as last_layer_prior,
)
from .covariance_analysis import (
    ClassPair as ClassPair,
    CovarianceSummary as CovarianceSummary,
    average_covariance as average_covariance,
    centre_covariance as centre_covariance,
    covariance_summary as covariance_summary,
    pair_ranks as pair_ranks,
    top_pairs as top_pairs,
)
from .estimation import (
    Convergence as Convergence,
    LRTest as LRTest,
    MLEstimate as MLEstimate,
    SingularHessianWarning as SingularHessianWarning,
    lr_test as lr_test,
    maximize_likelihood as maximize_likelihood,
)
from .head import COVARIANCE_TYPES as COVARIANCE_TYPES, HeteroscedasticHead as HeteroscedasticHead
from .modechoice import (
    MODECHOICE_ALTERNATIVES as MODECHOICE_ALTERNATIVES,
    ModeChoice as ModeChoice,
    load_modechoice as load_modechoice,
)
from .probit_regression import (
    ProbitFit as ProbitFit,
    ProbitParams as ProbitParams,
    choice_log_likelihood as choice_log_likelihood,
    choice_log_probs as choice_log_probs,
    difference_cholesky as difference_cholesky,
    difference_covariance as difference_covariance,
    fit_probit as fit_probit,
    init_probit_params as init_probit_params,
    params_from_covariance as params_from_covariance,
    simulate_choices as simulate_choices,
    systematic_utilities as systematic_utilities,
    utility_covariance as utility_covariance,
)
from .synthetic import (
    PlantedPair as PlantedPair,
    SyntheticClassification as SyntheticClassification,
    make_synthetic_classification as make_synthetic_classification,
)

__all__ = [
    "ChoiceArrays",
    "ChoiceData",
    "ChoiceModel",
    "ChoiceResults",
    "ChoiceSpec",
    "Convergence",
    "LRTest",
    "MLEstimate",
    "NonConvergenceWarning",
    "SingularHessianWarning",
    "TemperatureWarning",
    "fit_choice",
    "load_catsup",
    "load_choice_results",
    "load_fishing",
    "load_heating",
    "load_mode",
    "load_train",
    "load_travel_mode",
    "load_travel_mode_aer",
    "load_yogurt",
    "lr_test",
    "maximize_likelihood",
    "save_choice_results",
    "COVARIANCE_TYPES",
    "MODECHOICE_ALTERNATIVES",
    "ClassPair",
    "Classifier",
    "CovarianceSummary",
    "HetXLNoise",
    "HeteroscedasticHead",
    "MLP",
    "ModeChoice",
    "PlantedPair",
    "ProbitFit",
    "ProbitParams",
    "ResNet",
    "ResidualBlock",
    "SyntheticClassification",
    "average_covariance",
    "centre_covariance",
    "choice_log_likelihood",
    "choice_log_probs",
    "classifier_model",
    "covariance_summary",
    "difference_cholesky",
    "difference_covariance",
    "fit_probit",
    "init_probit_params",
    "last_layer_prior",
    "load_modechoice",
    "make_synthetic_classification",
    "pair_ranks",
    "params_from_covariance",
    "simulate_choices",
    "systematic_utilities",
    "top_pairs",
    "utility_covariance",
]
