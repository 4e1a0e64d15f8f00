"""probe profiles: per-cluster quiz accuracies against a numpy loop, features, predicted accuracy."""

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax.profiles import probe

NAN = np.nan


def _pool(seed=0, num_q=20, num_m=4, num_k=3):
  """20 queries in 3 clusters, 4 models (the last one new), a quiz of half the queries."""
  rng = np.random.default_rng(seed)
  y = (rng.random((num_q, num_m)) < np.linspace(0.3, 0.8, num_m)[None, :]).astype(np.float32)
  cluster = np.arange(num_q) % num_k
  assign = np.eye(num_k, dtype=np.float32)[cluster]
  answered = (rng.random((num_q, 1)) < 0.5) & np.ones((1, num_m), bool)
  seen = np.arange(num_m) < num_m - 1
  return y, answered, assign, cluster, seen


def _reference(y, answered, assign, seen, strength):
  """Float64 loop over models and clusters of the formula in probe's docstring."""
  ans = answered & np.isfinite(y)
  yz = np.where(ans, y, 0.0).astype(np.float64)
  num_q, num_m = y.shape
  num_k = assign.shape[1]
  hits = np.zeros((num_m, num_k))
  counts = np.zeros((num_m, num_k))
  for m in range(num_m):
    for k in range(num_k):
      for q in range(num_q):
        hits[m, k] += assign[q, k] * ans[q, m] * yz[q, m]
        counts[m, k] += assign[q, k] * ans[q, m]
  sh, sc = hits[seen].sum(0), counts[seen].sum(0)
  overall = yz[:, seen][ans[:, seen]].mean() if ans[:, seen].any() else 0.5
  prior = np.where(sc > 0, sh / np.where(sc > 0, sc, 1), overall)
  den = counts + strength
  out = np.where(den > 0, (hits + strength * prior) / np.where(den > 0, den, 1), prior)
  return out, prior


def test_strength_zero_gives_each_models_per_cluster_accuracy():
  y, answered, assign, cluster, seen = _pool()
  got = np.asarray(probe.probe_profiles(y, answered, assign, seen, 0.0))
  for m in range(4):
    for k in range(3):
      rows = answered[:, m] & (cluster == k)
      assert rows.any()
      np.testing.assert_allclose(got[m, k], y[rows, m].mean(), rtol=1e-6)
  np.testing.assert_allclose(got, _reference(y, answered, assign, seen, 0.0)[0], rtol=1e-5)


def test_shrinkage_and_infinite_strength_give_the_seen_prior():
  y, answered, assign, _, seen = _pool(seed=1)
  ref, prior = _reference(y, answered, assign, seen, 2.5)
  np.testing.assert_allclose(probe.probe_profiles(y, answered, assign, seen, 2.5), ref, rtol=1e-5)
  for s in (1e12, np.inf):
    got = np.asarray(probe.probe_profiles(y, answered, assign, seen, s))
    np.testing.assert_allclose(got, np.broadcast_to(prior, got.shape), rtol=1e-5)
  # The prior pools the seen models only: changing the new model's answers moves only its row.
  y2 = y.copy()
  y2[:, 3] = 1.0 - y2[:, 3]
  a = np.asarray(probe.probe_profiles(y, answered, assign, seen, 2.5))
  b = np.asarray(probe.probe_profiles(y2, answered, assign, seen, 2.5))
  np.testing.assert_array_equal(a[:3], b[:3])
  assert not np.allclose(a[3], b[3])


def test_soft_assignments_and_empty_clusters_match_the_reference():
  y, answered, _, _, seen = _pool(seed=2)
  rng = np.random.default_rng(2)
  emb, centres = rng.normal(size=(20, 3)), rng.normal(size=(4, 3))
  soft = np.array(probe.cluster_assignments(emb, centres, temperature=0.7))
  np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-5)
  soft[:, 3] = 0.0  # a cluster no quiz query falls in: the overall seen accuracy
  ref, prior = _reference(y, answered, soft, seen, 1.0)
  got = np.asarray(probe.probe_profiles(y, answered, soft, seen, 1.0))
  np.testing.assert_allclose(got, ref, rtol=1e-5)
  np.testing.assert_allclose(prior[3], y[answered[:, 0]][:, :3].mean(), rtol=1e-5)
  # Nobody answered anything: every profile is 0.5, not NaN.
  none = np.asarray(probe.probe_profiles(y, np.zeros_like(answered), soft, seen, 0.0))
  np.testing.assert_array_equal(none, 0.5)


