"""Exact multinomial-probit probabilities against independent references.

References: scipy.stats.multivariate_normal.cdf on the difference-transformed problem (built
here in numpy), Owen's T (scipy.special.owens_t) for the bivariate CDF, scipy.integrate.quad
for tail log-probabilities, brute-force Monte Carlo argmax frequencies.
Stated float64 tolerances: K <= 3: 1e-7 absolute; K = 4: 1e-5; K = 5, 6 (lattice SOV with
the default 8 x 1021 points): 1e-4 (observed ~1e-5).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import integrate, special, stats

import hetprobit as hp
from hetprobit.exact import (
    bivariate_normal_cdf,
    exact_choice_log_probs,
    exact_choice_probs,
    exact_indicator_log_probs,
    exact_indicator_probs,
    mvn_cdf,
)

TOL = {2: 1e-7, 3: 1e-7, 4: 1e-5, 5: 1e-4, 6: 1e-4}


def _problem(rng, K, scale=1.0):
    mu = rng.normal(size=K) * scale
    A = rng.normal(size=(K, K))
    return mu, A @ A.T / K + 0.3 * np.eye(K)


def _scipy_choice(mu, S):
    """P(y=c) = P(A_c u > 0) = P(Z <= A_c mu), Z ~ N(0, A_c S A_c^T), via scipy."""
    K = len(mu)
    out = []
    for c in range(K):
        others = [j for j in range(K) if j != c]
        A = np.zeros((K - 1, K))
        A[np.arange(K - 1), c] = 1.0
        A[np.arange(K - 1), others] = -1.0
        b, C = A @ mu, A @ S @ A.T
        if K == 2:
            out.append(stats.norm.cdf(b[0] / np.sqrt(C[0, 0])))
            continue
        abseps = 1e-10 if K == 3 else 1e-7
        out.append(
            stats.multivariate_normal.cdf(
                b, np.zeros(K - 1), C, abseps=abseps, releps=0, maxpts=200_000 * (K - 1), rng=0
            )
        )
    return np.array(out)


@pytest.mark.parametrize("K", [2, 3, 4, 5, 6])
def test_matches_scipy(K):
    rng = np.random.default_rng(K)
    with jax.enable_x64(True):
        for _ in range(2):
            mu, S = _problem(rng, K)
            p = np.asarray(exact_choice_probs(mu, S))
            np.testing.assert_allclose(p, _scipy_choice(mu, S), atol=TOL[K], rtol=0)
            assert abs(p.sum() - 1.0) < 1e-12


@pytest.mark.parametrize("K", [3, 4, 6])
def test_matches_monte_carlo(K):
    rng = np.random.default_rng(10 + K)
    mu, S = _problem(rng, K, scale=0.7)
    n = 200_000
    u = mu + rng.normal(size=(n, K)) @ np.linalg.cholesky(S).T
    freq = np.bincount(np.argmax(u, axis=1), minlength=K) / n
    with jax.enable_x64(True):
        p = np.asarray(exact_choice_probs(mu, S))
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) < 4.5 * se + 1e-12)


def test_bivariate_against_owens_t():
    rng = np.random.default_rng(0)
    h, k = rng.normal(size=2000) * 2, rng.normal(size=2000) * 2
    r = np.concatenate([rng.uniform(-0.999, 0.999, 1000), np.sign(rng.normal(size=1000)) * 0.99])
    s = np.sqrt(1 - r**2)
    ref = (
        0.5 * special.ndtr(h)
        + 0.5 * special.ndtr(k)
        - special.owens_t(h, (k - r * h) / (h * s))
        - special.owens_t(k, (h - r * k) / (k * s))
        - 0.5 * (h * k < 0)
    )
    with jax.enable_x64(True):
        ours = np.asarray(bivariate_normal_cdf(h, k, r))
    np.testing.assert_allclose(ours, ref, atol=1e-12, rtol=0)


def test_k2_closed_form_and_indicator():
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        mu, S = _problem(rng, 2)
        p = np.asarray(exact_choice_probs(mu, S))
        z = (mu[0] - mu[1]) / np.sqrt(S[0, 0] + S[1, 1] - 2 * S[0, 1])
        np.testing.assert_allclose(p, [stats.norm.cdf(z), stats.norm.cdf(-z)], atol=1e-15)
        mu, S = _problem(rng, 5)
        ref = stats.norm.cdf(mu / np.sqrt(np.diag(S)))
        np.testing.assert_allclose(np.asarray(exact_indicator_probs(mu, S)), ref, atol=1e-15)
        lp = np.asarray(exact_indicator_log_probs(np.array([-40.0, 0.0, 3.0]), np.eye(3)))
        np.testing.assert_allclose(lp, stats.norm.logcdf([-40.0, 0.0, 3.0]), rtol=1e-12)


def test_mvn_cdf_and_sov_method_agree():
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        b, S = rng.normal(size=3), _problem(rng, 3)[1]
        ref = stats.multivariate_normal.cdf(b, np.zeros(3), S, abseps=1e-9, releps=0, rng=0)
        np.testing.assert_allclose(float(mvn_cdf(b, S)), ref, atol=1e-7)
        p, err = mvn_cdf(b, S, method="sov", return_error=True)
        assert abs(float(p) - ref) < 1e-5 and 0 < float(err) < 1e-4
        mu, S = _problem(rng, 4)
        p_sov = exact_choice_probs(mu, S, method="sov")
        np.testing.assert_allclose(p_sov, exact_choice_probs(mu, S), atol=1e-5)


def _quad(f):
    return integrate.quad(f, -np.inf, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0]


def _tail_reference(d):
    """mu = (0, d_1, .., d_m), Sigma = I (u_0 = x, u_j < x): log P(y=0) = log int phi(x)
    prod_j Phi(x - d_j) dx and d log P / d d_j = -int phi(x) phi(x - d_j) prod_{k != j}
    Phi(x - d_k) dx / P, both by scipy quad."""
    d = np.asarray(d, float)
    lcdf = lambda x: stats.norm.logcdf(x - d)
    logp = np.log(_quad(lambda x: np.exp(stats.norm.logpdf(x) + lcdf(x).sum())))

    def dens(x, j):
        rest = np.delete(lcdf(x), j).sum()
        return np.exp(stats.norm.logpdf(x) + stats.norm.logpdf(x - d[j]) + rest - logp)

    return logp, np.array([-_quad(lambda x, j=j: dens(x, j)) for j in range(len(d))])


@pytest.mark.parametrize(
    ("K", "ds"),
    [(3, [[3.0, 3.0], [10.0, 10.0], [30.0, 30.0], [10.0, 11.0]]), (4, [[8.0, 9.0, 10.0]])],
)
def test_tail_log_probs_and_gradients(K, ds):
    """log P(y=0) down to e^-450 and its gradient against quad (`_tail_reference`), one
    batched call per K. The tail gradient is Plackett's closed form divided by the lattice
    estimate of P, so its relative error is that of P: asserted within 2 |log P - ref| + 1e-4
    (observed 3e-4 to 2e-3). Shift invariance: the gradient sums to 0."""
    with jax.enable_x64(True):
        mus = jnp.concatenate([jnp.zeros((len(ds), 1)), jnp.asarray(ds)], axis=1)
        f = lambda m: exact_choice_log_probs(m, jnp.eye(K))[0]
        logp, grad = (np.asarray(a) for a in jax.jit(jax.vmap(jax.value_and_grad(f)))(mus))
    for d, lp, g in zip(ds, logp, grad, strict=True):
        ref, gref = _tail_reference(d)
        assert np.isfinite(lp) and abs(lp - ref) < 1e-4 * abs(ref) + 1e-6, (d, lp, ref)
        rel = np.abs(g[1:] / gref - 1.0)
        assert np.all(rel < 2 * abs(lp - ref) + 1e-4), (d, g, gref)
        np.testing.assert_allclose(g.sum(), 0.0, atol=1e-10)


def test_trivariate_jvp_equals_autodiff_of_quadrature():
    """The closed-form custom_jvp of the trivariate CDF (Plackett 1954; Genz & Bretz 2009,
    section 2.2), reverse mode, against forward-mode autodiff of the Plackett quadrature it
    replaces, float64, at general, equicorrelated, negative and near-singular points."""
    from hetprobit._mvn import _tvn_quadrature, tvn_cdf

    pts = np.array(
        [
            [0.3, -0.5, 1.1, 0.4, -0.2, 0.5],
            [-1.0, 0.2, 0.7, 0.8, 0.6, 0.7],
            [1.5, -2.0, 0.1, -0.3, 0.1, -0.6],
            [0.0, 0.0, 0.0, 0.5, 0.5, 0.5],
            [0.2, 0.4, -0.3, 0.1, 0.9, 0.05],
        ]
    )
    with jax.enable_x64(True):
        x = jnp.asarray(pts)
        closed = jax.jit(jax.vmap(jax.grad(lambda v: tvn_cdf(*v))))(x)
        # forward-mode autodiff of the quadrature (compiles faster than reverse mode)
        auto = jax.jit(jax.vmap(jax.jacfwd(lambda v: _tvn_quadrature(*v, 24, False))))(x)
    np.testing.assert_allclose(closed, auto, atol=1e-8, rtol=0)


@pytest.mark.parametrize("K", [2, 3, 4])
def test_gradients_float64(K):
    rng = np.random.default_rng(20 + K)
    with jax.enable_x64(True):
        mu, S = _problem(rng, K)
        L = np.linalg.cholesky(S)
        f = lambda m, ll: exact_choice_probs(m, ll @ ll.T)
        check_grads(f, (jnp.asarray(mu), jnp.asarray(L)), order=1, modes=["fwd", "rev"])


def test_bivariate_custom_jvp_closed_form():
    with jax.enable_x64(True):
        check_grads(jax.jit(bivariate_normal_cdf), (0.3, -0.7, 0.6), order=2, modes=["rev"])
        g = jax.grad(bivariate_normal_cdf, argnums=2)(0.3, -0.7, 0.6)
        q = (0.3**2 - 2 * 0.6 * 0.3 * -0.7 + 0.49) / (1 - 0.36)
        np.testing.assert_allclose(g, np.exp(-q / 2) / (2 * np.pi * 0.8), rtol=1e-12)


def test_sov_gradient_finite_nonzero():
    rng = np.random.default_rng(3)
    mu, S = _problem(rng, 6)
    with jax.enable_x64(True):
        # one compile: the Jacobian of all classes with the probabilities as aux output
        f = lambda m, s: (lambda p: (p, p))(exact_choice_probs(m, s, n_points=127))
        (j_mu, j_s), p = jax.jacrev(f, argnums=(0, 1), has_aux=True)(jnp.asarray(mu), S)
        c = int(np.argmax(np.asarray(p)))  # the most likely class
        g_mu, g_s = j_mu[c], j_s[c]
        assert np.all(np.isfinite(g_mu)) and np.all(np.isfinite(g_s))
        assert np.abs(g_mu).max() > 1e-3
        np.testing.assert_allclose(float(g_mu.sum()), 0.0, atol=1e-8)  # shift invariance


@pytest.mark.parametrize("K", [2, 3, 4, 5])
def test_jit_vmap_batch_float32(K):
    rng = np.random.default_rng(30 + K)
    mus = rng.normal(size=(4, 3, K)).astype(np.float32)
    S = _problem(rng, K)[1].astype(np.float32)
    eager = exact_choice_probs(mus, S)  # cov broadcast over batch (4, 3)
    assert eager.shape == (4, 3, K) and eager.dtype == jnp.float32
    # jit and vmap together (one compile): the traced validation and the batching rule
    jitted = jax.jit(jax.vmap(exact_choice_probs, in_axes=(0, None)))(mus, S)
    np.testing.assert_allclose(jitted, eager, atol=1e-6)
    with jax.enable_x64(True):
        ref = np.asarray(exact_choice_probs(mus.astype(np.float64), S.astype(np.float64)))
    np.testing.assert_allclose(eager, ref, atol=1e-4 if K == 5 else 2e-6)
    np.testing.assert_allclose(eager.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("x64", [False, True])
def test_extreme_inputs(x64):
    """30-sd utility gaps, near-singular and huge covariances: finite values and gradients."""

    def all_outputs(m, c):
        p, g = jax.value_and_grad(lambda mm: exact_choice_probs(mm, c, n_points=61)[0])(m)
        return p, exact_choice_log_probs(m, c, n_points=61), g

    fn = jax.jit(all_outputs)
    with jax.enable_x64(x64):
        for K in (2, 3, 6) if not x64 else (3, 4):
            mu = jnp.zeros(K).at[0].set(30.0)
            near_singular = jnp.ones((K, K)) + 1e-6 * jnp.eye(K)  # tiny variance of differences
            covs = {"eye": jnp.eye(K), "near_singular": near_singular, "huge": 1e4 * jnp.eye(K)}
            for name, cov in covs.items():
                for sign in (1.0, -1.0):
                    outs = fn(sign * mu, cov)
                    for out in outs:
                        assert np.all(np.isfinite(out)), (K, name, sign)
                    if name == "eye" and sign > 0:  # (values from the same compiled function)
                        np.testing.assert_allclose(outs[0], 1.0, atol=1e-6)
                    if name == "eye" and sign < 0:
                        assert float(outs[1][0]) < -200


@pytest.mark.parametrize(
    ("mu", "cov", "err", "match"),
    [
        (np.zeros(3), np.eye(4), ValueError, "cov"),
        (np.zeros(3), np.ones((3, 2)), ValueError, "cov"),
        (np.array([0.0, np.nan, 1.0]), np.eye(3), ValueError, "mu"),
        (np.zeros(3), np.diag([1.0, np.inf, 1.0]), ValueError, "cov"),
        (np.zeros(1), np.eye(1), ValueError, "mu"),
        (np.zeros(11), np.eye(11), ValueError, "tempered_softmax"),
        (np.zeros(3), np.diag([1.0, 0.0, 1.0]), ValueError, "diagonal"),
        (np.zeros(3), np.eye(3) + np.triu(np.ones((3, 3)), 1), ValueError, "symmetric"),
        (np.zeros((2, 3)), np.broadcast_to(np.eye(3), (3, 3, 3)), ValueError, "broadcast"),
        (None, np.eye(3), TypeError, "mu"),
    ],
)
def test_bad_inputs(mu, cov, err, match):
    with pytest.raises(err, match=match):
        exact_choice_probs(mu, cov)


def test_bad_options():
    with pytest.raises(ValueError, match="method"):
        exact_choice_probs(np.zeros(3), np.eye(3), method="bogus")
    with pytest.raises(TypeError, match="n_points"):
        exact_choice_probs(np.zeros(5), np.eye(5), n_points=1.5)
    with pytest.raises(ValueError, match="upper"):
        mvn_cdf(np.zeros(10), np.eye(10))


# ------------------------------------------------------------------ non-PSD covariances
# Issue 9.3: the eigenvalues of [[1, 2], [2, 1]] are 3 and -1 (closed form 1 +- 2); the 3x3
# below is Q diag(2, 1, -0.8) Q^T with a rotation Q, so its smallest eigenvalue is -0.8.
_NOT_PSD_2 = np.array([[1.0, 2.0], [2.0, 1.0]])
_Q = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
_NOT_PSD_3 = _Q @ np.diag([2.0, 1.0, -0.8]) @ _Q.T


def _not_psd_calls():
    return [
        (lambda c: exact_choice_probs(np.array([0.2, -0.2]), c), _NOT_PSD_2, "-1"),
        (lambda c: exact_choice_log_probs(np.array([0.2, -0.2]), c), _NOT_PSD_2, "-1"),
        (lambda c: exact_choice_probs(np.zeros(3), c), _NOT_PSD_3, "-0.8"),
        (lambda c: exact_choice_log_probs(np.zeros(3), c), _NOT_PSD_3, "-0.8"),
        (lambda c: mvn_cdf(np.zeros(3), c), _NOT_PSD_3, "-0.8"),
        (lambda c: exact_indicator_probs(np.zeros(3), c), _NOT_PSD_3, "-0.8"),
        (lambda c: exact_indicator_log_probs(np.zeros(3), c), _NOT_PSD_3, "-0.8"),
    ]


@pytest.mark.parametrize("case", range(7))
def test_not_psd_covariance_raises_naming_cov_and_eigenvalue(case):
    fn, cov, eig = _not_psd_calls()[case]
    assert np.isclose(np.linalg.eigvalsh(cov)[0], float(eig))  # the stated eigenvalue
    with pytest.raises(ValueError, match=rf"`cov`.*semi-definite.*{eig}"):
        fn(cov)
    with pytest.raises(Exception, match="cov.*semi-definite"):  # eqx.error_if under jit
        jax.block_until_ready(jax.jit(fn)(jnp.asarray(cov, jnp.float32)))


def test_not_psd_in_a_batch_names_the_matrix():
    covs = np.stack([np.eye(3), _NOT_PSD_3, np.eye(3)])
    with pytest.raises(ValueError, match=r"batch index \(1,\)"):
        exact_choice_probs(np.zeros((3, 3)), covs)


def test_psd_but_singular_covariance_is_allowed():
    """Rank-2 3x3 covariance A A^T: still a valid probit (against brute-force argmax MC)."""
    rng = np.random.default_rng(4)
    A = rng.normal(size=(3, 2))
    cov = A @ A.T
    assert np.linalg.eigvalsh(cov)[0] < 1e-12 * np.linalg.eigvalsh(cov)[-1] + 1e-15
    mu = np.array([0.3, -0.1, 0.2])
    with jax.enable_x64(True):
        p = np.asarray(exact_choice_probs(mu, cov))
    u = mu + rng.normal(size=(400_000, 2)) @ A.T
    freq = np.bincount(u.argmax(-1), minlength=3) / len(u)
    np.testing.assert_allclose(p, freq, atol=5 * np.sqrt(0.25 / len(u)))
    # rounding: a PSD matrix perturbed by -1e-9 relative in one eigenvalue is accepted
    w, U = np.linalg.eigh(np.eye(3) + 0.5)
    exact_choice_probs(np.zeros(3), U @ np.diag([-1e-9 * w[-1], w[1], w[2]]) @ U.T)


@pytest.mark.parametrize("K", [3, 6])
def test_log_probs_memory_within_2x_of_probs(K):
    """Issue 9.2: mu (2000, 6), cov = eye(6) batched needed 27.8 GB of temporaries in the log
    path vs 0.39 GB in the probability path. XLA's compiled memory analysis is deterministic."""
    mu = jnp.zeros((2000, K))
    cov = jnp.broadcast_to(jnp.eye(K), (2000, K, K))

    def temp(f):
        return jax.jit(f).lower(mu, cov).compile().memory_analysis().temp_size_in_bytes

    t_log, t_p = temp(exact_choice_log_probs), temp(exact_choice_probs)
    assert t_log <= 2 * t_p, (t_log, t_p)
    assert t_p < 1e8, t_p  # the SOV path is evaluated in blocks: ~5 MB here, not 0.39 GB


