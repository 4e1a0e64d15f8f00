"""Builds a profile grid: ``python -m launch.profiles --config=configs/profiles.py --workdir=DIR``.

Writes ``DIR/profiles/<setting>/<id>.npz`` (one array per model name) and ``index.csv``.
Flags only; the work is in ``rp_jax.sweep.run_profiles``.
"""

from absl import app, flags
from ml_collections import config_flags

from rp_jax import runtime, sweep

_CONFIG = config_flags.DEFINE_config_file("config", None, "Profile config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  runtime.configure(_CONFIG.value)
  sweep.run_profiles(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
