"""Validation splits and the routing utility used for model selection."""

import jax.numpy as jnp
import numpy as np
import pytest

from rp_jax import train as tr
from rp_jax.routers import validation
from rp_jax.routers.data import RouterData


def _data(labels_QxA, pairs, task_Q, num_tasks=2):
  q, a = labels_QxA.shape
  return RouterData(
    train_q_QxD=np.zeros((q, 2), np.float32),
    pairs_Px3=np.asarray(pairs, np.int32).reshape(-1, 3),
    pair_table_QxJx2=np.zeros((q, 1, 2), np.int32),
    pair_mask_QxJ=np.zeros((q, 1), bool),
    labels_QxA=np.asarray(labels_QxA, np.float32),
    trainable_A=np.ones(a, bool),
    test_q_QxD=np.zeros((1, 2), np.float32),
    train_ids=np.arange(q, dtype=np.int32),
    test_ids=np.zeros(1, np.int32),
    candidates_A=np.arange(a, dtype=np.int32),
    train_task_Q=np.asarray(task_Q, np.int32),
    test_task_Q=np.zeros(1, np.int32),
    tasks_T=np.arange(num_tasks, dtype=np.int32),
  )


def test_stratified_split_sizes_tasks_and_determinism():
  task_Q = np.repeat([0, 1, 2], [50, 30, 20])
  sp = validation.stratified_split(task_Q, 0.1, seed=3)
  assert len(sp.val_idx) == tr.num_val_queries(100, 0.1) == 10
  assert sorted(np.bincount(task_Q[sp.val_idx]).tolist()) == [2, 3, 5]
  assert sorted([*sp.val_idx, *sp.train_idx]) == list(range(100))
  again = validation.stratified_split(task_Q, 0.1, seed=3)
  np.testing.assert_array_equal(sp.val_idx, again.val_idx)
  other = validation.stratified_split(task_Q, 0.1, seed=4)
  assert not np.array_equal(sp.val_idx, other.val_idx)
  # Largest remainders: 7 validation queries over 50/30/20 -> 3.5, 2.1, 1.4 -> 4, 2, 1.
  sp7 = validation.stratified_split(task_Q, 0.07, seed=0)
  assert np.bincount(task_Q[sp7.val_idx]).tolist() == [4, 2, 1]


def test_utility_table_and_val_utility_by_hand():
  nan = np.nan
  # 4 queries, 3 candidates; tasks 0, 0, 1, 1. Query 3 is the validation query.
  labels = np.array([[1, 0, nan], [nan, 1, 0], [0, nan, nan], [nan, nan, nan]], np.float32)
  pairs = [(0, 0, 1), (1, 1, 2), (2, 1, 0), (3, 2, 0)]  # the last is in the validation query
  data = _data(labels, pairs, [0, 0, 1, 1])
  sp = tr.QuerySplit(jnp.asarray([3]), jnp.asarray([0, 1, 2]))
  rate = np.asarray(validation.fold_win_rate(data, sp))
  # Task 0: cand 0 won 1 of 1, cand 1 won 1 of 2, cand 2 lost 1 of 1. Task 1 (fold pair 2
  # only): cand 1 won, cand 0 lost, cand 2 unseen (0.5). The validation pair does not count.
  np.testing.assert_allclose(rate, [[1.0, 0.5, 0.0], [0.0, 1.0, 0.5]])
  u = np.asarray(validation.utility_table(data, sp))
  np.testing.assert_allclose(u[0], [1, 0, 0.0])  # known, known, imputed rate of (task 0, c2)
  np.testing.assert_allclose(u[3], [0.0, 1.0, 0.5])  # all imputed from task 1's rates
  scores = jnp.asarray([[0.1, 0.9, 0.3]])  # the router picks candidate 1 for query 3
  assert float(validation.val_utility(scores, data, sp)) == pytest.approx(1.0)
  scores = jnp.asarray([[0.1, 0.2, 0.3]])  # candidate 2: unseen on task 1 -> 0.5
  assert float(validation.val_utility(scores, data, sp)) == pytest.approx(0.5)


def test_stratified_kfold_covers_queries_once_with_static_sizes():
  task_Q = np.repeat([0, 1, 2], [31, 17, 12])
  sp = validation.stratified_kfold(task_Q, 5, seed=1)
  assert sp.val_idx.shape == (5, 12) and sp.train_idx.shape == (5, 48)
  flat = sp.val_idx.reshape(-1)
  assert len(set(flat.tolist())) == 60  # every query validated exactly once (60 = 5 x 12)
  for k in range(5):
    assert not set(sp.val_idx[k]) & set(sp.train_idx[k])
    counts = np.bincount(task_Q[sp.val_idx[k]], minlength=3)
    np.testing.assert_allclose(counts, [31 / 5, 17 / 5, 12 / 5], atol=1.0)
  with pytest.raises(ValueError, match="num_folds"):
    validation.stratified_kfold(task_Q, 1, seed=0)
