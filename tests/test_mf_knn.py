"""The MF (profile-conditioned Bradley–Terry) and kNN router families."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_routers import CANDIDATES, DIM, NUM_TEST, avg_perf, tiny_history

from rp_jax import train as tr
from rp_jax.routers import grid, knn, mf, registry, validation
from rp_jax.routers.data import make_router_data


@pytest.fixture(scope="module")
def setting():
  hist, emb = tiny_history()
  data = make_router_data(hist, emb)
  perf_QxA = hist.outcomes_QxM[np.ix_(hist.test_queries, hist.candidates)]
  prof = np.random.default_rng(1).normal(size=(2, 4, DIM)).astype(np.float32)
  prof /= np.linalg.norm(prof, axis=-1, keepdims=True)
  splits = validation.stratified_splits(data, 0.1, [0, 1])
  return hist, emb, data, perf_QxA, prof, splits


def test_mf_learns_the_clusters_at_its_production_hyperparameters(setting):
  _, _, data, perf_QxA, prof, splits = setting
  res = grid.train_grid("mf", mf.MFConfig(epochs=100), data, prof, [0, 1], splits=splits)
  best_single = perf_QxA.mean(0).max()
  for s in range(2):
    for r in range(2):
      assert avg_perf(res.choices_SxZxQ[s, r], perf_QxA) > best_single + 0.3
  assert np.all(res.train_loss_SxZxI[..., -1] < res.train_loss_SxZxI[..., 0])
  assert np.isfinite(res.val_utility_SxZ).all() and (res.val_utility_SxZ > 0.8).all()


def test_knn_routes_to_the_neighbours_winner(setting):
  _, _, data, perf_QxA, prof, splits = setting
  res = grid.train_grid("knn", None, data, prof, [0, 1], splits=splits)
  assert res.choices_SxZxQ.shape == (2, 2, NUM_TEST)
  # Every test query's neighbours share its cluster, whose best candidate wins their pairs.
  for s in range(2):
    assert avg_perf(res.choices_SxZxQ[s, 0], perf_QxA) > 0.95


def test_knn_scores_by_hand():
  """Two memory queries, one query between them; the evidence and the prior by hand."""
  cfg = knn.KNNConfig(max_k=2, profile_temperature=1.0)
  state = {
    "memory_NxD": jnp.asarray([[1.0, 0.0], [0.0, 1.0]]),
    "evidence_NxA": jnp.asarray([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    "known_NxA": jnp.asarray([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]),  # candidate 2: no evidence
  }
  prof = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # candidate 2 resembles candidate 0
  hp = {"k": jnp.float32(2), "temperature": jnp.float32(1e6), "prior_weight": jnp.float32(1.0)}
  q = jnp.asarray([[1.0, 0.1]])
  s = np.asarray(knn.score(cfg, state, prof, q, hp))[0]
  # Equal weights 1/2 (huge temperature); means: c0 0.5, c1 0.5; c2 borrows from c0 and c1 by
  # softmax(cos) = softmax([1, 0]).
  w = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
  prior2 = w @ np.array([0.5, 0.5])
  np.testing.assert_allclose(s, [(0.5 + 0.5) / 2, (0.5 + 0.5) / 2, prior2], rtol=1e-5)
  # k = 1, a sharp temperature: only the nearest neighbour (the first) votes.
  hp1 = {**hp, "k": jnp.float32(1), "temperature": jnp.float32(0.01)}
  s1 = np.asarray(knn.score(cfg, state, prof, q, hp1))[0]
  np.testing.assert_allclose(s1[:2], [(1.0 + 0.5) / 2, (0.0 + 0.5) / 2], rtol=1e-5)


def test_mf_scores_of_seen_models_ignore_an_unseen_profile(setting):
  hist, emb = tiny_history(held_out=(CANDIDATES[1],))
  data = make_router_data(hist, emb)
  _, _, _, _, prof, _ = setting
  sp = validation.stratified_splits(data, 0.1, [0])
  other = prof.copy()
  other[:, CANDIDATES[1]] = 5.0  # only the held-out model's profile differs
  # Epoch selection by pair accuracy (among seen models): utility selection takes the argmax over
  # all candidates, so the kept epoch may depend on the unseen profile; the training does not.
  cfg = mf.MFConfig(epochs=20, val_metric="pairs")
  a = grid.train_grid("mf", cfg, data, prof, [0], splits=sp, return_scores=True)
  b = grid.train_grid("mf", cfg, data, other, [0], splits=sp, return_scores=True)
  np.testing.assert_array_equal(a.train_loss_SxZxI, b.train_loss_SxZxI)
  seen = [0, 2]
  np.testing.assert_allclose(a.scores["test"][..., seen], b.scores["test"][..., seen], rtol=1e-6)
  assert not np.allclose(a.scores["test"][..., 1], b.scores["test"][..., 1])


def test_model_dropout_keep():
  trainable = jnp.asarray([True, False, True, True])
  keys = jax.random.split(jax.random.key(0), 400)
  keep = np.asarray(jax.vmap(lambda k: tr.model_dropout_keep(k, trainable, 0.5))(keys))
  dropped = ~keep
  assert dropped.sum(1).max() == 1 and not dropped[:, 1].any()  # never the untrainable one
  assert 0.4 < dropped.any(1).mean() < 0.6  # about half the steps drop one
  none = np.asarray(jax.vmap(lambda k: tr.model_dropout_keep(k, trainable, 0.0))(keys))
  assert none.all()  # rate 0 keeps every candidate


def test_mf_and_knn_are_registered_with_their_hyperparameters():
  assert {"mf", "knn"} <= set(registry.ROUTERS)
  assert set(registry.default_hparams("mf")) == {
    "learning_rate",
    "weight_decay",
    "bce_weight",
    "l2",
    "model_dropout",
    "kernel_ridge",
  }
  assert not registry.family("knn").trainable and not registry.family("knn").seed_free
