"""models.label_noise: the planted noise process against its own definition, by simulation."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from models.label_noise import confusable_pairs, inject_label_noise, pair_recovery


def _gaussian_classes(n_per_class=400, seed=0):
    # K = 6 classes on a line: means 0, 1, 5, 6.5, 20, 40 -> closest disjoint pairs (0,1), (2,3)
    rng = np.random.default_rng(seed)
    centres = np.array([0.0, 1.0, 5.0, 6.5, 20.0, 40.0])
    y = np.repeat(np.arange(6), n_per_class)
    x = centres[y][:, None] + rng.normal(size=(len(y), 2)) * 0.3
    return x, y


def test_confusable_pairs_are_the_closest_disjoint_means():
    x, y = _gaussian_classes()
    assert confusable_pairs(x, y, num_pairs=2) == ((0, 1), (2, 3))
    assert confusable_pairs(x, y, num_pairs=3) == ((0, 1), (2, 3), (4, 5))


def test_swap_probability_averages_to_rate_and_grows_with_ambiguity():
    x, y = _gaussian_classes()
    noise = inject_label_noise(x, y, rate=0.2, seed=1, pairs=[(0, 1)], sharpness=2.0)
    members = (y == 0) | (y == 1)
    assert noise.swap_probability[members].mean() == pytest.approx(
        0.2, rel=1e-9
    )  # c solved exactly
    assert np.all(noise.swap_probability[~members] == 0)
    # class 0 sits left of class 1: within class 0, larger x_0 + x_1 = closer to class 1 = likelier
    p0, x0 = noise.swap_probability[y == 0], x[y == 0].sum(1)  # means lie on the diagonal
    assert spearmanr(p0, x0).statistic > 0.99  # monotone in the position along the pair
    assert np.all(noise.swap_probability <= 0.5)


def test_swaps_follow_the_stated_probabilities():
    # empirical swap frequency vs the stated probability, binomial 5-sigma bound
    x, y = _gaussian_classes(n_per_class=5000)
    noise = inject_label_noise(x, y, rate=0.15, seed=3, pairs=[(0, 1), (2, 3)])
    p = noise.swap_probability
    se = np.sqrt(np.sum(p * (1 - p)))
    assert abs(noise.swapped.sum() - p.sum()) < 5 * se
    # swapped labels land on the partner, others are untouched
    partner = {0: 1, 1: 0, 2: 3, 3: 2}
    for n in np.flatnonzero(noise.swapped)[:200]:
        assert noise.labels[n] == partner[int(y[n])]
    assert np.array_equal(noise.labels[~noise.swapped], y[~noise.swapped])
    # transition matrix rows are distributions and match the empirical confusion
    T = noise.transition
    np.testing.assert_allclose(T.sum(1), 1.0, atol=1e-12)
    emp = np.mean(noise.labels[y == 2] == 3)
    assert abs(emp - T[2, 3]) < 5 * np.sqrt(T[2, 3] * (1 - T[2, 3]) / np.sum(y == 2))


def test_zero_sharpness_is_input_independent_and_seed_reproducible():
    x, y = _gaussian_classes()
    a = inject_label_noise(x, y, rate=0.1, seed=7, pairs=[(4, 5)], sharpness=0.0)
    np.testing.assert_allclose(a.swap_probability[(y == 4) | (y == 5)], 0.1)
    b = inject_label_noise(x, y, rate=0.1, seed=7, pairs=[(4, 5)], sharpness=0.0)
    assert np.array_equal(a.labels, b.labels)


def test_pair_recovery_scores():
    ranked = [(2, 3), (0, 5), (1, 0), (4, 5)]
    out = pair_recovery(ranked, [(0, 1), (2, 3)])
    assert out["recall_at_P"] == 0.5  # top-2 holds (2,3) but not (0,1)
    assert out["mean_reciprocal_rank"] == pytest.approx((1 / 1 + 1 / 3) / 2)
    assert pair_recovery(ranked, [(3, 2)])["recall_at_P"] == 1.0
    assert pair_recovery(ranked, [(1, 4)])["mean_reciprocal_rank"] == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rate=0.7), "rate"),
        (dict(rate=-0.1), "rate"),
        (dict(rate=0.1, sharpness=-1.0), "sharpness"),
        (dict(rate=0.1, pairs=[(0, 1), (1, 2)]), "pairs"),
        (dict(rate=0.1, pairs=[(0, 9)]), "pairs"),
        (dict(rate=0.1, num_pairs=4), "num_pairs"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    x, y = _gaussian_classes(n_per_class=20)
    with pytest.raises(ValueError, match=match):
        inject_label_noise(x, y, seed=0, **kwargs)
