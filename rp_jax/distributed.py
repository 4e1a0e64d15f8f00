"""Sweeps over several processes (hosts) with ``jax.distributed``: one program, every process.

Each process runs the same sweep. Host-side work (data loading, profiles, text encoding,
baselines, evaluation, results) is computed redundantly by every process: it is cheap next to the
router grids and deterministic (same config, data and code give the same arrays), so no process
waits on another's files or broadcasts. Only the router grids are split: their cell axis is
sharded over the devices of *all* processes (``jax.devices()`` is global once the distributed
system runs), each process feeds the shards on its own devices from its full host copy
(``global_array``), and the outputs are gathered back to every process (``to_numpy``) before
they become numpy, so every process continues with the same complete results.

Process 0 alone writes the outputs (``is_writer``). The stage cache is read by every process but
a stage counts as done only when every process loaded it (``all_agree``): the grids are
collective programs, so either all processes skip a stage or all compute it. On a shared
filesystem a rerun resumes as on one host; with per-host disks the other hosts hold no stage
files, and every stage is recomputed. No process reads a stage file while another writes it:
process 0 writes a stage only after all processes agreed that it was missing, and each stage is
read once per run.

Without ``initialize`` (one process) every function here is the single-process identity.
"""

from __future__ import annotations

import hashlib
import os

import jax
import numpy as np
from jax.experimental import multihost_utils


def initialize(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> bool:
  """Starts ``jax.distributed`` when several processes are asked for; call before any JAX work.

  Nothing is initialised (one process) when all three arguments are None (or ``num_processes``
  is 1 alone) and ``JAX_COORDINATOR_ADDRESS`` is unset. Otherwise ``jax.distributed.initialize``
  gets the given values and fills the missing ones itself: the coordinator from
  ``JAX_COORDINATOR_ADDRESS`` (or a detected cluster, with ``JAX_COORDINATOR_PORT``), and the
  process count and id from its cluster auto-detection (Slurm, Open MPI, Cloud TPU VMs, GKE,
  Kubernetes). On a CPU the cross-process collectives are gloo's unless
  ``JAX_CPU_COLLECTIVES_IMPLEMENTATION`` chooses another.

  Args:
    coordinator_address: "host:port" of process 0's coordinator (every process passes the same).
    num_processes: the number of processes.
    process_id: this process's index in [0, num_processes).

  Returns:
    True when the distributed system was started.
  """
  asked = coordinator_address or process_id is not None or (num_processes or 1) > 1
  if not asked and not os.environ.get("JAX_COORDINATOR_ADDRESS"):
    return False
  if not os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION"):
    # Without cross-process collectives a CPU backend cannot run a program over several
    # processes' devices; gloo needs nothing beyond TCP between the hosts.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
    coordinator_address=coordinator_address or None,
    num_processes=num_processes,
    process_id=process_id,
  )
  return True


def is_writer() -> bool:
  """True in the process that writes the outputs (process 0; the only one without distribution)."""
  return jax.process_index() == 0


def all_agree(flag: bool) -> bool:
  """True when ``flag`` is true in every process (a collective: every process must call it)."""
  if jax.process_count() == 1:
    return bool(flag)
  return bool(np.all(multihost_utils.process_allgather(np.int32(bool(flag)))))


def _digest(x: np.ndarray) -> np.ndarray:
  """[4] uint32: the first 16 bytes of sha256 over the array's dtype, shape and bytes."""
  h = hashlib.sha256(f"{x.dtype}{x.shape}".encode())
  h.update(np.ascontiguousarray(x).tobytes())
  return np.frombuffer(h.digest()[:16], np.uint32)


def global_array(x: np.ndarray, sharding: jax.sharding.Sharding) -> jax.Array:
  """A ``jax.Array`` laid out as ``sharding`` from a host array that every process holds in full.

  Each process supplies the shards on its own devices (``jax.make_array_from_callback``); with
  one process this is ``jax.device_put(x, sharding)``. Across processes the host copies must be
  equal (they come from the redundant, deterministic host stages): a digest of each is compared,
  and a mismatch raises instead of training cells on different inputs.

  Raises:
    RuntimeError: the processes hold different values for ``x``.
  """
  x = np.asarray(x)
  if jax.process_count() > 1:
    digests_PxH = multihost_utils.process_allgather(_digest(x))
    if not (digests_PxH == digests_PxH[0]).all():
      raise RuntimeError(
        f"processes hold different host arrays of shape {x.shape} ({x.dtype}) for one sweep "
        "input; the host-side stages must give identical arrays in every process (same config, "
        "data, code and XLA flags; on GPUs deterministic ops)"
      )
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def to_numpy(x) -> np.ndarray:
  """The whole value of a (possibly multi-process) array as numpy, in every process.

  An array spread over other processes' devices is gathered (``process_allgather``: a
  collective, so every process must call it for the same arrays in the same order).
  """
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)
