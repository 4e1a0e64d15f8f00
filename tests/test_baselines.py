"""Baselines on a tiny hand-made History; TestSet.from_history."""

import jax
import numpy as np
import pytest

from rp_jax import metrics as mt
from rp_jax.routers.baselines import KINDS, Baseline, baselines
from rp_jax.types import TEST, TRAIN, History

NAN = np.nan
M0, M1, M2, M3 = range(4)  # M3 is in the pool but not a candidate
MATH, EXTRA, CODE = range(3)  # EXTRA has training queries only (not a routing task)

# Test outcomes of the candidates M0..M2 (rows 6..11 of the History; 3 math rows, 3 code rows).
TEST_PERF_QxA = np.array(
  [
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 1.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.2, 0.8],
    [1.0, 1.0, 1.0],
    [0.3, 0.9, 0.1],
  ],
  np.float32,
)

# Training queries: 0, 1, 2 math; 3, 4 code; 5 extra.
PAIRS = [
  # math: M0 2 wins 0 losses (net +2); M2 3 wins 3 losses (net 0, but most raw wins); M1 net -5.
  (0, M0, M1),
  (1, M0, M1),
  (0, M2, M1),
  (1, M2, M1),
  (2, M2, M1),
  (0, M3, M2),
  (1, M3, M2),
  (2, M3, M2),
  # code: M1 3-0, M2 1-1, M0 0-3.
  (3, M1, M0),
  (3, M1, M2),
  (4, M1, M0),
  (4, M2, M0),
  # extra (not routed, still counts for best_single): M1 2-0.
  (5, M1, M0),
  (5, M1, M2),
]
# Over all pairs: M0 2 wins / 6 pairs, M1 5 / 10, M2 4 / 9 -> best_single = M1.


def make_history(pairs=PAIRS, held_out=(), scores=None) -> History:
  """4 pool models (3 candidates), 3 tasks (2 routing), 6 training + 6 test queries."""
  num_models, num_queries = 4, 12
  if scores is None:
    scores = [
      [50.0, 90.0, 10.0],
      [60.0, 10.0, NAN],
      [NAN, 10.0, 20.0],
      [99.0, 99.0, 99.0],
    ]
  query_task = [MATH, MATH, MATH, CODE, CODE, EXTRA] + [MATH] * 3 + [CODE] * 3
  split = [TRAIN] * 6 + [TEST] * 6
  outcomes = np.full((num_queries, num_models), NAN, np.float32)
  outcomes[6:, :3] = TEST_PERF_QxA
  tokens = np.full((num_queries, num_models, 2), NAN, np.float32)
  tokens[6:, :, 0], tokens[6:, :, 1] = 1000.0, 500.0
  cost = np.full((num_queries, num_models), NAN, np.float32)
  cost[6, M2] = 0.5  # explicit cost where prices are unknown
  return History(
    model_names=("m0", "m1", "m2", "m3"),
    model_texts=("model zero", "model one", "model two", "model three"),
    model_family=[0, 0, 0, 0],
    prices_Mx2=[[1.0, 2.0], [2.0, 4.0], [NAN, NAN], [1.0, 1.0]],
    family_names=("fam",),
    family_texts=("a family",),
    task_names=("math", "extra", "code"),
    task_texts=("math task", "extra task", "code task"),
    task_metric=("em", "em", "em"),
    task_binary=[True, True, True],
    domain_names=("reasoning",),
    domain_texts=("reasoning domain",),
    task_domain_TxC=[[True], [True], [True]],
    scores_MxT=scores,
    query_texts=tuple(f"query {i}" for i in range(num_queries)),
    query_task=query_task,
    query_split=split,
    query_in_graph=[s == TRAIN for s in split],
    outcomes_QxM=outcomes,
    tokens_QxMx2=tokens,
    cost_QxM=cost,
    pairs_Px3=np.asarray(pairs, np.int32).reshape(-1, 3),
    candidates=[M0, M1, M2],
    held_out=held_out,
    setting="tiny",
  )


def choices(b: Baseline) -> list[int]:
  assert np.all(b.sel_QxA.sum(1) == 1)
  return np.argmax(b.sel_QxA, axis=1).tolist()


def avg(b: Baseline, test: mt.TestSet) -> float:
  return float(mt.evaluate(b.sel_QxA, test)["avg_performance"])