def test_half_precision_is_refused_naming_the_argument():
    """Issue 9.9: float16 used to fail deep inside jax.scipy; now a TypeError names it."""
    with pytest.raises(TypeError, match=r"`mu`.*half precision"):
        exact_choice_probs(np.zeros(3, np.float16), np.eye(3))
    with pytest.raises(TypeError, match=r"`mu`.*half precision"):
        exact_choice_log_probs(jnp.zeros(4, jnp.bfloat16), np.eye(4))
    with pytest.raises(TypeError, match=r"`cov`.*half precision"):
        exact_choice_probs(np.zeros(3), np.eye(3, dtype=np.float16))
    with pytest.raises(TypeError, match=r"`upper`.*half precision"):
        mvn_cdf(np.zeros(2, np.float16), np.eye(2))
    with pytest.raises(TypeError, match=r"`mu`.*half precision"):
        exact_indicator_log_probs(np.zeros(2, np.float16), np.eye(2))


def test_mvn_log_cdf_equals_log_mvn_cdf_and_is_exact_in_the_deep_tail():
    """log P(Z <= b): equals log(mvn_cdf) at moderate probabilities (m = 1, 2, 3: closed forms;
    m = 5: the lattice, the path of every m >= 4), and for independent variables equals
    sum_i log Phi(b_i) (scipy) where P underflows — the log-space lattice branch (log P < -600
    in float64, < -60 in float32)."""
    from scipy.special import log_ndtr as sp_log_ndtr

    rng = np.random.default_rng(11)
    with jax.enable_x64(True):
        for m in (1, 2, 3, 5):
            A = rng.normal(size=(m, m))
            cov = A @ A.T / m + np.eye(m)
            b = rng.normal(size=(3, m))
            covs = np.broadcast_to(cov, (3, m, m))
            got = np.asarray(hp.mvn_log_cdf(b, covs))
            ref = np.log(np.asarray(hp.mvn_cdf(b, covs)))
            np.testing.assert_allclose(got, ref, rtol=1e-10, err_msg=f"m={m}")
        got = float(hp.mvn_log_cdf(np.full(5, -30.0), np.eye(5)))
        np.testing.assert_allclose(got, 5 * sp_log_ndtr(-30.0), rtol=1e-8)
    got32 = float(hp.mvn_log_cdf(jnp.full(4, -12.0, jnp.float32), jnp.eye(4, dtype=jnp.float32)))
    np.testing.assert_allclose(got32, 4 * sp_log_ndtr(-12.0), rtol=1e-4)
    with pytest.raises(ValueError, match="upper"):
        hp.mvn_log_cdf(np.zeros(10), np.eye(10))
