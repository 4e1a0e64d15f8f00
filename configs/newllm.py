"""Paper Fig. 4: the Table 1 profiles in the new-LLM setting (mistral-small held out of training).

Command:  python -m launch.sweep --config=configs/newllm.py --workdir=runs/newllm
Runtime:  ~65 min on a 2-core CPU (as configs/table1.py: HAN grid, 70 cells per router);
          minutes on one GPU.
Expected: summary.md "New LLM" table (avg performance and new-model recall per cell) and
          figures/coldstart_newllm.png; flat profiles near 0 cold start.
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "newllm"
  c.settings = ("newllm",)
  c.profiles = rp_config.table1_profiles()
  c.grid = "auto"  # vmap on accelerators; cells one after another on a single CPU
  return rp_config.apply_common_args(c, arg)
