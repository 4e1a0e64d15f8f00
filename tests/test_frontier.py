"""The cost–quality stage: cost estimates, fronts over the λ axis, baselines on the same axes."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from configs import test as test_config
from rp_jax import metrics
from rp_jax.cost import costq
from rp_jax.cost import model as cost_model
from rp_jax.cost import stage as frontier
from rp_jax.data import load_history
from rp_jax.routers.baselines import baselines
from rp_jax.types import TEST


@pytest.fixture(scope="module")
def setting():
  h = load_history(test_config.get_config().data, "standard")
  test = metrics.TestSet.from_history(h)
  bl = baselines(h, test)
  return h, test, bl, frontier.cost_setting(h, test, bl)


def with_training_tokens(h):
  """The History with token counts on its training rows too (the usage log is then those)."""
  tok = h.tokens_QxMx2.copy()
  rng = np.random.default_rng(0)
  tr = h.query_split != TEST
  tok[tr] = rng.integers(10, 400, tok[tr].shape).astype(np.float32)
  return h.replace(tokens_QxMx2=tok)


def test_completion_estimates_use_training_rows_or_leave_one_out(setting):
  h, test, _, _ = setting
  q = test.query_ids
  # The synthetic world, like the public release, has token counts on its test rows only: the
  # log is the *other* test rows of the same (task, candidate) (leave-one-out).
  assert not np.isfinite(h.tokens_QxMx2[h.train_queries]).any()
  loo = cost_model.usage_log(h).completion_tokens(h.query_task[q], q)
  comp = h.tokens_QxMx2[np.ix_(q, h.candidates)][..., 1]
  task = h.query_task[q]
  r, a = 0, 1
  others = [i for i in range(len(task)) if task[i] == task[r] and i != r]
  assert loo[r, a] == pytest.approx(np.median(comp[others, a]))
  # A row's own completion count never enters its estimate.
  tok = h.tokens_QxMx2.copy()
  tok[q[r], h.candidates[a], 1] = 1e9
  again = cost_model.usage_log(h.replace(tokens_QxMx2=tok)).completion_tokens(h.query_task[q], q)
  assert again[r, a] == pytest.approx(loo[r, a])
  # With training token counts, the log is the training rows: medians per (task, candidate).
  h2 = with_training_tokens(h)
  est = cost_model.usage_log(h2).completion_tokens(h.query_task[q], q)
  comp_tr = h2.tokens_QxMx2[np.ix_(h.train_queries, h.candidates)][..., 1]
  for i, a in [(0, 0), (0, 1), (5, 2)]:
    want = np.median(comp_tr[h.query_task[h.train_queries] == h.query_task[q[i]], a])
    assert est[i, a] == pytest.approx(want)
  # The sweep's cost estimate of the test rows is then the deployed router's estimate of their
  # texts (the same function of the same usage statistics).
  cs = frontier.cost_setting(h2, test, baselines(h2, test))
  model = cost_model.CostModel(
    *([np.zeros(test.num_candidates)] * 2),
    np.zeros(2),
    h2.prices_Mx2[h2.candidates],
    *dataclasses.astuple(cost_model.usage_log(h2))[:3],
    cs.lambdas_U,
    *([np.zeros((0, test.num_candidates))] * 3),
  )
  texts = [h2.query_texts[i] for i in q]
  np.testing.assert_array_equal(cs.cost_est_QxA, model.expected_cost(texts, h2.query_task[q]))
  np.testing.assert_array_equal(
    cs.lambdas_U, cost_model.setting_lambdas(h2, cost_model.usage_log(h2))
  )


def test_fronts_span_argmax_to_cheapest_and_equal_a_loop(setting):
  _, test, _, cs = setting
  rng = np.random.default_rng(0)
  p = rng.random((2, 3, test.num_rows, test.num_candidates)).astype(np.float32)
  q, c = frontier.fronts(p, cs)
  assert q.shape == c.shape == (2, 3, len(cs.lambdas_U))
  for i in range(2):
    for j in range(3):
      want_q, want_c = costq.front(p[i, j], cs.cost_est_QxA, cs.perf_QxA, cs.cost_QxA, cs.lambdas_U)
      np.testing.assert_allclose(q[i, j], want_q, rtol=1e-6)
      np.testing.assert_allclose(c[i, j], want_c, rtol=1e-6)
  rows = np.arange(test.num_rows)
  arg = p[0, 0].argmax(1)  # λ = 0: the argmax of p̂
  assert q[0, 0, 0] == pytest.approx(cs.perf_QxA[rows, arg].mean(), rel=1e-6)
  cheap = cs.cost_est_QxA.argmin(1)  # the largest λ: the cheapest estimated candidate
  assert c[0, 0, -1] == pytest.approx(cs.cost_QxA[rows, cheap].mean(), rel=1e-6)


def test_baselines_and_scores_on_the_same_axes(setting):
  _, test, bl, cs = setting
  front, scores = frontier.baseline_rows("standard", bl, test, cs)
  names = {r["name"] for r in scores}
  assert {"zero_router", "oracle_query", "oracle_task", "task_best_pairs"} <= names
  by = {r["name"]: r for r in front if r["name"] != "zero_router"}
  # The per-query oracle is the cheapest of the best on every row.
  perf, cost = cs.perf_QxA, cs.cost_QxA
  best = perf == perf.max(1, keepdims=True)
  assert by["oracle_query"]["avg_performance"] == pytest.approx(perf.max(1).mean())
  assert by["oracle_query"]["cost_per_query"] == pytest.approx(
    np.where(best, cost, np.inf).min(1).mean()
  )
  # A constant router's AIQ by hand: quality flat from its cost to the most expensive one.
  a = int(np.argmin(cs.const_cost_A))
  row = next(r for r in scores if r["name"] == f"const/{test.candidate_names[a]}")
  assert row["aiq"] == pytest.approx(cs.const_quality_A[a], rel=1e-6)


def test_cell_rows_reliability_bins_pool_the_seeds(setting):
  _, test, _, cs = setting
  rng = np.random.default_rng(1)
  c, z, v, a = 2, 3, 7, test.num_candidates
  scores = rng.normal(size=(c, z, test.num_rows, a)).astype(np.float32)
  val = rng.normal(size=(c, z, v, a)).astype(np.float32)
  labels = (rng.random((c, z, v, a)) < 0.5).astype(np.float32)
  labels[:, :, 0, 0] = np.nan  # unknown outcomes are not counted
  ids = rng.choice(len(cs.row_cost_QxA), (c, z, v))
  rows = frontier.cell_rows("s", ["x", "y"], frontier.CellScores(scores, val, labels, ids), cs)
  front, scores_rows, calib = rows["front"], rows["scores"], rows["calibration"]
  assert len(front) == c * len(cs.lambdas_U) and len(scores_rows) == c
  # Every (weak, strong) pair of candidates, strong = the better on training rows.
  assert len(rows["pairs"]) == c * a * (a - 1) // 2
  assert all(cs.train_quality_A[r["strong"]] > cs.train_quality_A[r["weak"]] for r in rows["pairs"])
  frame = pd.DataFrame(calib)
  counts = frame.groupby(["name", "split"])["count"].sum()
  for name in ("x", "y"):
    assert counts[(name, "test")] == z * test.num_rows * a  # every test outcome is known
    assert counts[(name, "val")] == z * v * a - z  # one unknown label per seed
  full = frame[frame["count"] > 0]
  g = full["bin"].to_numpy()
  num_bins = frame["bin"].max() + 1
  # Each bin's mean p̂ lies inside the bin; the observed means are outcome averages.
  assert (
    (full["mean_pred"] >= g / num_bins - 1e-6) & (full["mean_pred"] <= (g + 1) / num_bins)
  ).all()
  assert full["mean_obs"].between(0, 1).all()


def test_isotonic_calibration_is_a_config_switch(setting):
  _, test, _, cs = setting
  rng = np.random.default_rng(2)
  a = test.num_candidates
  scores = rng.normal(size=(1, 2, test.num_rows, a)).astype(np.float32)
  val = rng.normal(size=(1, 2, 40, a)).astype(np.float32)
  labels = (val > 0).astype(np.float32)  # a monotone truth: isotonic maps are step functions
  p_test, p_val = frontier.calibrate(scores, val, labels, "isotonic")
  assert p_val.shape == val.shape and np.isin(np.round(p_val, 6), [0.0, 1.0]).all()
  platt, _ = frontier.calibrate(scores, val, labels, "platt")
  assert not np.allclose(platt, p_test)


def test_aiq_margin_interval_over_resampled_rows(setting):
  _, test, _, cs = setting
  rng = np.random.default_rng(3)
  p = rng.random((1, 2, test.num_rows, test.num_candidates)).astype(np.float32)
  p = np.concatenate([p, p])  # two identical cells: identical intervals
  ci = frontier.aiq_margin_interval(p, cs)
  assert ci.shape == (2, 2) and (ci[0] == ci[1]).all() and ci[0, 0] < ci[0, 1]
  q, c = frontier.fronts(p, cs)
  _, zero = frontier.costq.zero_router(cs.const_cost_A, cs.const_quality_A)
  point = frontier.costq.aiq(c[0].mean(0), q[0].mean(0), cs.cost_min, cs.cost_max) - zero
  assert ci[0, 0] <= point <= ci[0, 1]


def test_shared_calibration_keeps_the_router_argmax(setting):
  """One map for all candidates: p̂ is a monotone function of the raw score, so the λ = 0 choice
  is the router's argmax; per-candidate maps with different base rates reorder it."""
  _, test, _, _ = setting
  rng = np.random.default_rng(4)
  a = test.num_candidates
  scores = rng.normal(size=(1, 1, test.num_rows, a)).astype(np.float32)
  val = rng.normal(size=(1, 1, 400, a)).astype(np.float32)
  # candidate 0 is right far more often than its scores say: a per-candidate map lifts it
  base = np.where(np.arange(a) == 0, 2.0, -1.0).astype(np.float32)
  labels = (rng.random(val.shape) < 1 / (1 + np.exp(-(val + base)))).astype(np.float32)
  shared, _ = frontier.calibrate(scores, val, labels, "shared")
  platt, _ = frontier.calibrate(scores, val, labels, "platt")
  raw_choice = scores.argmax(-1)
  assert (shared.argmax(-1) == raw_choice).all()
  assert (platt.argmax(-1) != raw_choice).mean() > 0.1
