r"""Standard-normal draws for the Monte Carlo likelihoods, addressable by sample index.

Draw number s (0 <= s < S) is a pure function of `(key, s)`, never of how the S samples are
split into chunks, so a chunked estimate equals the unchunked one for the same key.

Samplers:

- ``"mc"``: plain Monte Carlo, z_s ~ N(0, I) from `fold_in(key, s)`.
- ``"antithetic"``: pairs (z, -z): z_{2i} = g_i, z_{2i+1} = -g_i. Needs an even S. Exact
  for odd functions, and the pairs cancel the first-order error term.
- ``"qmc"``: randomised quasi-Monte Carlo. Point s of a randomly shifted Kronecker
  lattice, u_s = frac(Delta + s alpha) with alpha_j = frac(phi_d^{-(j+1)}) the R_d
  generating vector (phi_d the unique positive root of x^{d+1} = x + 1) and a uniform random
  shift Delta from `key`, mapped through the normal inverse CDF z = Phi^{-1}(u). Arithmetic
  is exact 32-bit fixed point (integer multiply mod 2^32), so points stay accurate for any
  S. Each independent shift gives an unbiased estimate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri
from jaxtyping import Array, Int, PRNGKeyArray

__all__ = ["SAMPLERS", "standard_normal_draws", "kronecker_generator"]

SAMPLERS = ("mc", "antithetic", "qmc")


def kronecker_generator(dim: int) -> np.ndarray:
    """R_d generating vector as uint32 fixed point: round(2^32 frac(phi_d^{-(j+1)}))."""
    phi = 2.0
    for _ in range(64):  # fixed-point iteration for x^{d+1} = x + 1
        phi = (1.0 + phi) ** (1.0 / (dim + 1))
    alpha = np.mod(phi ** -np.arange(1, dim + 1, dtype=np.float64), 1.0)
    return np.mod(np.round(alpha * 2.0**32), 2.0**32).astype(np.uint32)


def _uint32_to_normal(bits: Array, dtype) -> Array:
    """Map uniform uint32 bits to N(0,1) through the inverse CDF, never hitting 0 or 1."""
    if jnp.dtype(dtype) == jnp.float64:
        u = (bits.astype(jnp.float64) + 0.5) * 2.0**-32
    else:
        u = ((bits >> 8).astype(jnp.float32) + 0.5) * 2.0**-24
    return ndtri(u)


def standard_normal_draws(
    key: PRNGKeyArray,
    indices: Int[Array, " C"],
    shape: tuple[int, ...],
    *,
    sampler: str = "mc",
    dtype=None,
) -> Array:
    """Standard-normal draws number `indices` of a stream, shape `(C, *shape)`.

    Args:
        key: PRNG key of the stream; same key and index, same draw.
        indices: sample numbers s to produce, shape `(C,)`.
        shape: shape of one draw, e.g. `(B, K + R)` or `(1, K + R)` when shared.
        sampler: one of `SAMPLERS`.
        dtype: floating dtype (default: JAX's default float).
    """
    dtype = jnp.dtype(dtype or jnp.result_type(float))
    if sampler == "mc":
        return jax.vmap(lambda s: jax.random.normal(jax.random.fold_in(key, s), shape, dtype))(
            indices
        )
    if sampler == "antithetic":
        sign = jnp.where(indices % 2 == 0, 1.0, -1.0).astype(dtype)
        base = jax.vmap(
            lambda s: jax.random.normal(jax.random.fold_in(key, s // 2), shape, dtype)
        )(indices)
        return sign.reshape((-1,) + (1,) * len(shape)) * base
    if sampler == "qmc":
        alpha = jnp.asarray(kronecker_generator(shape[-1]))
        shift = jax.random.bits(key, shape, jnp.uint32)
        s = indices.astype(jnp.uint32).reshape((-1,) + (1,) * len(shape))
        bits = shift[None] + s * alpha.reshape((1,) * len(shape) + alpha.shape)
        return _uint32_to_normal(bits, dtype)
    raise ValueError(f"`sampler` must be one of {SAMPLERS}, got {sampler!r}")
