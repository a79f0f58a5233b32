r"""Equinox backbones: one example x -> representation r(x) of width D.

Layers are written for ONE example, as in equinox; batch with `jax.vmap`:

    >>> net = MLP(in_features=4, features=16, key=jax.random.key(0))
    >>> r = jax.vmap(net)(x)          # x: (B, 4) -> r: (B, 16)

- `MLP`: a thin wrapper of `eqx.nn.MLP` whose output is the representation (the final
  activation is applied to it, so r(x) is a hidden layer, not logits).
- `ResNet`: a small residual convnet for single-channel images (8x8 digits, 28x28 MNIST-like):
  a 3x3 stem, `num_stages` stages of `blocks_per_stage` pre-activation residual blocks
  (GroupNorm -> ReLU -> 3x3 conv, twice, plus the skip), stride-2 downsampling between
  stages, global average pooling and a linear map to D.

Neither backbone is stochastic or stateful (GroupNorm, not BatchNorm), so they take no key
when called and drop straight into `numpyro.contrib.module.eqx_module`.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from hetprobit.validation import check_positive_int

__all__ = ["MLP", "ResNet", "ResidualBlock"]


class MLP(eqx.Module):
    """Multi-layer perceptron x `(in_features,)` -> r(x) `(features,)`.

    Args:
        in_features: input width p.
        features: representation width D.
        width: hidden width.
        depth: number of hidden layers (`eqx.nn.MLP`'s depth; 0 gives one linear layer).
        activation: hidden activation, also applied to the output representation.
        key: PRNG key (keyword-only).
    """

    mlp: eqx.nn.MLP
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        features: int,
        *,
        width: int = 64,
        depth: int = 2,
        activation: Callable = jax.nn.gelu,
        key: PRNGKeyArray,
    ):
        check_positive_int("in_features", in_features)
        check_positive_int("features", features)
        check_positive_int("width", width)
        check_positive_int("depth", depth, minimum=0)
        self.in_features, self.features = int(in_features), int(features)
        self.mlp = eqx.nn.MLP(
            in_features,
            features,
            width,
            depth,
            activation=activation,
            final_activation=activation,
            key=key,
        )

    def __call__(self, x: Float[Array, " p"]) -> Float[Array, " D"]:
        x = jnp.asarray(x)
        if x.shape != (self.in_features,):
            raise ValueError(
                f"MLP expects one example of shape ({self.in_features},), got x.shape={x.shape}; "
                "batch with jax.vmap"
            )
        return self.mlp(x)


class ResidualBlock(eqx.Module):
    """Pre-activation residual block: x + conv(relu(norm(conv(relu(norm(x)))))), `(C, H, W)`."""

    norm1: eqx.nn.GroupNorm
    conv1: eqx.nn.Conv2d
    norm2: eqx.nn.GroupNorm
    conv2: eqx.nn.Conv2d

    def __init__(self, channels: int, *, groups: int, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        self.norm1 = eqx.nn.GroupNorm(groups, channels)
        self.conv1 = eqx.nn.Conv2d(channels, channels, 3, padding=1, key=k1)
        self.norm2 = eqx.nn.GroupNorm(groups, channels)
        conv2 = eqx.nn.Conv2d(channels, channels, 3, padding=1, key=k2)
        # zero-init the residual branch's last conv: every block starts as the identity
        self.conv2 = eqx.tree_at(lambda c: c.weight, conv2, jnp.zeros_like(conv2.weight))

    def __call__(self, x: Float[Array, "C H W"]) -> Float[Array, "C H W"]:
        h = self.conv1(jax.nn.relu(self.norm1(x)))
        return x + self.conv2(jax.nn.relu(self.norm2(h)))


class ResNet(eqx.Module):
    """Small residual convnet for single-channel images, one example -> r(x) `(features,)`.

    Input: an image `(H, W)`, `(1, H, W)` or a flattened `(H * W,)` vector (square images;
    8x8 digits are `(64,)` in scikit-learn). Spatial size halves between stages (stride-2
    3x3 conv), so 8x8 with 2 stages ends at 4x4 and 28x28 with 3 stages at 7x7.

    Args:
        image_size: side length H = W (e.g. 8 or 28).
        features: representation width D.
        channels: channels of the first stage (doubled at each later stage).
        num_stages, blocks_per_stage: depth.
        key: PRNG key (keyword-only).
    """

    stem: eqx.nn.Conv2d
    blocks: tuple[tuple[ResidualBlock, ...], ...]
    downsample: tuple[eqx.nn.Conv2d, ...]
    norm: eqx.nn.GroupNorm
    out: eqx.nn.Linear
    image_size: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(
        self,
        image_size: int,
        features: int,
        *,
        channels: int = 16,
        num_stages: int = 2,
        blocks_per_stage: int = 1,
        key: PRNGKeyArray,
    ):
        self.image_size = check_positive_int("image_size", image_size, minimum=4)
        self.features = check_positive_int("features", features)
        check_positive_int("channels", channels)
        check_positive_int("num_stages", num_stages)
        check_positive_int("blocks_per_stage", blocks_per_stage)
        keys = jax.random.split(key, 3 + num_stages * (blocks_per_stage + 1))
        widths = [channels * 2**s for s in range(num_stages)]
        groups = [min(8, w) for w in widths]
        self.stem = eqx.nn.Conv2d(1, widths[0], 3, padding=1, key=keys[0])
        ki = iter(keys[3:])
        self.blocks = tuple(
            tuple(ResidualBlock(w, groups=g, key=next(ki)) for _ in range(blocks_per_stage))
            for w, g in zip(widths, groups, strict=True)
        )
        self.downsample = tuple(
            eqx.nn.Conv2d(widths[s], widths[s + 1], 3, stride=2, padding=1, key=next(ki))
            for s in range(num_stages - 1)
        )
        self.norm = eqx.nn.GroupNorm(groups[-1], widths[-1])
        self.out = eqx.nn.Linear(widths[-1], features, key=keys[1])

    def __call__(self, x: Float[Array, "..."]) -> Float[Array, " D"]:
        x = jnp.asarray(x)
        n = self.image_size
        if x.shape == (n * n,):
            x = x.reshape(1, n, n)
        elif x.shape == (n, n):
            x = x[None]
        elif x.shape != (1, n, n):
            raise ValueError(
                f"ResNet(image_size={n}) expects one image of shape ({n}, {n}), (1, {n}, {n}) "
                f"or ({n * n},), got x.shape={x.shape}; batch with jax.vmap"
            )
        h = self.stem(x)
        for s, stage in enumerate(self.blocks):
            if s > 0:
                h = self.downsample[s - 1](jax.nn.relu(h))
            for block in stage:
                h = block(h)
        h = jax.nn.relu(self.norm(h))
        return jax.nn.gelu(self.out(jnp.mean(h, axis=(1, 2))))
