"""Baselines on the public RouteProfile data, both settings.

Command:  python -m launch.sweep --config=configs/baselines.py --workdir=runs/baselines
Runtime:  ~5 s on a 2-core CPU (data loading and a vmapped evaluation).
Expected: constant routers 0.4755 .. 0.6125 (mistral-small), uniform random 0.538,
          per-task best by benchmark 0.645, by training-pair net wins 0.657,
          per-task oracle 0.672, per-query oracle 0.757 (SPEC §3).
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "baselines"
  c.settings = ("standard", "newllm")
  c.routers = ()
  c.figures = True
  return rp_config.apply_common_args(c, arg)
