"""Baseline routers: constant, uniform random, rule-based and oracle selections.

Each baseline is a selection ``sel_QxA`` over the test rows (one-hot rows, or soft rows for the
expected value of uniform random routing), chosen host side with numpy and scored by
``rp_jax.metrics.evaluate`` like every trained router:

  bs = baselines(history)
  sel_SxQxA = np.stack([b.sel_QxA for b in bs.values()])
  results = jax.vmap(metrics.evaluate, (0, None))(sel_SxQxA, metrics.TestSet.from_history(history))

Rule-based baselines (``best_single``, ``task_best_*``) look only at training data (pairs) and
benchmark scores; the oracles look at test outcomes and are upper bounds, not routers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rp_jax.metrics import TestSet
from rp_jax.types import History

KINDS = ("constant", "rule", "random", "upper_bound")


@dataclasses.dataclass(frozen=True, eq=False)
class Baseline:
  """A baseline's selection over the test rows.

  Attributes:
    name: e.g. "random", "const/<candidate>", "best_single", "oracle_query".
    sel_QxA: [Q_test, A] float32 selection (rows sum to 1).
    kind: one of ``KINDS``; "upper_bound" marks oracles that peek at test outcomes.
    description: one sentence stating the selection rule.
  """

  name: str
  sel_QxA: np.ndarray
  kind: str
  description: str

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"unknown baseline kind {self.kind!r}; expected one of {KINDS}")


def _lex_argmax(*keys_GxA: np.ndarray) -> np.ndarray:
  """[G] per row, the column maximising the keys lexicographically; final ties -> lowest column.

  Args:
    *keys_GxA: arrays [G, A], most important first; NaN ranks below every number.

  Returns:
    [G] int32 column (candidate position) of the winner of each row.
  """
  num_groups, num_items = keys_GxA[0].shape
  group_GA = np.repeat(np.arange(num_groups), num_items)
  item_GA = np.tile(np.arange(num_items), num_groups)
  neg = [-np.where(np.isnan(k), -np.inf, k).reshape(-1) for k in keys_GxA]
  # lexsort sorts by its LAST key first: group, then each key descending, then column ascending;
  # the first entry of each group is then its winner.
  order = np.lexsort((item_GA, *neg[::-1], group_GA))
  first_G = np.searchsorted(group_GA[order], np.arange(num_groups))
  return item_GA[order][first_G].astype(np.int32)


def _win_counts(history: History, task_of_pair_P: np.ndarray, num_groups: int):
  """[G, A] wins and losses of each candidate over training pairs, grouped by ``task_of_pair_P``.

  Pairs with a negative group are ignored. A pair counts for a candidate whatever the opponent
  (the opponent may be outside the candidate set).
  """
  num_cand = len(history.candidates)
  pos_M = np.full(history.num_models, -1, np.int64)
  pos_M[history.candidates] = np.arange(num_cand)
  pairs_Px3 = history.pairs_Px3
  counts = []
  for col in (1, 2):  # better model, worse model
    a_P = pos_M[pairs_Px3[:, col]]
    keep_P = (a_P >= 0) & (task_of_pair_P >= 0)
    flat = task_of_pair_P[keep_P] * num_cand + a_P[keep_P]
    counts.append(np.bincount(flat, minlength=num_groups * num_cand).reshape(num_groups, num_cand))
  return counts[0].astype(np.float64), counts[1].astype(np.float64)


def _win_rate(wins, losses):
  """Wins / (wins + losses); NaN where a candidate has no pairs."""
  n = wins + losses
  return np.where(n > 0, wins / np.where(n > 0, n, 1.0), np.nan)


def _task_positions(history: History, test: TestSet) -> np.ndarray:
  """[T_test] int History task index of each of the test set's routing tasks."""
  return np.asarray([history.task_index(n) for n in test.task_names], np.int64)


def _best_single(history: History, test: TestSet) -> tuple[int, np.ndarray, np.ndarray]:
  """(position of the best single candidate by training-pair win rate, scores [A, T], has [A, T]).

  Ties are broken by the mean benchmark score over the routing tasks, then pool order;
  candidates without pairs rank last.
  """
  task_of_pair_P = history.query_task[history.pairs_Px3[:, 0]]
  wins_1xA, losses_1xA = _win_counts(history, np.zeros_like(task_of_pair_P), 1)
  route_T = _task_positions(history, test)
  scores_AxT = history.scores_MxT[np.ix_(history.candidates, route_T)].astype(np.float64)
  has_AxT = np.isfinite(scores_AxT)
  num_scores_A = has_AxT.sum(1)
  mean_score_A = np.where(
    num_scores_A > 0,
    np.where(has_AxT, scores_AxT, 0.0).sum(1) / np.maximum(num_scores_A, 1),
    np.nan,
  )
  best = int(_lex_argmax(_win_rate(wins_1xA, losses_1xA), mean_score_A[None, :])[0])
  return best, scores_AxT, has_AxT


def task_best_pairs(history: History, test: TestSet, fallback: int) -> np.ndarray:
  """[T_test] per routing task, the candidate with the most net training-pair wins.

  Net wins rather than raw wins: models appear in very different numbers of pairs per task, and
  raw counts reward exposure (a model in many pairs wins many and loses many). Net wins also
  reproduce SPEC §3's reference point (0.657 on the public data; raw wins give 0.642). Ties: the
  win rate on the task, then pool order; a task without pairs gets ``fallback``.
  """
  route_T = _task_positions(history, test)
  rt_pos_T = np.full(history.num_tasks, -1, np.int64)
  rt_pos_T[route_T] = np.arange(test.num_tasks)
  task_of_pair_P = history.query_task[history.pairs_Px3[:, 0]]
  wins_TxA, losses_TxA = _win_counts(history, rt_pos_T[task_of_pair_P], test.num_tasks)
  seen_TxA = (wins_TxA + losses_TxA) > 0
  net_TxA = np.where(seen_TxA, wins_TxA - losses_TxA, np.nan)
  best_T = _lex_argmax(net_TxA, _win_rate(wins_TxA, losses_TxA))
  return np.where(seen_TxA.any(1), best_T, fallback)


