"""Cold start: can a router route to a model it never saw routed, from its profile alone?

Command:  python -m launch.sweep --config=configs/coldstart.py --workdir=runs/coldstart
          (RP_JAX_DATA = the public RouteProfile data)
Runtime:  22.6 min on the 2-core CPU (newllm 2.6 min, each of the 8 lomo folds ~2.5 min), caches
          cold; the first minute shared the machine with a few unit tests.
Expected: quality.csv (newllm: one row per router family x inputs, selected on validation),
          lomo.csv (the 8 leave-each-candidate-out folds), results.csv (every cell, with
          new_model_recall), summary.md.

The profile-conditioned families (sim, kNN, MF) on three profiles: index (no information), flat
(the model's text) and scores (its standardised benchmark scores + a small identity code,
rp_jax/profiles/scores.py), the only one that says how strong a model is. MF's kernel ridge — the
ridge of the regression that places an unseen model's column among the seen ones — is swept.
Selection is on validation queries of the seen models only (nothing else is honest: the new model
has no training rows), so the validation score cannot see cold-start quality; the README reports
every profile's validation-selected cell and the new-model recall it reaches.

Measured (public data, hashing, 5 seeds): the validation-selected family is MF on index profiles
(newllm 0.634 prompt / 0.626 prompt+task, recall 0); with scores profiles kNN prompt+task 0.641,
recall 0.134 (flat: 0.645, 0.056), MF 0.605-0.609, recall 0.09-0.15; lomo recall <= 0.036
everywhere but sim. See the README's cold-start paragraph and benchmarks/coldstart_signal.py.
"""

from configs import quality


def get_config(arg=None):
  # The quality study's protocol (5-fold selection, vmapped grids, the kNN grid), narrowed to the
  # cold-start settings, the profile-conditioned families and three profiles.
  c = quality.get_config(arg)
  c.name = "coldstart"
  c.settings = ("newllm", "lomo")
  c.profiles = ("index", "flat:TQD", "scores")
  c.profiles_lomo = c.profiles
  c.routers = ("sim", "knn", "mf")
  c.routers_lomo = c.routers
  c.mf.l2 = (1e-3, 1e-2)
  c.mf.kernel_ridge = (1e-4, 0.1)
  return c
