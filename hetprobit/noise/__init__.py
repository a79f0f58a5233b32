r"""Noise structures: the covariance Sigma(x) of the latent utility u(x) = mu(x) + eps.

One file per structure, each registering itself under one public name (`registry`):

| name | class | Sigma |
|---|---|---|
| "homoscedastic" | `Homoscedastic` | 0 (plain softmax / sigmoid of mu) |
| "diagonal" | `DiagonalNoise` | diag(d^2), d `(..., K)` |
| "low_rank" | `LowRankNoise` | diag(d^2) + V V^T, V `(..., K, R)` |
| "parameter_efficient" | `ParameterEfficientNoise` | diag(d^2) + diag(v) W W^T diag(v), W shared |
| "hetxl" | `HetXLNoise` | W (diag(d_D^2) + V_D V_D^T) W^T, W `(K, D)` shared |
| "full" | `FullNoise` | L L^T, L `(..., K, K)` lower-triangular |

The interface (`NoiseStructure`, in `base`): `transform(z_K, z_R)`, `transform_draws(z)`,
`sample(key, S)`, `covariance()`, `variance()`, `matvec(x)`, `num_classes`, `rank`,
`num_draws`, `batch_shape`.

Registry: `NOISE_STRUCTURES` (live tuple-like view of the names), `get_noise_family(name)`
(a `NoiseFamily`: class, raw outputs with their shapes in K, R, D, builder, rank bound),
`register_noise_family(family)`. Adding a structure = one file here that defines the class
and registers its family, imported below, plus its test `tests/test_noise_<name>.py`.
"""

from .base import (
    DEFAULT_MIN_SCALE as DEFAULT_MIN_SCALE,
    NoiseStructure as NoiseStructure,
    ScaledNoise as ScaledNoise,
    apply_factor as apply_factor,
    diag_embed as diag_embed,
    lift as lift,
    per_draw as per_draw,
    positive_scale as positive_scale,
)
from .registry import (
    NOISE_ALIASES as NOISE_ALIASES,
    NOISE_STRUCTURES as NOISE_STRUCTURES,
    NoiseFamily as NoiseFamily,
    RawOutput as RawOutput,
    get_noise_family as get_noise_family,
    register_noise_family as register_noise_family,
)

# Importing a structure's file registers it; the import order is the order of
# NOISE_STRUCTURES, so it is kept by hand.
# isort: off
from .homoscedastic import Homoscedastic as Homoscedastic
from .diagonal import DiagonalNoise as DiagonalNoise
from .low_rank import LowRankNoise as LowRankNoise
from .parameter_efficient import ParameterEfficientNoise as ParameterEfficientNoise
from .hetxl import HetXLNoise as HetXLNoise
from .full import FullNoise as FullNoise
# isort: on

__all__ = [
    "DEFAULT_MIN_SCALE",
    "DiagonalNoise",
    "FullNoise",
    "HetXLNoise",
    "Homoscedastic",
    "LowRankNoise",
    "NOISE_ALIASES",
    "NOISE_STRUCTURES",
    "NoiseFamily",
    "NoiseStructure",
    "ParameterEfficientNoise",
    "RawOutput",
    "ScaledNoise",
    "get_noise_family",
    "positive_scale",
    "register_noise_family",
]