def _oracles(perf_QxA: np.ndarray, task_Q: np.ndarray, num_tasks: int, names) -> list[Baseline]:
  """The upper bounds that read test outcomes: per query, best constant, per task."""
  num_rows, num_cand = perf_QxA.shape
  eye_AxA = np.eye(num_cand, dtype=np.float32)
  oracle_single = int(np.argmax(perf_QxA.mean(0)))
  sum_TxA = np.zeros((num_tasks, num_cand))
  np.add.at(sum_TxA, task_Q, perf_QxA)
  count_T = np.bincount(task_Q, minlength=num_tasks)
  mean_TxA = sum_TxA / np.maximum(count_T, 1)[:, None]
  return [
    Baseline(
      "oracle_query",
      eye_AxA[np.argmax(perf_QxA, axis=1)],
      "upper_bound",
      "Per test row, the candidate with the best outcome on that row (first in pool order on "
      "ties); an upper bound that reads test outcomes.",
    ),
    Baseline(
      "oracle_single",
      np.broadcast_to(eye_AxA[oracle_single], (num_rows, num_cand)).copy(),
      "upper_bound",
      f"Always route to {names[oracle_single]}, the candidate with the best mean test outcome "
      "(first in pool order on ties); an upper bound on constant routing that reads test "
      "outcomes.",
    ),
    Baseline(
      "oracle_task",
      eye_AxA[np.argmax(mean_TxA, axis=1)[task_Q]],
      "upper_bound",
      "Per routing task, the candidate with the best mean test outcome on that task (first in "
      "pool order on ties); an upper bound that reads test outcomes.",
    ),
  ]


def baselines(history: History, test: TestSet | None = None) -> dict[str, Baseline]:
  """All baselines of a History, as selections over the test rows.

  Args:
    history: a validated History (training pairs, benchmark scores, candidates).
    test: the test rows to route (default ``TestSet.from_history(history)``); its candidates
      must be the History's.

  Returns:
    Ordered dict name -> Baseline: ``random``, ``const/<candidate>`` for every candidate,
    ``best_single``, ``task_best_benchmark``, ``task_best_pairs`` (kind "rule", from training
    pairs and benchmark scores only), then the upper bounds ``oracle_query``, ``oracle_single``
    (the best constant on the test rows) and ``oracle_task``.
  """
  if test is None:
    test = TestSet.from_history(history)
  if tuple(test.candidate_names) != history.candidate_names:
    raise ValueError(
      f"test set candidates {list(test.candidate_names)} differ from the history's "
      f"{list(history.candidate_names)}"
    )
  perf_QxA = np.asarray(test.perf_QxA, np.float64)
  task_Q = np.asarray(test.task_Q, np.int64)
  num_rows, num_cand = perf_QxA.shape
  names = history.candidate_names
  eye_AxA = np.eye(num_cand, dtype=np.float32)
  constant = lambda a: np.broadcast_to(eye_AxA[a], (num_rows, num_cand)).copy()
  out = [
    Baseline(
      "random",
      np.full((num_rows, num_cand), 1.0 / num_cand, np.float32),
      "random",
      f"Uniform random choice among the {num_cand} candidates, as its expected value "
      f"(weight 1/{num_cand} on every candidate of every row).",
    ),
    *(
      Baseline(f"const/{name}", constant(a), "constant", f"Always route to {name}.")
      for a, name in enumerate(names)
    ),
  ]
  best, scores_AxT, has_AxT = _best_single(history, test)
  held = history.held_out_names
  held_note = (
    f"; held-out models ({', '.join(held)}) have no training pairs, so this rule cannot choose them"
    if held
    else ""
  )
  best_bench_T = np.argmax(np.where(has_AxT, scores_AxT, -np.inf), axis=0)
  best_bench_T = np.where(has_AxT.any(0), best_bench_T, best)
  out += [
    Baseline(
      "best_single",
      constant(best),
      "rule",
      f"Always route to {names[best]}, the candidate with the highest win rate over all "
      "training pairs (wins / (wins + losses); ties broken by mean benchmark score over the "
      f"routing tasks, then pool order; candidates without pairs rank last){held_note}.",
    ),
    Baseline(
      "task_best_benchmark",
      eye_AxA[best_bench_T[task_Q]],
      "rule",
      "Per routing task, route to the candidate with the highest benchmark score on that task "
      "(candidates without a score skipped, ties to pool order; best_single if no candidate has "
      "a score).",
    ),
    Baseline(
      "task_best_pairs",
      eye_AxA[task_best_pairs(history, test, best)[task_Q]],
      "rule",
      "Per routing task, route to the candidate with the most net wins (wins - losses) over the "
      "training pairs of that task (ties broken by its win rate on that task, then pool order; "
      "candidates without pairs of the task skipped; best_single if the task has no pairs)"
      f"{held_note}.",
    ),
    *_oracles(perf_QxA, task_Q, test.num_tasks, names),
  ]
  return {b.name: b for b in out}
