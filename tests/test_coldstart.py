"""Cold start by quiz: what a quiz reveals (and nothing more), probe profiles, the k axis, and a
held-out strong model routed to from 50 quiz answers on the synthetic default."""

import jax
import numpy as np
import pandas as pd
import pytest

from rp_jax import coldstart, stages
from rp_jax import config as rp_config
from rp_jax.data import load_history
from rp_jax.data.holdout import reveal_quiz
from rp_jax.profiles import build, probe
from rp_jax.types import TEST, TRAIN, setting_parts


def _config(**quiz):
  c = rp_config.base_config()
  c.data.source = "synthetic"  # the embedded default world (600 test rows)
  c.profiles = ("index", "probe:4:2")
  c.routers = ("knn",)
  c.router_inputs = ("prompt+task",)
  c.seeds = 2
  c.knn.k = (64.0,)
  c.quiz.methods = quiz.get("methods", ("random",))
  c.quiz.ks = quiz.get("ks", (0, 50))
  return c


@pytest.fixture(scope="module")
def world():
  c = _config()
  _, embed = stages.make_embed(c)
  full = stages.router_history(load_history(c.data, "standard"), "prompt")
  cold = stages.router_history(load_history(c.data, "newllm"), "prompt")
  return c, embed, full, cold


def test_the_quiz_reveals_its_answers_and_nothing_else(world):
  c, embed, full, cold = world
  h = stages.quiz_settings(c, cold, full, embed)[-1]
  assert h.setting == "newllm~random-50" and len(h.quiz_queries) == 50
  assert (h.query_split[h.quiz_queries] == TRAIN).all()  # never a test query
  new = cold.held_out[0]
  quiz = np.zeros(h.num_queries, bool)
  quiz[h.quiz_queries] = True
  tr = h.query_split == TRAIN
  # The new model's training outcomes exist on the quiz queries only, equal to the full data's.
  assert not np.isfinite(h.outcomes_QxM[tr & ~quiz, new]).any()
  np.testing.assert_array_equal(h.outcomes_QxM[quiz, new], full.outcomes_QxM[quiz, new])
  # Its pairs are the full data's pairs on the quiz queries; every other pair is unchanged.
  touches = np.isin(h.pairs_Px3[:, 1:], [new]).any(1)
  assert quiz[h.pairs_Px3[touches, 0]].all()
  want = full.pairs_Px3[np.isin(full.pairs_Px3[:, 1:], [new]).any(1) & quiz[full.pairs_Px3[:, 0]]]
  assert sorted(map(tuple, h.pairs_Px3[touches])) == sorted(map(tuple, want))
  np.testing.assert_array_equal(h.pairs_Px3[~touches], cold.pairs_Px3)
  with pytest.raises(ValueError, match="training query"):
    reveal_quiz(cold, full, cold.test_queries[:2])


def test_nothing_but_the_quiz_answers_of_the_new_model_reaches_profiles_or_routers(world):
  """Corrupt everything the full data knows of the new model off the quiz: the revealed History,
  its profiles and the router's choices do not move."""
  c, embed, full, cold = world
  new = cold.held_out[0]
  quiz_Q = stages.quiz_settings(c, cold, full, embed)[-1].quiz_queries
  rng = np.random.default_rng(0)
  bad = full.outcomes_QxM.copy()
  off = (full.query_split == TRAIN) & ~np.isin(np.arange(full.num_queries), quiz_Q)
  bad[off, new] = rng.integers(0, 2, off.sum())
  bad_full = full.replace(outcomes_QxM=bad)
  outs = []
  for f in (full, bad_full):
    h = reveal_quiz(cold, f, quiz_Q, setting="q")
    ctx = stages.make_context(c, h, embed)
    pset = stages.profiles(ctx, lambda s: None)
    rin = stages.router_inputs(ctx, pset, "prompt+task")
    outs.append((h, pset, stages.router_grid(ctx, "knn", rin, lambda s: None)))
  (a, pa, ga), (b, pb, gb) = outs
  np.testing.assert_array_equal(a.outcomes_QxM, b.outcomes_QxM)
  np.testing.assert_array_equal(pa.profile_SxZxMxD, pb.profile_SxZxMxD)
  np.testing.assert_array_equal(ga["choices_SxZxQ"], gb["choices_SxZxQ"])
  # ... while the quiz answers themselves do move them.
  worse = full.outcomes_QxM.copy()
  worse[quiz_Q, new] = 1.0 - np.nan_to_num(worse[quiz_Q, new], nan=0.5)
  h = reveal_quiz(cold, full.replace(outcomes_QxM=worse), quiz_Q, setting="q")
  ctx = stages.make_context(c, h, embed)
  assert not np.array_equal(
    stages.profiles(ctx, lambda s: None).profile_SxZxMxD, pa.profile_SxZxMxD
  )


