"""hetprobit.metrics.calibration_error: ECE, adaptive ECE, classwise ECE, reliability diagram.

References: loop implementations of the binning rules in tests/reference.py and closed-form
hand examples (Guo et al. 2017, arXiv:1706.04599; Nixon et al. 2019, arXiv:1904.01685;
Kull et al. 2019, arXiv:1910.12656).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hetprobit.metrics import calibration_error as CE
from tests.reference import (
    ref_adaptive_ece,
    ref_classwise_ece,
    ref_ece,
    softmax_case,
    tied_probs,
)

SETTINGS = settings(max_examples=20, deadline=None, database=None)


@pytest.mark.parametrize("n_bins", [15, 1, 4])
def test_calibration_errors_match_loop_references(n_bins):
    probs, _, labels = softmax_case(seed=n_bins, N=400, K=5, scale=1.5)
    for ours, ref in (
        (CE.expected_calibration_error, ref_ece),
        (CE.adaptive_calibration_error, ref_adaptive_ece),
        (CE.classwise_calibration_error, ref_classwise_ece),
    ):
        np.testing.assert_allclose(
            ours(probs, labels, n_bins), ref(probs, labels, n_bins), atol=1e-6
        )


def test_adaptive_ece_of_tied_calibrated_rows_is_zero_issue_example():
    # issue 9.4: 10 rows at confidence 0.7, 7 correct, gave 0.36 or 0.24 by row order
    # (n_bins=5) and 0.42 for n_bins=15 (one row per bin). The tie group is one bin:
    # ACE = |7 - 10 * 0.7| / 10 = 0; measured 9.5367e-8 in float32 (0.7 rounds to
    # 0.699999988, the float32 sum is 6.99999905) and 8.9e-17 in float64.
    probs = np.tile(np.array([[0.7, 0.3]], np.float32), (10, 1))
    labels = np.array([0] * 7 + [1] * 3)
    rng = np.random.default_rng(0)
    for n_bins in (1, 3, 4, 5, 15):
        values = {
            float(CE.adaptive_calibration_error(probs, labels[rng.permutation(10)], n_bins))
            for _ in range(5)
        }
        assert len(values) == 1
        np.testing.assert_allclose(values.pop(), 0.0, atol=2e-7)
    with jax.enable_x64(True):
        probs64 = np.tile(np.array([[0.7, 0.3]], np.float64), (10, 1))
        ace64 = CE.adaptive_calibration_error(probs64, labels, n_bins=5)
        np.testing.assert_allclose(ace64, 0.0, atol=1e-15)


def test_equal_mass_bins_keep_ties_together():
    # confidences 0.6 x 3, 0.8 x 3 with n_bins = 3 (N/B = 2): min ranks 0 and 3 ->
    # bins 0 and 1; bin 2 stays empty. A rank-based split would mix the two groups.
    probs = np.array([[0.6, 0.4]] * 3 + [[0.8, 0.2]] * 3, np.float32)
    labels = np.array([0, 0, 1, 0, 0, 0])
    expected = (abs(2 - 3 * 0.6) + abs(3 - 3 * 0.8)) / 6
    np.testing.assert_allclose(CE.adaptive_calibration_error(probs, labels, 3), expected, atol=1e-6)
    np.testing.assert_allclose(ref_adaptive_ece(probs, labels, 3), expected, atol=1e-7)


def test_calibrated_predictor_with_heavy_ties_has_small_adaptive_ece():
    # confidences from {0.5, 0.7, 0.9}, correctness drawn with those probabilities
    rng = np.random.default_rng(3)
    conf = rng.choice([0.5, 0.7, 0.9], size=6000)
    probs = np.stack([conf, 1 - conf], axis=1).astype(np.float32)
    labels = np.where(rng.uniform(size=6000) < conf, 0, 1)
    assert float(CE.adaptive_calibration_error(probs, labels)) < 0.02
    assert float(CE.expected_calibration_error(probs, labels)) < 0.02


def test_ece_on_hand_example_and_bin_edges():
    # conf 0.9 (correct), 0.9 (wrong), 0.6 (correct): bins (13/15,14/15] and (8/15,9/15]
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]], np.float32)
    labels = np.array([0, 1, 1])
    expected = 2 / 3 * abs(0.5 - 0.9) + 1 / 3 * abs(1.0 - 0.6)
    np.testing.assert_allclose(CE.expected_calibration_error(probs, labels), expected, atol=1e-6)
    # A confidence exactly on an edge goes to the lower (right-closed) bin; 0 to bin 0.
    rd = CE.reliability_diagram(np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([0, 0]), n_bins=2)
    np.testing.assert_array_equal(rd.count, [1.0, 1.0])
    np.testing.assert_allclose(
        CE.classwise_calibration_error(np.array([[1.0, 0.0]]), np.array([0]), n_bins=3),
        0.0,
        atol=1e-7,
    )


def test_top_label_hit_uses_the_tie_rule():
    # p = [0.5, 0.5]: the top label is class 0 (lowest index), as `accuracy`
    probs = np.array([[0.5, 0.5], [0.5, 0.5]], np.float32)
    rd = CE.reliability_diagram(probs, np.array([0, 1]), n_bins=2)
    np.testing.assert_allclose(rd.accuracy[0], 0.5)
    np.testing.assert_allclose(CE.expected_calibration_error(probs, np.array([1, 1])), 0.5)


def test_reliability_diagram_consistent_with_ece():
    probs, _, labels = softmax_case(seed=3, N=300)
    rd = CE.reliability_diagram(probs, labels)
    assert rd.edges.shape == (16,) and rd.count.shape == (15,)
    assert float(rd.count.sum()) == 300
    nonempty = np.asarray(rd.count) > 0
    assert np.all(np.isnan(np.asarray(rd.accuracy)[~nonempty]))
    ece = np.sum((rd.count / 300 * np.abs(rd.accuracy - rd.confidence))[nonempty])
    np.testing.assert_allclose(ece, CE.expected_calibration_error(probs, labels), atol=1e-6)
    c = np.asarray(rd.confidence)[nonempty]
    lo, hi = np.asarray(rd.edges)[:-1][nonempty], np.asarray(rd.edges)[1:][nonempty]
    assert np.all((c >= lo - 1e-6) & (c <= hi + 1e-6))


def test_perfectly_calibrated_population_has_small_ece():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=20000).astype(np.float32)
    labels = np.array([rng.choice(4, p=p / p.sum()) for p in probs.astype(np.float64)])
    assert float(CE.expected_calibration_error(probs, labels)) < 0.02
    assert float(CE.classwise_calibration_error(probs, labels)) < 0.01


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    N=st.sampled_from([7, 24]),
    n_rows=st.integers(1, 4),
    n_bins=st.sampled_from([3, 15]),
)
def test_calibration_errors_are_invariant_to_row_order(seed, N, n_rows, n_bins):
    rng = np.random.default_rng(seed)
    probs = tied_probs(rng, N, 4, n_rows=n_rows)
    labels = rng.integers(0, 4, size=N)
    perm = rng.permutation(N)
    for f, ref in (
        (CE.expected_calibration_error, ref_ece),
        (CE.adaptive_calibration_error, ref_adaptive_ece),
        (CE.classwise_calibration_error, ref_classwise_ece),
    ):
        value = f(probs, labels, n_bins)
        np.testing.assert_allclose(f(probs[perm], labels[perm], n_bins), value, atol=1e-6)
        np.testing.assert_allclose(value, ref(probs, labels, n_bins), atol=1e-6)
    rd, rd_perm = (
        CE.reliability_diagram(probs, labels, n_bins),
        CE.reliability_diagram(probs[perm], labels[perm], n_bins),
    )
    for a, b in zip(rd, rd_perm, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-6)


def test_leading_axes_are_pooled_and_jit_works():
    probs, _, labels = softmax_case(N=60)
    p3, y3 = probs.reshape(3, 20, -1), labels.reshape(3, 20)
    for f in (CE.expected_calibration_error, CE.adaptive_calibration_error):
        np.testing.assert_allclose(f(p3, y3), f(probs, labels), atol=1e-7)
        jitted = jax.jit(f, static_argnames="n_bins")(jnp.asarray(probs), jnp.asarray(labels))
        np.testing.assert_allclose(jitted, f(probs, labels), atol=1e-7)


def test_bad_inputs_raise_naming_the_argument():
    probs, _, labels = softmax_case(N=10, K=3)
    with pytest.raises(ValueError, match=r"labels.*found label -1"):
        CE.expected_calibration_error(probs, np.full(10, -1))
    bad = probs.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="probs.*non-finite"):
        CE.adaptive_calibration_error(bad, labels)
    with pytest.raises(ValueError, match="n_bins.*>= 1, got 0"):
        CE.expected_calibration_error(probs, labels, n_bins=0)
    with pytest.raises(TypeError, match="n_bins"):
        CE.reliability_diagram(probs, labels, n_bins=2.5)
    with pytest.raises(ValueError, match=r"probs.*\[0, 1\]"):
        CE.classwise_calibration_error(probs - 0.5, labels)
