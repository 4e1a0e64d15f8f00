"""Paper Table 2: {flat, text_gnn K=2, emb_gnn K=2} x {T+Q+D, T+Q, T+D, Q, T} x three routers.

Command:  python -m launch.sweep --config=configs/table2.py --workdir=runs/table2
Runtime:  ~50 min on a 2-core CPU (MLP 9.2 s and Graph 29.5 s per cell x 75 cells, measured in
          the paper run); minutes on one GPU.
Expected: summary.md "Table 2" with 15 rows x {Sim, MLP, Graph} beside the paper's values, and
          the query-vs-domain claim (T+Q vs T+D) checked with a paired bootstrap.
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "table2"
  c.settings = ("standard",)
  c.profiles = rp_config.table2_profiles()
  c.grid = "auto"  # vmap on accelerators; cells one after another on a single CPU
  rp_config.paper_protocol(c)
  return rp_config.apply_common_args(c, arg)
