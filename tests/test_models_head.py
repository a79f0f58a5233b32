"""HeteroscedasticHead: drop-in for eqx.nn.Linear, noise structures, validation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hetprobit.exact import exact_choice_probs
from models import COVARIANCE_TYPES, HeteroscedasticHead, HetXLNoise

D, K = 6, 5


def make(cov, **kw):
    kw.setdefault("rank", 2)
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
    "cov, multilabel", [(c, False) for c in COVARIANCE_TYPES] + [("lowrank", True)]
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


@pytest.mark.parametrize("cov", ["diagonal", "lowrank", "efficient", "hetxl"])
def test_untrained_head_is_close_to_homoscedastic(cov, r):
    # noise starts at d ~ 1e-2 and small V: log-probabilities within 2e-2 of the softmax
    head = make(cov, num_train_samples=256)
    out = head(r, key=jax.random.key(5))
    np.testing.assert_allclose(out, jax.nn.log_softmax(linear_like(head)(r)), atol=2e-2)
    assert float(jnp.max(jnp.diagonal(head.covariance(r)))) < 0.05


@pytest.mark.parametrize("cov", ["lowrank", "hetxl"])
def test_log_probs_match_exact_probit_at_small_tau(cov, r):
    # inflate the noise so it matters, then tau -> 0 recovers the exact probit probabilities
    head = make(cov, tau=0.02, num_eval_samples=8_000)
    head = eqx.tree_at(lambda h: h.scale.bias, head, head.scale.bias + 4.0)
    if head.factor is not None:
        head = eqx.tree_at(lambda h: h.factor.weight, head, head.factor.weight * 100.0)
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


def test_efficient_head_parameter_count():
    big = HeteroscedasticHead(32, 100, covariance="efficient", rank=10, key=jax.random.key(0))
    full = HeteroscedasticHead(32, 100, covariance="lowrank", rank=10, key=jax.random.key(0))
    count = lambda m: sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array)))
    # noise parameters: O(DK + KR) against O(DKR)
    assert count((big.factor, big.shared_factor)) == 32 * 100 + 100 + 100 * 10
    assert count(full.factor) == (32 + 1) * 100 * 10


def test_batched_noise_parameters_match_per_example():
    head = make("efficient")
    rb = jax.random.normal(jax.random.key(10), (4, D))
    cov_b = head.covariance(rb)
    cov_1 = jnp.stack([head.covariance(x) for x in rb])
    np.testing.assert_allclose(cov_b, cov_1, rtol=1e-5, atol=1e-7)
    ll = head.log_likelihood(rb, jnp.array([0, 1, 2, 3]), key=jax.random.key(0))
    assert ll.shape == (4,)


def test_learned_tau_stays_in_bounds_and_is_differentiable(r):
    head = make("lowrank", tau=0.7, learn_tau=True, tau_bounds=(0.1, 2.0))
    np.testing.assert_allclose(head.tau, 0.7, rtol=1e-5)
    g = eqx.filter_grad(lambda h: h(r, key=jax.random.key(0))[1])(head)
    assert float(jnp.abs(g.tau_param)) > 0
    far = eqx.tree_at(lambda h: h.tau_param, head, jnp.asarray(50.0))
    assert 0.1 <= float(far.tau) <= 2.0


def test_stochastic_head_without_key_raises(r):
    with pytest.raises(ValueError, match="needs a PRNG key"):
        make("lowrank")(r)
    make("homoscedastic")(r)  # deterministic: no key needed


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(covariance="lowrank", rank=K), "rank"),
        (dict(covariance="lowrank", rank=0), "rank"),
        (dict(covariance="efficient", rank=7), "rank"),
        (dict(covariance="hetxl", rank=D), "rank"),
        (dict(covariance="lowrank", tau=0.0), "tau"),
        (dict(covariance="lowrank", tau=-1.0), "tau"),
        (dict(covariance="lowrank", tau_bounds=(1.0, 0.5)), "tau_bounds"),
        (dict(covariance="lowrank", tau_bounds=(0.0, 1.0)), "tau_bounds"),
        (dict(covariance="lowrank", learn_tau=True, tau=9.0), "tau"),
        (dict(covariance="full"), "covariance.*'full'"),
        (dict(covariance="lowrank", sampler="sobol"), "sampler"),
    ],
)
def test_bad_configuration_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HeteroscedasticHead(D, K, key=jax.random.key(0), **kwargs)


def test_bad_input_width_raises():
    head = make("lowrank")
    with pytest.raises(ValueError, match=r"in_features=6"):
        head(jnp.zeros(D + 1), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"one example"):
        head(jnp.zeros((2, D)), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"in_features=6"):
        head.covariance(jnp.zeros((3, 4)))
