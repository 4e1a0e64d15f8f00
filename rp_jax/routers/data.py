"""Router training data (host side, numpy): the arrays every trainable router consumes.

``make_router_data(history, query_emb_QxD)`` restricts a History to its candidates (router model
indices are candidate positions 0..A-1) and returns a ``RouterData`` pytree:

- training queries: the History's training queries with at least one pair between candidates or
  one known outcome on a trainable candidate, in History order;
- pairs (local query, better candidate, worse candidate), also as a per-query table padded to the
  largest pair count K (for batches made of whole queries);
- labels: the History outcomes of the training queries on the candidates (NaN = unknown; for a
  held-out model NaN but on its quiz queries, ``History.quiz_queries``: a held-out model without
  quiz answers is marked untrainable in ``trainable_A``);
- test queries: ``history.test_queries`` in that order.

The validation split is made per query inside the jitted training function (``rp_jax.train``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rp_jax.types import History


class RouterData(NamedTuple):
  """Arrays a router trains and routes on (a pytree; pass it through jit as an argument).

  Attributes:
    train_q_QxD: [Q, D] float32 embeddings of the training queries.
    pairs_Px3: [P, 3] int32 (local training query, better candidate, worse candidate).
    pair_table_QxJx2: [Q, K, 2] int32 (better, worse) of each query's pairs, padded with 0.
    pair_mask_QxJ: [Q, K] bool, the slot holds a real pair.
    labels_QxA: [Q, A] float32 outcome of each training query on each candidate; NaN unknown.
    trainable_A: [A] bool, False for held-out (new) models without any revealed quiz answer:
      training never sees them. A held-out model with quiz answers is trainable on those.
    test_q_QxD: [Q_test, D] float32 embeddings of ``history.test_queries``.
    train_ids: [Q] int32 History indices of the training queries.
    test_ids: [Q_test] int32 History indices of the test queries.
    candidates_A: [A] int32 pool indices of the candidates.
    train_task_Q: [Q] int32 History task index of each training query.
    test_task_Q: [Q_test] int32 History task index of each test query.
    tasks_T: [T] int32 0..T-1 (its length gives the static number of History tasks).
  """

  train_q_QxD: np.ndarray
  pairs_Px3: np.ndarray
  pair_table_QxJx2: np.ndarray
  pair_mask_QxJ: np.ndarray
  labels_QxA: np.ndarray
  trainable_A: np.ndarray
  test_q_QxD: np.ndarray
  train_ids: np.ndarray
  test_ids: np.ndarray
  candidates_A: np.ndarray
  train_task_Q: np.ndarray
  test_task_Q: np.ndarray
  tasks_T: np.ndarray

  @property
  def num_train(self) -> int:
    return int(self.train_q_QxD.shape[0])

  @property
  def num_test(self) -> int:
    return int(self.test_q_QxD.shape[0])

  @property
  def num_candidates(self) -> int:
    return int(self.trainable_A.shape[0])

  @property
  def num_tasks(self) -> int:
    return int(self.tasks_T.shape[0])

  @property
  def dim(self) -> int:
    return int(self.train_q_QxD.shape[1])

  @property
  def max_pairs_per_query(self) -> int:
    return int(self.pair_mask_QxJ.shape[1])

  def mean_pairs_per_query(self) -> float:
    """Mean number of pairs per training query (0 if there are no pairs)."""
    return float(len(self.pairs_Px3)) / max(1, self.num_train)


def make_router_data(history: History, query_emb_QxD: np.ndarray) -> RouterData:
  """Builds the router arrays of a History.

  Args:
    history: a validated History.
    query_emb_QxD: [history.num_queries, D] embeddings of all History queries, in History order.

  Returns:
    RouterData (numpy arrays).

  Raises:
    ValueError: the embeddings do not match the History, or no training query is usable.
  """
  q_emb = _checked_embeddings(history, query_emb_QxD)
  cand_A = history.candidates
  num_cand = len(cand_A)
  held_A = np.isin(cand_A, history.held_out)
  quiz_Q = np.zeros(history.num_queries, bool)
  quiz_Q[history.quiz_queries] = True
  pairs = _candidate_pairs(history, held_A, quiz_Q)

  train_all = history.train_queries
  labels_all = history.outcomes_QxM[np.ix_(train_all, cand_A)].astype(np.float32)
  labels_all[np.ix_(~quiz_Q[train_all], held_A)] = np.nan
  # A held-out model with quiz answers is trained on like the others (on those answers only).
  answered_A = np.isfinite(labels_all).any(0) | np.isin(np.arange(num_cand), pairs[:, 1:])
  trainable_A = ~held_A | answered_A
  has_pair = np.isin(train_all, pairs[:, 0])
  has_label = np.isfinite(labels_all).any(1)
  use = has_pair | has_label
  if not use.any():
    raise ValueError(
      f"history {history.setting!r} from {history.source}: no training query has a pair or a "
      "known outcome on a trainable candidate; a trainable router has nothing to learn from"
    )
  train_ids = train_all[use].astype(np.int32)
  labels_QxA = labels_all[use]
  local_H = np.full(history.num_queries, -1, np.int64)
  local_H[train_ids] = np.arange(len(train_ids))
  pairs_Px3 = np.stack([local_H[pairs[:, 0]], pairs[:, 1], pairs[:, 2]], axis=1).astype(np.int32)
  table, mask = _pair_table(pairs_Px3, len(train_ids))

  test_ids = history.test_queries.astype(np.int32)
  return RouterData(
    train_q_QxD=q_emb[train_ids],
    pairs_Px3=pairs_Px3,
    pair_table_QxJx2=table,
    pair_mask_QxJ=mask,
    labels_QxA=labels_QxA,
    trainable_A=trainable_A,
    test_q_QxD=q_emb[test_ids],
    train_ids=train_ids,
    test_ids=test_ids,
    candidates_A=cand_A.astype(np.int32),
    train_task_Q=history.query_task[train_ids].astype(np.int32),
    test_task_Q=history.query_task[test_ids].astype(np.int32),
    tasks_T=np.arange(history.num_tasks, dtype=np.int32),
  )


def _checked_embeddings(history: History, query_emb_QxD: np.ndarray) -> np.ndarray:
  """[Q, D] float32 embeddings: one finite row per History query, else ValueError."""
  q_emb = np.asarray(query_emb_QxD, np.float32)
  if q_emb.ndim != 2 or q_emb.shape[0] != history.num_queries:
    raise ValueError(
      f"query_emb_QxD: expected [{history.num_queries}, D] (one row per History query, in "
      f"History order); got shape {q_emb.shape}"
    )
  if not np.isfinite(q_emb).all():
    row = int(np.flatnonzero(~np.isfinite(q_emb).all(1))[0])
    raise ValueError(f"query_emb_QxD: row {row} is not finite")
  return q_emb


def _candidate_pairs(history: History, held_A: np.ndarray, quiz_Q: np.ndarray) -> np.ndarray:
  """[P, 3] int64 (History query, better position, worse position) of the pairs a router may
  train on, in History order."""
  cand_A = history.candidates
  pos_M = np.full(history.num_models, -1, np.int64)
  pos_M[cand_A] = np.arange(len(cand_A))
  # Pairs between candidates only; a pair touching a held-out model would leak it unless it is on
  # one of its quiz queries (the History forbids the others, but a router must never depend on
  # that check alone).
  pairs = history.pairs_Px3.astype(np.int64)
  better, worse = pos_M[pairs[:, 1]], pos_M[pairs[:, 2]]
  keep = (better >= 0) & (worse >= 0)
  touches_held = held_A[np.maximum(better, 0)] | held_A[np.maximum(worse, 0)]
  keep &= ~touches_held | quiz_Q[pairs[:, 0]]
  return np.stack([pairs[keep, 0], better[keep], worse[keep]], axis=1)


def _pair_table(pairs_Px3: np.ndarray, Q: int) -> tuple[np.ndarray, np.ndarray]:
  """([Q, K, 2] int32 (better, worse) of each query's pairs padded with 0, [Q, K] bool mask).

  A stable sort by query keeps the History order of each query's pairs."""
  counts = np.bincount(pairs_Px3[:, 0], minlength=Q)
  K = max(1, int(counts.max()) if len(counts) else 1)
  order = np.argsort(pairs_Px3[:, 0], kind="stable")
  sorted_P = pairs_Px3[order]
  starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
  slot = np.arange(len(sorted_P)) - starts[sorted_P[:, 0]]
  table = np.zeros((Q, K, 2), np.int32)
  mask = np.zeros((Q, K), bool)
  table[sorted_P[:, 0], slot] = sorted_P[:, 1:]
  mask[sorted_P[:, 0], slot] = True
  return table, mask
