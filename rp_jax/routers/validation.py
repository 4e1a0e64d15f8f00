"""Model selection on validation queries carved from the training queries (never test rows).

- ``stratified_split``: a per-seed split of the training queries, stratified by task, of the same
  size as ``train.num_val_queries`` (host side, numpy; every router family of a seed gets the same
  split, so families and hyperparameters are compared on the same queries);
- ``pair_accuracy`` / ``labelled_utility``: pair accuracy, and the mean known outcome of the
  top-scored candidate among those with a known one (the graph router's "labelled" metric);
- ``utility_table`` / ``val_utility``: the *routing utility* of a router on validation queries —
  the mean, over validation queries, of u(q, argmax over all candidates of the router's scores).
  u(q, m) is the known outcome where the training data has one; elsewhere (the public data only
  rebuilds outcomes of binary tasks from the pairs, and never of held-out models) it is m's win
  rate over the training fold's pairs of q's task (wins / (wins + losses); 0.5 where m has no such
  pair): the best estimate of m's outcome the training fold gives. On data with full outcome rows
  (synthetic, generic) u is the plain outcome.

Shape letters as in ``rp_jax.types``: Q training queries, V validation queries, A candidates,
T tasks, P pairs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax import train as tr
from rp_jax.routers.data import RouterData


def stratified_split(task_Q: np.ndarray, val_fraction: float, seed: int) -> tr.QuerySplit:
  """Validation / training split of Q queries, stratified by task (numpy, deterministic).

  The validation size is ``train.num_val_queries(Q, val_fraction)``; it is shared out over tasks
  in proportion to their query counts (largest remainders), and each task's validation queries
  are drawn uniformly with ``np.random.default_rng(seed)``.

  Returns:
    QuerySplit of int32 numpy arrays (validation indices sorted, then training indices sorted).
  """
  task_Q = np.asarray(task_Q)
  n_val = tr.num_val_queries(len(task_Q), val_fraction)
  tasks, counts = np.unique(task_Q, return_counts=True)
  exact = counts * n_val / max(len(task_Q), 1)
  take = np.floor(exact).astype(int)
  rest = n_val - int(take.sum())
  # Largest remainders first; ties to the task listed first (deterministic).
  for i in np.argsort(-(exact - take), kind="stable")[:rest]:
    take[i] += 1
  rng = np.random.default_rng(seed)
  val = []
  for t, k in zip(tasks, take, strict=True):
    if k:
      val.append(rng.choice(np.flatnonzero(task_Q == t), size=k, replace=False))
  val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
  train_idx = np.setdiff1d(np.arange(len(task_Q)), val_idx)
  return tr.QuerySplit(val_idx.astype(np.int32), train_idx.astype(np.int32))


def stratified_splits(data: RouterData, val_fraction: float, seeds) -> tr.QuerySplit:
  """``stratified_split`` of the training queries for each seed, stacked: [Z, V] and [Z, F]."""
  splits = [stratified_split(np.asarray(data.train_task_Q), val_fraction, int(s)) for s in seeds]
  return tr.QuerySplit(*(np.stack(x) for x in zip(*splits, strict=True)))


def fold_win_rate(data: RouterData, split: tr.QuerySplit) -> jax.Array:
  """[T, A] win rate of each candidate over the training fold's pairs of each task (0.5: none)."""
  num_q, num_t, num_a = data.num_train, data.num_tasks, data.num_candidates
  in_fold_Q = jnp.ones(num_q, bool).at[split.val_idx].set(False)
  q_P, better_P, worse_P = (jnp.asarray(data.pairs_Px3)[:, i] for i in range(3))
  w_P = in_fold_Q[q_P].astype(jnp.float32)
  task_P = jnp.asarray(data.train_task_Q)[q_P]
  wins = jax.ops.segment_sum(w_P, task_P * num_a + better_P, num_segments=num_t * num_a)
  losses = jax.ops.segment_sum(w_P, task_P * num_a + worse_P, num_segments=num_t * num_a)
  n = (wins + losses).reshape(num_t, num_a)
  return jnp.where(n > 0, wins.reshape(num_t, num_a) / jnp.maximum(n, 1.0), 0.5)


