"""HeteroscedasticHead: drop-in for eqx.nn.Linear, noise structures, validation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hetprobit as hp
from hetprobit.exact import exact_choice_probs
from hetprobit.noise import NOISE_STRUCTURES, get_noise_family
from models import COVARIANCE_TYPES, HeteroscedasticHead, HetXLNoise

D, K = 6, 5


def make(cov, **kw):
    kw.setdefault("rank", 2 if get_noise_family(cov).has_factor else None)
    return HeteroscedasticHead(D, K, covariance=cov, key=jax.random.key(0), **kw)


def linear_like(head):
    """The eqx.nn.Linear the head replaces, with the same mean weights."""
    lin = eqx.nn.Linear(D, K, key=jax.random.key(9))
    return eqx.tree_at(lambda m: (m.weight, m.bias), lin, (head.mu.weight, head.mu.bias))


@pytest.fixture
def r():
    return jax.random.normal(jax.random.key(1), (D,))


def test_homoscedastic_equals_linear_log_softmax_exactly(r):
    head = make("homoscedastic")
    lin = linear_like(head)
    np.testing.assert_array_equal(head(r), jax.nn.log_softmax(lin(r)))
    rb = jax.random.normal(jax.random.key(2), (7, D))
    np.testing.assert_array_equal(
        jax.vmap(head)(rb), jax.vmap(lambda x: jax.nn.log_softmax(lin(x)))(rb)
    )
    ml = HeteroscedasticHead(
        D, K, covariance="homoscedastic", multilabel=True, key=jax.random.key(0)
    )
    np.testing.assert_array_equal(ml(r), jax.nn.log_sigmoid(linear_like(ml)(r)))


@pytest.mark.parametrize(
    "cov, multilabel", [(c, False) for c in COVARIANCE_TYPES] + [("low_rank", True)]
)
def test_drop_in_shapes_jit_vmap_grad(cov, multilabel, r):
    head = make(cov, multilabel=multilabel, num_train_samples=16)
    key = jax.random.key(3)
    rb = jax.random.normal(jax.random.key(4), (3, D))
    keys = jax.random.split(key, 3)

    @eqx.filter_jit
    def run(h):
        out = h(r, key=key)
        batched = jax.vmap(lambda x, k: h(x, key=k))(rb, keys)
        grads = eqx.filter_grad(lambda m: -m(r, key=key)[0])(h)
        return out, batched, grads

    out, batched, grads = run(head)
    assert out.shape == linear_like(head)(r).shape == (K,)
    assert batched.shape == (3, K)
    if not multilabel:
        np.testing.assert_allclose(jax.nn.logsumexp(out), 0.0, atol=1e-5)
    else:
        assert bool(jnp.all(out <= 0))
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert float(jnp.abs(grads.mu.weight).sum()) > 0


@pytest.mark.parametrize("cov", ["diagonal", "low_rank", "parameter_efficient", "hetxl", "full"])
def test_untrained_head_is_close_to_homoscedastic(cov, r):
    # noise starts at d ~ 1e-2 and small V: log-probabilities within 2e-2 of the softmax
    head = make(cov, num_train_samples=256)
    out = head(r, key=jax.random.key(5))
    np.testing.assert_allclose(out, jax.nn.log_softmax(linear_like(head)(r)), atol=2e-2)
    assert float(jnp.max(jnp.diagonal(head.covariance(r)))) < 0.05


@pytest.mark.parametrize("cov, rank", [("low_rank", 2), ("hetxl", 2), ("full", None)])
def test_log_probs_match_exact_probit_at_small_tau(cov, rank, r):
    # inflate the noise so it matters, then tau -> 0 recovers the exact probit probabilities
    head = make(cov, rank=rank, tau=0.02, num_eval_samples=8_000)
    head = eqx.tree_at(lambda h: h.scale.bias, head, head.scale.bias + 4.0)
    off = "lower" if cov == "full" else "factor"
    head = eqx.tree_at(
        lambda h: h.noise_layers[off].weight, head, head.noise_layers[off].weight * 100.0
    )
    mu, noise = head.noise_parameters(r)
    exact = exact_choice_probs(mu, noise.covariance())
    mc = jnp.exp(head(r, key=jax.random.key(6), inference=True))
    np.testing.assert_allclose(mc, exact, atol=0.025)


def test_hetxl_covariance_matches_projected_samples():
    head = make("hetxl", rank=3)
    r = jax.random.normal(jax.random.key(7), (D,))
    head = eqx.tree_at(lambda h: h.factor.weight, head, head.factor.weight * 100.0)
    _, noise = head.noise_parameters(r)
    assert isinstance(noise, HetXLNoise)
    eps = noise.sample(jax.random.key(8), 20_000)
    emp = jnp.cov(eps.reshape(-1, K), rowvar=False)
    cov = noise.covariance()
    np.testing.assert_allclose(emp, cov, atol=0.06 * float(jnp.max(jnp.abs(cov))) + 1e-4)
    np.testing.assert_allclose(noise.variance(), jnp.diagonal(cov), rtol=1e-5, atol=1e-7)
    x = jnp.arange(K, dtype=cov.dtype)
    np.testing.assert_allclose(noise.matvec(x), cov @ x, rtol=1e-4, atol=1e-6)
    # no parameter of shape K x D x R: noise heads are D -> D and D -> D R
    assert head.factor.weight.shape == (D * 3, D) and head.scale.weight.shape == (D, D)


def test_head_parameter_counts_follow_the_declared_outputs():
    def noise_count(cov, **kw):
        # shapes only (eval_shape): no weights are drawn, nothing is compiled
        h = eqx.filter_eval_shape(
            lambda: HeteroscedasticHead(32, 100, covariance=cov, key=jax.random.key(0), **kw)
        )
        is_leaf = lambda x: isinstance(x, jax.ShapeDtypeStruct)
        leaves = jax.tree_util.tree_leaves(
            eqx.filter((h.noise_layers, h.noise_shared), is_leaf), is_leaf=is_leaf
        )
        assert leaves
        return sum(x.size for x in leaves)

    # the scale layer (32 + 1) * 100, plus: O(DK + KR) against O(DKR), and D K^2 / 2 for full
    scale = 33 * 100
    assert noise_count("parameter_efficient", rank=10) == scale + 33 * 100 + 100 * 10
    assert noise_count("low_rank", rank=10) == scale + 33 * 100 * 10
    assert noise_count("full") == scale + 33 * (100 * 99 // 2)
    assert noise_count("hetxl", rank=10) == 33 * 32 + 33 * 32 * 10


def test_batched_noise_parameters_match_per_example():
    head = make("parameter_efficient")
    rb = jax.random.normal(jax.random.key(10), (4, D))
    cov_b = head.covariance(rb)
    cov_1 = jnp.stack([head.covariance(x) for x in rb])
    np.testing.assert_allclose(cov_b, cov_1, rtol=1e-5, atol=1e-7)
    ll = head.log_likelihood(rb, jnp.array([0, 1, 2, 3]), key=jax.random.key(0))
    assert ll.shape == (4,)


def test_learned_tau_stays_in_bounds_and_is_differentiable(r):
    head = make("low_rank", tau=0.7, learn_tau=True, tau_bounds=(0.1, 2.0))
    np.testing.assert_allclose(head.tau, 0.7, rtol=1e-5)
    g = eqx.filter_grad(lambda h: h(r, key=jax.random.key(0))[1])(head)
    assert float(jnp.abs(g.tau_param)) > 0
    far = eqx.tree_at(lambda h: h.tau_param, head, jnp.asarray(50.0))
    assert 0.1 <= float(far.tau) <= 2.0


def test_stochastic_head_without_key_raises(r):
    with pytest.raises(ValueError, match="needs a PRNG key"):
        make("low_rank")(r)
    make("homoscedastic")(r)  # deterministic: no key needed


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(covariance="low_rank", rank=K), "1 <= rank < the number of classes K=5"),
        (dict(covariance="low_rank", rank=0), "rank"),
        (dict(covariance="parameter_efficient", rank=7), "rank"),
        (dict(covariance="hetxl", rank=D), "1 <= rank < in_features D=6"),
        (dict(covariance="diagonal", rank=3), "`rank` does not apply to covariance='diagonal'"),
        (dict(covariance="homoscedastic", rank=0), "`rank` does not apply to .*'homoscedastic'"),
        (dict(covariance="full", rank=2), "`rank` does not apply to covariance='full'"),
        (dict(covariance="low_rank", tau=0.0), "tau"),
        (dict(covariance="low_rank", tau=-1.0), "tau"),
        (dict(covariance="low_rank", tau_bounds=(1.0, 0.5)), "tau_bounds"),
        (dict(covariance="low_rank", tau_bounds=(0.0, 1.0)), "tau_bounds"),
        (dict(covariance="low_rank", learn_tau=True, tau=9.0), "tau"),
        (dict(covariance="cholesky"), "covariance.*'cholesky'"),
        (dict(covariance="low_rank", sampler="sobol"), "sampler"),
        (dict(covariance="low_rank", sampler="antithetic", num_train_samples=3), "even"),
        (dict(covariance="low_rank", num_eval_samples=0), "num_samples"),
    ],
)
def test_bad_configuration_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HeteroscedasticHead(D, K, key=jax.random.key(0), **kwargs)


def test_bad_input_width_raises():
    head = make("low_rank")
    with pytest.raises(ValueError, match=r"in_features=6"):
        head(jnp.zeros(D + 1), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"one example"):
        head(jnp.zeros((2, D)), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"in_features=6"):
        head.covariance(jnp.zeros((3, 4)))


def test_aliases_build_the_canonical_structure():
    for old, new in [("lowrank", "low_rank"), ("efficient", "parameter_efficient")]:
        a, b = make(old), make(new)
        assert a.covariance_type == new
        r = jnp.ones(D)
        np.testing.assert_array_equal(a.covariance(r), b.covariance(r))


def test_covariance_types_are_the_registry_names():
    assert tuple(COVARIANCE_TYPES) == tuple(NOISE_STRUCTURES)
    assert "full" in COVARIANCE_TYPES and "lowrank" not in COVARIANCE_TYPES


def test_monte_carlo_setting_is_carried_to_the_likelihood_and_the_distribution(r):
    train = hp.MonteCarlo(num_samples=64, sampler="antithetic", chunk_size=16)
    evalu = hp.MonteCarlo(num_samples=96, sampler="qmc")
    head = make("low_rank", train_monte_carlo=train, eval_monte_carlo=evalu)
    assert head.num_train_samples == 64 and head.num_eval_samples == 96
    rb = jax.random.normal(jax.random.key(11), (3, D))
    y, key = jnp.array([0, 1, 4]), jax.random.key(12)
    mu, noise = head.noise_parameters(rb)
    for inference, mc in [(False, train), (True, evalu)]:
        ours = head.log_likelihood(rb, y, key=key, inference=inference)
        ref = hp.tempered_softmax_log_likelihood(
            mu,
            noise,
            y,
            key=key,
            num_samples=mc.num_samples,
            sampler=mc.sampler,
            chunk_size=mc.chunk_size,
        )
        np.testing.assert_allclose(ours, ref, rtol=1e-6)
        assert head.distribution(rb, key=key, inference=inference).monte_carlo == mc
    # a per-call num_samples replaces S only
    assert head.monte_carlo(True, 32) == hp.MonteCarlo(32, "qmc")
    # the shortcuts build the same settings
    short = make("low_rank", num_train_samples=64, num_eval_samples=96, sampler="qmc")
    assert short.train_monte_carlo == hp.MonteCarlo(64, "qmc")
    with pytest.raises(TypeError, match="train_monte_carlo"):
        make("low_rank", train_monte_carlo=dict(num_samples=8))


# ------------------------------------------------------------------ likelihood="probit"
def _noisy(head):
    """Inflate the head's diagonal noise (d ~ 1.9; the probit head starts at d ~ 1)."""
    return eqx.tree_at(lambda h: h.scale.bias, head, head.scale.bias + 1.0)


