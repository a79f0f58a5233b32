"""Strict test environment: CPU only, rank promotion raises, fixed seeds."""

import contextlib
import os
import shutil
import tempfile

from tests.environment import use_fast_compiles

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HETPROBIT_FAST", "1")
use_fast_compiles()  # XLA flags: tests/environment.py

# One persistent XLA compilation cache per test run, shared by the xdist workers, the notebook
# kernels and the subprocess tests (they inherit the environment): identical programs compiled
# in two processes, or rebuilt from a fresh closure, compile once. Removed at the end. (JAX does
# not share a program holding a host callback, e.g. an `eqx.error_if` check: its key holds a
# per-process pointer.)
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="hetprobit-xla-")
    os.environ["HETPROBIT_XLA_CACHE_OWNER"] = str(os.getpid())
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture
def count_traces():
    """`with count_traces() as traces: ...`: `traces` lists one entry per jaxpr trace (a jit
    cache miss) inside the block, via the public `jax.monitoring` duration events."""

    @contextlib.contextmanager
    def counter():
        traces = []

        def listener(event, duration, **_):
            if event == "/jax/core/compile/jaxpr_trace_duration":
                traces.append(duration)

        jax.monitoring.register_event_duration_secs_listener(listener)
        try:
            yield traces
        finally:
            jax.monitoring.unregister_event_duration_listener(listener)

    return counter


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


# Longest first: with `pytest -n 2` the workers take tests in collection order, so a long
# test collected last (a notebook, a statistical fit) leaves the other worker idle at the end.
_LONG = (
    "notebooks/",
    "test_models_choice_fit.py::test_probit_nesting",
    "test_models_choice_lattice.py",
    "test_readme.py",
    "test_inference_choice_bayes.py",
    "test_inference_parallel.py",
    "test_sharded.py::test_class_sharded_equals_unsharded",
    "test_models_probit.py",
    "test_properties_core.py",
    "test_inference_distributed.py",
)


def pytest_collection_modifyitems(config, items):
    """Run the known long tests (and the notebooks) first, in a fixed order (stable sort:
    every xdist worker collects the same order)."""
    items.sort(key=lambda item: not any(key in item.nodeid for key in _LONG))


def pytest_unconfigure(config):
    """The process that made the run's compilation cache removes it."""
    if os.environ.get("HETPROBIT_XLA_CACHE_OWNER") == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
