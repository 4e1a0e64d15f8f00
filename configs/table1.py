"""Paper Table 1: graph T+Q+D, every profile family and depth, three routers, standard setting.

Command:  python -m launch.sweep --config=configs/table1.py --workdir=runs/table1
          (RP_JAX_DATA must point at the public RouteProfile data; add :encoder=minilm for MiniLM)
Runtime:  ~65 min on a 2-core CPU (measured per cell in the paper run: HAN grid 20 min, MLP
          9.2 s and Graph 29.5 s per cell x 70 cells); minutes on one GPU.
Expected: summary.md "Table 1" with 14 rows x {Sim, MLP, Graph}, ours (mean ± 95% CI) beside the
          paper's; MLP and Graph cells around 0.60-0.63, Sim lower; see docs/findings.md for our numbers.
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "table1"
  c.settings = ("standard",)
  c.profiles = rp_config.table1_profiles()
  c.grid = "auto"  # vmap on accelerators; cells one after another on a single CPU
  rp_config.paper_protocol(c)
  return rp_config.apply_common_args(c, arg)
