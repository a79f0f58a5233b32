r"""Class-sharded tempered softmax likelihoods: the K axis of a large head split over devices.

For ImageNet-21k / JFT-sized heads (K ~ 2e4 .. 3e4, S ~ 1e3 draws) the K x S work and the
class-indexed parameters outgrow one device. Here the class axis of mu, of the noise
structure's class-indexed arrays (d, v and W of the parameter-efficient structure, V of the
low-rank one, the `(K, D)` projection of HET-XL) and of every per-draw utility u^(s) lives
on a mesh axis ("class"), combined with a data axis ("data") that splits the examples:

    log p_y ≈ log (1/S) Σ_s exp(u_y^(s)/tau - LSE_k u_k^(s)/tau),
    LSE_k u_k = M + log psum_shards Σ_{k in shard} exp(u_k - M),  M = pmax_shards max_k u_k,

i.e. per draw one `pmax` and two `psum`s of `(B_local, C)` values over the class axis
(`jax.shard_map`); no device ever holds a `(B, C, K)` tensor, only `(B / data, C, K / class)`.
Samples are streamed in chunks of C under `lax.scan` with an online log-sum-exp, and the
chunk body is rematerialised (`jax.checkpoint`) for the gradient, so memory does not grow
with S (the same scheme as `hetprobit.likelihood`; gradients flow through the collectives
by JAX's own shard_map AD).

The draws are the core's (`hetprobit.sampling.standard_normal_draws`): every device draws
only its block of the global `(B, K + R)` (HET-XL: `(B, D + R)`) draw with global element
numbers (`full_shape` / `offset`), so the sharded estimate equals the unsharded
`tempered_softmax_log_likelihood` with the same key, up to the order of floating-point sums.
A K that the class shards do not divide (ImageNet-21k: 21,843) is padded to the next
multiple; the padding classes are masked out of every log-sum-exp.

Heteroscedastic heads: Collier et al., "Correlated input-dependent label noise in
large-scale image classification" (2021, arXiv:2105.10305); HET-XL: Collier et al.,
"Massively scaling heteroscedastic classifiers" (2023, arXiv:2301.12860).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .likelihood import default_chunk_size
from .montecarlo import MonteCarlo
from .noise import DiagonalNoise, HetXLNoise, LowRankNoise, NoiseStructure, ParameterEfficientNoise
from .sampling import standard_normal_draws
from .validation import check_labels, check_positive, check_positive_int

__all__ = [
    "CLASS_AXIS",
    "DATA_AXIS",
    "SHARDABLE_NOISE",
    "class_mesh",
    "noise_partition_spec",
    "class_sharded_log_likelihood",
    "class_sharded_log_probs",
]

DATA_AXIS = "data"
CLASS_AXIS = "class"

# Per structure: trailing (non-batch) dims of each field and the class axis among them
# (counted from the end), None where the field has no class axis.
_LAYOUT = {
    DiagonalNoise: {"scale": (1, -1)},
    LowRankNoise: {"scale": (1, -1), "factor": (2, -2)},
    ParameterEfficientNoise: {"scale": (1, -1), "v": (1, -1), "factor": (2, -2)},
    HetXLNoise: {"scale": (1, None), "factor": (2, None), "projection": (2, -2)},
}
SHARDABLE_NOISE = tuple(_LAYOUT)


def class_mesh(devices: Sequence[jax.Device] | None = None, *, num_class_shards: int) -> Mesh:
    """A `(data, class)` mesh: `len(devices) / num_class_shards` x `num_class_shards`.

    Raises:
        ValueError: `num_class_shards` does not divide the number of devices.
    """
    devices = list(jax.devices() if devices is None else devices)
    n = check_positive_int("num_class_shards", num_class_shards)
    if len(devices) % n:
        raise ValueError(f"`num_class_shards` ({n}) must divide the {len(devices)} devices")
    grid = np.asarray(devices, dtype=object).reshape(len(devices) // n, n)
    return Mesh(grid, (DATA_AXIS, CLASS_AXIS))


def noise_partition_spec(
    noise: NoiseStructure, *, data_axis: str = DATA_AXIS, class_axis: str = CLASS_AXIS
):
    """A pytree like `noise` of `PartitionSpec`s: batch axis on `data_axis`, class axis on
    `class_axis`, everything else replicated (place with `NamedSharding(mesh, spec)`).

    Raises:
        TypeError: a structure without a class-shardable layout (`SHARDABLE_NOISE`).
    """
    layout = _LAYOUT.get(type(noise))
    if layout is None:
        raise TypeError(
            f"`noise` {type(noise).__name__} cannot be class-sharded; supported: "
            f"{[c.__name__ for c in SHARDABLE_NOISE]}"
        )

    def spec(path, leaf):
        trailing, class_at = layout[path[-1].name]
        entries = [data_axis] * (leaf.ndim - trailing) + [None] * trailing
        if class_at is not None:
            entries[class_at] = class_axis
        return PartitionSpec(*entries)

    return jax.tree_util.tree_map_with_path(spec, noise)


def _local_draws(noise, key, idx, b0, k0, cfg):
    """This device's block of the global draws, `(B_local, C, num_draws_local)`."""
    B_full, B, K_full, K, _ = cfg["sizes"]
    opts = dict(sampler=cfg["sampler"], dtype=cfg["dtype"], axis=1)
    rows = 1 if cfg["share_draws"] else B
    b0 = 0 if cfg["share_draws"] else b0
    full_rows = 1 if cfg["share_draws"] else B_full
    if isinstance(noise, HetXLNoise):  # draws live in representation space: no class axis
        n = noise.num_draws
        return standard_normal_draws(
            key, idx, (rows, n), full_shape=(full_rows, n), offset=(b0, 0), **opts
        )
    R, full = noise.rank, (full_rows, K_full + noise.rank)
    z = standard_normal_draws(key, idx, (rows, K), full_shape=full, offset=(b0, k0), **opts)
    if R:
        z_R = standard_normal_draws(
            key, idx, (rows, R), full_shape=full, offset=(b0, K_full), **opts
        )
        z = jnp.concatenate([z, z_R], axis=-1)
    return z


