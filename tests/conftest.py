"""Strict test environment: CPU only, rank promotion raises, fixed seeds."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HETPROBIT_FAST", "1")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(scope="session")
def make_classifier():
    """Factory of the small test network used by the inference tests.

    `make_classifier(key, num_features=4, hidden=6, num_classes=3, width=12, **head_kwargs)`
    returns `models.Classifier(MLP(num_features, hidden, width, depth=1),
    HeteroscedasticHead(hidden, num_classes, **head_kwargs))` built from `key`.
    """
    from models import MLP, Classifier, HeteroscedasticHead

    def make(key, *, num_features=4, hidden=6, num_classes=3, width=12, **head_kwargs):
        k1, k2 = jax.random.split(key)
        return Classifier(
            MLP(num_features, hidden, width=width, depth=1, key=k1),
            HeteroscedasticHead(hidden, num_classes, key=k2, **head_kwargs),
        )

    return make