def test_testset_from_history():
  h = make_history(held_out=())
  test = mt.TestSet.from_history(h)
  np.testing.assert_array_equal(test.perf_QxA, TEST_PERF_QxA)
  np.testing.assert_array_equal(test.task_Q, [0, 0, 0, 1, 1, 1])  # math -> 0, code -> 1
  assert test.task_names == ("math", "code")
  assert test.candidate_names == ("m0", "m1", "m2")
  np.testing.assert_array_equal(test.query_ids, np.arange(6, 12))
  np.testing.assert_array_equal(test.new_A, [False, False, False])
  # Costs: tokens x prices / 1e6 (M0: 0.002, M1: 0.004); M2 has no prices, one explicit cost.
  np.testing.assert_allclose(test.cost_QxA[:, 0], 0.002, rtol=1e-6)
  np.testing.assert_allclose(test.cost_QxA[:, 1], 0.004, rtol=1e-6)
  assert test.cost_QxA[0, 2] == 0.5 and np.isnan(test.cost_QxA[1:, 2]).all()
  assert test.perf_QxA.dtype == np.float32 and test.task_Q.dtype == np.int32
  # Passes through jit as an argument (names are static).
  out = jax.jit(mt.evaluate)(mt.one_hot(np.zeros(6, int), 3), test)
  np.testing.assert_allclose(out["cost_per_query"], 0.002, rtol=1e-6)


def test_testset_requires_test_rows():
  h = make_history()
  no_test = h.replace(query_split=np.zeros(12, np.int8), query_in_graph=np.ones(12, bool))
  with pytest.raises(ValueError, match="no test queries"):
    mt.TestSet.from_history(no_test)


def test_baseline_set_and_kinds():
  bs = baselines(make_history())
  assert list(bs) == [
    "random",
    "const/m0",
    "const/m1",
    "const/m2",
    "best_single",
    "task_best_benchmark",
    "task_best_pairs",
    "oracle_query",
    "oracle_single",
    "oracle_task",
  ]
  for name, b in bs.items():
    assert b.name == name and b.kind in KINDS and b.description.endswith(".")
    assert b.sel_QxA.shape == (6, 3) and b.sel_QxA.dtype == np.float32
    np.testing.assert_allclose(b.sel_QxA.sum(1), 1.0, rtol=1e-6)
  assert {b.kind for b in bs.values()} == set(KINDS)
  assert bs["oracle_query"].kind == bs["oracle_task"].kind == "upper_bound"
  with pytest.raises(ValueError, match="unknown baseline kind"):
    Baseline("x", np.ones((1, 1), np.float32), "oracle", "bad kind")


def test_constant_random_and_oracle_values():
  h = make_history()
  test = mt.TestSet.from_history(h)
  bs = baselines(h, test)
  assert choices(bs["const/m1"]) == [1] * 6
  np.testing.assert_allclose(avg(bs["const/m0"], test), 2.3 / 6, rtol=1e-6)
  np.testing.assert_allclose(avg(bs["const/m1"], test), 3.1 / 6, rtol=1e-6)
  np.testing.assert_allclose(avg(bs["const/m2"], test), 2.9 / 6, rtol=1e-6)
  np.testing.assert_allclose(bs["random"].sel_QxA, 1 / 3)
  np.testing.assert_allclose(avg(bs["random"], test), 8.3 / 18, rtol=1e-6)
  # Per row, first best on ties (rows 1, 2, 4 tie).
  assert choices(bs["oracle_query"]) == [0, 1, 0, 2, 0, 1]
  np.testing.assert_allclose(avg(bs["oracle_query"], test), 4.7 / 6, rtol=1e-6)
  assert float(mt.evaluate(bs["oracle_query"].sel_QxA, test)["regret"]) == 0.0
  # Per task: math means tie at 1/3 for everyone -> M0; code means 1.3, 2.1, 1.9 (/3) -> M1.
  assert choices(bs["oracle_task"]) == [0, 0, 0, 1, 1, 1]
  np.testing.assert_allclose(avg(bs["oracle_task"], test), 3.1 / 6, rtol=1e-6)
  assert choices(bs["oracle_single"]) == [1] * 6


def test_rule_baselines_pick_expected_models():
  bs = baselines(make_history())
  # Win rates over all pairs: M0 2/6, M1 5/10, M2 4/9.
  assert choices(bs["best_single"]) == [1] * 6
  assert "m1" in bs["best_single"].description
  # Benchmark: math M1 (60 > 50, M2 unscored), code M2 (20 > 10, M1 unscored).
  assert choices(bs["task_best_benchmark"]) == [1, 1, 1, 2, 2, 2]
  # Pairs: math M0 by net wins (+2 vs M2's 0, although M2 has more raw wins), code M1.
  assert choices(bs["task_best_pairs"]) == [0, 0, 0, 1, 1, 1]


