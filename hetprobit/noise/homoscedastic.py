"""`Homoscedastic`: no noise, P(y=c|x) = softmax(mu/tau)_c (registered as "homoscedastic")."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ..validation import check_positive_int
from .base import NoiseStructure
from .registry import NoiseFamily, register_noise_family

__all__ = ["Homoscedastic"]


class Homoscedastic(NoiseStructure):
    """No noise: P(y=c|x) = softmax(mu/tau)_c (the 'homoscedastic Gumbel' softmax model).

    Args:
        num_classes: K >= 1.

    Raises:
        TypeError, ValueError: `num_classes` not an integer >= 1.
    """

    K: int = eqx.field(static=True)

    def __init__(self, num_classes: int):
        self.K = check_positive_int("num_classes", num_classes)

    @property
    def num_classes(self) -> int:
        return self.K

    def transform(self, z_K, z_R=None):
        return jnp.zeros_like(z_K)

    def covariance(self):
        return jnp.zeros((self.K, self.K))

    def variance(self):
        return jnp.zeros((self.K,))

    def matvec(self, x):
        return jnp.zeros_like(x)


def _build(raw, *, num_classes, min_scale):
    return Homoscedastic(num_classes)


register_noise_family(
    NoiseFamily(
        name="homoscedastic",
        structure=Homoscedastic,
        outputs=(),
        build=_build,
        description="no noise: a tempered softmax of mu",
    )
)
