import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.stats import norm

import hetprobit as hp
from tests.reference import compiled_temp_bytes, random_spd, scipy_choice_probs

# One compiled estimator per (shapes, static Monte Carlo setting), shared by every test that
# calls it: eagerly, each call would compile its sample scan anew.
_STATIC = ("num_samples", "chunk_size", "sampler", "share_draws")
_softmax_log_probs = jax.jit(hp.tempered_softmax_log_probs, static_argnames=_STATIC)
_softmax_log_lik = jax.jit(hp.tempered_softmax_log_likelihood, static_argnames=_STATIC)
_sigmoid_log_probs = jax.jit(hp.tempered_sigmoid_log_probs, static_argnames=_STATIC)


def _lowrank_case(key, B=4, K=5, R=2, noise_scale=1.0):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    mu = jax.random.normal(k1, (B, K))
    noise = hp.LowRankNoise(
        noise_scale * hp.positive_scale(jax.random.normal(k2, (B, K))),
        noise_scale * 0.7 * jax.random.normal(k3, (B, K, R)),
    )
    labels = jax.random.randint(k4, (B,), 0, K)
    return mu, noise, labels


# ---------------------------------------------------------------- exactness and convergence


def test_converges_to_exact_probit_as_tau_shrinks():
    """Bias |E p_tau - p_exact| shrinks monotonically in tau (averaged over cases)."""
    rng = np.random.default_rng(0)
    taus = [1.0, 0.5, 0.2, 0.1, 0.03]
    bias = np.zeros(len(taus))
    for _ in range(4):
        K = 4
        mu = rng.normal(size=K)
        cov = random_spd(rng, K)
        exact = scipy_choice_probs(mu, cov)
        noise = _dense_as_lowrank(cov)
        for i, tau in enumerate(taus):
            p = jnp.exp(
                _softmax_log_probs(
                    jnp.asarray(mu, jnp.float32),
                    noise,
                    key=jax.random.key(1),
                    tau=jnp.float32(tau),
                    num_samples=40_000,
                    sampler="qmc",
                )
            )
            bias[i] += np.abs(np.asarray(p) - exact).max() / 4
    assert np.all(np.diff(bias) < 0), bias
    assert bias[-1] < 0.01, bias  # tau = 0.03: within 1e-2 of the exact probit
    assert bias[0] > 5 * bias[-1]


def _dense_as_lowrank(cov):
    """Write a dense SPD cov exactly as diag(d^2) + V V^T with rank K-1 (d^2 = min eigenvalue)."""
    cov = np.asarray(cov, np.float64)
    w, U = np.linalg.eigh(cov)
    V = U[:, 1:] * np.sqrt(w[1:] - w[0])
    d = np.full(cov.shape[0], np.sqrt(w[0]))
    np.testing.assert_allclose(np.diag(d**2) + V @ V.T, cov, atol=1e-10)
    return hp.LowRankNoise(jnp.asarray(d, jnp.float32), jnp.asarray(V, jnp.float32))


def test_small_tau_large_S_matches_scipy_exact_probit():
    rng = np.random.default_rng(3)
    for K in (2, 3, 5):
        mu = rng.normal(size=K)
        d = rng.uniform(0.5, 1.5, size=K)
        V = rng.normal(size=(K, 1))
        cov = np.diag(d**2) + V @ V.T
        noise = hp.LowRankNoise(jnp.asarray(d, jnp.float32), jnp.asarray(V, jnp.float32))
        p = np.exp(
            np.asarray(
                _softmax_log_probs(
                    jnp.asarray(mu, jnp.float32),
                    noise,
                    key=jax.random.key(K),
                    tau=0.01,
                    num_samples=50_000,
                    sampler="qmc",
                )
            )
        )
        np.testing.assert_allclose(p, scipy_choice_probs(mu, cov), atol=6e-3)


