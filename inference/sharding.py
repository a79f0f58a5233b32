"""Data-parallel placement for `fit`: batch sharded over devices, everything else replicated.

`fit(..., devices=jax.devices())` builds a one-axis mesh ("data") over `devices`, replicates
the SVI state, the data set and the model's array arguments on every device, and constrains
each gathered minibatch to be split along its first axis. XLA's SPMD partitioner then runs
the per-example work (network, Monte Carlo likelihood) on each device's shard and
all-reduces the loss and the gradients; the parameters stay replicated. Monte Carlo draws
come from counter-based keys, so they do not depend on the partitioning: a data-parallel
fit equals the one-device fit up to the order of floating-point reductions.

Multi-host (several processes, e.g. one per GPU host): call
`jax.distributed.initialize(...)` in every process *before* anything else touches JAX, have
every process load the same full data set and call `fit` with the same arguments and
`devices=jax.devices()` (the global device list). The mesh then spans all hosts; nothing
else changes. Only single-host runs are tested here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["DataParallel", "data_parallel"]

DATA_AXIS = "data"


class DataParallel(NamedTuple):
    """A mesh over devices with the two shardings `fit` uses.

    Attributes:
        mesh: one-axis `Mesh` named "data".
        replicated: `NamedSharding(mesh, P())`: a full copy on every device.
        batch: `NamedSharding(mesh, P("data"))`: split along the leading (example) axis.
    """

    mesh: Mesh
    replicated: NamedSharding
    batch: NamedSharding

    @property
    def num_devices(self) -> int:
        return int(self.mesh.devices.size)

    def replicate(self, tree):
        """Place every array leaf of `tree` on all devices (non-arrays pass through)."""
        return jax.tree.map(
            lambda x: jax.device_put(x, self.replicated) if isinstance(x, jax.Array) else x, tree
        )

    def constrain_batch(self, tree):
        """Inside jit: ask for the leading axis of every leaf to be split over devices."""
        return jax.lax.with_sharding_constraint(tree, self.batch)


def data_parallel(devices: Sequence[jax.Device] | None) -> DataParallel | None:
    """A `DataParallel` over `devices`, or None for `devices=None` (plain one-device fit).

    Raises:
        TypeError: `devices` is empty or holds something other than `jax.Device`.
    """
    if devices is None:
        return None
    devices = list(devices)
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"`devices` must be a non-empty list of jax.Device, got {devices!r}")
    mesh = Mesh(np.asarray(devices), (DATA_AXIS,))
    return DataParallel(
        mesh, NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    )
