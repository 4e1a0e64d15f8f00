"""Quiz selection: K-means, IRT fit and ability, and the four quiz methods on tiny inputs."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rp_jax.profiles import quiz

KEY = jax.random.key(0)


def _spearman(x, y):
  rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
  return np.corrcoef(rx, ry)[0, 1]


def _blobs(num_blobs=4, per_blob=9, dim=3, spread=0.3, seed=0):
  """Points around far-apart centres; blob b holds rows [b * per_blob, (b + 1) * per_blob)."""
  rng = np.random.default_rng(seed)
  centres = 10.0 * np.eye(num_blobs, dim) if num_blobs <= dim else rng.normal(size=(num_blobs, dim))
  centres = 10.0 * centres / np.linalg.norm(centres, axis=1, keepdims=True) * num_blobs
  x = np.repeat(centres, per_blob, axis=0) + spread * rng.normal(size=(num_blobs * per_blob, dim))
  return x.astype(np.float32), np.repeat(np.arange(num_blobs), per_blob)


def _simulate_irt(num_items, num_models, seed=0, dim=1, signed=False):
  rng = np.random.default_rng(seed)
  a = np.exp(0.3 * rng.normal(size=(num_items, dim))) / np.sqrt(dim)
  a = rng.normal(size=(num_items, dim)) if signed else a
  b = 1.5 * rng.normal(size=num_items)
  theta = rng.normal(size=(num_models, dim))
  p = 1.0 / (1.0 + np.exp(-(a @ theta.T - b[:, None])))
  return a, b, theta, p, (rng.random(p.shape) < p).astype(np.float32)


# -- K-means --------------------------------------------------------------------------------------


def test_kmeans_recovers_separated_blobs_and_is_deterministic():
  x, blob = _blobs()
  centres, assign = quiz.kmeans(x, 4, KEY)
  assign = np.asarray(assign)
  # One label per blob, different labels for different blobs (up to permutation).
  labels = [set(assign[blob == b].tolist()) for b in range(4)]
  assert all(len(s) == 1 for s in labels) and len(set.union(*labels)) == 4
  for b in range(4):
    np.testing.assert_allclose(centres[assign[blob == b][0]], x[blob == b].mean(0), atol=1e-4)
  jitted = jax.jit(quiz.kmeans, static_argnums=1, static_argnames="iters")
  for _ in range(2):  # jit == no jit, and the same key gives the same result
    jc, ja = jitted(x, 4, KEY, iters=50)
    np.testing.assert_allclose(np.asarray(jc), np.asarray(centres), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(ja), assign)


def test_kmeans_with_more_clusters_than_points_stays_finite():
  x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]], np.float32)
  centres, assign = jax.jit(quiz.kmeans, static_argnums=1)(x, 5, KEY, iters=5)
  assert np.isfinite(np.asarray(centres)).all()
  assert set(np.asarray(assign).tolist()) <= set(range(5))


# -- IRT ------------------------------------------------------------------------------------------


def test_fit_irt_recovers_ability_and_difficulty_order():
  _, b, theta, _, y = _simulate_irt(300, 30)
  y[np.random.default_rng(1).random(y.shape) < 0.05] = np.nan  # a few unknown outcomes
  irt = quiz.fit_irt(y, key=KEY)
  assert irt.a_QxD.shape == (300, 1) and irt.b_Q.shape == (300,) and irt.theta_MxD.shape == (30, 1)
  assert _spearman(irt.theta_MxD[:, 0], theta[:, 0]) > 0.9
  assert _spearman(irt.b_Q, b) > 0.9
  np.testing.assert_allclose(irt.theta_MxD.mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(irt.theta_MxD.std(0), 1.0, atol=1e-4)
  again = quiz.fit_irt(y, key=KEY)
  for u, v in zip(irt, again, strict=True):
    np.testing.assert_array_equal(u, v)


def test_fit_ability_many_items_gives_the_true_theta_and_none_the_prior():
  a, b, theta, p, _ = _simulate_irt(2000, 3, seed=2, dim=2, signed=True)
  all_Q = np.ones(2000, bool)
  mu, cov = np.array([0.3, -0.2], np.float32), np.array([[1.0, 0.2], [0.2, 0.5]], np.float32)
  fit = jax.jit(quiz.fit_ability)
  for m in range(3):
    # Soft labels equal to the true probabilities: the likelihood peaks exactly at θ.
    est = fit(a, b, p[:, m], all_Q, mu, cov)
    np.testing.assert_allclose(np.asarray(est), theta[m], atol=0.03)
  est0 = fit(a, b, p[:, 0], np.zeros(2000, bool), mu, cov)
  np.testing.assert_allclose(np.asarray(est0), mu, atol=1e-6)
  # NaN outcomes are unanswered items.
  est_nan = fit(a, b, np.full(2000, np.nan, np.float32), all_Q, mu, cov)
  np.testing.assert_allclose(np.asarray(est_nan), mu, atol=1e-6)


def test_fit_ability_vmaps_over_models_and_masks():
  a, b, _, _, y = _simulate_irt(50, 4, seed=3)
  masks = np.random.default_rng(0).random((3, 50)) < 0.4
  mu, cov = np.zeros(1, np.float32), np.eye(1, dtype=np.float32)
  f = lambda y_Q, m_Q: quiz.fit_ability(a, b, y_Q, m_Q, mu, cov)
  grid = jax.jit(jax.vmap(jax.vmap(f, in_axes=(None, 0)), in_axes=(0, None)))(y.T, masks)
  assert grid.shape == (4, 3, 1)
  one = jax.jit(f)
  for m, j in itertools.product(range(4), range(3)):
    np.testing.assert_allclose(grid[m, j], one(y[:, m], masks[j]), atol=1e-5)


def test_fisher_information_by_hand():
  irt = quiz.IRT(
    np.array([[2.0], [0.5], [0.0]], np.float32), np.array([0.0, 1.0, 0.0], np.float32), None
  )
  p = 1.0 / (1.0 + np.exp(-(np.array([2.0, 0.5, 0.0]) * 0.4 - np.array([0.0, 1.0, 0.0]))))
  want = np.array([4.0, 0.25, 0.0]) * p * (1 - p)
  got = quiz.fisher_information(irt, np.array([0.4], np.float32))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
  irt = irt._replace(theta_MxD=np.array([[0.4], [-1.0]], np.float32))
  both = np.asarray(quiz.fisher_information(irt, np.array([-1.0], np.float32)))
  np.testing.assert_allclose(
    np.asarray(quiz.mean_fisher_information(irt)), (want + both) / 2, rtol=1e-5
  )


# -- quiz methods ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
  """60 queries in 4 blobs, 3 tasks, 6 seen models; 45 eligible."""
  x, blob = _blobs(per_blob=15, dim=4)
  rng = np.random.default_rng(5)
  _, _, _, _, y = _simulate_irt(60, 6, seed=5)
  eligible = np.ones(60, bool)
  eligible[rng.choice(60, 15, replace=False)] = False
  return dict(emb_QxD=x, outcomes_QxA=y, task_Q=rng.integers(0, 3, 60), eligible_Q=eligible)


@pytest.mark.parametrize("method", quiz.METHODS)
def test_every_method_returns_k_distinct_eligible_queries_per_key(method, pool):
  n_elig = int(pool["eligible_Q"].sum())
  for k in (0, 1, 7, n_elig + 5):  # k-means compiles per K: few sizes
    q = quiz.choose_quiz(method, k, key=KEY, **pool)
    assert q.dtype == np.int32 and q.shape == (min(k, n_elig),)
    assert len(set(q.tolist())) == q.size
    assert pool["eligible_Q"][q].all()
    np.testing.assert_array_equal(q, quiz.choose_quiz(method, k, key=KEY, **pool))
  masks = quiz.quiz_masks(method, (0, 1, 7), key=KEY, **pool)
  assert masks.shape == (3, 60) and masks.sum(1).tolist() == [0, 1, 7]
  np.testing.assert_array_equal(
    np.flatnonzero(masks[2]), np.sort(quiz.choose_quiz(method, 7, key=KEY, **pool))
  )
  assert not (masks & ~pool["eligible_Q"]).any()


@pytest.mark.parametrize("method", quiz.METHODS)
def test_quiz_reads_only_the_seen_models_and_the_eligible_rows(method, pool):
  # Two worlds that differ only in a held-out model's column and in the ineligible rows (test
  # queries): the seen columns of the eligible rows are all the quiz may depend on.
  rng = np.random.default_rng(9)
  full = np.concatenate([pool["outcomes_QxA"], rng.random((60, 1))], axis=1)
  other = full.copy()
  other[:, -1] = 1.0 - other[:, -1]
  inel = ~pool["eligible_Q"]
  other[inel] = rng.random((int(inel.sum()), 7))
  emb2 = pool["emb_QxD"].copy()
  emb2[inel] = rng.normal(size=(int(inel.sum()), 4)) * 50
  a = quiz.choose_quiz(method, 7, key=KEY, **{**pool, "outcomes_QxA": full[:, :6]})
  b = quiz.choose_quiz(
    method, 7, key=KEY, **{**pool, "outcomes_QxA": other[:, :6], "emb_QxD": emb2}
  )
  np.testing.assert_array_equal(a, b)


def test_different_keys_give_different_random_quizzes(pool):
  a = quiz.choose_quiz("random", 10, key=jax.random.key(1), **pool)
  b = quiz.choose_quiz("random", 10, key=jax.random.key(2), **pool)
  assert set(a.tolist()) != set(b.tolist())
  # One key: a smaller random quiz is the prefix of a larger one.
  np.testing.assert_array_equal(
    quiz.choose_quiz("random", 4, key=KEY, **pool),
    quiz.choose_quiz("random", 10, key=KEY, **pool)[:4],
  )


def test_stratified_proportions_by_hand():
  # Eligible task sizes 5, 3, 2 (N = 10), k = 4: quotas 2, 1.2, 0.8 -> floors 2, 1, 0, and the
  # one remaining slot goes to the largest remainder (task 2).
  task = np.array([0] * 5 + [1] * 3 + [2] * 2 + [1, 2])
  eligible = np.array([True] * 10 + [False] * 2)
  for seed in range(3):
    q = quiz.choose_quiz(
      "stratified", 4, key=jax.random.key(seed), task_Q=task, eligible_Q=eligible
    )
    assert np.bincount(task[q], minlength=3).tolist() == [2, 1, 1]
    assert eligible[q].all()


def test_cluster_picks_the_query_nearest_each_centre():
  # Three blobs, each a centre point and four points symmetric about it: K-means centres are the
  # centre points, which must be the picks.
  offsets = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)
  centres = np.array([[0, 0], [20, 0], [0, 20]], np.float32)
  emb = (centres[:, None, :] + offsets[None, :, :]).reshape(15, 2)
  rng = np.random.default_rng(0)
  perm = rng.permutation(15)
  emb = emb[perm]
  want = {int(np.flatnonzero(perm == 5 * b)[0]) for b in range(3)}
  for seed in range(3):
    q = quiz.choose_quiz(
      "cluster", 3, key=jax.random.key(seed), emb_QxD=emb, eligible_Q=np.ones(15, bool)
    )
    assert set(q.tolist()) == want


def test_info_prefers_discriminative_items():
  # 36 items: 12 that separate the 8 seen models (the better half gets them right), 12 every model
  # gets right, 12 every model gets wrong; each kind in its own region of the embedding space.
  y = np.zeros((36, 8), np.float32)
  rng = np.random.default_rng(0)
  y[:12] = rng.random((12, 8)) < np.linspace(0.1, 0.9, 8)[None, :]
  y[12:24] = 1.0
  x, _ = _blobs(num_blobs=3, per_blob=12, dim=3)
  irt = quiz.fit_irt(y, key=KEY)
  info = np.asarray(quiz.mean_fisher_information(irt))
  assert info[12:].max() < 0.1 * info[:12].max()
  q = quiz.choose_quiz(
    "info", 8, key=KEY, emb_QxD=x, outcomes_QxA=y, eligible_Q=np.ones(36, bool), num_clusters=3
  )
  assert (q < 12).all()
  # With every informative item taken, the rest come after them.
  q = quiz.choose_quiz("info", 14, key=KEY, emb_QxD=x, outcomes_QxA=y, eligible_Q=np.ones(36, bool))
  assert set(range(12)) <= set(q.tolist())


def test_bad_arguments_are_clear(pool):
  with pytest.raises(ValueError, match="unknown quiz method 'best'"):
    quiz.choose_quiz("best", 3, key=KEY, **pool)
  with pytest.raises(ValueError, match="needs emb_QxD"):
    quiz.choose_quiz("cluster", 3, key=KEY, eligible_Q=pool["eligible_Q"])
  with pytest.raises(ValueError, match="quiz size must be >= 0"):
    quiz.choose_quiz("random", -1, key=KEY, **pool)


def test_kmeans_jit_compiles_once_per_k():
  traces = []

  def f(x, key):
    traces.append(1)
    return quiz.kmeans(x, 3, key, iters=5)

  g = jax.jit(f)
  x, _ = _blobs(num_blobs=3, per_blob=4)
  for seed in range(3):
    g(jnp.asarray(x) + seed, jax.random.key(seed))
  assert len(traces) == 1