def test_the_quiz_does_not_depend_on_the_new_models_outcomes(world):
  c, embed, full, cold = world
  c = _config(methods=("random", "stratified", "cluster", "info"), ks=(25,))
  new = cold.held_out[0]
  test_bad = cold.outcomes_QxM.copy()
  test_bad[cold.query_split == TEST, new] = 1.0 - test_bad[cold.query_split == TEST, new]
  for a, b in zip(
    stages.quiz_settings(c, cold, full, embed),
    stages.quiz_settings(c, cold.replace(outcomes_QxM=test_bad), full, embed),
    strict=True,
  ):
    assert a.setting == b.setting
    np.testing.assert_array_equal(a.quiz_queries, b.quiz_queries)


def test_probe_profiles_of_seen_models_are_their_cluster_accuracies(world):
  c, embed, full, cold = world
  h = stages.quiz_settings(c, cold, full, embed)[-1]
  train, answered, seen = build.probe_answers(h)
  assert (answered.any(1) <= np.isin(train, h.quiz_queries)).all()  # the quiz only
  emb = np.asarray(embed([h.query_texts[q] for q in train]), np.float32)
  _, assign = build.quiz_lib.kmeans(emb, 4, jax.random.fold_in(jax.random.key(0), 4))
  onehot = np.eye(4, dtype=np.float32)[np.asarray(assign)]
  acc = build.probe_grid(h.outcomes_QxM[train], answered[None], onehot, seen, np.zeros(1))[0]
  for m in np.flatnonzero(seen):
    for k in range(4):
      rows = answered[:, m] & (np.asarray(assign) == k)
      if rows.any():  # strength 0: the plain accuracy on the model's answers in the cluster
        assert acc[m, k] == pytest.approx(h.outcomes_QxM[train[rows], m].mean(), abs=1e-6)


def test_the_k_axis_in_one_call_equals_a_loop_over_k(world):
  c, embed, full, cold = world
  hs = stages.quiz_settings(_config(ks=(10, 25, 50)), cold, full, embed)
  train, _, seen = build.probe_answers(hs[0])
  y = cold.outcomes_QxM[train].copy()
  for h in hs:  # the union of the answers (quizzes of one key are nested for "random")
    y[np.isin(train, h.quiz_queries)] = h.outcomes_QxM[train][np.isin(train, h.quiz_queries)]
  masks = np.stack([build.probe_answers(h)[1] for h in hs])
  assign = np.eye(4, dtype=np.float32)[np.arange(len(train)) % 4]
  strengths = np.asarray([0.0, 2.0, 8.0], np.float32)
  grid = build.probe_grid(y, masks, assign, seen, strengths)
  for i in range(3):
    one = probe.probe_profiles(y, masks[i], assign, seen, strengths[i])
    np.testing.assert_allclose(grid[i], np.asarray(one), rtol=1e-6, atol=1e-7)


def test_a_strong_new_model_is_routed_to_from_50_quiz_answers(world):
  """The synthetic default holds out its strongest candidate: with k = 0 no router sends it a
  query; with its answers to 50 random quiz queries kNN sends it most rows where it is best."""
  c, embed, full, cold = world
  recall = {}
  for h in stages.quiz_settings(c, cold, full, embed):
    ctx = stages.make_context(c, h, embed)
    rin = stages.router_inputs(ctx, stages.profiles(ctx, lambda s: None), "prompt+task")
    out = stages.router_grid(ctx, "knn", rin, lambda s: None)
    rows = pd.DataFrame(stages.grid_rows(ctx, rin, "knn", out).rows)
    recall[h.setting] = rows["new_model_recall"].min()
  # Measured: 0.0 at k = 0; 0.63 with 50 answers (prompt+task, k = 64 neighbours).
  assert recall["newllm~none-0"] == 0.0 and recall["newllm~random-50"] > 0.5, recall


def test_coldstart_table_pools_folds_and_computes_the_gap():
  assert coldstart.parse("lomo:m~random-50") == ("lomo:m", "random", 50)
  assert coldstart.parse("newllm") is None
  assert coldstart.parse("rb@lomo:meta/llama~random-50") == ("rb@lomo:meta/llama", "random", 50)
  # A model name with "@" in a lomo fold is not a dataset prefix.
  assert setting_parts("lomo:a@b") == ("", "lomo:a@b", "")
  key = jax.random.key(0)
  a, zero, full = np.full(10, 0.7), np.full(10, 0.5), np.full(10, 0.9)
  stat = coldstart._stat(key, a, zero, full, 50)
  assert stat["gap_recovered"] == pytest.approx(0.5) and stat["a_full"] == pytest.approx(0.9)
