r"""Multi-process data parallelism: the same `fit` over several processes (hosts).

JAX's distributed runtime runs one Python process per host (or per GPU), all executing the
same program (multi-controller SPMD). `fit(..., devices=jax.devices())` then builds its
"data" mesh over the devices of *all* processes (`inference.sharding`); each process holds
only its own part of the data set, as one global array sharded over the examples:

    from inference import distributed, fit
    distributed.initialize()                      # before anything else touches JAX
    x_local, y_local = load_my_part()             # this process's N / P examples
    data = distributed.global_data((x_local, y_local))
    result = fit(model, guide, data, devices=jax.devices(), batch_size=B, ...)

Every process must call `fit` with the same arguments (model, key, sizes); the result
(parameters, losses) is replicated on every process. The global data set is the
concatenation of the processes' parts in process order, so the fit equals a one-process fit
on that concatenation (same key), up to the order of floating-point reductions: the
per-epoch permutation gathers minibatches from the global array inside the compiled epoch.

Launch (one process per host; on GPU hosts one process per host driving all its GPUs, or
one per GPU with `local_device_ids`): set in every process

    JAX_COORDINATOR_ADDRESS=<host 0>:<port>   JAX_NUM_PROCESSES=<P>   JAX_PROCESS_ID=<i>

and call `initialize()` without arguments (SLURM, Open MPI and Cloud TPU pods are detected
by JAX itself: there `initialize()` needs no variables at all). On CPU-only machines the
cross-process collectives use gloo (`cpu_collectives`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from .sharding import DATA_AXIS, data_parallel

__all__ = ["initialize", "global_data"]


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: Sequence[int] | None = None,
    cpu_collectives: str = "gloo",
    **kwargs,
) -> None:
    """`jax.distributed.initialize` with CPU collectives set; call once, first, everywhere.

    Arguments left None are read from `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`,
    `JAX_PROCESS_ID` (then from JAX's own cluster detection: SLURM, Open MPI, TPU pods).
    `cpu_collectives` ("gloo" or "mpi") is what CPU devices use across processes; it has
    no effect on GPU / TPU devices. Other keywords go to `jax.distributed.initialize`.

    Raises:
        ValueError: `JAX_NUM_PROCESSES` / `JAX_PROCESS_ID` are not integers.
    """

    def env_int(name, value):
        raw = os.environ.get(name) if value is None else value
        try:
            return None if raw is None else int(raw)
        except ValueError as err:
            raise ValueError(f"`{name}` must be an integer, got {raw!r}") from err

    num_processes = env_int("JAX_NUM_PROCESSES", num_processes)
    process_id = env_int("JAX_PROCESS_ID", process_id)
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS"),
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
        **kwargs,
    )


def global_data(
    local_data: Sequence[np.ndarray | jax.Array], devices: Sequence[jax.Device] | None = None
) -> tuple[jax.Array, ...]:
    """Global arrays `(N, ...)` sharded over the examples from each process's part.

    Args:
        local_data: this process's arrays `(n, ...)`, e.g. `(x_local, y_local)`; every
            process passes the same n (a multiple of its number of local devices).
        devices: the devices of the "data" mesh (default `jax.devices()`: all processes);
            pass the same list to `fit(..., devices=...)`.

    Returns:
        A tuple of `jax.Array`s of leading size N = n x number of processes (the parts in
        process order), split over `devices` along the first axis.

    Raises:
        TypeError: `local_data` is not a non-empty tuple / list.
        ValueError: the arrays' leading sizes differ.
    """
    if not isinstance(local_data, tuple | list) or not local_data:
        raise TypeError(f"`local_data` must be a non-empty tuple of arrays, got {local_data!r}")
    sizes = {np.shape(a)[0] if np.ndim(a) else None for a in local_data}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            "arrays of `local_data` must share a leading size, got "
            f"{[np.shape(a) for a in local_data]}"
        )
    mesh = data_parallel(jax.devices() if devices is None else devices).mesh
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    return tuple(
        jax.make_array_from_process_local_data(sharding, np.asarray(a)) for a in local_data
    )
