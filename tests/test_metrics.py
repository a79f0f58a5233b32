"""Metrics against scikit-learn and straightforward NumPy loop references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    log_loss,
    top_k_accuracy_score,
)

from hetprobit import metrics as M


def _case(seed=0, N=500, K=7, scale=2.0):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.normal(size=(N, K))).astype(np.float32)
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    probs = np.asarray(jax.nn.softmax(logits, axis=-1))
    # labels correlated with the logits so metrics are not trivial
    labels = np.array([rng.choice(K, p=p / p.sum()) for p in probs.astype(np.float64)])
    return probs, log_probs, labels


# ----------------------------------------------------------------------- NumPy references


def _ref_bin(v, n_bins):
    """Right-closed equal-width bins, 0 -> bin 0, by explicit comparison with the edges."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    for b in range(n_bins):
        if (v > edges[b] or b == 0) and v <= edges[b + 1]:
            return b
    raise AssertionError(v)


def _ref_ece_from(conf, hit, bins, n_bins):
    total = 0.0
    for b in range(n_bins):
        members = [i for i in range(len(conf)) if bins[i] == b]
        if members:
            acc = np.mean([hit[i] for i in members])
            cf = np.mean([conf[i] for i in members])
            total += len(members) / len(conf) * abs(acc - cf)
    return total


def ref_ece(probs, labels, n_bins=15):
    probs = probs.astype(np.float64)
    conf = probs.max(1)
    hit = (probs.argmax(1) == labels).astype(float)
    return _ref_ece_from(conf, hit, [_ref_bin(c, n_bins) for c in conf], n_bins)


def ref_adaptive_ece(probs, labels, n_bins=15):
    probs = probs.astype(np.float64)
    conf = probs.max(1)
    hit = (probs.argmax(1) == labels).astype(float)
    n = len(conf)
    bins = np.empty(n, int)
    for rank, i in enumerate(np.argsort(conf, kind="stable")):
        bins[i] = rank * n_bins // n
    return _ref_ece_from(conf, hit, bins, n_bins)


def ref_classwise_ece(probs, labels, n_bins=15):
    probs = probs.astype(np.float64)
    K = probs.shape[1]
    total = 0.0
    for k in range(K):
        conf = probs[:, k]
        hit = (labels == k).astype(float)
        total += _ref_ece_from(conf, hit, [_ref_bin(c, n_bins) for c in conf], n_bins)
    return total / K


# --------------------------------------------------------------------------- multiclass


def test_accuracy_topk_nll_brier_match_sklearn():
    probs, log_probs, labels = _case()
    K = probs.shape[1]
    np.testing.assert_allclose(
        M.accuracy(probs, labels), accuracy_score(labels, probs.argmax(1)), atol=1e-7
    )
    for k in (1, 2, 5):
        ref = top_k_accuracy_score(labels, probs, k=k, labels=np.arange(K))
        np.testing.assert_allclose(M.top_k_accuracy(probs, labels, k), ref, atol=1e-7)
    p64 = np.exp(log_probs.astype(np.float64))
    ref_nll = log_loss(labels, p64 / p64.sum(1, keepdims=True), labels=np.arange(K))
    np.testing.assert_allclose(M.negative_log_likelihood(log_probs, labels), ref_nll, rtol=1e-5)
    brier = np.mean(np.sum((probs - np.eye(K)[labels]) ** 2, axis=1))
    np.testing.assert_allclose(M.brier_score(probs, labels), brier, rtol=1e-5)


def test_leading_axes_are_pooled_and_jit_works():
    probs, log_probs, labels = _case(N=60)
    p3, y3 = probs.reshape(3, 20, -1), labels.reshape(3, 20)
    np.testing.assert_allclose(
        M.expected_calibration_error(p3, y3), M.expected_calibration_error(probs, labels), atol=1e-7
    )
    jitted = jax.jit(M.classification_summary)(jnp.asarray(probs), jnp.asarray(labels))
    eager = M.classification_summary(probs, labels)
    for key in eager:
        np.testing.assert_allclose(jitted[key], eager[key], rtol=1e-5, atol=1e-7)


def test_nll_is_stable_with_extreme_logits():
    logits = jnp.array([[200.0, -200.0, 0.0], [0.0, 0.0, 0.0]])
    labels = jnp.array([1, 2])
    nll = M.negative_log_likelihood(jax.nn.log_softmax(logits), labels)
    np.testing.assert_allclose(nll, (400.0 + np.log(3.0)) / 2, rtol=1e-6)


