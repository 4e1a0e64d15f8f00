"""Stages: router texts and inputs, profile scaling, held-out folds, selection without test rows."""

import numpy as np
import pytest

from configs import test as test_config
from rp_jax import results, stages
from rp_jax.data import hold_out, leave_one_out, load_history, load_routeprofile
from rp_jax.profiles.build import ProfileSet
from rp_jax.types import TEST, TRAIN


@pytest.fixture(scope="module")
def config():
  return test_config.get_config()


@pytest.fixture(scope="module")
def history(config):
  return load_history(config.data, "standard")


def test_router_history_reads_prompts_or_raw_queries(history):
  p = stages.router_history(history, "prompt")
  assert p.query_texts == history.query_prompts and p.query_texts != history.query_texts
  assert stages.router_history(history, "raw") is history
  with pytest.raises(ValueError, match="query_format"):
    stages.router_history(history, "html")


def test_query_features_add_the_task_one_hot(history):
  emb = np.random.default_rng(0).normal(size=(history.num_queries, 5)).astype(np.float32)
  T = history.num_tasks
  np.testing.assert_array_equal(stages.query_features(emb, history.query_task, T, "prompt"), emb)
  f = stages.query_features(emb, history.query_task, T, "prompt+task")
  assert f.shape == (history.num_queries, 5 + T)
  np.testing.assert_array_equal(f[:, :5], emb)
  np.testing.assert_array_equal(f[:, 5:].argmax(1), history.query_task)
  assert (f[:, 5:].sum(1) == 1).all()
  # An unknown task (-1, e.g. a deployed router's request without a known task): no one-hot.
  g = stages.query_features(emb[:2], np.asarray([-1, 1]), T, "prompt+task")
  assert g[0, 5:].sum() == 0 and g[1, 5 + 1] == 1


def test_normalize_profiles_puts_every_family_on_one_scale():
  x = np.array([[[3.0, 4.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 27.7]]], np.float32)
  y = stages.normalize_profiles(x, "l2")
  np.testing.assert_allclose(y, [[[0.6, 0.8], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])
  assert stages.normalize_profiles(x, "none") is x


def test_hold_out_does_what_newllm_does(history):
  name = history.candidate_names[1]
  m = history.model_index(name)
  h = hold_out(history, [name])
  assert h.held_out_names == (name,) and h.setting == f"lomo:{name}"
  assert not np.isin(h.pairs_Px3[:, 1:], [m]).any()
  kept = ~np.isin(history.pairs_Px3[:, 1:], [m]).any(1)
  np.testing.assert_array_equal(h.pairs_Px3, history.pairs_Px3[kept])
  tr = history.query_split == TRAIN
  assert np.isnan(h.outcomes_QxM[tr, m]).all()
  np.testing.assert_array_equal(  # test outcomes stay: it is still a candidate
    h.outcomes_QxM[history.query_split == TEST], history.outcomes_QxM[history.query_split == TEST]
  )
  assert np.isnan(h.scores_MxT[m, history.routing_tasks]).all()
  other = np.setdiff1d(np.arange(history.num_tasks), history.routing_tasks)
  np.testing.assert_array_equal(h.scores_MxT[m, other], history.scores_MxT[m, other])
  folds = leave_one_out(history)
  assert [f.held_out_names[0] for f in folds] == list(history.candidate_names)
  with pytest.raises(ValueError, match="already holds out"):
    hold_out(h, [history.candidate_names[0]])


def test_hold_out_matches_the_public_newllm_setting(data_dir):
  std = load_routeprofile(data_dir, "standard")
  new = load_routeprofile(data_dir, "newllm")
  h = hold_out(std, new.held_out_names)
  np.testing.assert_array_equal(np.isnan(h.scores_MxT), np.isnan(new.scores_MxT))
  held = new.held_out[0]
  assert not np.isin(h.pairs_Px3[:, 1:], [held]).any()


def test_selection_never_reads_test_rows(config, history):
  """Corrupt every test outcome: the validation utilities and the selected cells do not move."""
  _, embed = stages.make_embed(config)
  h = stages.router_history(history, "prompt")
  rng = np.random.default_rng(0)
  bad = h.outcomes_QxM.copy()
  te = h.query_split == TEST
  bad[te] = rng.random(bad[te].shape).astype(np.float32)
  h_bad = h.replace(outcomes_QxM=bad)
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.mf.learning_rate = (3e-3, 3e-2)
    config.mf.epochs = 5
    config.profiles = ("index", "flat:TQD")
  prof = rng.normal(size=(2, 1, h.num_models, 8)).astype(np.float32)
  prof = np.repeat(prof, int(config.seeds), axis=1)
  for router in ("mf", "knn", "mlp"):
    out = []
    for hist in (h, h_bad):
      ctx = stages.make_context(config, hist, embed)
      pset = ProfileSet(list(ctx.specs), prof, np.zeros(2, bool), {}, {}, {})
      out.append(stages.router_grid(ctx, router, stages.router_inputs(ctx, pset, "prompt"), print))
    a, b = out
    np.testing.assert_array_equal(a["val_utility_SxZ"], b["val_utility_SxZ"], err_msg=router)
    np.testing.assert_array_equal(a["choices_SxZxQ"], b["choices_SxZxQ"], err_msg=router)
  # results.select_best reads validation utilities only: shuffling test performance in the
  # stats leaves the selection alone.
  stats = results.pd.DataFrame(
    {
      "setting": ["s"] * 3,
      "router": ["mf"] * 3,
      "inputs": ["prompt"] * 3,
      "hparams": ["a", "b", "c"],
      "profile": ["index"] * 3,
      "graph": [""] * 3,
      "hops": [0] * 3,
      "learn": ["tf"] * 3,
      "norm": [""] * 3,
      "val_utility": [0.5, 0.7, 0.6],
      "mean": [0.9, 0.1, 0.5],
    }
  )
  assert results.select_cells(stats)["hparams"].tolist() == ["b"]
  stats["mean"] = [0.1, 0.2, 0.9]
  assert results.select_cells(stats)["hparams"].tolist() == ["b"]
