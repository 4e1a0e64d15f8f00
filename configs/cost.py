"""The cost–quality study on the public data: fronts of the routers that matter, both settings.

Command:  python -m launch.sweep --config=configs/cost.py --workdir=runs/cost
Runtime:  132 s on the 2-core CPU with the embedding and XLA compile caches warm (right after
          configs/quality.py, same RP_JAX_CACHE); a cold run adds the compiles (~2-4 min).
Expected: cost_quality.csv (every cell's front over the λ grid, baselines and oracles), aiq.csv
          (AIQ, quality at the best single model's cost, cost to reach the lookup's quality,
          APGR / CPT(50%) / CPT(80%), Brier scores), quality.csv, summary.md with the
          cost–quality table, figures/cost_quality_<setting>.png.

The routers: the bilinear MF and kNN (the families that tie the per-task lookup on quality, see
configs/quality.py) and the MLP router, on index and flat profiles, prompt and prompt+task
inputs, 5 seeds; scores calibrated on the cross-validation folds' out-of-fold queries.

Measured on the public data, standard setting (AIQ: RouterBench's area under the hull, cost
normalised to the constants' range): kNN prompt+task 0.640, the validation-selected MF 0.638
(prompt+task) / 0.617 (prompt), MLP 0.603-0.610, against the best non-oracle baseline, the zero
router (the hull of the constant routers), 0.606, and the lookup 0.323; the per-query oracle
0.661. Quality at the best single model's cost ($0.060 per 1k queries): 0.607 (MF) / 0.606 (kNN),
*below* always-mistral-small's 0.6125 at that cost; the lookup's quality 0.657 is reached at
$0.187 per 1k (MF prompt+task; the lookup itself costs $0.174), so the "lookup quality at the
best single model's cost" goal is not met.
"""

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "cost"
  c.settings = ("standard", "newllm")
  c.router_inputs = ("prompt", "prompt+task")
  c.profiles = ("index", "flat:TQD")
  c.routers = ("knn", "mf", "mlp")
  c.seeds = 5
  c.grid = "auto"
  c.val_folds = 5
  for r in ("knn", "mf"):
    c[r].grid = "vmap"
  c.mf.l2 = (1e-3, 3e-3, 1e-2)
  c.knn.k = (16.0, 64.0)
  c.knn.temperature = (0.05, 0.2)
  c.knn.prior_weight = (0.3, 3.0)
  c.mlp.val_folds = 1
  c.mlp.epochs = 10
  c.mlp.hidden = 256
  c.mlp.out = 128
  c.mlp.learning_rate = (1e-4, 1e-3)
  return rp_config.apply_common_args(c, arg)
