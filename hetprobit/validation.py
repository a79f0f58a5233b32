"""Input validation shared by the whole package (public: `hetprobit.validation`).

Every public function validates its inputs with these helpers so that bad input fails
loudly, naming the argument and the offending value, instead of producing a NaN loss or a
silent broadcast. Value checks (finiteness, label range) only run on concrete arrays: under
`jax.jit` / `jax.grad` tracing the values are unknown, and shape checks still apply.
"""

from __future__ import annotations

import math
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "is_concrete",
    "check_array",
    "check_finite",
    "check_positive",
    "check_labels",
    "check_indicator_labels",
    "check_num_classes",
    "check_rank",
    "check_positive_int",
    "check_scores_and_labels",
    "check_covariance",
    "check_key",
    "check_not_half",
    "PSD_JIT_MAX_DIM",
]

PSD_JIT_MAX_DIM = 64  # under jit, eigenvalues are checked (eqx.error_if) only up to this K


def is_concrete(x) -> bool:
    """True when `x` holds actual values (not a JAX tracer inside jit/grad/vmap)."""
    return not isinstance(x, jax.core.Tracer)


def _describe(x) -> str:
    shape = getattr(x, "shape", ())
    return f"array of shape {tuple(shape)}" if shape else repr(x)


def check_array(name: str, x, *, min_ndim: int = 0, ndim: int | None = None):
    """Convert to a floating JAX array and check its rank and that it is non-empty."""
    if x is None:
        raise TypeError(f"`{name}` is required, got None")
    try:
        arr = jnp.asarray(x)
    except TypeError as err:
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}") from err
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimensions, got shape {arr.shape}")
    if arr.ndim < min_ndim:
        raise ValueError(
            f"`{name}` must have at least {min_ndim} dimensions, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"`{name}` is empty (shape {arr.shape})")
    return arr


def check_finite(name: str, x):
    """Raise if a concrete array contains NaN or +-inf; returns `x` unchanged."""
    if is_concrete(x):
        arr = np.asarray(x)
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))
            first = tuple(int(i) for i in bad[0]) if arr.ndim else ()
            raise ValueError(
                f"`{name}` contains {len(bad)} non-finite value(s) (NaN or inf), "
                f"first at index {first}: {arr[first] if arr.ndim else arr}"
            )
    return x


def check_positive(name: str, value, *, allow_array: bool = False):
    """Raise unless `value` is finite and strictly positive (e.g. a temperature)."""
    if value is None:
        raise TypeError(f"`{name}` is required, got None")
    if not is_concrete(value):
        return value
    arr = np.asarray(value)
    if arr.ndim and not allow_array:
        raise ValueError(f"`{name}` must be a scalar, got {_describe(value)}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"`{name}` must be a real number, got {value!r}")
    if not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"`{name}` must be finite and > 0, got {value!r}")
    return value