def test_multilabel_marginals_converge_to_normal_cdf():
    mu = jnp.array([[-1.0, 0.0, 0.5, 2.0]])
    noise = hp.LowRankNoise(
        jnp.array([[0.5, 1.0, 1.5, 0.8]]), jnp.array([[[0.3], [-0.6], [0.9], [0.2]]])
    )
    exact = norm.cdf(np.asarray(mu) / np.sqrt(np.asarray(noise.variance())))
    p = jnp.exp(
        _sigmoid_log_probs(
            mu, noise, key=jax.random.key(0), tau=0.01, num_samples=20_000, sampler="qmc"
        )
    )
    np.testing.assert_allclose(p, exact, atol=3e-3)
    # log(1 - p) is the same estimator at -mu
    q = jnp.exp(
        _sigmoid_log_probs(
            -mu, noise, key=jax.random.key(0), tau=0.01, num_samples=20_000, sampler="qmc"
        )
    )
    np.testing.assert_allclose(p + q, 1.0, atol=3e-3)


def test_gumbel_noise_argmax_frequencies_equal_softmax():
    """Softmax is the homoscedastic-Gumbel special case: P(argmax(mu + G) = c) = softmax(mu)_c."""
    mu = jnp.array([1.0, 0.0, -0.5, 2.0, 0.3])
    n = 400_000
    g = jax.random.gumbel(jax.random.key(0), (n, 5))
    freq = np.bincount(np.asarray(jnp.argmax(mu[None] + g, axis=-1)), minlength=5) / n
    p = np.asarray(jax.nn.softmax(mu))
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) < 4.5 * se), (freq, p)
    # and our homoscedastic structure gives exactly softmax(mu / tau)
    lp = hp.tempered_softmax_log_probs(mu, hp.Homoscedastic(5), key=None, tau=1.0)
    np.testing.assert_allclose(jnp.exp(lp), p, rtol=1e-6)


# ------------------------------------------------------------------------- variance reduction


@functools.partial(jax.jit, static_argnums=(3, 4))
def _replicated_probs(mu, noise, keys, sampler, num_samples):
    """Choice probabilities at tau = 0.05 for each key (one compile per sampler, shared)."""
    return jax.vmap(
        lambda k: jnp.exp(
            hp.tempered_softmax_log_probs(
                mu, noise, key=k, tau=0.05, num_samples=num_samples, sampler=sampler
            )
        )
    )(keys)


@pytest.mark.parametrize("sampler", ["antithetic", "qmc"])
def test_variance_reduction_lowers_error_against_exact_probit(sampler):
    rng = np.random.default_rng(7)
    K, S, reps = 5, 256, 48
    mu = rng.normal(size=K) * 0.5
    d = rng.uniform(0.6, 1.2, size=K)
    V = rng.normal(size=(K, 2)) * 0.6
    exact = scipy_choice_probs(mu, np.diag(d**2) + V @ V.T)
    noise = hp.LowRankNoise(jnp.asarray(d, jnp.float32), jnp.asarray(V, jnp.float32))

    def rmse(smp):
        est = _replicated_probs(
            jnp.asarray(mu, jnp.float32), noise, jax.random.split(jax.random.key(11), reps), smp, S
        )
        return float(np.sqrt(np.mean((np.asarray(est) - exact) ** 2)))

    plain, reduced = rmse("mc"), rmse(sampler)
    assert reduced < 0.85 * plain, (plain, reduced)


# --------------------------------------------------------------------- determinism, chunking


@pytest.mark.parametrize("sampler", ["mc", "antithetic", "qmc"])
@pytest.mark.parametrize("share_draws", [False, True])
def test_chunked_equals_unchunked_for_same_key(key, sampler, share_draws):
    mu, noise, labels = _lowrank_case(key)
    kw = dict(
        key=jax.random.key(5), tau=0.3, num_samples=200, sampler=sampler, share_draws=share_draws
    )
    full = _softmax_log_probs(mu, noise, chunk_size=200, **kw)
    # every chunk size is a compile: one that divides S (1), one leaving a remainder after
    # several full chunks (64) and one leaving a remainder of a single draw (199)
    for c in (1, 64, 199):
        np.testing.assert_allclose(
            _softmax_log_probs(mu, noise, chunk_size=c, **kw), full, rtol=2e-5, atol=2e-5
        )
    # the observed-label path, chunked with a remainder (7 does not divide 200), equals the
    # unchunked full predictive gathered at the labels (same draws)
    ll_chunk = _softmax_log_lik(mu, noise, labels, chunk_size=7, **kw)
    np.testing.assert_allclose(ll_chunk, full[jnp.arange(4), labels], rtol=2e-5, atol=2e-5)