@eqx.filter_jit
def _multilabel_outputs(head, rb, y):
    """Keyless multilabel head: log_probs, log_likelihood, its input gradient, mu and Sigma."""
    mu, noise = head.noise_parameters(rb)
    grad = jax.grad(lambda x: head.log_likelihood(x, y).sum())(rb)
    return head.log_probs(rb), head.log_likelihood(rb, y), grad, mu, noise.covariance()


@pytest.mark.parametrize("cov", ["diagonal", "low_rank"])
@pytest.mark.parametrize("num_classes", [3, 4])
def test_probit_head_equals_exact_probit_on_its_own_mu_and_sigma(cov, num_classes):
    # reference: exact_choice_probs (Genz-Bretz lattice, ~1e-7) on the head's own mu, Sigma
    with jax.enable_x64(True):
        rank = 1 if cov == "low_rank" else None
        kw = dict(covariance=cov, rank=rank, likelihood="probit", key=jax.random.key(0))
        mc = hp.MonteCarlo(num_samples=2048, sampler="qmc")
        head = _noisy(HeteroscedasticHead(D, num_classes, eval_monte_carlo=mc, **kw))
        assert head.likelihood == hp.Likelihood("probit") and head.needs_key == (rank == 1)
        rb = jax.random.normal(jax.random.key(1), (3, D), dtype=jnp.float64)
        key = None if rank is None else jax.random.key(2)  # diagonal: deterministic, no key
        lp = head.log_probs(rb, key=key, inference=True)
        mu, noise = head.noise_parameters(rb)
        exact = exact_choice_probs(mu, noise.covariance())
        assert lp.dtype == jnp.float64 and float(jnp.min(exact)) > 0.02
        # diagonal: 32-node quadrature, measured ~1e-9. Low rank: 2048 randomly shifted
        # lattice points in z_R (R = 1), a rectangle rule whose error is O(1/S) (the conditional
        # probability tends to different limits at z_R = -inf and +inf); measured 1.5e-4 here
        # (checked against nested scipy quad), against ~1e-2 for the tempered softmax at tau=0.3
        np.testing.assert_allclose(jnp.exp(lp), exact, atol=1e-6 if rank is None else 4e-4)
        y = jnp.array([0, num_classes - 1, 1])
        ll = head.log_likelihood(rb, y, key=key, inference=True)
        gathered = jnp.take_along_axis(lp, y[:, None], axis=-1)[:, 0]
        np.testing.assert_allclose(ll, gathered, rtol=1e-10)
        # tau plays no part in the probit
        other = eqx.tree_at(lambda h: h.tau_param, head, 0.3)
        np.testing.assert_array_equal(other.log_probs(rb, key=key, inference=True), lp)


