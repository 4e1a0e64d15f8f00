"""The whole training-free profile design space for one setting, written to disk.

Command:  python -m launch.profiles --config=configs/profiles.py:setting=standard --workdir=runs/profiles
Runtime:  ~20 s on a 2-core CPU with the hashing encoder (text GNN with the template
          summariser; trainable HAN profiles are not in this grid, add trainable:TQD:K entries).
Expected: runs/profiles/profiles/standard/ with 1 index, 5 flat, 100 emb_gnn (5 forms x K 0..4 x
          4 norms) and 20 text_gnn (5 forms x K 1..4) profiles, index.csv and the text-GNN hop
          texts text_gnn_texts_<form>.json.
"""

from rp_jax import config as rp_config
from rp_jax.graphs import FORMS, NORMS


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "profiles"
  c.settings = ("standard",)
  c.seeds = 1
  c.profiles = (
    "index",
    *(f"flat:{f}" for f in FORMS),
    *(f"emb_gnn:{f}:{k}:{n}" for f in FORMS for k in range(5) for n in NORMS),
    *(f"text_gnn:{f}:{k}" for f in FORMS for k in range(1, 5)),
  )
  return rp_config.apply_common_args(c, arg)
