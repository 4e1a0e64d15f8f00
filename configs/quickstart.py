"""Quickstart: the design-space sweep on the embedded synthetic history (no files needed).

Command:  python -m launch.sweep --config=configs/quickstart.py --workdir=runs/quickstart
Runtime:  about a minute on a 2-core CPU.
Expected: summary.md with baselines and a small Table-1-style grid on synthetic data; routers
          beat uniform random (~0.49) and approach the per-task oracle (~0.62).
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "quickstart"
  c.data.source = "synthetic"
  c.data.synthetic_seed = 0
  c.settings = ("standard", "newllm")
  c.routers = ()
  c.seeds = 2
  return rp_config.apply_common_args(c, arg)
