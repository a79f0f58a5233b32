"""`inference.predictive`: the predictive of a known model equals the hand-computed softmax,
a posterior predictive equals a brute-force Monte Carlo average, `evaluate` agrees with
scikit-learn."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer.autoguide import AutoNormal
from sklearn.metrics import accuracy_score, log_loss

from inference import evaluate, predict_log_probs, predict_probs

W = np.array([[1.0, -2.0], [0.5, 0.3], [-1.0, 1.5]], np.float32)  # (K=3, D=2)


def _point_model(x, y=None):
    w = numpyro.param("w", jnp.zeros((3, 2)))
    with numpyro.plate("data", x.shape[0]):
        return numpyro.sample("y", dist.Categorical(logits=x @ w.T), obs=y)


def _bayes_model(x, y=None):
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([3, 2]).to_event(2))
    with numpyro.plate("data", x.shape[0]):
        return numpyro.sample("y", dist.Categorical(logits=x @ w.T), obs=y)


def _x(n=40):
    return jax.random.normal(jax.random.key(0), (n, 2))


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True)


def test_point_predictive_is_the_models_softmax_in_any_chunking():
    x = _x()
    want = _softmax(np.asarray(x, np.float64) @ W.T)
    for batch_size in (None, 7):
        p = predict_probs(
            _point_model, None, {"w": W}, x, key=jax.random.key(1), batch_size=batch_size
        )
        np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-7)


def test_identical_calls_compile_once(count_traces):
    """A second call with new values of the same shapes reuses the compiled predictive (the
    per-call function is equal by configuration; it used to be a fresh closure per call)."""
    x = _x()
    predict_log_probs(_point_model, None, {"w": W}, x, key=jax.random.key(1), batch_size=7)
    x2, key = x + 1.0, jax.random.key(5)
    with count_traces() as traces:
        lp = predict_log_probs(_point_model, None, {"w": 2 * W}, x2, key=key, batch_size=7)
    assert traces == []
    want = _softmax(np.asarray(x2, np.float64) @ (2 * W).T)
    np.testing.assert_allclose(np.exp(lp), want, rtol=1e-5, atol=1e-7)


def test_posterior_predictive_is_the_monte_carlo_average():
    x = _x(10)
    loc, scale = W, np.full_like(W, 0.8)
    guide = AutoNormal(_bayes_model)
    numpyro.handlers.seed(guide, 0)(x, jnp.zeros(10, jnp.int32))  # set up, as SVI.init does
    params = {"w_auto_loc": jnp.asarray(loc), "w_auto_scale": jnp.asarray(scale)}
    P = 4000
    p = predict_probs(
        _bayes_model, guide, params, x, key=jax.random.key(2), num_posterior_samples=P
    )
    # brute force: our own draws w ~ N(loc, scale^2), average of softmax(x w^T)
    w = loc + scale * np.random.default_rng(0).standard_normal((P, 3, 2))
    want = _softmax(np.einsum("nd,pkd->pnk", np.asarray(x, np.float64), w)).mean(0)
    np.testing.assert_allclose(p, want, atol=0.04)  # MC sd <= 0.5 / sqrt(4000) per side, 3.5 sd
    point = _softmax(np.asarray(x, np.float64) @ W.T)
    assert np.max(np.abs(want - point)) > 0.05  # the average is not the point prediction
    tiny = {
        "w_auto_loc": jnp.asarray(loc),
        "w_auto_scale": jnp.full_like(params["w_auto_scale"], 1e-5),
    }
    p0 = predict_probs(_bayes_model, guide, tiny, x, key=jax.random.key(3), num_posterior_samples=8)
    np.testing.assert_allclose(p0, point, atol=1e-4)


def test_evaluate_agrees_with_sklearn():
    x = _x()
    y = np.asarray(jax.random.categorical(jax.random.key(4), x @ W.T))
    lp = predict_log_probs(_point_model, None, {"w": W}, x, key=jax.random.key(5))
    got = evaluate(lp, y)
    p = np.exp(np.asarray(lp, np.float64))
    np.testing.assert_allclose(got["nll"], log_loss(y, p / p.sum(-1, keepdims=True)), rtol=1e-4)
    np.testing.assert_allclose(got["accuracy"], accuracy_score(y, p.argmax(-1)), rtol=1e-6)