def _global_lse(u, valid, class_axis):
    """log Σ_k exp(u_k) over the real classes of all shards, `(B, C, K_local)` -> `(B, C)`
    (`valid` `(K_local,)` masks the padding classes; None: no padding)."""
    if valid is None:
        m = lax.pmax(lax.stop_gradient(jnp.max(u, axis=-1)), class_axis)
        terms = jnp.exp(u - m[..., None])
    else:
        m = jnp.max(jnp.where(valid, u, -jnp.inf), axis=-1)
        m = lax.pmax(lax.stop_gradient(m), class_axis)
        terms = jnp.where(valid, jnp.exp(u - m[..., None]), 0.0)
    return m + jnp.log(lax.psum(jnp.sum(terms, axis=-1), class_axis))


def _pad_classes(mu, noise, K_pad):
    """Pad the class axis of mu (zeros) and of the noise arrays (edge values) to K_pad."""
    K = mu.shape[-1]
    if K_pad == K:
        return mu, noise
    layout = _LAYOUT[type(noise)]

    def pad(path, leaf):
        class_at = layout[path[-1].name][1]
        if class_at is None:
            return leaf
        widths = [(0, 0)] * leaf.ndim
        widths[class_at] = (0, K_pad - K)
        return jnp.pad(leaf, widths, mode="edge")

    mu = jnp.pad(mu, ((0, 0), (0, K_pad - K)))
    return mu, jax.tree_util.tree_map_with_path(pad, noise)


