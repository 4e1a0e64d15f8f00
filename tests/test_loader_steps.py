"""Steps of the loaders tested alone: metric table, outcome derivation, query table, pairs."""

import numpy as np
import pytest

from rp_jax.data import generic as gen
from rp_jax.data import routeprofile as rp
from rp_jax.data import task_kinds
from rp_jax.types import DataError


def test_metric_table():
  assert task_kinds.metric_is_binary("GSM8K") is True
  assert task_kinds.metric_is_binary("MATH") is True
  assert task_kinds.metric_is_binary("em_mc") is True
  assert task_kinds.metric_is_binary("code_eval") is True
  assert task_kinds.metric_is_binary("f1_score") is False
  assert task_kinds.metric_is_binary("commongen_coverage") is False
  assert task_kinds.metric_is_binary("bleu") is None
  assert task_kinds.metric_is_binary("") is None
  binary_T, notes = task_kinds.binary_from_metrics(
    ["a", "b", "c", "d"], ["em_mc", "f1_score", "bleu", ""], [0, 1, 2]
  )
  np.testing.assert_array_equal(binary_T, [True, False, False, False])
  assert "binary a; continuous b, c" in notes[0]
  assert notes[1].endswith("c (bleu)")  # d has no queries: not named


def test_routeprofile_derive_outcomes_ignores_test_outcomes():
  """Binary tasks come from metric names: 0/1 test outcomes do not make an f1 task binary."""
  # Queries 0-1 test (task 0: f1_score, task 1: em_mc), 2-3 train; 3 models, all candidates.
  perf_NxM = np.float32([[1, 0, 1], [0.5, 1, 0]])
  tok_NxMx2 = np.ones((2, 3, 2), np.float32)
  query_task_Q = np.int32([0, 1, 0, 1])
  pairs_Px3 = np.int32([[2, 0, 1], [3, 1, 2], [3, 0, 2]])
  notes = []
  out_QxM, tok_QxMx2, binary_T = rp.derive_outcomes(
    perf_NxM,
    tok_NxMx2,
    pairs_Px3,
    query_task_Q,
    [0, 1, 2],
    ["f1_score", "em_mc"],
    ["f", "e"],
    notes,
  )
  np.testing.assert_array_equal(binary_T, [False, True])
  np.testing.assert_array_equal(out_QxM[:2], perf_NxM)
  assert np.isnan(out_QxM[2]).all()  # f1 task: the pair rebuilds nothing
  np.testing.assert_array_equal(out_QxM[3], [1, 1, 0])
  assert np.isnan(tok_QxMx2[2:]).all() and (tok_QxMx2[:2] == 1).all()
  assert "3 known; continuous tasks (f) keep only the pairs" in notes[-1]
  # A binary-by-metric task whose test outcomes are not 0/1 is named (a check, not a decision).
  assert any("other than 0/1" in n and n.endswith(": e") for n in notes)


def test_routeprofile_rebuild_training_outcomes_conflicts():
  # Query 0: model 1 better than 2 and worse than 0 -> 1 is contradictory (NaN); query 1 on a
  # continuous task: nothing rebuilt.
  pairs_Px3 = np.int32([[0, 1, 2], [0, 0, 1], [1, 0, 1]])
  out_QxM, n_conflict = rp.rebuild_training_outcomes(
    pairs_Px3, np.array([True, False]), np.int32([0, 1]), (2, 3)
  )
  assert n_conflict == 1
  np.testing.assert_array_equal(out_QxM, [[1, np.nan, 0], [np.nan] * 3])


def test_routeprofile_query_table(tmp_path):
  qt = rp.QueryTable(["t0", "t1"], tmp_path / "task_feature.json", include_choices=True)
  row = {"task_name": "t1", "query": "Q?", "metric": "GSM8K", "choices": "['x', 'y']"}
  ti = qt.task_of(row, "f", "row 0")
  assert ti == 1 and qt.metrics == {1: "gsm8k"}
  query = qt.query_of(row, "f", "row 0")
  assert query == ("Q?\nChoices: x | y", "Q?", ["x", "y"])
  assert qt.add(1, query, 1, False, ("f", "row 0")) == 0
  assert qt.add(0, query, 0, False) == 1  # same text, other task: another query
  assert qt.add(1, query, 1, True) == 0 and qt.graph == [True, False]  # repeat joins the graph
  assert qt.raw == ["Q?", "Q?"] and qt.origin[0] == ("f", "row 0")
  with pytest.raises(DataError, match="metric 'gsm8k' elsewhere"):
    qt.task_of({**row, "metric": "em_mc"}, "f", "row 1")
  # A repeated query takes the first choices any row gives and counts rows that differ.
  qt = rp.QueryTable(["t0"], tmp_path / "task_feature.json", include_choices=False)
  q = qt.add(0, ("A", "A", None), 0, True, ("g", "line 1"))
  qt.add(0, ("A", "A", ["a", "b"]), 0, False, ("p", "pairwise_data[3]"))
  qt.add(0, ("A", "A", ["a", "c"]), 0, False, ("p", "pairwise_data[4]"))
  assert qt.choices[q] == ["a", "b"] and qt.origin[q] == ("p", "pairwise_data[3]")
  assert qt.choice_conflicts == 1


def test_generic_derive_pairs_skips_nan_and_held_out():
  out_QxM = np.float32([[1, 0, np.nan], [0.5, 0.5, 0.2], [1, 0, 0]])
  tr_Q = np.array([True, True, False])
  got = {tuple(p) for p in gen.derive_pairs(out_QxM, tr_Q, [0, 1, 2], []).tolist()}
  assert got == {(0, 0, 1), (1, 0, 2), (1, 1, 2)}  # NaN never pairs, ties never, test never
  got = {tuple(p) for p in gen.derive_pairs(out_QxM, tr_Q, [0, 1, 2], [0]).tolist()}
  assert got == {(1, 1, 2)}


def test_generic_binary_tasks_from_training_rows_or_metric():
  # Task 0: training 0/1, test 0.5 -> binary (test rows are not looked at).
  # Task 1: training 0.5 -> continuous. Task 2: only test rows -> continuous.
  # Task 3: training 0/1 but metric f1_score -> continuous. Task 4: metric em_mc -> binary.
  out_QxM = np.float32([[1, 0], [0.5, 0.5], [0.5, 1], [0, 1], [1, 0], [0.2, 0.3]])
  task_Q = np.int32([0, 0, 1, 2, 3, 4])
  tr_Q = np.array([True, False, True, False, True, True])
  binary_T, notes = gen.binary_tasks(
    out_QxM, task_Q, tr_Q, ["", "", "", "f1_score", "EM_MC".lower()], ["a", "b", "c", "d", "e"]
  )
  np.testing.assert_array_equal(binary_T, [True, False, False, False, True])
  notes = "\n".join(notes)
  assert "d (f1_score: continuous), e (em_mc: 0/1)" in notes
  assert "counted continuous: c" in notes
  assert "other than 0/1: e" in notes
