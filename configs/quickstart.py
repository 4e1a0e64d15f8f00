"""Quickstart: the design-space sweep on the embedded synthetic history (no files needed).

Command:  python -m launch.sweep --config=configs/quickstart.py --workdir=runs/quickstart
Runtime:  ~65-80 s on a 2-core CPU the first time (~3/4 of it compiling), ~35 s once the XLA
          compile cache is warm (python benchmarks/compile_share.py).
Expected: summary.md with the baselines and a Table-1-style grid (index, flat, emb_gnn K=1,2,
          text_gnn K=2, trainable depth 2) x (sim, mlp, graph) x 2 seeds in both settings, and
          figures/. On this synthetic world routers land between uniform random (~0.49) and the
          per-query oracle (~0.74); training budgets are cut (fewer epochs and HAN steps,
          narrower router towers, a smaller history) so it finishes quickly — use
          configs/paper.py for the real study.
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "quickstart"
  c.data.source = "synthetic"
  c.data.synthetic_seed = 0
  c.data.synthetic_scale = 0.3  # 45 train + 15 test queries per routing task
  c.settings = ("standard", "newllm")
  c.profiles = (
    "index",
    "flat:TQD",
    "emb_gnn:TQD:1",
    "emb_gnn:TQD:2",
    "text_gnn:TQD:2",
    "trainable:TQD:2",
  )
  c.seeds = 2
  c.grid = "auto"
  c.mlp.epochs = 10
  c.mlp.hidden = 128
  c.mlp.out = 64
  c.graph.epochs = 20
  c.graph.hidden = 64
  c.trainable.steps = 30
  c.trainable.hidden = 64
  c.bootstrap = 500
  # No progress callbacks: short stages, and programs with host callbacks never reach JAX's
  # persistent compilation cache (a warm rerun then compiles every router grid again).
  c.progress_every_s = 0.0
  return rp_config.apply_common_args(c, arg)
