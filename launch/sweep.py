"""Runs a sweep config: ``python -m launch.sweep --config=configs/quickstart.py --workdir=DIR``.

Several processes (hosts): the same command in each, with ``--coordinator_address=HOST0:PORT
--num_processes=N --process_id=I`` (see README, "Several hosts"). Flags only; the work is in
``rp_jax.distributed.initialize`` and ``rp_jax.sweep.run``.
"""

from absl import app, flags
from ml_collections import config_flags

from rp_jax import distributed, runtime, sweep

_CONFIG = config_flags.DEFINE_config_file("config", None, "Sweep config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder (process 0 writes it).")
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address",
  None,
  "host:port of process 0's jax.distributed coordinator (unset: JAX_COORDINATOR_ADDRESS or "
  "JAX's cluster auto-detection, when several processes are asked for).",
)
_NUM_PROCESSES = flags.DEFINE_integer(
  "num_processes", None, "Number of processes (unset: one, or JAX's cluster auto-detection)."
)
_PROCESS_ID = flags.DEFINE_integer(
  "process_id", None, "This process's id in [0, num_processes) (unset: auto-detected)."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  runtime.configure(_CONFIG.value)
  sweep.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