@pytest.mark.parametrize("n_bins", [15, 1, 4])
def test_calibration_errors_match_loop_references(n_bins):
    probs, _, labels = _case(seed=n_bins, N=400, K=5, scale=1.5)
    np.testing.assert_allclose(
        M.expected_calibration_error(probs, labels, n_bins), ref_ece(probs, labels, n_bins),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        M.adaptive_calibration_error(probs, labels, n_bins),
        ref_adaptive_ece(probs, labels, n_bins), atol=1e-6,
    )
    np.testing.assert_allclose(
        M.classwise_calibration_error(probs, labels, n_bins),
        ref_classwise_ece(probs, labels, n_bins), atol=1e-6,
    )


def test_ece_on_hand_example_and_bin_edges():
    # conf 0.9 (correct), 0.9 (wrong), 0.6 (correct): bins (13/15,14/15] and (8/15,9/15]
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]], np.float32)
    labels = np.array([0, 1, 1])
    expected = 2 / 3 * abs(0.5 - 0.9) + 1 / 3 * abs(1.0 - 0.6)
    np.testing.assert_allclose(M.expected_calibration_error(probs, labels), expected, atol=1e-6)
    # A confidence exactly on an edge goes to the lower (right-closed) bin; 0 to bin 0.
    rd = M.reliability_diagram(np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([0, 0]), n_bins=2)
    np.testing.assert_array_equal(rd.count, [1.0, 1.0])
    np.testing.assert_allclose(M.classwise_calibration_error(
        np.array([[1.0, 0.0]]), np.array([0]), n_bins=3), 0.0, atol=1e-7)


def test_reliability_diagram_consistent_with_ece():
    probs, _, labels = _case(seed=3, N=300)
    rd = M.reliability_diagram(probs, labels)
    assert rd.edges.shape == (16,) and rd.count.shape == (15,)
    assert float(rd.count.sum()) == 300
    nonempty = np.asarray(rd.count) > 0
    assert np.all(np.isnan(np.asarray(rd.accuracy)[~nonempty]))
    ece = np.sum((rd.count / 300 * np.abs(rd.accuracy - rd.confidence))[nonempty])
    np.testing.assert_allclose(ece, M.expected_calibration_error(probs, labels), atol=1e-6)
    c = np.asarray(rd.confidence)[nonempty]
    lo, hi = np.asarray(rd.edges)[:-1][nonempty], np.asarray(rd.edges)[1:][nonempty]
    assert np.all((c >= lo - 1e-6) & (c <= hi + 1e-6))


def test_perfectly_calibrated_population_has_small_ece():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=20000).astype(np.float32)
    labels = np.array([rng.choice(4, p=p / p.sum()) for p in probs.astype(np.float64)])
    assert float(M.expected_calibration_error(probs, labels)) < 0.02
    assert float(M.classwise_calibration_error(probs, labels)) < 0.01


def test_summary_keys_and_values():
    probs, log_probs, labels = _case(N=200, K=8)
    s = M.classification_summary(probs, labels, log_probs=log_probs)
    assert set(s) == {
        "accuracy", "top5_accuracy", "nll", "brier", "ece", "adaptive_ece", "classwise_ece"
    }
    np.testing.assert_allclose(s["nll"], M.negative_log_likelihood(log_probs, labels), rtol=1e-6)
    s2 = M.classification_summary(probs, labels)  # log of probs: same NLL here
    np.testing.assert_allclose(s2["nll"], s["nll"], rtol=1e-5)
    np.testing.assert_allclose(s["ece"], ref_ece(probs, labels), atol=1e-6)


# --------------------------------------------------------------------------- multilabel


def _multilabel_case(seed=0, N=80, C=6, decimals=None):
    rng = np.random.default_rng(seed)
    probs = rng.uniform(size=(N, C)).astype(np.float32)
    labels = (rng.uniform(size=(N, C)) < 0.3 + 0.5 * probs).astype(np.int32)
    if decimals is not None:  # create many exact ties
        probs = np.round(probs, decimals).astype(np.float32)
    return probs, labels


@pytest.mark.parametrize("decimals", [None, 1])
def test_average_precision_matches_sklearn_including_ties(decimals):
    probs, labels = _multilabel_case(decimals=decimals)
    gap_ref = average_precision_score(labels.ravel(), probs.ravel())
    np.testing.assert_allclose(M.global_average_precision(probs, labels), gap_ref, atol=1e-6)
    per_ref = [average_precision_score(labels[:, c], probs[:, c]) for c in range(6)]
    np.testing.assert_allclose(M.per_class_average_precision(probs, labels), per_ref, atol=1e-6)
    np.testing.assert_allclose(M.mean_average_precision(probs, labels), np.mean(per_ref),
                               atol=1e-6)
    np.testing.assert_allclose(M.global_average_precision(probs[:, 0], labels[:, 0]), per_ref[0],
                               atol=1e-6)


