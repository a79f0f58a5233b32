"""Independent references for the tests: scipy orthant probabilities and numpy Monte Carlo."""

import numpy as np
from scipy.stats import multivariate_normal, norm


def difference_matrix(K: int, c: int) -> np.ndarray:
    """A_c with rows e_c - e_j for j != c: P(y=c) = P(A_c u > 0)."""
    others = [j for j in range(K) if j != c]
    A = np.zeros((K - 1, K))
    A[:, c] = 1.0
    A[np.arange(K - 1), others] = -1.0
    return A


def scipy_choice_probs(mu, cov) -> np.ndarray:
    """P(argmax(mu + eps) = c), eps ~ N(0, cov), via scipy's multivariate normal CDF."""
    mu, cov = np.asarray(mu, np.float64), np.asarray(cov, np.float64)
    K = mu.shape[-1]
    out = np.empty(K)
    for c in range(K):
        A = difference_matrix(K, c)
        m, S = A @ mu, A @ cov @ A.T
        if K == 2:
            out[c] = norm.cdf(m[0] / np.sqrt(S[0, 0]))
        else:
            dist = multivariate_normal(
                mean=np.zeros(K - 1), cov=S, abseps=1e-9, releps=1e-9, maxpts=200_000 * K
            )
            out[c] = dist.cdf(m)
    return out


def random_spd(rng, K, scale=1.0):
    A = rng.normal(size=(K, K)) * scale
    return A @ A.T / K + 0.3 * scale**2 * np.eye(K)


# ------------------------------------------------------------------- metrics (test data, loops)


def softmax_case(seed=0, N=500, K=7, scale=2.0):
    """float32 (probs, log_probs, labels) with labels drawn from the probs themselves."""
    rng = np.random.default_rng(seed)
    logits = (scale * rng.normal(size=(N, K))).astype(np.float32)
    log_probs = (logits - np.log(np.exp(logits.astype(np.float64)).sum(1, keepdims=True))).astype(
        np.float32
    )
    probs = np.exp(log_probs.astype(np.float64))
    labels = np.array([rng.choice(K, p=p / p.sum()) for p in probs])
    return probs.astype(np.float32), log_probs, labels


def tied_probs(rng, N, K, n_rows=3, max_weight=3):
    """`(N, K)` float32 probabilities with many exact ties within and across rows.

    Rows are drawn (with replacement) from `n_rows` distinct rows whose entries are integer
    weights in {0, ..., max_weight} normalised to sum 1, so both the top-label confidences
    and the per-class probabilities take only a few values.
    """
    pool = rng.integers(0, max_weight + 1, size=(n_rows, K)).astype(np.float64)
    pool[pool.sum(1) == 0, 0] = 1.0
    pool = (pool / pool.sum(1, keepdims=True)).astype(np.float32)
    return pool[rng.integers(0, n_rows, size=N)]


def top_k_hits_by_sorting(probs, labels, k):
    """1[y in the first k of argsort(-p, stable)]: ties ordered by class index, ascending."""
    order = np.argsort(-np.asarray(probs, np.float64), axis=1, kind="stable")[:, :k]
    return (order == np.asarray(labels)[:, None]).any(axis=1)


def _ref_bin(v, n_bins, dtype=np.float64):
    """Right-closed equal-width bins, 0 -> bin 0, by explicit comparison with the edges.

    The edges b/B are rounded to `dtype`, the dtype of the probabilities (in float32 the
    edge 1/3 is 0.33333334, so a float32 probability 1/3 lies on it, in the lower bin).
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1).astype(dtype)
    for b in range(n_bins):
        if (v > edges[b] or b == 0) and v <= edges[b + 1]:
            return b
    raise AssertionError(v)


def _ref_ece_from(conf, hit, bins, n_bins):
    total = 0.0
    for b in range(n_bins):
        members = [i for i in range(len(conf)) if bins[i] == b]
        if members:
            acc = np.mean([hit[i] for i in members])
            cf = np.mean([conf[i] for i in members])
            total += len(members) / len(conf) * abs(acc - cf)
    return total


def _top_label(probs, labels):
    probs = np.asarray(probs, np.float64)
    return probs.max(1), (probs.argmax(1) == labels).astype(float)  # numpy: first index wins


def ref_ece(probs, labels, n_bins=15):
    """Top-label ECE, equal-width bins (Guo et al. 2017), by loops."""
    conf, hit = _top_label(probs, labels)
    dtype = np.asarray(probs).dtype
    return _ref_ece_from(conf, hit, [_ref_bin(c, n_bins, dtype) for c in conf], n_bins)


def ref_adaptive_ece(probs, labels, n_bins=15):
    """Equal-mass ECE: bin floor(m B / N), m = number of strictly smaller confidences."""
    conf, hit = _top_label(probs, labels)
    n = len(conf)
    bins = [int(np.sum(conf < c)) * n_bins // n for c in conf]
    return _ref_ece_from(conf, hit, bins, n_bins)


def ref_classwise_ece(probs, labels, n_bins=15):
    """Classwise ECE (Kull et al. 2019), by loops over classes and bins."""
    dtype = np.asarray(probs).dtype
    probs = np.asarray(probs, np.float64)
    K = probs.shape[1]
    total = 0.0
    for k in range(K):
        conf = probs[:, k]
        hit = (labels == k).astype(float)
        total += _ref_ece_from(conf, hit, [_ref_bin(c, n_bins, dtype) for c in conf], n_bins)
    return total / K


def compiled_temp_bytes(fn, *args) -> int:
    """Temporary memory (bytes) of `jax.jit(fn)` compiled for `args` (XLA memory analysis).

    Deterministic for a given backend, so memory claims can be tests, unlike timings.
    """
    import jax
    import pytest

    mem = jax.jit(fn).lower(*args).compile().memory_analysis()
    if mem is None:
        pytest.skip("memory_analysis unavailable on this backend")
    return mem.temp_size_in_bytes
