"""Per-stage fingerprints: a stage's cache key covers the code and config it depends on only."""

from configs import test as test_config
from rp_jax import stage_cache


def test_reporting_keys_and_other_families_do_not_invalidate_a_stage():
  base = stage_cache.stage_fingerprints(test_config.get_config())
  c = test_config.get_config()
  c.bootstrap, c.figures, c.name = 7, False, "renamed"
  assert stage_cache.stage_fingerprints(c) == base  # the report's settings retrain nothing
  c = test_config.get_config()
  c.mlp.epochs = 9
  fp = stage_cache.stage_fingerprints(c)
  changed = {k for k in fp if fp[k] != base[k]}
  assert changed == {"router:mlp"}  # the MLP's settings invalidate the MLP stages only
  c = test_config.get_config()
  c.index_seed = 3
  fp = stage_cache.stage_fingerprints(c)
  assert all(fp[k] != base[k] for k in fp)  # a profile setting invalidates everything after it


def test_stage_code_leaves_out_what_runs_after_the_stages():
  for kind, paths in stage_cache.STAGE_CODE.items():
    for later in ("results.py", "report", "metrics.py", "cost", "coldstart.py", "datasets.py"):
      assert later not in paths, (kind, later)
  knn, mf = stage_cache.STAGE_CODE["router:knn"], stage_cache.STAGE_CODE["router:mf"]
  assert "routers/knn.py" in knn and "routers/knn.py" not in mf
  # ... and the check can fail: a code fingerprint does change with the files it covers.
  assert stage_cache.code_fingerprint(("routers/knn.py",)) != stage_cache.code_fingerprint(
    ("routers/mf.py",)
  )
