"""Property sweeps of the core (issue 9, "Tests must show"): shapes, dtypes and extreme values
(|mu| up to 1e4, tau 1e-3..10, noise scales 1e-3..1e3, K up to 2000 for the Monte Carlo
likelihood) over the public likelihoods, the exact probit and the Taylor approximation.
Every output is finite and satisfies its invariants, or the call raises a ValueError /
TypeError naming the argument. References: scipy.stats.norm (K = 2 closed form), the exact
probit as the tau -> 0, S -> inf limit, softmax as the zero-noise limit of the Taylor
approximation. Deterministic (derandomize=True) and small (max_examples = 10)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.stats import norm

import hetprobit as hp
from hetprobit.exact import exact_choice_log_probs, exact_choice_probs

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True, database=None)

mu_scale = st.sampled_from([0.0, 1e-3, 1.0, 30.0, 1e4])
noise_scale = st.sampled_from([1e-3, 1.0, 1e3])
taus = st.sampled_from([1e-3, 0.05, 1.0, 10.0])


def _x64(flag):
    return jax.enable_x64(flag)


# K, B, S, R: large K only with tiny S and B
likelihood_shapes = st.sampled_from(
    [(2, 1, 4, 0), (3, 3, 8, 1), (7, 2, 6, 2), (50, 2, 4, 3), (2000, 1, 2, 2)]
)


@SETTINGS
@given(
    shape=likelihood_shapes,
    scale=mu_scale,
    nscale=noise_scale,
    tau=taus,
    sampler=st.sampled_from(["mc", "antithetic", "qmc"]),
    x64=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_tempered_likelihoods_are_finite_and_normalised(
    shape, scale, nscale, tau, sampler, x64, seed
):
    K, B, S, R = shape
    rng = np.random.default_rng(seed)
    with _x64(x64):
        dt = jnp.float64 if x64 else jnp.float32
        mu = jnp.asarray(scale * rng.normal(size=(B, K)), dt)
        d = jnp.asarray(nscale * rng.uniform(0.5, 1.5, size=(B, K)), dt)
        if R:
            noise = hp.LowRankNoise(d, jnp.asarray(nscale * rng.normal(size=(B, K, R)), dt))
        else:
            noise = hp.DiagonalNoise(d)
        labels = jnp.asarray(rng.integers(0, K, size=B))
        kw = dict(key=jax.random.key(seed), tau=tau, num_samples=S, sampler=sampler)
        lp = np.asarray(hp.tempered_softmax_log_probs(mu, noise, **kw), np.float64)
        ll = np.asarray(hp.tempered_softmax_log_likelihood(mu, noise, labels, **kw), np.float64)
        slp = np.asarray(hp.tempered_sigmoid_log_probs(mu, noise, **kw), np.float64)
        y = jnp.asarray(rng.integers(0, 2, size=(B, K)))
        sll = np.asarray(hp.tempered_sigmoid_log_likelihood(mu, noise, y, **kw), np.float64)
    # float32 resolves the tempered utilities u / tau only to eps |u| / tau (0.06 at 1e6:
    # |mu| 1e4 or noise 1e3 with tau 1e-3), so log-probabilities carry that absolute error
    eps = np.finfo(np.float64 if x64 else np.float32).eps
    u_max = (np.abs(np.asarray(mu)).max() + 8.0 * nscale * (1.0 + np.sqrt(R))) / tau
    tol = 4.0 * eps * max(u_max, 1.0) + (1e-9 if x64 else 2e-5)
    for out in (lp, ll, slp, sll):
        assert np.all(np.isfinite(out)), out
        assert np.all(out <= K * tol), out.max()
    # log probabilities normalise: logsumexp over classes is 0 (within the resolution above)
    lse = np.logaddexp.reduce(lp, axis=-1)
    np.testing.assert_allclose(lse, 0.0, atol=K * tol)
    # the observed-label path is the gathered full predictive (same draws)
    np.testing.assert_allclose(ll, lp[np.arange(B), np.asarray(labels)], rtol=1e-4, atol=K * tol)


def test_float32_resolution_example_from_the_sweep():
    """Found by the sweep: K=3, noise scale 1e3, tau=1e-3 in float32. Tempered utilities of
    ~1e6 are resolved only to eps * 1e6 = 0.06, so log-probabilities are off by up to that
    much (they stay finite; normalisation error 0.026 here). In float64 the same case is
    normalised to 1e-9. Reference: per-sample log_softmax averaged in float64 by numpy."""
    rng = np.random.default_rng(0)
    K, B, S = 3, 3, 8
    with jax.enable_x64(True):
        d = jnp.asarray(1000 * rng.uniform(0.5, 1.5, size=(B, K)))
        noise = hp.LowRankNoise(d, jnp.asarray(1000 * rng.normal(size=(B, K, 1))))
        kw = dict(key=jax.random.key(0), tau=1e-3, num_samples=S, sampler="mc")
        lp = np.asarray(hp.tempered_softmax_log_probs(jnp.zeros((B, K)), noise, **kw))
    np.testing.assert_allclose(np.logaddexp.reduce(lp, axis=-1), 0.0, atol=1e-9)
    # with S = 8 and a 1e6 logit scale every draw is one-hot: log-probs are log(k / 8)
    np.testing.assert_allclose(np.exp(lp) * S, np.round(np.exp(lp) * S), atol=1e-6)


@SETTINGS
@given(
    K=st.sampled_from([2, 3, 4, 5]),
    B=st.just(3),
    scale=mu_scale,
    nscale=noise_scale,
    x64=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_exact_probit_probs_and_log_probs(K, B, scale, nscale, x64, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(K, K))
    cov_np = nscale**2 * (A @ A.T / K + 0.2 * np.eye(K))
    mu_np = scale * rng.normal(size=(B, K))
    with _x64(x64):
        dt = jnp.float64 if x64 else jnp.float32
        mu, cov = jnp.asarray(mu_np, dt), jnp.asarray(cov_np, dt)
        p = np.asarray(exact_choice_probs(mu, cov, n_points=127), np.float64)
        lp = np.asarray(exact_choice_log_probs(mu, cov, n_points=127), np.float64)
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(lp)), (p, lp)
    assert np.all((p >= 0) & (p <= 1 + 1e-6))
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    assert np.all(lp <= 1e-6), lp.max()
    # log path agrees with the probabilities where they are not tiny (K >= 5: lattice SOV
    # with 8 x 127 points, ~1e-3 relative)
    big = p > 1e-2
    np.testing.assert_allclose(np.exp(lp[big]), p[big], rtol=5e-3 if K >= 5 else 1e-4, atol=1e-5)
    if K == 2:  # closed form: P(y=0) = Phi((mu_0 - mu_1) / sd of the difference)
        sd = np.sqrt(cov_np[0, 0] + cov_np[1, 1] - 2 * cov_np[0, 1])
        z = (mu_np[:, 0] - mu_np[:, 1]) / sd
        np.testing.assert_allclose(p[:, 0], norm.cdf(z), atol=1e-6)
        np.testing.assert_allclose(lp[:, 0], norm.logcdf(z), rtol=1e-4, atol=1e-6)


@SETTINGS
@given(
    K=st.sampled_from([2, 5, 40]),
    scale=mu_scale,
    nscale=noise_scale,
    tau=taus,
    dense=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_taylor_probs_finite_normalised_and_softmax_limit(K, scale, nscale, tau, dense, seed):
    rng = np.random.default_rng(seed)
    mu = jnp.asarray(scale * rng.normal(size=(2, K)), jnp.float32)
    d = nscale * rng.uniform(0.5, 1.5, size=(2, K))
    noise = hp.DiagonalNoise(jnp.asarray(d, jnp.float32))
    cov = jnp.asarray(np.stack([np.diag(v**2) for v in d]), jnp.float32) if dense else noise
    p = np.asarray(hp.taylor_softmax_probs(mu, cov, tau=tau), np.float64)
    assert np.all(np.isfinite(p)), p
    # the second-order corrections sum to zero: probabilities sum to 1 (relative rounding)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5 * (1 + np.abs(p).max()))
    # zero-noise limit: the correction vanishes and p = softmax(mu / tau)
    tiny = hp.DiagonalNoise(jnp.full((2, K), 1e-6, jnp.float32))
    p0 = hp.taylor_softmax_probs(mu, tiny, tau=max(tau, 0.05))
    np.testing.assert_allclose(p0, jax.nn.softmax(mu / max(tau, 0.05), axis=-1), atol=1e-5)


@SETTINGS
@given(
    arg=st.sampled_from(["mu", "tau", "key", "num_samples", "labels"]),
    bad=st.sampled_from(["nan", "inf", "neg", "zero", "half", "int"]),
)
def test_bad_inputs_raise_naming_the_argument(arg, bad):
    K, B = 3, 2
    mu = np.zeros((B, K), np.float32)
    kw = dict(key=jax.random.key(0), tau=1.0, num_samples=4)
    labels = np.array([0, 1])
    if arg == "mu":
        if bad in ("nan", "inf"):
            mu[0, 1] = float(bad)
        elif bad == "half":
            mu = mu.astype(np.float16)
        else:
            return  # any finite mu is valid
    elif arg == "tau":
        kw["tau"] = {"nan": np.nan, "inf": np.inf, "neg": -1.0, "zero": 0.0}.get(bad, None)
    elif arg == "key":
        kw["key"] = {"int": 0, "half": np.float16(1)}.get(bad, 1.5)
    elif arg == "num_samples":
        kw["num_samples"] = {"neg": -4, "zero": 0, "half": 2.5}.get(bad, float(bad))
    else:
        labels = {"neg": np.array([-1, 0]), "int": np.array([0, K])}.get(bad, np.array([0.5, 1]))
    noise = hp.DiagonalNoise(jnp.ones((B, K)))
    with pytest.raises((ValueError, TypeError), match=arg):
        hp.tempered_softmax_log_likelihood(jnp.asarray(mu), noise, jnp.asarray(labels), **kw)