@pytest.mark.parametrize("cov", ["diagonal", "low_rank", "hetxl", "full"])
def test_multilabel_probit_head_is_the_exact_marginal_without_a_key(cov):
    # closed form P(y_c = 1) = Phi(mu_c / sqrt(Sigma_cc)) (scipy) and exact_indicator_probs
    from scipy.stats import norm

    from hetprobit.exact import exact_indicator_probs

    with jax.enable_x64(True):
        head = make(cov, multilabel=True, likelihood="probit")
        assert not head.needs_key
        rb = jax.random.normal(jax.random.key(3), (4, D), dtype=jnp.float64)
        y = (jax.random.uniform(jax.random.key(4), (4, K)) < 0.5).astype(jnp.int32)
        lp, ll, g, mu, cov_ = _multilabel_outputs(head, rb, y)  # no key
        cov_ = np.asarray(cov_)
        z = np.asarray(mu) / np.sqrt(np.diagonal(cov_, axis1=-2, axis2=-1))
        np.testing.assert_allclose(jnp.exp(lp), norm.cdf(z), rtol=1e-12)
        np.testing.assert_allclose(jnp.exp(lp), exact_indicator_probs(mu, cov_), rtol=1e-12)
        sign = 2.0 * np.asarray(y) - 1.0
        np.testing.assert_allclose(ll, norm.logcdf(sign * z).sum(-1), rtol=1e-12)
        assert bool(jnp.all(jnp.isfinite(g)))


