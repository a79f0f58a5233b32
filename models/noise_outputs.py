r"""The raw noise outputs of a `HeteroscedasticHead`: their initial weights and their values.

Every raw output a noise family declares (`hetprobit.noise.RawOutput`) becomes a linear map
D -> prod(shape) of the representation (per-example outputs) or a free array (shared
outputs); the mean layer's own weight serves "mean_weight" outputs and is not built here.
`init_noise_outputs` builds them, `noise_outputs` evaluates them at r. Initialisation, by
`RawOutput.init`:

- "scale": weights scaled by `noise_init_scale` s (1e-2) and a bias such that
  d = softplus(bias) + min_scale = s;
- "small": weights and bias of size s;
- "default": `eqx.nn.Linear`'s initialisation.

So an untrained heteroscedastic head is close to the homoscedastic one (and Adam still moves
the noise parameters at the usual speed); Collier et al., "Correlated input-dependent label
noise in large-scale image classification" (2021, arXiv:2105.10305), Algorithm 1.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from hetprobit.noise import NoiseFamily

__all__ = ["apply_linear", "init_noise_outputs", "noise_outputs"]


def apply_linear(layer: eqx.nn.Linear, r: Array) -> Array:
    """Apply a one-example layer to r `(*batch, D)` (vmapped over flattened batch axes)."""
    if r.ndim == 1:
        return layer(r)
    flat = jax.vmap(layer)(r.reshape(-1, r.shape[-1]))
    return flat.reshape(*r.shape[:-1], flat.shape[-1])


def _scaled_linear(in_features, out_features, scale, bias, *, key):
    """eqx.nn.Linear with its weight multiplied by `scale` and its bias replaced."""
    layer = eqx.nn.Linear(in_features, out_features, key=key)
    return eqx.tree_at(lambda m: (m.weight, m.bias), layer, (layer.weight * scale, bias))


def _init_output(output, shape, D, s, d_bias, *, layer_key, random_key):
    """A linear layer D -> prod(shape) (per-example output) or an array (shared output)."""
    size = math.prod(shape)
    if output.kind == "shared":
        return s * jax.random.normal(random_key, shape)
    if output.init == "scale":
        return _scaled_linear(D, size, s, jnp.full((size,), d_bias), key=layer_key)
    if output.init == "small":
        bias = s * jax.random.normal(random_key, (size,))
        return _scaled_linear(D, size, s, bias, key=layer_key)
    return eqx.nn.Linear(D, size, key=layer_key)


def _output_keys(key, i):
    """(layer key, random key) of the i-th raw output.

    Chosen so the built-in structures keep the initial weights of earlier versions of the
    head (seeded results stay reproducible): the first output's layer uses split 1, the
    others split 2 (folded for i > 1), random biases / shared arrays split 3.
    """
    _, k_first, k_layer, k_random = jax.random.split(key, 4)
    layer = k_first if i == 0 else (k_layer if i == 1 else jax.random.fold_in(k_layer, i))
    return layer, (k_random if i <= 2 else jax.random.fold_in(k_random, i))


def init_noise_outputs(
    family: NoiseFamily,
    *,
    in_features: int,
    num_classes: int,
    rank: int,
    noise_init_scale: float,
    min_scale: float,
    key: PRNGKeyArray,
) -> tuple[dict[str, eqx.nn.Linear], dict[str, Array]]:
    """The per-example layers and the shared arrays of `family`'s raw outputs, by name.

    Outputs of kind "mean_weight" and outputs of size 0 (e.g. the strictly-lower part of a
    1 x 1 Cholesky factor) get nothing. `key` is the head's key (split 0 is the mean layer's).
    """
    D, s = in_features, float(noise_init_scale)
    # softplus(b) + min_scale = s  <=>  b = log(expm1(s - min_scale))
    d_bias = float(np.log(np.expm1(s - min_scale)))
    shapes = family.output_shapes(num_classes=num_classes, rank=rank, in_features=D)
    layers, shared = {}, {}
    for i, output in enumerate(family.outputs):
        if output.kind == "mean_weight":
            continue
        shape = shapes[output.name]
        if math.prod(shape) == 0:
            continue
        k_layer, k_random = _output_keys(key, i)
        target = shared if output.kind == "shared" else layers
        target[output.name] = _init_output(
            output, shape, D, s, d_bias, layer_key=k_layer, random_key=k_random
        )
    return layers, shared


def noise_outputs(
    family: NoiseFamily,
    r: Array,
    layers: dict[str, eqx.nn.Linear],
    shared: dict[str, Array],
    mean_weight: Array,
    *,
    num_classes: int,
    rank: int,
) -> dict[str, Array]:
    """The family's raw outputs at r `(*batch, D)` by name (per-example ones
    `(*batch, *shape)`; zeros for outputs of size 0, the mean weight for "mean_weight")."""
    batch = r.shape[:-1]
    shapes = family.output_shapes(num_classes=num_classes, rank=rank, in_features=r.shape[-1])
    raw = {}
    for output in family.outputs:
        shape = shapes[output.name]
        if output.kind == "mean_weight":
            raw[output.name] = mean_weight
        elif output.kind == "shared":
            raw[output.name] = shared[output.name]
        elif output.name in layers:
            raw[output.name] = apply_linear(layers[output.name], r).reshape(*batch, *shape)
        else:
            raw[output.name] = jnp.zeros((*batch, *shape), r.dtype)
    return raw