def _stream(mu, noise, tau, aux, key, cfg):
    """Per-device body: log (1/S) Σ_s exp f_s, streamed over chunks (`shard_map` local)."""
    data_axis, class_axis, observed = cfg["data_axis"], cfg["class_axis"], cfg["observed"]
    B, K = mu.shape
    b0 = lax.axis_index(data_axis) * B
    k0 = lax.axis_index(class_axis) * K
    C, S = cfg["chunk_size"], cfg["num_samples"]

    def values(chunk):
        idx = chunk * C + jnp.arange(C)
        z = _local_draws(noise, key, idx, b0, k0, cfg)
        u = (mu[:, None, :] + noise.transform_draws(z)) / tau
        padded = K * cfg["sizes"][-1] > cfg["num_classes"]
        valid = (k0 + jnp.arange(K)) < cfg["num_classes"] if padded else None
        lse = _global_lse(u, valid, class_axis)
        if observed:  # aux: labels (B,); the observed utility lives on one shard
            one_hot = jax.nn.one_hot(aux - k0, K, dtype=u.dtype)
            vals = lax.psum(jnp.sum(u * one_hot[:, None, :], axis=-1), class_axis) - lse
        else:
            vals = u - lse[..., None]
        valid = (idx < S).reshape((1, C) + (1,) * (vals.ndim - 2))
        return jnp.where(valid, vals, -jnp.inf)

    @jax.checkpoint
    def body(carry, chunk):
        running_max, running_sum = carry
        vals = values(chunk)
        new_max = lax.stop_gradient(jnp.maximum(running_max, jnp.max(vals, axis=1)))
        scaled = running_sum * jnp.exp(running_max - new_max)
        return (new_max, scaled + jnp.sum(jnp.exp(vals - new_max[:, None]), axis=1)), None

    out_shape = (B,) if observed else (B, K)
    init = (jnp.full(out_shape, -jnp.inf, mu.dtype), jnp.zeros(out_shape, mu.dtype))
    axes = (data_axis,) if observed else (data_axis, class_axis)
    init = jax.tree.map(lambda x: lax.pcast(x, axes, to="varying"), init)
    (m, total), _ = lax.scan(body, init, jnp.arange(-(-S // C)))
    return m + jnp.log(total) - jnp.log(jnp.asarray(S, mu.dtype))


def _sharded(
    mu,
    noise,
    aux,
    *,
    key,
    mesh,
    tau,
    num_samples,
    chunk_size,
    sampler,
    share_draws,
    data_axis,
    class_axis,
    observed,
):
    mu = jnp.asarray(mu)
    if mu.ndim != 2:
        raise ValueError(f"`mu` must have shape (B, K), got {mu.shape}")
    if not isinstance(mesh, Mesh) or not {data_axis, class_axis} <= set(mesh.axis_names):
        raise ValueError(f"`mesh` must be a Mesh with axes {data_axis!r}, {class_axis!r}: {mesh}")
    B_full, K_full = mu.shape
    n_data, n_class = mesh.shape[data_axis], mesh.shape[class_axis]
    if B_full % n_data:
        raise ValueError(f"`mu` shape {mu.shape}: B must be a multiple of the {n_data} data shards")
    if noise.num_classes != K_full or noise.batch_shape not in ((), (B_full,)):
        raise ValueError(
            f"`noise` (K={noise.num_classes}, batch {noise.batch_shape}) does not match "
            f"`mu` {mu.shape}"
        )
    check_positive("tau", tau)
    MonteCarlo(num_samples=num_samples, sampler=sampler, chunk_size=chunk_size)  # validates
    if not isinstance(noise, SHARDABLE_NOISE):
        noise_partition_spec(noise)  # raises the TypeError
    B, K = B_full // n_data, -(-K_full // n_class)  # K padded up to a multiple of the shards
    if isinstance(noise, (ParameterEfficientNoise, LowRankNoise)) and not noise.rank < K:
        raise ValueError(f"rank R={noise.rank} must be below the K/{n_class}={K} local classes")
    # default: the one-device chunk, so a device's (B/data, C, K/class) block shrinks with
    # the shards (pass a larger `chunk_size` to trade the memory for fewer scan steps)
    chunk = min(chunk_size or default_chunk_size(num_samples, B_full, K_full), num_samples)
    cfg = dict(
        sizes=(B_full, B, K_full, K, n_class),
        sampler=sampler,
        dtype=mu.dtype,
        share_draws=share_draws,
        data_axis=data_axis,
        class_axis=class_axis,
        observed=observed,
        chunk_size=check_positive_int("chunk_size", chunk),
        num_samples=num_samples,
        num_classes=K_full,
    )
    P = PartitionSpec
    noise_spec = noise_partition_spec(noise, data_axis=data_axis, class_axis=class_axis)
    aux_spec = P(data_axis) if observed else P()
    out_spec = P(data_axis) if observed else P(data_axis, class_axis)
    fn = jax.shard_map(
        partial(_stream, cfg=cfg),
        mesh=mesh,
        in_specs=(P(data_axis, class_axis), noise_spec, P(), aux_spec, P()),
        out_specs=out_spec,
    )
    if aux is None:
        aux = jnp.zeros((), jnp.int32)
    out = fn(*_pad_classes(mu, noise, K * n_class), jnp.asarray(tau, mu.dtype), aux, key)
    return out if observed else out[:, :K_full]


def class_sharded_log_likelihood(
    mu: Float[Array, "B K"],
    noise: NoiseStructure,
    labels: Int[Array, " B"],
    *,
    key: PRNGKeyArray,
    mesh: Mesh,
    tau: float | Float[Array, ""] = 1.0,
    num_samples: int = 256,
    chunk_size: int | None = None,
    sampler: str = "mc",
    share_draws: bool = False,
    data_axis: str = DATA_AXIS,
    class_axis: str = CLASS_AXIS,
) -> Float[Array, " B"]:
    """`tempered_softmax_log_likelihood` with examples on `data_axis` and classes on
    `class_axis` of `mesh` (module docstring); equal to it for the same key.

    Args:
        mu: `(B, K)` mean utilities, B divisible by the data shards. A K that the class
            shards do not divide is padded inside (the padding classes are masked out of
            every log-sum-exp; ImageNet-21k's K = 21,843 is odd).
        noise: one of `SHARDABLE_NOISE` over K classes, batch shape `(B,)` or `()`.
        labels: `(B,)` integers in [0, K).
        key, tau, num_samples, chunk_size, sampler, share_draws: as in the core estimator
            (`chunk_size`: samples per chunk; default the one-device default, so the
            per-device chunk `(B/data, C, K/class)` shrinks as the shards grow).
        mesh: a `Mesh` with both axes (`class_mesh`).

    Returns:
        `(B,)` per-example log-likelihoods, sharded over `data_axis`.

    Raises:
        ValueError: shapes that do not divide over the mesh or do not match; a rank R not
            below the local class count; bad Monte Carlo settings; labels outside [0, K).
        TypeError: a noise structure that cannot be class-sharded.
    """
    labels = check_labels("labels", labels, jnp.shape(mu)[-1])
    if labels.shape != jnp.shape(mu)[:1]:
        raise ValueError(f"`labels` must have shape {jnp.shape(mu)[:1]}, got {labels.shape}")
    return _sharded(
        mu, noise, labels, key=key, mesh=mesh, tau=tau, num_samples=num_samples,
        chunk_size=chunk_size, sampler=sampler, share_draws=share_draws,
        data_axis=data_axis, class_axis=class_axis, observed=True,
    )  # fmt: skip


def class_sharded_log_probs(
    mu: Float[Array, "B K"],
    noise: NoiseStructure,
    *,
    key: PRNGKeyArray,
    mesh: Mesh,
    tau: float | Float[Array, ""] = 1.0,
    num_samples: int = 256,
    chunk_size: int | None = None,
    sampler: str = "mc",
    share_draws: bool = False,
    data_axis: str = DATA_AXIS,
    class_axis: str = CLASS_AXIS,
) -> Float[Array, "B K"]:
    """`tempered_softmax_log_probs` sharded like `class_sharded_log_likelihood`: the
    predictive `(B, K)` log-probabilities, sharded over (`data_axis`, `class_axis`) (a
    padded K is sliced back to K, which XLA may gather).

    Raises:
        As `class_sharded_log_likelihood`.
    """
    return _sharded(
        mu, noise, None, key=key, mesh=mesh, tau=tau, num_samples=num_samples,
        chunk_size=chunk_size, sampler=sampler, share_draws=share_draws,
        data_axis=data_axis, class_axis=class_axis, observed=False,
    )  # fmt: skip