@pytest.mark.parametrize(
    "cov, multilabel",
    [("homoscedastic", False), ("hetxl", False), ("full", False)] + [("homoscedastic", True)],
)
def test_probit_with_an_unsupported_structure_raises_at_construction(cov, multilabel):
    with pytest.raises(ValueError, match=rf"likelihood='probit'.*covariance='{cov}'"):
        make(cov, multilabel=multilabel, likelihood="probit")


def test_bad_likelihood_choice_raises():
    with pytest.raises(ValueError, match="learn_tau"):
        make("low_rank", likelihood="probit", learn_tau=True)
    with pytest.raises(ValueError, match="`likelihood` must be one of"):
        make("low_rank", likelihood="logit")
    with pytest.raises(TypeError, match="likelihood"):
        make("low_rank", likelihood=1)
    with pytest.raises(ValueError, match="num_nodes"):
        make("low_rank", likelihood=hp.Likelihood("probit", num_nodes=0))
    with pytest.raises(ValueError, match="likelihood='probit'.*needs a PRNG key"):
        make("low_rank", likelihood="probit")(jnp.ones(D))


def test_probit_head_carries_num_nodes_and_its_monte_carlo_defaults(r):
    lik = hp.Likelihood("probit", num_nodes=8)
    head = make("low_rank", likelihood=lik)
    assert head.train_monte_carlo == hp.MonteCarlo(64, "qmc")
    assert head.eval_monte_carlo == hp.MonteCarlo(256, "qmc")
    mu, noise = head.noise_parameters(r)
    key = jax.random.key(5)
    ref = hp.probit_log_probs(mu, noise, key=key, num_nodes=8, num_samples=64, sampler="qmc")
    np.testing.assert_allclose(head(r, key=key), ref, rtol=1e-6)
    dist = head.distribution(r, key=key)
    assert dist.likelihood == lik and dist.monte_carlo == head.train_monte_carlo
    np.testing.assert_allclose(
        dist.log_prob(jnp.array(2)),
        hp.probit_log_likelihood(mu, noise, jnp.array(2), key=key, num_nodes=8),
        rtol=1e-6,
    )


def test_fit_with_probit_likelihood_decreases_the_loss(make_classifier):
    from inference import default_optimizer, fit
    from models import classifier_model
    from models.synthetic import make_synthetic_classification

    d = make_synthetic_classification(200, 3, num_pairs=1, key=jax.random.key(0))
    net = make_classifier(
        jax.random.key(1), covariance="low_rank", rank=1, likelihood="probit", num_train_samples=8
    )
    res = fit(
        classifier_model,
        None,
        (d.x, d.y),
        num_epochs=6,
        batch_size=50,
        key=jax.random.key(3),
        net=net,
        progress=False,
        optimizer=default_optimizer(24, learning_rate=2e-2),
    )
    losses = np.asarray(res.losses)
    # starts near the uniform guess (N log 3 = 220 per epoch: unit initial noise), then falls
    assert np.all(np.isfinite(losses)) and 150 < losses[0] < 260
    assert np.all(np.diff(losses) < 0) and losses[-1] < 0.8 * losses[0]