def utility_table(data: RouterData, split: tr.QuerySplit) -> jax.Array:
  """[Q, A] u(q, m): the known outcome, else the training-fold win rate of (q's task, m)."""
  rate_TxA = fold_win_rate(data, split)
  labels = jnp.asarray(data.labels_QxA)
  return jnp.where(jnp.isfinite(labels), labels, rate_TxA[jnp.asarray(data.train_task_Q)])


def val_utility(scores_VxA: jax.Array, data: RouterData, split: tr.QuerySplit) -> jax.Array:
  """Scalar mean over the validation queries of u(q, argmax_a scores[q, a]) (NaN: none)."""
  u_VxA = utility_table(data, split)[split.val_idx]
  pick_V = jnp.argmax(scores_VxA, axis=-1)
  got_V = jnp.take_along_axis(u_VxA, pick_V[:, None], axis=1)[:, 0]
  return jnp.where(got_V.shape[0] > 0, jnp.mean(got_V), jnp.nan).astype(jnp.float32)


def pair_accuracy(scores_VxA: jax.Array, data: RouterData, split: tr.QuerySplit) -> jax.Array:
  """Scalar share of the validation queries' pairs whose better model scores strictly higher."""
  table = jnp.asarray(data.pair_table_QxJx2)[split.val_idx]
  mask = jnp.asarray(data.pair_mask_QxJ)[split.val_idx]
  better = jnp.take_along_axis(scores_VxA, table[..., 0], 1)
  worse = jnp.take_along_axis(scores_VxA, table[..., 1], 1)
  n = mask.sum()
  right = ((better > worse) & mask).sum()
  return jnp.where(n > 0, right / jnp.maximum(n, 1), jnp.nan).astype(jnp.float32)


def labelled_utility(scores_VxA: jax.Array, data: RouterData, split: tr.QuerySplit) -> jax.Array:
  """Scalar mean known outcome of the top-scored trainable candidate among those with a known
  outcome, over the validation queries that have any (NaN: none)."""
  labels_VxA = jnp.asarray(data.labels_QxA)[split.val_idx]
  known = jnp.isfinite(labels_VxA) & jnp.asarray(data.trainable_A)[None, :]
  pick = jnp.argmax(jnp.where(known, scores_VxA, -jnp.inf), axis=1)
  got = jnp.take_along_axis(jnp.where(known, labels_VxA, 0.0), pick[:, None], 1)[:, 0]
  has = known.any(1)
  n = has.sum()
  return jnp.where(n > 0, (got * has).sum() / jnp.maximum(n, 1), jnp.nan).astype(jnp.float32)


def stratified_kfold(task_Q: np.ndarray, num_folds: int, seed: int) -> tr.QuerySplit:
  """K validation folds of the Q queries, stratified by task (numpy, deterministic).

  Queries are ordered by task, shuffled within each task (``np.random.default_rng(seed)``), and
  dealt round-robin to the folds, so each fold gets every task in proportion. Every fold's
  validation set has V = Q // K queries (static sizes): the Q mod K queries dealt last stay in
  every fold's training set.

  Returns:
    QuerySplit of int32 arrays ``val_idx`` [K, V] and ``train_idx`` [K, Q - V] (sorted rows).
  """
  task_Q = np.asarray(task_Q)
  n = len(task_Q)
  if not 2 <= num_folds <= n:
    raise ValueError(f"num_folds must lie in [2, {n}]; got {num_folds}")
  rng = np.random.default_rng(seed)
  order = np.lexsort((rng.random(n), task_Q))
  v = n // num_folds
  folds = [np.sort(order[k::num_folds][:v]) for k in range(num_folds)]
  val = np.stack(folds).astype(np.int32)
  train = np.stack([np.setdiff1d(np.arange(n), f) for f in folds]).astype(np.int32)
  return tr.QuerySplit(val, train)


def validation_splits(data: RouterData, val_fraction: float, num_folds: int, seeds):
  """Per seed: one stratified split ([Z, V], [Z, F]) or Y stratified folds ([Z, Y, V], ...)."""
  if num_folds <= 1:
    return stratified_splits(data, val_fraction, seeds)
  task = np.asarray(data.train_task_Q)
  folds = [stratified_kfold(task, num_folds, int(s)) for s in seeds]
  return tr.QuerySplit(*(np.stack(x) for x in zip(*folds, strict=True)))