def test_same_key_same_answer_and_jit(key):
    mu, noise, labels = _lowrank_case(key)
    f = lambda m, k: hp.tempered_softmax_log_likelihood(
        m, noise, labels, key=k, tau=0.5, num_samples=64
    )
    a = f(mu, jax.random.key(1))  # eager
    jf = jax.jit(f)
    b = jf(mu, jax.random.key(1))
    np.testing.assert_allclose(b, a, rtol=1e-6)
    np.testing.assert_array_equal(jf(mu, jax.random.key(1)), b)
    assert not np.allclose(jf(mu, jax.random.key(2)), a)


def test_log_probs_are_normalised_and_sigmoid_likelihood_consistent(key):
    mu, noise, _ = _lowrank_case(key)
    lp = hp.tempered_softmax_log_probs(mu, noise, key=key, tau=0.2, num_samples=128)
    np.testing.assert_allclose(jax.nn.logsumexp(lp, axis=-1), 0.0, atol=2e-6)
    y = (jax.random.uniform(jax.random.key(4), mu.shape) > 0.5).astype(jnp.int32)
    # antithetic draws are a symmetric set, so the estimate at -mu is exactly log(1 - p)'s
    kw = dict(key=key, tau=0.2, num_samples=128, sampler="antithetic")
    ll = hp.tempered_sigmoid_log_likelihood(mu, noise, y, **kw)
    pos = _sigmoid_log_probs(mu, noise, **kw)
    neg = _sigmoid_log_probs(-mu, noise, **kw)
    np.testing.assert_allclose(ll, jnp.sum(jnp.where(y == 1, pos, neg), -1), rtol=1e-5)


def test_homoscedastic_is_tempered_softmax():
    mu = jnp.array([[1.0, -2.0, 0.5]])
    lp = hp.tempered_softmax_log_probs(mu, hp.Homoscedastic(3), key=None, tau=0.5)
    np.testing.assert_allclose(lp, jax.nn.log_softmax(mu / 0.5), rtol=1e-6)
    ll = hp.tempered_softmax_log_likelihood(mu, hp.Homoscedastic(3), jnp.array([2]), key=None)
    np.testing.assert_allclose(ll, jax.nn.log_softmax(mu)[:, 2], rtol=1e-6)


# ------------------------------------------------------------------------ stability, gradients


