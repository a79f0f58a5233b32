"""hetprobit.metrics.ranking: gAP, per-class AP and mAP against sklearn's
`average_precision_score` (ties included) and hand-computed rankings."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import average_precision_score

from hetprobit.metrics import ranking as R

SETTINGS = settings(max_examples=20, deadline=None, database=None)


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
    np.testing.assert_allclose(R.global_average_precision(probs, labels), gap_ref, atol=1e-6)
    per_ref = [average_precision_score(labels[:, c], probs[:, c]) for c in range(6)]
    np.testing.assert_allclose(R.per_class_average_precision(probs, labels), per_ref, atol=1e-6)
    np.testing.assert_allclose(R.mean_average_precision(probs, labels), np.mean(per_ref), atol=1e-6)
    np.testing.assert_allclose(
        R.global_average_precision(probs[:, 0], labels[:, 0]), per_ref[0], atol=1e-6
    )


def test_average_precision_hand_example():
    # ranking: + - + -  -> AP = (1/1 + 2/3) / 2; all tied -> AP = prevalence
    np.testing.assert_allclose(
        R.global_average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])),
        (1.0 + 2 / 3) / 2,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        R.global_average_precision(np.full(4, 0.5), np.array([1, 0, 1, 0])), 0.5, atol=1e-7
    )


def test_map_skips_classes_without_positives():
    probs, labels = _multilabel_case(seed=2)
    labels[:, 2] = 0
    ap = np.asarray(R.per_class_average_precision(probs, labels))
    assert np.isnan(ap[2]) and np.all(np.isfinite(np.delete(ap, 2)))
    keep = [c for c in range(6) if c != 2]
    ref = np.mean([average_precision_score(labels[:, c], probs[:, c]) for c in keep])
    np.testing.assert_allclose(R.mean_average_precision(probs, labels), ref, atol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        R.mean_average_precision(probs, np.zeros_like(labels))
    with pytest.raises(ValueError, match="labels"):
        R.global_average_precision(probs, np.zeros_like(labels))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), N=st.sampled_from([5, 20]), n_values=st.integers(1, 4))
def test_average_precision_is_invariant_to_row_order_with_ties(seed, N, n_values):
    rng = np.random.default_rng(seed)
    levels = np.linspace(0.0, 1.0, n_values + 1, dtype=np.float32)
    probs = rng.choice(levels, size=(N, 3)).astype(np.float32)
    labels = (rng.uniform(size=(N, 3)) < 0.5).astype(np.int32)
    labels[0, 0] = 1  # at least one positive
    perm = rng.permutation(N)
    for f in (
        R.global_average_precision,
        R.per_class_average_precision,
        R.mean_average_precision,
    ):
        np.testing.assert_allclose(f(probs[perm], labels[perm]), f(probs, labels), atol=1e-6)
    ref = average_precision_score(labels.ravel(), probs.ravel())
    np.testing.assert_allclose(R.global_average_precision(probs, labels), ref, atol=1e-6)


def test_jit_matches_eager():
    probs, labels = _multilabel_case(N=30)
    np.testing.assert_allclose(
        jax.jit(R.per_class_average_precision)(probs, labels),
        R.per_class_average_precision(probs, labels),
        atol=1e-7,
    )


def test_bad_inputs_raise_naming_the_argument():
    probs, labels = _multilabel_case(N=10, C=3)
    with pytest.raises(ValueError, match="labels.*0/1"):
        R.global_average_precision(probs, np.full(probs.shape, 2))
    with pytest.raises(ValueError, match="labels.*shape"):
        R.mean_average_precision(probs, np.ones((10, 2)))
    bad = probs.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="probs.*non-finite"):
        R.per_class_average_precision(bad, labels)