def check_positive_int(name: str, value, *, minimum: int = 1) -> int:
    """Raise unless `value` is a Python/NumPy integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return int(value)


def check_num_classes(name: str, num_classes: int, *, minimum: int = 2) -> int:
    """Number of classes K must be an integer >= 2 (>= 1 for multilabel)."""
    return check_positive_int(name, num_classes, minimum=minimum)


def check_rank(rank: int, num_classes: int, *, name: str = "rank") -> int:
    """Low-rank factor width R must satisfy 1 <= R < K."""
    check_positive_int(name, rank, minimum=1)
    if rank >= num_classes:
        raise ValueError(
            f"`{name}` must be smaller than the number of classes K={num_classes} "
            f"(a rank >= K is not low-rank; use a full covariance), got {name}={rank}"
        )
    return int(rank)


def check_labels(name: str, labels, num_classes: int):
    """Integer class labels in [0, K). Returns an int32 array."""
    arr = jnp.asarray(labels)
    if not (jnp.issubdtype(arr.dtype, jnp.integer) or jnp.issubdtype(arr.dtype, jnp.bool_)):
        if is_concrete(arr):
            host = np.asarray(arr)
            if not np.all(np.isfinite(host)) or not np.all(host == np.round(host)):
                raise ValueError(f"`{name}` must hold integer class labels, got dtype {arr.dtype}")
        else:
            raise TypeError(f"`{name}` must have an integer dtype, got {arr.dtype}")
    arr = arr.astype(jnp.int32)
    if is_concrete(arr) and arr.size:
        host = np.asarray(arr)
        lo, hi = int(host.min()), int(host.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"`{name}` must lie in [0, {num_classes - 1}] for K={num_classes} classes, "
                f"found label {bad}"
            )
    return arr


def check_indicator_labels(name: str, labels):
    """Multilabel targets: an array of 0/1 (bool or numeric). Returns float array."""
    arr = jnp.asarray(labels)
    if is_concrete(arr):
        host = np.asarray(arr)
        if host.size == 0:
            raise ValueError(f"`{name}` is empty (shape {host.shape})")
        if not np.all((host == 0) | (host == 1)):
            bad = host[~((host == 0) | (host == 1))].ravel()[0]
            raise ValueError(f"`{name}` must contain only 0/1 indicators, found {bad!r}")
    return arr.astype(jnp.result_type(float))


def check_scores_and_labels(name: str, scores, labels):
    """Finite `(..., K)` scores (logits or probabilities, K >= 2) and integer labels of shape
    `scores.shape[:-1]` in [0, K). Returns `(scores, labels)` as arrays."""
    scores = check_array(name, scores, min_ndim=1)
    check_finite(name, scores)
    K = scores.shape[-1]
    if K < 2:
        raise ValueError(f"`{name}` must have K >= 2 classes on its last axis, got {scores.shape}")
    labels_arr = jnp.asarray(labels)
    if labels_arr.shape != scores.shape[:-1]:
        raise ValueError(
            f"`labels` must have shape {scores.shape[:-1]} to match `{name}` of shape "
            f"{scores.shape}, got {labels_arr.shape}"
        )
    return scores, check_labels("labels", labels_arr, K)


def _psd_tolerance(dtype, dim: int) -> float:
    """Relative tolerance on the smallest eigenvalue: rounding of a PSD matrix's eigenvalues
    is about dim * eps * max|eigenvalue| (Golub & Van Loan 2013, Sec. 8.1)."""
    return 50.0 * dim * float(np.finfo(dtype).eps)


def check_covariance(name: str, cov, *, jit_max_dim: int = PSD_JIT_MAX_DIM):
    """Check a dense covariance `(..., K, K)`: square, finite, symmetric and positive
    semi-definite, i.e. its smallest eigenvalue >= -tol * max|eigenvalue| with
    tol = 50 K eps (rounding). Returns `cov` (as a floating array).

    Concrete arrays are checked eagerly (NumPy `eigvalsh`): a ValueError names `name`, the
    smallest eigenvalue and (for a batch) the index of the worst matrix. Under jit the
    eigenvalue check runs inside the graph through `eqx.error_if` when K <= `jit_max_dim`
    (an O(K^3) `eigvalsh` per matrix); larger traced matrices are not checked.

    Raises:
        ValueError: not square, not finite, not symmetric (relative asymmetry above
            100 sqrt(eps)) or not positive semi-definite.
    """
    cov = check_array(name, cov, min_ndim=2)
    check_finite(name, cov)
    if cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"`{name}` must be square in its last two axes, got shape {cov.shape}")
    K = cov.shape[-1]
    tol = _psd_tolerance(cov.dtype, K)
    if is_concrete(cov):
        host = np.asarray(cov, dtype=np.float64)
        scale = np.maximum(np.max(np.abs(host), axis=(-2, -1), keepdims=True), 1e-300)
        asym = np.abs(host - np.swapaxes(host, -1, -2)) / scale
        sym_tol = 100.0 * math.sqrt(np.finfo(cov.dtype).eps)
        if np.any(asym > sym_tol):
            raise ValueError(
                f"`{name}` must be symmetric; max relative asymmetry {asym.max():.3g} > "
                f"{sym_tol:.1e}"
            )
        eig = np.linalg.eigvalsh(0.5 * (host + np.swapaxes(host, -1, -2)))
        lo, top = eig[..., 0], np.max(np.abs(eig), axis=-1)
        rel = lo / np.maximum(top, 1e-300)
        if np.any(rel < -tol):
            worst = np.unravel_index(np.argmin(rel), rel.shape) if rel.ndim else ()
            where = f" (matrix at batch index {tuple(int(i) for i in worst)})" if worst else ""
            raise ValueError(
                f"`{name}` must be positive semi-definite; its smallest eigenvalue is "
                f"{float(lo[worst]):.6g}{where}, below -{tol:.1e} x the largest |eigenvalue| "
                f"{float(top[worst]):.6g}"
            )
        return cov
    if K > jit_max_dim:
        return cov
    c = jax.lax.stop_gradient(cov)
    eig = jnp.linalg.eigvalsh(0.5 * (c + jnp.swapaxes(c, -1, -2)))
    top = jnp.max(jnp.abs(eig), axis=-1)
    bad = jnp.any(eig[..., 0] < -tol * top)
    return eqx.error_if(
        cov,
        bad,
        f"`{name}` must be positive semi-definite (an eigenvalue is below -{tol:.1e} "
        "x the largest |eigenvalue|)",
    )


def check_key(name: str, key, *, allow_none: bool = False):
    """Raise a TypeError unless `key` is a JAX PRNG key (typed `jax.random.key` or legacy
    uint32 `jax.random.PRNGKey`). Returns `key`.

    Raises:
        TypeError: `key` is a Python/NumPy number, a float array, or None (unless allowed).
    """
    if key is None:
        if allow_none:
            return key
        raise TypeError(f"`{name}` is required: pass a PRNG key such as jax.random.key(0)")
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return key
    if dtype == jnp.uint32 and getattr(key, "shape", ())[-1:] == (2,):
        return key  # legacy jax.random.PRNGKey
    raise TypeError(
        f"`{name}` must be a JAX PRNG key such as jax.random.key(0), got "
        f"{type(key).__name__} {key!r:.60}"
    )


def check_not_half(name: str, x):
    """Raise a TypeError for half-precision (float16 / bfloat16) input; returns `x`.

    The package computes in float32 or float64 only: the Monte Carlo log-mean-exp, the GHK
    integrals and log Phi underflow or lose all accuracy in 10-bit mantissas, so half
    precision is refused up front rather than failing deep inside `lax.scan` or returning
    silently wrong numbers. Cast with `x.astype(jnp.float32)`.

    Raises:
        TypeError: `x` has dtype float16 or bfloat16.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is not None and jnp.dtype(dtype) in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16)):
        raise TypeError(
            f"`{name}` has dtype {jnp.dtype(dtype).name}; half precision is not supported, "
            f"cast it with `{name}.astype(jnp.float32)`"
        )
    return x