def test_best_single_ties_break_by_benchmark_then_pool_order():
  pairs = [(0, M0, M2), (3, M1, M2)]  # M0 and M1 both 1/1
  # Mean scores over the routing tasks: M0 (50 + 10) / 2 = 30, M1 60.
  assert choices(baselines(make_history(pairs=pairs))["best_single"]) == [1] * 6
  # M0 (70 + 60) / 2 = 65 beats M1 60.
  flipped = [[70.0, 0.0, 60.0], [60.0, 0.0, NAN], [NAN, 0.0, 20.0], [0.0, 0.0, 0.0]]
  assert choices(baselines(make_history(pairs=pairs, scores=flipped))["best_single"]) == [0] * 6
  no_scores = np.full((4, 3), NAN).tolist()
  assert choices(baselines(make_history(pairs=pairs, scores=no_scores))["best_single"]) == [0] * 6


def test_task_rules_fall_back_to_best_single():
  no_code_pairs = [p for p in PAIRS if p[0] not in (3, 4)]
  no_scores = np.full((4, 3), NAN).tolist()
  bs = baselines(make_history(pairs=no_code_pairs, scores=no_scores))
  best = choices(bs["best_single"])[0]
  assert choices(bs["task_best_pairs"])[3:] == [best] * 3
  assert choices(bs["task_best_benchmark"]) == [best] * 6


def test_task_best_pairs_ties_break_by_task_win_rate():
  # Code: M1 and M2 both net +1; M1 1-0 (rate 1), M2 2-1 (rate 2/3) -> M1.
  pairs = [(3, M1, M0), (3, M2, M0), (4, M2, M0), (4, M0, M2)]
  assert choices(baselines(make_history(pairs=pairs))["task_best_pairs"])[3:] == [1] * 3


def test_newllm_held_out_model_cannot_be_chosen_by_pair_rules():
  # The new LLM M2 has no pairs and (as in the public release) no routing-task scores.
  pairs = [p for p in PAIRS if M2 not in p[1:]]
  scores = [[50.0, 90.0, 10.0], [60.0, 10.0, NAN], [NAN, 95.0, NAN], [99.0, 99.0, 99.0]]
  h = make_history(pairs=pairs, held_out=[M2], scores=scores)
  test = mt.TestSet.from_history(h)
  np.testing.assert_array_equal(test.new_A, [False, False, True])
  bs = baselines(h, test)
  for name in ("best_single", "task_best_pairs", "task_best_benchmark"):
    assert 2 not in choices(bs[name]), name
  # Without M2: M0 2 / 5, M1 3 / 5 overall; math M0 (+2), code M1 (+2).
  assert choices(bs["best_single"]) == [1] * 6
  assert choices(bs["task_best_pairs"]) == [0, 0, 0, 1, 1, 1]
  # Code: M0 10, M1 and M2 unscored -> M0.
  assert choices(bs["task_best_benchmark"]) == [1, 1, 1, 0, 0, 0]
  for name in ("best_single", "task_best_pairs"):
    assert "m2" in bs[name].description and "cannot choose" in bs[name].description
  r = mt.evaluate(bs["const/m2"].sel_QxA, test)
  np.testing.assert_allclose(r["new_model_selection_rate"], 1.0)
  np.testing.assert_allclose(r["new_model_recall"], 1.0)
  np.testing.assert_allclose(mt.evaluate(bs["best_single"].sel_QxA, test)["new_model_recall"], 0)


def test_vmapped_evaluation_of_all_baselines():
  h = make_history()
  test = mt.TestSet.from_history(h)
  bs = baselines(h, test)
  sel_SxQxA = np.stack([b.sel_QxA for b in bs.values()])
  out = jax.vmap(mt.evaluate, (0, None))(sel_SxQxA, test)
  names = list(bs)
  avg_S = np.asarray(out["avg_performance"])
  # Hand-computed values (see test_constant_random_and_oracle_values).
  np.testing.assert_allclose(avg_S[names.index("oracle_query")], 4.7 / 6, rtol=1e-6)
  np.testing.assert_allclose(avg_S[names.index("oracle_task")], 3.1 / 6, rtol=1e-6)
  # The vmapped evaluation equals evaluating each baseline alone, metric by metric.
  for i, name in enumerate(names):
    alone = mt.evaluate(bs[name].sel_QxA, test)
    for k, v in alone.items():
      np.testing.assert_allclose(np.asarray(out[k])[i], np.asarray(v), rtol=1e-6, err_msg=k)


def test_rejects_a_test_set_with_other_candidates():
  h = make_history()
  test = mt.TestSet.from_history(h)
  other = test._replace(names=mt.TestNames(test.task_names, ("a", "b", "c")))
  with pytest.raises(ValueError, match="candidates"):
    baselines(h, other)
