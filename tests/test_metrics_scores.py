"""hetprobit.metrics.scores: accuracy / top-k (tie rule), NLL, Brier, multilabel NLL.

References: scikit-learn (`accuracy_score`, `top_k_accuracy_score`, `log_loss`), NumPy
sorting (`argsort(-p, kind="stable")`) and closed forms.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from sklearn.metrics import accuracy_score, log_loss, top_k_accuracy_score

from hetprobit.metrics import scores as S
from tests.reference import softmax_case, tied_probs, top_k_hits_by_sorting

SETTINGS = settings(max_examples=25, deadline=None, database=None)
# A few fixed shapes (jit compiles once per shape); the data vary with the seed.
SIZES = st.sampled_from([7, 24])


def test_accuracy_topk_nll_brier_match_sklearn():
    probs, log_probs, labels = softmax_case()
    K = probs.shape[1]
    np.testing.assert_allclose(
        S.accuracy(probs, labels), accuracy_score(labels, probs.argmax(1)), atol=1e-7
    )
    for k in (1, 2, 5):
        ref = top_k_accuracy_score(labels, probs, k=k, labels=np.arange(K))
        np.testing.assert_allclose(S.top_k_accuracy(probs, labels, k), ref, atol=1e-7)
    p64 = np.exp(log_probs.astype(np.float64))
    ref_nll = log_loss(labels, p64 / p64.sum(1, keepdims=True), labels=np.arange(K))
    np.testing.assert_allclose(S.negative_log_likelihood(log_probs, labels), ref_nll, rtol=1e-5)
    brier = np.mean(np.sum((probs - np.eye(K)[labels]) ** 2, axis=1))
    np.testing.assert_allclose(S.brier_score(probs, labels), brier, rtol=1e-5)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    N=SIZES,
    K=st.sampled_from([3, 7]),
    k=st.integers(1, 10),
)
def test_top_k_equals_sklearn_on_tie_free_scores(seed, N, K, k):
    rng = np.random.default_rng(seed)
    scores = rng.normal(scale=3.0, size=(N, K)).astype(np.float32)
    assume(all(len(np.unique(row)) == K for row in scores))
    labels = rng.integers(0, K, size=N)
    if k >= K:  # sklearn warns that the score is trivially 1
        assert float(S.top_k_accuracy(scores, labels, k)) == 1.0
        return
    ref = top_k_accuracy_score(labels, scores, k=k, labels=np.arange(K))
    np.testing.assert_allclose(S.top_k_accuracy(scores, labels, k), ref, atol=1e-6)


def test_all_tied_scores_issue_example():
    # issue 9.4: all-tied probabilities gave top-1 = 1.0 while accuracy = 0.25
    probs, labels = np.full((4, 4), 0.25, np.float32), np.arange(4)
    assert float(S.accuracy(probs, labels)) == 0.25  # only label 0 (lowest index) is a hit
    assert float(S.top_k_accuracy(probs, labels, k=1)) == 0.25
    assert float(S.top_k_accuracy(probs, labels, k=2)) == 0.5  # labels 0 and 1
    assert float(S.top_k_accuracy(probs, labels, k=4)) == 1.0
    # the same rule as numpy's argmax (first index wins) and sklearn on mirrored columns
    assert float(S.accuracy(probs, labels)) == accuracy_score(labels, probs.argmax(1))


def test_saturated_softmax_zero_probability_class_is_not_a_top2_hit():
    # issue 9.4: p = [1, 0, 0, 0] with the true class at probability 0 counted as a top-2 hit.
    # The top-2 set is {0, 1} (class 1 wins the tie at 0 by index), so labels 2 and 3 miss.
    probs = np.tile(np.array([[1.0, 0.0, 0.0, 0.0]], np.float32), (4, 1))
    labels = np.arange(4)
    hits = [float(S.top_k_accuracy(probs[i : i + 1], labels[i : i + 1], k=2)) for i in range(4)]
    assert hits == [1.0, 1.0, 0.0, 0.0]
    logits = jnp.array([[300.0, -300.0, -300.0, -300.0]])
    assert float(S.top_k_accuracy(jax.nn.softmax(logits), jnp.array([3]), k=2)) == 0.0


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    N=SIZES,
    K=st.sampled_from([3, 5]),
    n_rows=st.integers(1, 4),
)
def test_tie_rule_on_tied_scores(seed, N, K, n_rows):
    """Rule: r = #{p_j > p_y} + #{j < y: p_j = p_y}; hit iff r < k.

    References: NumPy's stable argsort of -p (ties in index order), and sklearn's
    `top_k_accuracy_score` on the class-mirrored problem (sklearn ranks ties by the
    *highest* index, so mirroring the class order turns its rule into ours).
    """
    rng = np.random.default_rng(seed)
    probs = tied_probs(rng, N, K, n_rows=n_rows)
    labels = rng.integers(0, K, size=N)
    for k in range(1, K + 1):
        ours = float(S.top_k_accuracy(probs, labels, k))
        np.testing.assert_allclose(ours, top_k_hits_by_sorting(probs, labels, k).mean(), atol=1e-6)
        if k < K:  # sklearn warns (and returns 1) for k >= K
            mirror = top_k_accuracy_score(K - 1 - labels, probs[:, ::-1], k=k, labels=np.arange(K))
            np.testing.assert_allclose(ours, mirror, atol=1e-6)
        # exactly min(k, K) classes are hits in every row: ties never add hits
        per_row = [
            sum(float(S.top_k_accuracy(probs[i : i + 1], np.array([c]), k)) for c in range(K))
            for i in range(min(N, 2))
        ]
        np.testing.assert_allclose(per_row, k, atol=1e-6)
    np.testing.assert_allclose(S.accuracy(probs, labels), S.top_k_accuracy(probs, labels, 1))
    np.testing.assert_allclose(S.accuracy(probs, labels), np.mean(probs.argmax(1) == labels))


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    N=SIZES,
    K=st.just(4),
    n_rows=st.integers(1, 4),
)
def test_scores_are_invariant_to_row_order(seed, N, K, n_rows):
    rng = np.random.default_rng(seed)
    probs = tied_probs(rng, N, K, n_rows=n_rows)
    labels = rng.integers(0, K, size=N)
    log_probs = np.log(np.clip(probs, 1e-12, None))
    ml_labels = (probs > rng.uniform(size=probs.shape)).astype(np.int32)
    perm = rng.permutation(N)
    metrics = [
        (S.accuracy, probs, labels),
        (S.top_k_accuracy, probs, labels),
        (lambda p, y: S.top_k_accuracy(p, y, 2), probs, labels),
        (S.negative_log_likelihood, log_probs, labels),
        (S.brier_score, probs, labels),
        (S.multilabel_nll, log_probs, ml_labels),
    ]
    for f, x, y in metrics:
        np.testing.assert_allclose(f(x[perm], y[perm]), f(x, y), rtol=1e-6, atol=1e-6)


def test_nll_is_stable_with_extreme_logits():
    logits = jnp.array([[200.0, -200.0, 0.0], [0.0, 0.0, 0.0]])
    labels = jnp.array([1, 2])
    nll = S.negative_log_likelihood(jax.nn.log_softmax(logits), labels)
    np.testing.assert_allclose(nll, (400.0 + np.log(3.0)) / 2, rtol=1e-6)


def test_multilabel_nll_matches_sklearn_and_is_stable():
    rng = np.random.default_rng(4)
    z = rng.normal(scale=3.0, size=(50, 4)).astype(np.float32)
    y = (rng.uniform(size=(50, 4)) < 0.4).astype(np.int32)
    p = np.asarray(jax.nn.sigmoid(z)).astype(np.float64)
    ref = 4 * log_loss(y.ravel(), p.ravel(), labels=[0, 1])  # mean over pairs x C
    lp, lc = jax.nn.log_sigmoid(z), jax.nn.log_sigmoid(-z)
    np.testing.assert_allclose(S.multilabel_nll(lp, y, log_complement=lc), ref, rtol=1e-5)
    np.testing.assert_allclose(S.multilabel_nll(lp, y), ref, rtol=1e-4)
    big = jnp.array([[60.0, -60.0]])
    nll = S.multilabel_nll(
        jax.nn.log_sigmoid(big), jnp.array([[0, 1]]), log_complement=jax.nn.log_sigmoid(-big)
    )
    np.testing.assert_allclose(nll, 120.0, rtol=1e-5)


def test_jit_matches_eager():
    probs, log_probs, labels = softmax_case(N=40, K=5)
    for f, x in (
        (S.accuracy, probs),
        (S.brier_score, probs),
        (S.negative_log_likelihood, log_probs),
    ):
        np.testing.assert_allclose(jax.jit(f)(jnp.asarray(x), jnp.asarray(labels)), f(x, labels))
    topk = jax.jit(S.top_k_accuracy, static_argnames="k")
    np.testing.assert_allclose(topk(probs, labels, k=3), S.top_k_accuracy(probs, labels, 3))


def test_bad_inputs_raise_naming_the_argument():
    probs, log_probs, labels = softmax_case(N=10, K=3)
    with pytest.raises(ValueError, match="labels.*shape"):
        S.accuracy(probs, labels[:9])
    with pytest.raises(ValueError, match=r"labels.*found label 3"):
        S.brier_score(probs, np.where(labels == 0, 3, labels))
    bad = probs.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="log_probs.*non-finite"):
        S.negative_log_likelihood(bad, labels)
    with pytest.raises(ValueError, match="probs.*empty"):
        S.accuracy(np.zeros((0, 3)), np.zeros((0,), int))
    with pytest.raises(ValueError, match=r"probs.*\[0, 1\].*1\.5"):
        S.brier_score(np.where(probs > 0.5, 1.5, probs), labels)
    with pytest.raises(ValueError, match="k.*>= 1"):
        S.top_k_accuracy(probs, labels, k=0)
    with pytest.raises(ValueError, match="log_complement.*shape"):
        S.multilabel_nll(log_probs, np.zeros(log_probs.shape, int), log_complement=log_probs[:, :2])
