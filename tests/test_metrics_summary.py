"""hetprobit.metrics.summary and the package surface: the summaries equal the individual
metrics (whose references are in the per-module tests), and every public name is
importable from `hetprobit.metrics` and `hetprobit`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import average_precision_score, log_loss

import hetprobit as hp
from hetprobit import metrics as M
from tests.reference import ref_ece, softmax_case, tied_probs, top_k_hits_by_sorting

PUBLIC = [
    "ReliabilityDiagram", "accuracy", "adaptive_calibration_error", "brier_score",
    "classification_summary", "classwise_calibration_error", "expected_calibration_error",
    "global_average_precision", "mean_average_precision", "multilabel_nll",
    "multilabel_summary", "negative_log_likelihood", "per_class_average_precision",
    "reliability_diagram", "top_k_accuracy",
]  # fmt: skip


def test_public_names_are_importable_from_package_and_core():
    assert sorted(M.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(M, name) is getattr(hp, name)
        assert name in hp.__all__


def test_summary_keys_and_values():
    probs, log_probs, labels = softmax_case(N=200, K=8)
    s = M.classification_summary(probs, labels, log_probs=log_probs)
    assert set(s) == {
        "accuracy", "top5_accuracy", "nll", "brier", "ece", "adaptive_ece", "classwise_ece"
    }  # fmt: skip
    singles = {
        "accuracy": M.accuracy(probs, labels),
        "top5_accuracy": M.top_k_accuracy(probs, labels, 5),
        "nll": M.negative_log_likelihood(log_probs, labels),
        "brier": M.brier_score(probs, labels),
        "ece": M.expected_calibration_error(probs, labels),
        "adaptive_ece": M.adaptive_calibration_error(probs, labels),
        "classwise_ece": M.classwise_calibration_error(probs, labels),
    }
    for key, value in singles.items():
        np.testing.assert_allclose(s[key], value, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s["ece"], ref_ece(probs, labels), atol=1e-6)
    s2 = M.classification_summary(probs, labels)  # log of probs: same NLL here
    np.testing.assert_allclose(s2["nll"], s["nll"], rtol=1e-5)


def test_summary_jit_and_leading_axes():
    probs, _, labels = softmax_case(N=60)
    jitted = jax.jit(M.classification_summary)(jnp.asarray(probs), jnp.asarray(labels))
    pooled = M.classification_summary(probs.reshape(3, 20, -1), labels.reshape(3, 20))
    eager = M.classification_summary(probs, labels)
    for key in eager:
        np.testing.assert_allclose(jitted[key], eager[key], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(pooled[key], eager[key], rtol=1e-5, atol=1e-7)


@settings(max_examples=15, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1), n_rows=st.integers(1, 4))
def test_summaries_are_invariant_to_row_order(seed, n_rows):
    rng = np.random.default_rng(seed)
    probs = tied_probs(rng, 16, 4, n_rows=n_rows)
    labels = rng.integers(0, 4, size=16)
    ml_labels = (probs > rng.uniform(size=probs.shape)).astype(np.int32)
    ml_labels[0, 0] = 1
    perm = rng.permutation(16)
    for f, y in ((M.classification_summary, labels), (M.multilabel_summary, ml_labels)):
        a, b = f(probs, y), f(probs[perm], y[perm])
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-6)


def test_multilabel_summary_matches_sklearn():
    rng = np.random.default_rng(4)
    z = rng.normal(scale=3.0, size=(50, 4)).astype(np.float32)
    y = (rng.uniform(size=(50, 4)) < 0.4).astype(np.int32)
    p = np.asarray(jax.nn.sigmoid(z))
    s = M.multilabel_summary(p, y)
    p64 = p.astype(np.float64)
    np.testing.assert_allclose(s["nll"], 4 * log_loss(y.ravel(), p64.ravel()), rtol=1e-4)
    np.testing.assert_allclose(s["gap"], average_precision_score(y.ravel(), p64.ravel()), atol=1e-6)
    per = [average_precision_score(y[:, c], p64[:, c]) for c in range(4)]
    np.testing.assert_allclose(s["map"], np.mean(per), atol=1e-6)


def test_bad_inputs_raise_naming_the_argument():
    probs, log_probs, labels = softmax_case(N=10, K=3)
    with pytest.raises(ValueError, match="log_probs.*shape"):
        M.classification_summary(probs, labels, log_probs=log_probs[:, :2])
    with pytest.raises(ValueError, match="top_k.*>= 1"):
        M.classification_summary(probs, labels, top_k=0)
    with pytest.raises(ValueError, match="log_probs.*shape"):
        M.multilabel_summary(probs, (probs > 0.3).astype(int), log_probs=log_probs[:, :2])


@settings(max_examples=12, deadline=None, database=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    K=st.sampled_from([3, 2000]),
    scale=st.sampled_from([1e-3, 1.0, 1e2, 1e4]),
)
def test_summary_is_finite_and_follows_the_tie_rule_for_extreme_logits(seed, K, scale):
    # |logits| up to 1e4: softmax saturates to exact 0/1 ties; every metric stays finite,
    # in range, and the hits follow the tie rule (reference: NumPy stable argsort).
    rng = np.random.default_rng(seed)
    logits = (scale * rng.normal(size=(8, K))).astype(np.float32)
    labels = rng.integers(0, K, size=8)
    probs, log_probs = jax.nn.softmax(logits), jax.nn.log_softmax(logits)
    s = M.classification_summary(probs, labels, log_probs=log_probs)
    for key, value in s.items():
        assert np.isfinite(float(value)), key
    for key in ("accuracy", "top5_accuracy", "ece", "adaptive_ece", "classwise_ece"):
        assert 0.0 <= float(s[key]) <= 1.0, key
    for k, key in ((1, "accuracy"), (5, "top5_accuracy")):
        ref = top_k_hits_by_sorting(np.asarray(probs), labels, k).mean()
        np.testing.assert_allclose(s[key], ref, atol=1e-7)
