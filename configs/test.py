"""A tiny, CPU-friendly sweep used by the end-to-end tests and smoke runs.

Command:  python -m launch.sweep --config=configs/test.py --workdir=/tmp/rp_jax_test
Runtime:  ~20-40 s on a 2-core CPU (mostly compilation).
Expected: results.csv with baselines and 6 profiles x 3 routers x 2 seeds per setting (standard,
          newllm), summary.md and figures/; the numbers mean nothing at this size.
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "test"
  c.data.source = "synthetic"
  c.data.synthetic_seed = 0
  c.data.synthetic_scale = 0.1  # 15 train + 5 test queries per routing task
  c.data.synthetic_sizes = (
    "num_models=6,num_candidates=4,num_tasks=6,num_unscored_tasks=0,num_domains=3,"
    "num_routing_tasks=4,num_graph_only_tasks=1"
  )
  c.settings = ("standard", "newllm")
  c.encoder_dim = 64
  c.profiles = (
    "index",
    "flat:TQD",
    "emb_gnn:TQD:1",
    "emb_gnn:TQ:2",
    "text_gnn:TQD:1",
    "trainable:TQD:1",
  )
  c.seeds = 2
  c.mlp.epochs = 2
  c.mlp.hidden = 32
  c.mlp.out = 16
  c.graph.epochs = 2
  c.graph.hidden = 16
  c.graph.heads = 2
  c.trainable.steps = 3
  c.trainable.hidden = 16
  c.trainable.heads = 2
  c.bootstrap = 50
  c.progress_every_s = 0.0  # no host callbacks in the tests' programs
  return rp_config.apply_common_args(c, arg)
