"""Strict test environment: CPU only, rank promotion raises, fixed seeds."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HETPROBIT_FAST", "1")
# The suite is dominated by XLA compilation of small programs: LLVM at -O0 compiles them ~15-20%
# faster (measured on tests/test_exact.py and test_models_head.py); the HLO passes, and so the
# numerics, are unchanged. A user's own XLA_FLAGS setting of the level wins.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

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