def test_extreme_logits_and_tiny_tau_float32():
    mu = jnp.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 5e3]], jnp.float32)
    noise = hp.DiagonalNoise(jnp.full((2, 3), 0.5))
    kw = dict(key=jax.random.key(0), tau=1e-3, num_samples=64)
    lp = hp.tempered_softmax_log_probs(mu, noise, **kw)
    assert jnp.all(jnp.isfinite(lp))
    np.testing.assert_allclose(lp[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(lp[0, 1], -1e4 / 1e-3, rtol=1e-3)  # no clip at log(1e-7)
    g = jax.jit(
        jax.grad(
            lambda m: hp.tempered_softmax_log_likelihood(m, noise, jnp.array([1, 0]), **kw).sum()
        )
    )(mu)
    assert jnp.all(jnp.isfinite(g)) and jnp.abs(g).max() > 1.0
    ls = hp.tempered_sigmoid_log_likelihood(mu, noise, jnp.array([[0, 1, 1], [1, 0, 0]]), **kw)
    assert jnp.all(jnp.isfinite(ls)) and float(ls[0]) < -1e6


def test_unlikely_labels_are_not_clipped_and_keep_gradient():
    """log(mean(softmax)) with an eps clip caps log p near -16 and kills the gradient."""
    mu = jnp.array([[0.0, 40.0]])
    noise = hp.DiagonalNoise(jnp.full((1, 2), 0.05))
    f = lambda m: hp.tempered_softmax_log_likelihood(
        m, noise, jnp.array([0]), key=jax.random.key(0), num_samples=32
    )[0]
    value, grad = jax.jit(jax.value_and_grad(f))(mu)
    np.testing.assert_allclose(value, -40.0, rtol=1e-3)
    np.testing.assert_allclose(grad, [[1.0, -1.0]], atol=1e-4)
    # sigmoid head: a logit of -50 for a positive label gives log p ~ -50, not log(1e-7) ~ -16
    s = hp.tempered_sigmoid_log_likelihood(
        jnp.array([[-50.0]]),
        hp.DiagonalNoise(jnp.array([[0.05]])),
        jnp.array([[1]]),
        key=jax.random.key(0),
        num_samples=32,
    )
    np.testing.assert_allclose(s, [-50.0], rtol=1e-3)


@pytest.mark.parametrize("kind", ["diagonal", "lowrank", "efficient"])
def test_gradients_match_finite_differences_float64(kind):
    with jax.enable_x64(True):
        key = jax.random.key(0)
        mu = jax.random.normal(key, (3, 4), jnp.float64)
        d = jnp.full((3, 4), 0.7, jnp.float64)
        V = 0.5 * jax.random.normal(jax.random.key(1), (3, 4, 2), jnp.float64)
        labels = jnp.array([0, 3, 1])

        def f(mu, d, V):
            noise = {
                "diagonal": lambda: hp.DiagonalNoise(d),
                "lowrank": lambda: hp.LowRankNoise(d, V),
                "efficient": lambda: hp.ParameterEfficientNoise(d, V[..., 0], V[0]),
            }[kind]()
            return hp.tempered_softmax_log_likelihood(
                mu, noise, labels, key=key, tau=0.5, num_samples=64, chunk_size=16
            ).sum()

        f = jax.jit(f)  # one compile for every finite-difference evaluation
        check_grads(f, (mu, d, V), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
        g = jax.grad(f, argnums=(0, 1, 2))(mu, d, V)  # reuses check_grads' compiled VJP
        assert all(float(jnp.abs(x).max()) > 1e-3 for x in g[: 3 if kind != "diagonal" else 2])


def test_memory_flat_in_samples():
    """Compiled temporary memory of loss+grad does not grow with S (no [B, S, K] kept)."""
    B, K = 32, 200
    mu = jnp.zeros((B, K))
    noise = hp.LowRankNoise(jnp.ones((B, K)), jnp.zeros((B, K, 4)))
    labels = jnp.zeros(B, jnp.int32)

    def temp_bytes(S):
        f = lambda m: hp.tempered_softmax_log_likelihood(
            m, noise, labels, key=jax.random.key(0), num_samples=S, chunk_size=16
        ).sum()
        return compiled_temp_bytes(jax.grad(f), mu)

    small, large = temp_bytes(1024), temp_bytes(16_384)
    assert large < 1.5 * small, (small, large)
    assert large < 0.05 * B * 16_384 * K * 4  # far below one materialised [B, S, K] tensor


def _dot_output_shapes(jaxpr):
    """Output shapes of every dot_general in a jaxpr, descending into scan/remat/jit bodies."""
    from jax.extend.core import ClosedJaxpr, Jaxpr

    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            shapes.append(tuple(eqn.outvars[0].aval.shape))
        for p in eqn.params.values():
            for inner in p if isinstance(p, tuple | list) else (p,):
                if isinstance(inner, ClosedJaxpr):
                    shapes += _dot_output_shapes(inner.jaxpr)
                elif isinstance(inner, Jaxpr):
                    shapes += _dot_output_shapes(inner)
    return shapes


def test_efficient_noise_shared_draws_compute_W_z_once_per_sample():
    B, K, R, S = 16, 40, 3, 32
    pe = hp.ParameterEfficientNoise(jnp.ones((B, K)), jnp.ones((B, K)), jnp.ones((K, R)))
    f = lambda m: hp.tempered_softmax_log_likelihood(
        m,
        pe,
        jnp.zeros(B, jnp.int32),
        key=jax.random.key(0),
        num_samples=S,
        chunk_size=8,
        share_draws=True,
    )
    shapes = _dot_output_shapes(jax.make_jaxpr(f)(jnp.zeros((B, K))).jaxpr)
    assert shapes, "expected a W z_R product"
    assert all(B not in s for s in shapes), shapes  # (C, 1, K) per chunk, never (C, B, K)


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(tau=0.0), ValueError, "tau"),
        (dict(tau=-1.0), ValueError, "tau"),
        (dict(tau=float("nan")), ValueError, "tau"),
        (dict(num_samples=0), ValueError, "num_samples"),
        (dict(num_samples=3, sampler="antithetic"), ValueError, "even"),
        (dict(sampler="sobol"), ValueError, "sampler"),
        (dict(chunk_size=0), ValueError, "chunk_size"),
        (dict(key=None), TypeError, "key"),
        (dict(labels=jnp.array([0, 1, 2, 5])), ValueError, "labels"),
        (dict(labels=jnp.array([0, 1, -1, 2])), ValueError, "labels"),
        (dict(labels=jnp.array([0.5, 1, 1, 2])), ValueError, "labels"),
        (dict(labels=jnp.array([[0], [1], [2], [3]])), ValueError, "labels"),
        (dict(mu=jnp.full((4, 5), jnp.nan)), ValueError, "mu"),
        (dict(mu=jnp.zeros((4, 6))), ValueError, "K="),
        (dict(mu=jnp.zeros((3, 5))), ValueError, "batch shapes"),
        (dict(mu=jnp.zeros((4, 0))), ValueError, "mu"),
        (dict(noise="lowrank"), TypeError, "noise"),
    ],
)
def test_bad_inputs_raise_clear_errors(key, kwargs, err, match):
    mu, noise, labels = _lowrank_case(key)
    args = dict(mu=mu, noise=noise, labels=labels, key=key, tau=0.5, num_samples=8)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        hp.tempered_softmax_log_likelihood(
            args.pop("mu"), args.pop("noise"), args.pop("labels"), **args
        )