def test_nan_outcomes_count_as_unanswered():
  y, answered, assign, _, seen = _pool(seed=3)
  y_nan, ans_off = y.copy(), answered.copy()
  holes = np.random.default_rng(3).random(y.shape) < 0.2
  y_nan[holes] = NAN
  ans_off[holes] = False
  for s in (0.0, 3.0):
    got = np.asarray(probe.probe_profiles(y_nan, answered, assign, seen, s))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, probe.probe_profiles(y, ans_off, assign, seen, s), rtol=1e-6)


def test_vmap_over_answered_masks_equals_a_loop():
  y, _, assign, _, seen = _pool(seed=4)
  quiz_JxQ = np.random.default_rng(4).random((5, 20)) < np.linspace(0.1, 0.9, 5)[:, None]
  masks = quiz_JxQ[:, :, None] & np.ones((1, 1, 4), bool)
  strengths = np.array([0.0, 0.5, 1.0, 4.0, 20.0], np.float32)
  f = lambda m, s: probe.probe_profiles(y, m, assign, seen, s)
  grid = jax.jit(jax.vmap(f))(masks, strengths)
  for j in range(5):
    np.testing.assert_allclose(grid[j], f(masks[j], strengths[j]), rtol=1e-6)


def test_jit_compiles_once_for_several_strengths():
  y, answered, assign, _, seen = _pool(seed=5)
  traces = []

  def f(s):
    traces.append(1)
    return probe.probe_profiles(y, answered, assign, seen, s)

  g = jax.jit(f)
  outs = [np.asarray(g(jnp.float32(s))) for s in (0.0, 1.0, 10.0)]
  assert len(traces) == 1
  assert not np.allclose(outs[0], outs[2])


def test_cluster_assignments_hard_and_soft():
  emb = np.array([[0.0, 0.0], [3.0, 0.1], [0.2, 2.9]], np.float32)
  centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], np.float32)
  hard = np.asarray(probe.cluster_assignments(emb, centres))
  np.testing.assert_array_equal(hard, np.eye(3))
  d = ((emb[:, None, :] - centres[None, :, :]) ** 2).sum(-1).astype(np.float64)
  want = np.exp(-d / 2.0) / np.exp(-d / 2.0).sum(1, keepdims=True)
  soft = probe.cluster_assignments(emb, centres, temperature=2.0)
  np.testing.assert_allclose(np.asarray(soft), want, rtol=1e-5)


def test_probe_features_formula():
  acc = np.array([[0.5, 0.7], [0.7, 0.5], [0.6, 0.6], [0.9, 0.9]], np.float32)
  seen = np.array([True, True, True, False])
  feats = np.asarray(probe.probe_features(acc, seen_M=seen))
  c = acc - acc[:3].mean(0)
  r = np.sqrt((np.linalg.norm(c[:3], axis=1) ** 2).mean())
  np.testing.assert_allclose(feats, c / r, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(feats[:3].mean(0), 0.0, atol=1e-6)
  theta = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [2.0, 2.0]], np.float32)
  both = np.asarray(probe.probe_features(acc, seen_M=seen, theta_MxD=theta, theta_weight=0.5))
  assert both.shape == (4, 4)
  np.testing.assert_allclose(both[:, 2:], 0.5 * theta / np.sqrt(2), rtol=1e-6)
  raw = np.asarray(probe.probe_features(acc, centre=False))
  np.testing.assert_allclose(
    raw, acc / np.sqrt((np.linalg.norm(acc, axis=1) ** 2).mean()), rtol=1e-5
  )


def test_predicted_accuracy_by_hand():
  assign = np.array([[1.0, 0.0], [0.25, 0.75]], np.float32)
  acc = np.array([[0.2, 0.6], [0.9, 0.1], [0.5, 0.5]], np.float32)
  got = np.asarray(probe.predicted_accuracy(assign, acc))
  want = np.array([[0.2, 0.9, 0.5], [0.25 * 0.2 + 0.75 * 0.6, 0.25 * 0.9 + 0.75 * 0.1, 0.5]])
  np.testing.assert_allclose(got, want, rtol=1e-6)
