"""Paper Fig. 4: the Table 1 profiles in the new-LLM setting (mistral-small held out of training).

Command:  python -m launch.sweep --config=configs/newllm.py --workdir=runs/newllm
Runtime:  62 min on a 2-core CPU (measured: HAN grid 1,171 s, MLP 703 s, Graph 1,845 s);
          about 1.5 min of the paper grid's 2.6-4 min on one H200.
Expected: summary.md "New LLM" table (avg performance and new-model recall per cell) and
          figures/coldstart_newllm.png. Measured (hashing): sim and graph routers pick the
          held-out model sometimes (recall up to ~0.26 sim, ~0.8 graph), the MLP router never.
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "newllm"
  c.settings = ("newllm",)
  c.profiles = rp_config.table1_profiles()
  c.grid = "auto"  # vmap on accelerators; cells one after another on a single CPU
  rp_config.paper_protocol(c)
  return rp_config.apply_common_args(c, arg)
