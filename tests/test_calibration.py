"""Calibration losses vs NumPy hand computations (values and gradients); temperature scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax as np_log_softmax

from hetprobit import calibration as C

LOGITS = np.array(
    [[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, -0.3, 3.0], [-2.0, 1.5, 1.0, -0.5]], np.float32
)
LABELS = np.array([0, 2, 1])


# ---------------------------------------------------------------------- NumPy references


def np_ce(x, y):
    return -np_log_softmax(x.astype(np.float64), axis=-1)[np.arange(len(y)), y]


def np_ls(x, y, alpha):
    lp = np_log_softmax(x.astype(np.float64), axis=-1)
    K = x.shape[-1]
    q = (1 - alpha) * np.eye(K)[y] + alpha / K
    return -(q * lp).sum(-1)


def np_focal(x, y, gamma):
    p = np.exp(np_log_softmax(x.astype(np.float64), axis=-1))[np.arange(len(y)), y]
    return -((1 - p) ** gamma) * np.log(p)


def np_mbls(x, y, margin, lam):
    x = x.astype(np.float64)
    gaps = x.max(-1, keepdims=True) - x
    return np_ce(x, y) + lam * np.maximum(0.0, gaps - margin).mean(-1)


def fd_grad(f, x, eps=1e-5):
    """Central finite differences of the sum of f at x (float64)."""
    x = x.astype(np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        g[idx] = (f(x + e).sum() - f(x - e).sum()) / (2 * eps)
    return g


def jax_grad(loss, x, y, **hyper):
    return np.asarray(jax.grad(lambda z: jnp.sum(loss(z, y, **hyper)))(jnp.asarray(x)))


# ------------------------------------------------------------------------------ values


def test_cross_entropy_value_and_analytic_gradient():
    np.testing.assert_allclose(C.cross_entropy(LOGITS, LABELS), np_ce(LOGITS, LABELS), rtol=1e-6)
    p = np.exp(np_log_softmax(LOGITS.astype(np.float64), axis=-1))
    np.testing.assert_allclose(
        jax_grad(C.cross_entropy, LOGITS, LABELS), p - np.eye(4)[LABELS], atol=1e-6
    )


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5])
def test_label_smoothing_value_and_gradient(alpha):
    np.testing.assert_allclose(
        C.label_smoothing_loss(LOGITS, LABELS, alpha=alpha),
        np_ls(LOGITS, LABELS, alpha),
        rtol=1e-6,
    )
    p = np.exp(np_log_softmax(LOGITS.astype(np.float64), axis=-1))
    q = (1 - alpha) * np.eye(4)[LABELS] + alpha / 4
    np.testing.assert_allclose(
        jax_grad(C.label_smoothing_loss, LOGITS, LABELS, alpha=alpha), p - q, atol=1e-6
    )
    if alpha == 0.0:
        np.testing.assert_allclose(
            C.label_smoothing_loss(LOGITS, LABELS, alpha=0.0),
            C.cross_entropy(LOGITS, LABELS),
            rtol=1e-7,
        )


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.5, 5.0])
def test_focal_value_and_gradient(gamma):
    np.testing.assert_allclose(
        C.focal_loss(LOGITS, LABELS, gamma=gamma), np_focal(LOGITS, LABELS, gamma), rtol=1e-5
    )
    fd = fd_grad(lambda x: np_focal(x, LABELS, gamma), LOGITS)
    np.testing.assert_allclose(
        jax_grad(C.focal_loss, LOGITS, LABELS, gamma=gamma), fd, rtol=1e-4, atol=1e-6
    )
    if gamma == 0.0:
        np.testing.assert_allclose(
            C.focal_loss(LOGITS, LABELS, gamma=0.0), C.cross_entropy(LOGITS, LABELS), rtol=1e-6
        )


def test_flsd53_switches_gamma_at_p_02():
    # p_y: example 0 is ~0.05 (< 0.2 -> gamma 5), example 1 ~0.6 (gamma 3)
    logits = np.array([[3.0, 0.0, 0.0], [0.4, 0.0, -1.0]], np.float32)
    labels = np.array([1, 0])
    p_y = np.exp(np_log_softmax(logits.astype(np.float64), -1))[[0, 1], labels]
    assert p_y[0] < 0.2 < p_y[1]
    gammas = np.array([5.0, 3.0])
    expected = np.array(
        [np_focal(logits[i : i + 1], labels[i : i + 1], gammas[i])[0] for i in range(2)]
    )
    np.testing.assert_allclose(C.flsd53_loss(logits, labels), expected, rtol=1e-5)
    fd = np.concatenate(
        [
            fd_grad(lambda x, i=i: np_focal(x, labels[i : i + 1], gammas[i]), logits[i : i + 1])
            for i in range(2)
        ]
    )
    np.testing.assert_allclose(jax_grad(C.flsd53_loss, logits, labels), fd, rtol=1e-4, atol=1e-6)


def test_mbls_value_gradient_and_zero_penalty_within_margin():
    logits = np.array([[12.0, 0.0, 1.0, -3.0], [0.5, 0.0, -0.2, 0.1]], np.float32)
    labels = np.array([1, 3])
    for margin, lam in [(10.0, 0.1), (2.0, 0.5)]:
        np.testing.assert_allclose(
            C.mbls_loss(logits, labels, margin=margin, lam=lam),
            np_mbls(logits, labels, margin, lam),
            rtol=1e-6,
        )
        fd = fd_grad(lambda x, m=margin, a=lam: np_mbls(x, labels, m, a), logits)
        np.testing.assert_allclose(
            jax_grad(C.mbls_loss, logits, labels, margin=margin, lam=lam), fd, atol=1e-5
        )
    # hand value of the penalty for row 0, m = 10: gaps 0, 12, 11, 15 -> (0+2+1+5)/4 = 2
    np.testing.assert_allclose(C.mbls_penalty(logits[:1]), [2.0], rtol=1e-7)
    # row 1: all gaps < 10 -> penalty 0, MbLS = CE (default hyper-parameters)
    np.testing.assert_allclose(C.mbls_penalty(logits), [2.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(
        C.mbls_loss(logits[1:], labels[1:]), C.cross_entropy(logits[1:], labels[1:]), rtol=1e-7
    )


def test_losses_keep_leading_axes_and_registry():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=(2, 3))
    for name, loss in C.CALIBRATION_LOSSES.items():
        out = loss(logits, labels)
        assert out.shape == (2, 3), name
        flat = loss(logits.reshape(6, 5), labels.reshape(6))
        np.testing.assert_allclose(np.asarray(out).ravel(), flat, rtol=1e-6, err_msg=name)
        jitted = jax.jit(loss)(jnp.asarray(logits), jnp.asarray(labels))
        np.testing.assert_allclose(jitted, out, rtol=1e-6, err_msg=name)


def test_extreme_logits_are_finite_with_finite_gradients():
    logits = jnp.array([[300.0, -300.0, 0.0], [-300.0, 300.0, 0.0]])
    labels = jnp.array([0, 0])  # one certain-correct, one certain-wrong
    for name, loss in C.CALIBRATION_LOSSES.items():
        for hyper in ({}, {"gamma": 0.0}) if name == "focal" else ({},):
            v = loss(logits, labels, **hyper)
            g = jax.grad(lambda z, lo=loss, h=hyper: jnp.sum(lo(z, labels, **h)))(logits)
            assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)), (name, hyper)
    np.testing.assert_allclose(C.focal_loss(logits, labels, gamma=2.0)[1], 600.0, rtol=1e-6)


# ------------------------------------------------------------------ temperature scaling


def _nll_np(logits, labels, t):
    return np_ce(logits / t, labels).mean()


def _tempered_data(seed, n, k, t_true, scale=3.0):
    """z ~ N(0, scale^2), y ~ softmax(z / t_true) by the Gumbel-max trick."""
    rng = np.random.default_rng(seed)
    z = (scale * rng.normal(size=(n, k))).astype(np.float32)
    y = np.argmax(z / t_true + rng.gumbel(size=(n, k)), axis=-1)
    return z, y


def test_fit_temperature_scaling_recovers_known_temperature():
    for seed, t_true in [(1, 2.0), (2, 0.5)]:
        z, y = _tempered_data(seed, 20000, 10, t_true)
        t_hat = float(C.fit_temperature_scaling(z, y))
        assert abs(t_hat / t_true - 1) < 0.05, (t_true, t_hat)
        ref = minimize_scalar(
            lambda lt, z=z, y=y: _nll_np(z, y, np.exp(lt)),
            bounds=(-3, 3),
            method="bounded",
            options={"xatol": 1e-8},
        ).x
        assert abs(np.log(t_hat) - ref) < 2e-3, (t_hat, np.exp(ref))


def test_temperature_scaling_lowers_validation_nll_of_overconfident_logits():
    z, y = _tempered_data(3, 20000, 10, 1.0, scale=1.0)
    overconfident = 4.0 * z
    t = C.fit_temperature_scaling(overconfident, y)
    before = C.cross_entropy(overconfident, y).mean()
    after = C.cross_entropy(C.apply_temperature_scaling(overconfident, t), y).mean()
    assert float(t) > 2.0
    assert float(after) < float(before) - 0.1
    # minimum: no other temperature does better
    for s in (0.9, 1.1):
        assert _nll_np(overconfident, y, s * float(t)) >= float(after) - 1e-5


def test_fit_temperature_scaling_separable_data_hits_lower_bound():
    z = np.array([[5.0, 0.0], [0.0, 5.0], [4.0, -1.0]], np.float32)
    y = np.array([0, 1, 0])
    t = float(C.fit_temperature_scaling(z, y, t_min=0.05))
    assert 0.05 <= t < 0.5  # NLL keeps falling as T -> 0; stops once the gradient is ~0
    assert _nll_np(z, y, t) < 1e-5


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_naming_the_argument():
    with pytest.raises(ValueError, match="temperature.*> 0"):
        C.apply_temperature_scaling(LOGITS, 0.0)
    with pytest.raises(ValueError, match="temperature.*> 0"):
        C.apply_temperature_scaling(LOGITS, -1.0)
    with pytest.raises(ValueError, match="labels.*shape"):
        C.cross_entropy(LOGITS, LABELS[:2])
    with pytest.raises(ValueError, match="labels.*found label 4"):
        C.focal_loss(LOGITS, np.array([0, 4, 1]))
    bad = LOGITS.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="logits.*non-finite"):
        C.mbls_loss(bad, LABELS)
    with pytest.raises(ValueError, match="logits.*empty"):
        C.cross_entropy(np.zeros((0, 4)), np.zeros((0,), int))
    with pytest.raises(ValueError, match="alpha"):
        C.label_smoothing_loss(LOGITS, LABELS, alpha=1.5)
    with pytest.raises(ValueError, match="gamma.*>= 0"):
        C.focal_loss(LOGITS, LABELS, gamma=-1.0)
    with pytest.raises(ValueError, match="margin"):
        C.mbls_loss(LOGITS, LABELS, margin=-1.0)
    with pytest.raises(ValueError, match="t_min"):
        C.fit_temperature_scaling(LOGITS, LABELS, t_min=2.0, t_max=1.0)
    with pytest.raises(ValueError, match="init.*> 0"):
        C.fit_temperature_scaling(LOGITS, LABELS, init=0.0)


def test_temperature_scaling_names_are_unambiguous():
    # post-hoc temperature scaling has one name each; the old ambiguous names are gone
    import hetprobit as hp

    assert hp.fit_temperature_scaling is C.fit_temperature_scaling
    assert hp.apply_temperature_scaling is C.apply_temperature_scaling
    for old in ("fit_temperature", "apply_temperature"):
        assert not hasattr(hp, old) and not hasattr(C, old)