def test_bad_multilabel_targets_raise(key):
    mu, noise, _ = _lowrank_case(key)
    with pytest.raises(ValueError, match="labels"):
        hp.tempered_sigmoid_log_likelihood(mu, noise, jnp.full(mu.shape, 2), key=key)
    with pytest.raises(ValueError, match="labels"):
        hp.tempered_sigmoid_log_likelihood(mu, noise, jnp.ones((4,)), key=key)


def test_gradient_with_respect_to_a_learned_temperature_float64():
    with jax.enable_x64(True):
        mu = jnp.array([[0.3, -0.2, 1.0], [1.0, 0.0, 0.5]], jnp.float64)
        noise = hp.DiagonalNoise(jnp.full((2, 3), 0.8, jnp.float64))
        labels = jnp.array([0, 2])
        for fn, y in [
            (hp.tempered_softmax_log_likelihood, labels),
            (hp.tempered_sigmoid_log_likelihood, jnp.array([[1, 0, 1], [0, 0, 1]])),
        ]:
            f = jax.jit(
                lambda t, fn=fn, y=y: fn(
                    mu, noise, y, key=jax.random.key(0), tau=t, num_samples=50, chunk_size=8
                ).sum()
            )
            check_grads(f, (jnp.asarray(0.4, jnp.float64),), order=1, modes=["rev"], atol=1e-6)
        f = jax.jit(
            lambda t: hp.tempered_softmax_log_probs(
                mu, noise, key=jax.random.key(0), tau=t, num_samples=50, chunk_size=8
            )[:, 1].sum()
        )
        check_grads(f, (jnp.asarray(0.4, jnp.float64),), order=1, modes=["rev"], atol=1e-6)


# ------------------------------------------------------------- unclear-error cases (issue 9.9)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_mu_is_refused_naming_mu(dtype):
    mu = jnp.zeros((2, 3), dtype)
    noise = hp.DiagonalNoise(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match=r"`mu`.*half precision.*float32"):
        hp.tempered_softmax_log_probs(mu, noise, key=jax.random.key(0), num_samples=4)
    with pytest.raises(TypeError, match=r"`mu`.*half precision"):
        hp.tempered_sigmoid_log_likelihood(
            mu, noise, jnp.ones((2, 3), jnp.int32), key=jax.random.key(0), num_samples=4
        )


@pytest.mark.parametrize("bad_key", [0, 7, np.int64(3), 1.5, "seed"])
def test_plain_int_key_is_refused_naming_key(bad_key):
    mu = jnp.zeros((2, 3))
    noise = hp.DiagonalNoise(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match=r"`key`.*jax\.random\.key\(0\)"):
        hp.tempered_softmax_log_likelihood(mu, noise, jnp.array([0, 1]), key=bad_key)


