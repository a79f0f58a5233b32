"""Choice likelihoods against numpy references: Gauss-Hermite quadrature for independent probit
noise (in log space, deep tails included: the kind of issue 9 item 8), softmax for the logit,
availability masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import hetprobit
from models import ChoiceData, ChoiceSpec
from models.choice_likelihood import ChoiceModel
from models.choice_results import choice_arrays
from models.choice_spec import design_layout
from models.estimation import evaluate_log_likelihood


def _independent_probit_log_p(V, sd, y, nodes=120):
    """log P(y) for independent N(V_j, sd_j^2) utilities: E_t prod_{j != y} Phi((V_y - V_j +
    sd_y t) / sd_j), Gauss-Hermite in log space."""
    t, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    out = []
    for n in range(len(y)):
        k = y[n]
        z = (V[n, k] - V[n, :, None] + sd[k] * t[None, :]) / sd[:, None]
        lc = special.log_ndtr(z)
        lc[k] = 0.0
        out.append(special.logsumexp(lc.sum(axis=0) + np.log(w)))
    return np.array(out)


@pytest.fixture(scope="module")
def case():
    # 4 choosers, J = 3; x scaled so chooser 3's choice is deep in the tail (log p ~ -50)
    X = np.array([[0.0, 0.5, -0.3], [1.0, 0.0, 0.2], [-0.4, 0.3, 0.1], [-5.0, 5.0, 4.0]])
    data = ChoiceData.from_arrays(
        X[..., None], np.array([0, 1, 2, 0], np.int32), alternatives=("a", "b", "c"),
        attribute_names=("x",),
    )  # fmt: skip
    return data, design_layout(ChoiceSpec(base="a", generic=("x",), asc=False), data)


def test_heteroscedastic_probit_matches_quadrature_including_the_tail(case):
    data, layout = case
    model = ChoiceModel(layout, "probit", "heteroscedastic")
    theta = np.array([1.5, np.log(0.7), np.log(1.3)])  # beta, ln sd_b, ln sd_c
    with jax.enable_x64(True):
        ll = evaluate_log_likelihood(model, theta, choice_arrays(data))
    ref = _independent_probit_log_p(1.5 * data.attributes[..., 0], np.array([1.0, 0.7, 1.3]),
                                    data.chosen)  # fmt: skip
    assert ref[3] < -40  # the deep tail
    np.testing.assert_allclose(ll[:3], ref[:3], rtol=1e-9)
    np.testing.assert_allclose(ll[3], ref[3], rtol=2e-3)  # tail lattice, relative ~1e-3


def test_logit_and_availability(case):
    data, layout = case
    avail = np.ones((4, 3), bool)
    avail[0, 2] = avail[1, 0] = False
    masked = ChoiceData.from_arrays(
        data.attributes, data.chosen, alternatives=data.alternatives,
        attribute_names=data.attribute_names, available=avail,
    )  # fmt: skip
    theta = np.array([0.8])
    V = 0.8 * data.attributes[..., 0]
    Vm = np.where(avail, V, -np.inf)
    ref = Vm[np.arange(4), data.chosen] - special.logsumexp(Vm, axis=1)
    with jax.enable_x64(True):
        arrays = choice_arrays(masked)
        logit = ChoiceModel(layout, "logit")
        np.testing.assert_allclose(evaluate_log_likelihood(logit, theta, arrays), ref, rtol=1e-12)
        # probit iid: an unavailable alternative has probability 0 and the others are the
        # J = 2 closed form Phi((V_k - V_j) / sqrt 2)
        probit = ChoiceModel(layout, "probit", "iid")
        lp = np.asarray(probit.log_probs(jnp.asarray(theta), arrays))
    assert lp[0, 2] == -np.inf and lp[1, 0] == -np.inf
    np.testing.assert_allclose(lp[0, 0], special.log_ndtr((V[0, 0] - V[0, 1]) / np.sqrt(2)),
                               rtol=1e-10)  # fmt: skip
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0, atol=1e-10)


def test_full_covariance_probabilities_match_scipy_mvn(case):
    from scipy.stats import multivariate_normal

    data, layout = case
    model = ChoiceModel(layout, "probit", "full")
    theta = np.array([0.9, 0.4, np.log(1.2)])  # beta, L_10, ln L_11
    L = np.array([[1.0, 0.0], [0.4, 1.2]])
    Omega = L @ L.T  # Cov(eps_b - eps_a, eps_c - eps_a)
    with jax.enable_x64(True):
        lp = np.asarray(model.log_probs(jnp.asarray(theta), choice_arrays(data)))
        np.testing.assert_allclose(model.difference_covariance(jnp.asarray(theta)), Omega,
                                   rtol=1e-12)  # fmt: skip
    V = 0.9 * data.attributes[..., 0]
    for n in range(3):
        # P(a) = P(d_b < -(V_b - V_a), d_c < -(V_c - V_a)), d ~ N(0, Omega)
        upper = -(V[n, 1:] - V[n, 0])
        p_a = multivariate_normal(np.zeros(2), Omega).cdf(upper)
        assert np.exp(lp[n, 0]) == pytest.approx(p_a, rel=1e-5)


def test_order_condition_and_names(case):
    data, layout = case
    with pytest.raises(ValueError, match="rank"):
        ChoiceModel(layout, "probit", "factor", rank=2)
    m = ChoiceModel(layout, "probit", "full")
    assert m.noise_names == ("chol_c_b", "ln_chol_c")
    assert ChoiceModel(layout, "probit", "heteroscedastic").noise_names == ("ln_sd_b", "ln_sd_c")
    assert ChoiceModel(layout, "probit", "factor", rank=1).noise_names == ("load_b_0", "load_c_0")


@pytest.fixture(scope="module")
def travel():
    from models import load_travel_mode

    data = load_travel_mode()
    spec = ChoiceSpec(base="car", generic=("gc", "ttme"), individual={"hinc": ("air",)})
    return data, design_layout(spec, data)


# travel-mode coefficients near the iid probit estimate (asc air/train/bus, gc, ttme, hinc_air)
BETA = np.array([3.0, 2.0, 1.4, -0.012, -0.07, 0.008])


@pytest.mark.parametrize(
    "covariance, noise, tol",
    [
        ("iid", (), 1e-6),
        ("heteroscedastic", (0.2, -0.3, 0.1), 1e-6),
        ("factor", (0.5, 0.3, -0.4, 0.6, 0.2), 0.15),
    ],  # fmt: skip
)
def test_untempered_likelihood_matches_exact_on_travel_mode(travel, covariance, noise, tol):
    """The core's untempered estimator (`method="untempered"`) against the exact closed forms:
    deterministic 32-node quadrature for diagonal noise (|dLL| <= 1e-6 summed over 210
    choosers), 512 QMC factor draws with a fixed key for the factor (measured |dLL| = 0.088;
    <= 0.15)."""
    data, layout = travel
    theta = np.concatenate([BETA, noise])
    with jax.enable_x64(True):
        arrays = choice_arrays(data, jax.random.key(3))
        kw = dict(rank=2) if covariance == "factor" else {}
        exact = ChoiceModel(layout, "probit", covariance, **kw)
        unt = ChoiceModel(layout, "probit", covariance, method="untempered", num_samples=512, **kw)
        ll_exact = evaluate_log_likelihood(exact, theta, arrays)
        ll_unt = evaluate_log_likelihood(unt, theta, arrays)
    assert abs(ll_unt.sum() - ll_exact.sum()) <= tol
    np.testing.assert_allclose(ll_unt, ll_exact, atol=10 * tol)
    # the same key gives the same value (common random numbers)
    with jax.enable_x64(True):
        again = evaluate_log_likelihood(unt, theta, choice_arrays(data, jax.random.key(3)))
    np.testing.assert_array_equal(again, ll_unt)


def test_noise_structures_come_from_the_core_registry(travel):
    import hetprobit

    _, layout = travel
    expected = {"iid": "diagonal", "heteroscedastic": "diagonal", "full": "full",
                "factor": "low_rank"}  # fmt: skip
    with jax.enable_x64(True):
        for cov, name in expected.items():
            model = ChoiceModel(layout, "probit", cov, rank=1)
            theta = jnp.asarray(np.concatenate([BETA, 0.3 * np.ones(len(model.noise_names))]))
            noise, Sigma = model.noise(theta)
            assert isinstance(noise, hetprobit.get_noise_family(name).structure), cov
            np.testing.assert_allclose(Sigma, noise.covariance(), rtol=1e-12)
    with pytest.raises(ValueError, match="untempered"):
        ChoiceModel(layout, "probit", "full", method="untempered")


def test_six_alternatives_one_orthant_per_chooser_matches_scipy_mvn():
    """J = 6, full covariance: the per-chooser log-likelihood (one 5-d orthant of the chosen
    alternative, lattice GHK) is within its own stated error (below 1e-4) of scipy's MVN CDF
    (Genz's QMC at abseps 1e-9) of the chosen alternative's differences, and equals
    `log_probs` (all six orthants, renormalised) at the chosen one within twice that error."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(5)
    J, n = 6, 6
    X = rng.normal(size=(n, J, 1))
    y = np.arange(n, dtype=np.int32) % J
    data = ChoiceData.from_arrays(X, y, alternatives=tuple("abcdef"), attribute_names=("x",))
    model = ChoiceModel(design_layout(ChoiceSpec(base="a", generic=("x",)), data), "probit",
                        "full")  # fmt: skip
    k = len(model.coef_names)
    theta = np.concatenate([np.linspace(-0.3, 0.4, k), 0.3 * rng.normal(size=len(model.names) - k)])
    with jax.enable_x64(True):
        th = jnp.asarray(theta)
        ll = np.asarray(model(th, choice_arrays(data)))
        lp = np.asarray(model.log_probs(th, choice_arrays(data)))
        V = np.asarray(model.utilities(th, choice_arrays(data).attributes,
                                       choice_arrays(data).individual))  # fmt: skip
        Sigma = np.asarray(model.noise(th)[1])
    for i in range(n):
        c = y[i]
        A = np.zeros((J - 1, J))
        for r, j in enumerate(j for j in range(J) if j != c):
            A[r, c], A[r, j] = 1.0, -1.0
        ref = multivariate_normal(
            np.zeros(J - 1), A @ Sigma @ A.T, abseps=1e-9, releps=1e-7, maxpts=2_000_000
        ).cdf(A @ V[i])
        with jax.enable_x64(True):  # the lattice's own error estimate (3.5 s.e. over shifts)
            p, err = hetprobit.mvn_cdf(A @ V[i], A @ Sigma @ A.T, return_error=True)
        assert np.exp(ll[i]) == pytest.approx(float(p), rel=1e-12), i  # the same orthant
        assert 0 < float(err) < 1e-4, (i, float(err))
        assert abs(np.exp(ll[i]) - ref) <= float(err), (i, np.exp(ll[i]), ref, float(err))
        # all six orthants, renormalised to sum to 1: the same within the error of the sum
        assert abs(np.exp(lp[i, c]) - np.exp(ll[i])) <= 2 * float(err), i
