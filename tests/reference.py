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