def test_both_key_flavours_are_accepted_also_under_jit():
    mu = jnp.zeros((2, 3))
    noise = hp.DiagonalNoise(jnp.ones((2, 3)))
    f = lambda k: hp.tempered_softmax_log_probs(mu, noise, key=k, num_samples=4)
    assert np.all(np.isfinite(jax.jit(f)(jax.random.key(0))))
    assert np.all(np.isfinite(f(jax.random.PRNGKey(0))))


@pytest.mark.parametrize("kind", ["lowrank", "efficient", "diagonal_unbatched"])
def test_one_pass_gradient_equals_two_pass_float64(kind):
    """The observed-label path (one streamed pass: value and gradient together) against the
    full predictive path gathered at the labels (two passes: the draws are regenerated).
    Same key and draws, so the two gradients agree to rounding, including d/dtau."""
    with jax.enable_x64(True):
        key = jax.random.key(3)
        mu = 3.0 * jax.random.normal(key, (3, 5), jnp.float64)
        d = hp.positive_scale(jax.random.normal(jax.random.key(1), (3, 5), jnp.float64))
        V = 0.8 * jax.random.normal(jax.random.key(2), (3, 5, 2), jnp.float64)
        labels = jnp.array([0, 4, 2])

        def noise_of(d, V):
            return {
                "lowrank": lambda: hp.LowRankNoise(d, V),
                "efficient": lambda: hp.ParameterEfficientNoise(d, V[..., 0], V[0]),
                "diagonal_unbatched": lambda: hp.DiagonalNoise(d[0]),
            }[kind]()

        kw = dict(key=key, num_samples=100, chunk_size=16, sampler="mc")

        def one_pass(mu, d, V, tau):
            ll = hp.tempered_softmax_log_likelihood(mu, noise_of(d, V), labels, tau=tau, **kw)
            return jnp.sum(ll * jnp.arange(1.0, 4.0))

        def two_pass(mu, d, V, tau):
            lp = hp.tempered_softmax_log_probs(mu, noise_of(d, V), tau=tau, **kw)
            ll = jnp.take_along_axis(lp, labels[:, None], axis=-1)[:, 0]
            return jnp.sum(ll * jnp.arange(1.0, 4.0))

        args = (mu, d, V, jnp.asarray(0.3))
        v1, g1 = jax.jit(jax.value_and_grad(one_pass, argnums=(0, 1, 2, 3)))(*args)
        v2, g2 = jax.jit(jax.value_and_grad(two_pass, argnums=(0, 1, 2, 3)))(*args)
        np.testing.assert_allclose(v1, v2, rtol=1e-12)
        for a, b in zip(g1, g2, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        assert float(jnp.abs(g1[0]).max()) > 1e-2


def test_one_pass_gradient_memory_flat_64_vs_1024():
    """Compiled temporary memory of loss + one-pass gradient at S = 64 and S = 1024."""
    B, K = 16, 100
    mu = jnp.zeros((B, K))
    noise = hp.LowRankNoise(jnp.ones((B, K)), 0.1 * jnp.ones((B, K, 3)))
    labels = jnp.zeros(B, jnp.int32)

    def temp_bytes(S):
        f = lambda m: hp.tempered_softmax_log_likelihood(
            m, noise, labels, key=jax.random.key(0), num_samples=S, chunk_size=16
        ).sum()
        return compiled_temp_bytes(jax.grad(f), mu)

    assert temp_bytes(1024) < 1.5 * temp_bytes(64)


def test_eager_calls_of_the_same_shape_compile_once():
    """An eager call compiles the streamed estimator once per configuration: a second call
    with new values (same shapes) reuses it (it used to retrace the chunk scan every call)."""
    from hetprobit._streaming import streamed_log_mean_exp

    mu = jnp.zeros((3, 4))
    noise = hp.DiagonalNoise(jnp.ones((3, 4)))
    hp.tempered_softmax_log_probs(mu, noise, key=jax.random.key(0), num_samples=8)
    size = streamed_log_mean_exp._cache_size()
    other = hp.DiagonalNoise(2.0 * jnp.ones((3, 4)))
    out = hp.tempered_softmax_log_probs(mu + 1.0, other, key=jax.random.key(1), num_samples=8)
    assert streamed_log_mean_exp._cache_size() == size
    assert out.shape == (3, 4) and np.all(np.isfinite(out))
