"""Beyond one dataset: the quality and cost study on every dataset present, side by side.

Command:  python -m launch.sweep --config=configs/datasets.py --workdir=runs/datasets
          (RP_JAX_DATA = the public RouteProfile data, RP_JAX_ROUTERBENCH = the RouterBench
          subset; add your own with --config.data.tables="('my.csv',)")
Runtime:  see docs/speed.md (measured on the 2-core CPU).
Expected: datasets.csv — per dataset (RouteProfile standard, RouterBench, each table), router
          family (and the validation-selected "best") and inputs: avg performance [95% CI],
          paired differences with the per-task lookup and the best single model (chosen on
          training rows), AIQ vs the zero router, quality at the best single model's cost and
          the cost of reaching its quality ($ per query); profile_families.csv — each profile
          family's validation-selected cell per dataset and router, ranked on validation;
          apgr.csv — APGR / CPT(50%) / CPT(80%) of every cell for every (weak, strong) pair;
          aiq.csv with the λ chosen on validation to reach the best single model's quality.

The quality study's protocol (configs/quality.py: prompts, unit-norm profiles, 5-fold selection
on validation queries for the cheap families), trimmed to what runs on both datasets in
reasonable time: the standard setting, routers kNN, MF and MLP, profiles index, flat, emb_gnn
(T+Q+D, 2 hops) and the probe profile (per-cluster accuracy over all training outcomes).
"""

from configs import quality


def get_config(arg=None):
  c = quality.get_config(arg)
  c.name = "datasets"
  c.datasets = ("routeprofile", "routerbench")
  c.settings = ("standard",)
  c.profiles = ("index", "flat:TQD", "emb_gnn:TQD:2", "probe:8:4")
  c.routers = ("knn", "mf", "mlp")
  c.routers_lomo = c.profiles_lomo = ()  # the standard setting only
  c.mf.l2 = (1e-3, 1e-2)
  c.mf.model_dropout = (0.0,)
  return c
