"""Data-parallel placement for `fit`: batch sharded over devices, everything else replicated.

`fit(..., devices=jax.devices())` builds a one-axis mesh ("data") over `devices`, replicates
the SVI state, the data set and the model's array arguments on every device, and constrains
each gathered minibatch to be split along its first axis. XLA's SPMD partitioner then runs
the per-example work (network, Monte Carlo likelihood) on each device's shard and
all-reduces the loss and the gradients; the parameters stay replicated. Monte Carlo draws
come from counter-based keys, so they do not depend on the partitioning: a data-parallel
fit equals the one-device fit up to the order of floating-point reductions.

Multi-host (several processes, e.g. one per GPU host): `inference.distributed` --
`initialize()` in every process first, each process's part of the data as one global array
(`global_data`), then the same `fit(..., devices=jax.devices())` everywhere. The mesh spans
all hosts; global data arrays stay split over it (`place_data`), everything else is
replicated. Tested with 2 processes on one machine (tests/test_inference_distributed.py).
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
        """Place every array leaf of `tree` on all devices (non-arrays pass through).

        With devices of several processes, a process-local leaf becomes a global array from
        this process's copy (every process holds the same value: the same program ran).
        """
        return jax.tree.map(self._replicate_leaf, tree)

    def _replicate_leaf(self, x):
        if not isinstance(x, jax.Array):
            return x
        if self.replicated.is_fully_addressable or not x.is_fully_addressable:
            return jax.device_put(x, self.replicated)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = self._replicate_leaf(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return jax.make_array_from_process_local_data(self.replicated, np.asarray(x))

    def place_data(self, tree):
        """Replicate the data set, except arrays already split over this mesh's devices
        (global arrays from `inference.distributed.global_data`: each process keeps its part)."""
        mesh_devices = set(self.mesh.devices.flat)

        def place(x):
            if isinstance(x, jax.Array) and not x.is_fully_addressable:
                if set(x.sharding.device_set) != mesh_devices:
                    raise ValueError("a global data array must live on the devices of `devices`")
                return x
            return self._replicate_leaf(x)

        return jax.tree.map(place, tree)

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