def test_average_precision_hand_example():
    # ranking: + - + -  -> AP = (1/1 + 2/3) / 2; all tied -> AP = prevalence
    np.testing.assert_allclose(
        M.global_average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])),
        (1.0 + 2 / 3) / 2, atol=1e-7,
    )
    np.testing.assert_allclose(
        M.global_average_precision(np.full(4, 0.5), np.array([1, 0, 1, 0])), 0.5, atol=1e-7
    )


def test_map_skips_classes_without_positives():
    probs, labels = _multilabel_case(seed=2)
    labels[:, 2] = 0
    ap = np.asarray(M.per_class_average_precision(probs, labels))
    assert np.isnan(ap[2]) and np.all(np.isfinite(np.delete(ap, 2)))
    keep = [c for c in range(6) if c != 2]
    ref = np.mean([average_precision_score(labels[:, c], probs[:, c]) for c in keep])
    np.testing.assert_allclose(M.mean_average_precision(probs, labels), ref, atol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        M.mean_average_precision(probs, np.zeros_like(labels))
    with pytest.raises(ValueError, match="labels"):
        M.global_average_precision(probs, np.zeros_like(labels))


def test_multilabel_nll_matches_sklearn_and_is_stable():
    rng = np.random.default_rng(4)
    z = rng.normal(scale=3.0, size=(50, 4)).astype(np.float32)
    y = (rng.uniform(size=(50, 4)) < 0.4).astype(np.int32)
    p = np.asarray(jax.nn.sigmoid(z)).astype(np.float64)
    ref = 4 * log_loss(y.ravel(), p.ravel(), labels=[0, 1])  # mean over pairs x C
    lp, lc = jax.nn.log_sigmoid(z), jax.nn.log_sigmoid(-z)
    np.testing.assert_allclose(M.multilabel_nll(lp, y, log_complement=lc), ref, rtol=1e-5)
    np.testing.assert_allclose(M.multilabel_nll(lp, y), ref, rtol=1e-4)
    s = M.multilabel_summary(np.asarray(jax.nn.sigmoid(z)), y)
    np.testing.assert_allclose(s["nll"], ref, rtol=1e-4)
    np.testing.assert_allclose(s["gap"], average_precision_score(y.ravel(), p.ravel()),
                               atol=1e-6)
    # extreme logits: finite and exact
    big = jnp.array([[60.0, -60.0]])
    nll = M.multilabel_nll(jax.nn.log_sigmoid(big), jnp.array([[0, 1]]),
                           log_complement=jax.nn.log_sigmoid(-big))
    np.testing.assert_allclose(nll, 120.0, rtol=1e-5)


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_naming_the_argument():
    probs, log_probs, labels = _case(N=10, K=3)
    with pytest.raises(ValueError, match="labels.*shape"):
        M.accuracy(probs, labels[:9])
    with pytest.raises(ValueError, match=r"labels.*found label 3"):
        M.brier_score(probs, np.where(labels == 0, 3, labels))
    with pytest.raises(ValueError, match=r"labels.*found label -1"):
        M.expected_calibration_error(probs, np.full(10, -1))
    bad = probs.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="probs.*non-finite"):
        M.expected_calibration_error(bad, labels)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="log_probs.*non-finite"):
        M.negative_log_likelihood(bad, labels)
    with pytest.raises(ValueError, match="n_bins.*>= 1, got 0"):
        M.expected_calibration_error(probs, labels, n_bins=0)
    with pytest.raises(TypeError, match="n_bins"):
        M.reliability_diagram(probs, labels, n_bins=2.5)
    with pytest.raises(ValueError, match="probs.*empty"):
        M.accuracy(np.zeros((0, 3)), np.zeros((0,), int))
    with pytest.raises(ValueError, match=r"probs.*\[0, 1\].*1\.5"):
        M.brier_score(np.where(probs > 0.5, 1.5, probs), labels)
    with pytest.raises(ValueError, match="k.*>= 1"):
        M.top_k_accuracy(probs, labels, k=0)
    with pytest.raises(ValueError, match="labels.*0/1"):
        M.global_average_precision(probs, np.full(probs.shape, 2))
    with pytest.raises(ValueError, match="labels.*shape"):
        M.mean_average_precision(probs, np.ones((10, 2)))
    with pytest.raises(ValueError, match="log_probs.*shape"):
        M.classification_summary(probs, labels, log_probs=log_probs[:, :2])
