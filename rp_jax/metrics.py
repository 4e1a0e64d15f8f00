"""Evaluation metrics and a paired bootstrap, in pure ``jax.numpy``.

Every router and baseline is scored by the same code: a *selection* ``sel_QxA`` holds, for each
test row, a weight per candidate. A hard router gives a one-hot row (``one_hot(choices_Q, A)``);
an expected-value baseline such as uniform random gives a soft row (``1 / A`` everywhere). Rows
must sum to 1. Every metric is linear in ``sel`` (or a function of the selection histogram), so a
soft selection yields the expected value of the metric under that random router.

``evaluate(sel_QxA, test)`` returns all metrics; it is jittable and vmaps over a leading sweep
axis: ``jax.vmap(evaluate, (0, None))(sel_SxQxA, test)``.

Shape letters as in ``rp_jax.types``: Q test rows, A candidates, T routing tasks, S sweep
configurations (routers), W bootstrap resamples.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax.types import History


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class TestNames:
  """Static (hashable, leaf-free) names that travel with a TestSet through jit and vmap.

  Attributes:
    task_names: [T] names of the routing tasks, in ``History.routing_tasks`` order.
    candidate_names: [A] names of the candidates, in ``History.candidates`` order.
  """

  __test__ = False  # not a pytest test class despite its name

  task_names: tuple[str, ...]
  candidate_names: tuple[str, ...]


class TestSet(NamedTuple):
  """The test rows of a History restricted to the candidates (a pytree of numpy arrays).

  The names sit in ``names``, a static pytree node without leaves, so a TestSet can be passed
  straight into ``jax.jit`` / ``jax.vmap`` (use ``in_axes=None`` for it).

  Attributes:
    perf_QxA: [Q, A] float32 outcome of each test row for each candidate (finite).
    cost_QxA: [Q, A] float32 $ per query for each candidate; NaN where tokens or prices are
      unknown.
    task_Q: [Q] int32 dense routing-task id in 0..T-1 (``History.routing_tasks`` order).
    new_A: [A] bool, the candidate is held out of training (a new LLM, newllm setting).
    query_ids: [Q] int32 indices of the rows in the History.
    names: task and candidate names (static).
  """

  # pytest would otherwise try to collect this class from test modules that import it.
  __test__ = False

  perf_QxA: np.ndarray
  cost_QxA: np.ndarray
  task_Q: np.ndarray
  new_A: np.ndarray
  query_ids: np.ndarray
  names: TestNames

  @property
  def task_names(self) -> tuple[str, ...]:
    return self.names.task_names

  @property
  def candidate_names(self) -> tuple[str, ...]:
    return self.names.candidate_names

  @property
  def num_tasks(self) -> int:
    return len(self.names.task_names)

  @property
  def num_candidates(self) -> int:
    return len(self.names.candidate_names)

  @property
  def num_rows(self) -> int:
    return int(np.shape(self.perf_QxA)[0])

  @classmethod
  def from_history(cls, history: History) -> TestSet:
    """Builds the test set (host side) from a validated History.

    Raises:
      ValueError: the History has no test queries.
    """
    rows_Q = history.test_queries
    if len(rows_Q) == 0:
      raise ValueError(
        f"history {history.setting!r} from {history.source} has no test queries; "
        "expected at least one row with split TEST"
      )
    cand_A = history.candidates
    routing_T = history.routing_tasks
    # routing_tasks is the sorted set of test tasks, so searchsorted gives dense ids 0..T-1.
    task_Q = np.searchsorted(routing_T, history.query_task[rows_Q]).astype(np.int32)
    return cls(
      perf_QxA=history.outcomes_QxM[np.ix_(rows_Q, cand_A)].astype(np.float32),
      cost_QxA=history.query_cost_QxM()[np.ix_(rows_Q, cand_A)].astype(np.float32),
      task_Q=task_Q,
      new_A=np.isin(cand_A, history.held_out),
      query_ids=rows_Q.astype(np.int32),
      names=TestNames(
        task_names=tuple(history.task_names[t] for t in routing_T),
        candidate_names=history.candidate_names,
      ),
    )


# -- selections ---------------------------------------------------------------------------------


def one_hot(choices_Q: jax.Array, num_candidates: int) -> jax.Array:
  """[Q, A] float32 selection of a hard router from its chosen candidate per row.

  Args:
    choices_Q: [..., Q] int candidate positions in 0..A-1.
    num_candidates: A (static).
  """
  return jax.nn.one_hot(choices_Q, num_candidates, dtype=jnp.float32)


def row_performance(sel_QxA: jax.Array, perf_QxA: jax.Array) -> jax.Array:
  """[..., Q] (expected) outcome of the chosen candidate on each row.

  Args:
    sel_QxA: [..., Q, A] selection weights (leading axes, e.g. S routers, are kept).
    perf_QxA: [Q, A] outcomes.
  """
  perf = jnp.broadcast_to(perf_QxA, sel_QxA.shape)
  return jnp.sum(sel_QxA * perf, axis=-1)


def _check_shapes(sel_QxA, test: TestSet) -> None:
  if sel_QxA.ndim != 2 or sel_QxA.shape != np.shape(test.perf_QxA):
    raise ValueError(
      f"selection has shape {sel_QxA.shape}; expected (Q, A) = {np.shape(test.perf_QxA)} "
      "(vmap over any leading sweep axis)"
    )


# -- metrics ------------------------------------------------------------------------------------


def avg_performance(sel_QxA: jax.Array, perf_QxA: jax.Array) -> jax.Array:
  """Scalar mean outcome of the chosen candidates over all rows (the paper's Avg. Performance)."""
  return jnp.mean(row_performance(sel_QxA, perf_QxA))


def hit_rate(sel_QxA: jax.Array, perf_QxA: jax.Array) -> jax.Array:
  """Scalar share of rows where the chosen candidate scores > 0, or every candidate scores 0.

  A row on which no candidate succeeds counts as a hit whatever is chosen (nothing better was
  possible).
  """
  all_zero_Qx1 = jnp.all(perf_QxA == 0, axis=-1, keepdims=True)
  hit_QxA = ((perf_QxA > 0) | all_zero_Qx1).astype(sel_QxA.dtype)
  return jnp.mean(jnp.sum(sel_QxA * hit_QxA, axis=-1))


def per_task_means(
  sel_QxA: jax.Array, perf_QxA: jax.Array, task_Q: jax.Array, num_tasks: int
) -> jax.Array:
  """[T] mean outcome of the chosen candidates over the rows of each task (NaN if none).

  Args:
    sel_QxA: [Q, A] selection.
    perf_QxA: [Q, A] outcomes.
    task_Q: [Q] int task id in 0..T-1.
    num_tasks: T (static).
  """
  row_Q = row_performance(sel_QxA, perf_QxA)
  sum_T = jax.ops.segment_sum(row_Q, task_Q, num_segments=num_tasks)
  count_T = jax.ops.segment_sum(jnp.ones_like(row_Q), task_Q, num_segments=num_tasks)
  return jnp.where(count_T > 0, sum_T / jnp.where(count_T > 0, count_T, 1.0), jnp.nan)


def regret(sel_QxA: jax.Array, perf_QxA: jax.Array) -> jax.Array:
  """Scalar mean over rows of (best candidate's outcome - chosen candidate's outcome) >= 0."""
  best_Q = jnp.max(perf_QxA, axis=-1)
  return jnp.mean(best_Q - row_performance(sel_QxA, perf_QxA))


def selection_histogram(sel_QxA: jax.Array) -> jax.Array:
  """[A] share of rows routed to each candidate (sums to 1)."""
  return jnp.mean(sel_QxA, axis=0)


def selection_entropy(sel_QxA: jax.Array) -> jax.Array:
  """Scalar normalised Shannon entropy of the selection histogram, in [0, 1].

  H(p) / log(A) with p = ``selection_histogram(sel_QxA)`` and 0 log 0 = 0: 1 means every
  candidate is used equally often, 0 means the router collapsed onto one candidate (constant
  routing). With a single candidate it is 0.
  """
  num_candidates = sel_QxA.shape[-1]
  if num_candidates < 2:
    return jnp.zeros((), sel_QxA.dtype)
  p_A = selection_histogram(sel_QxA)
  plogp_A = jnp.where(p_A > 0, p_A * jnp.log(jnp.where(p_A > 0, p_A, 1.0)), 0.0)
  # 0.0 - x rather than -x: a collapsed histogram gives 0.0, not -0.0.
  return (0.0 - jnp.sum(plogp_A)) / np.log(num_candidates)


def cost_per_query(sel_QxA: jax.Array, cost_QxA: jax.Array) -> jax.Array:
  """Scalar mean $ per query of the chosen candidates; NaN if any chosen cost is unknown (NaN).

  Costs of candidates that are not chosen (weight 0) may be NaN without harm.
  """
  nan_QxA = jnp.isnan(cost_QxA)
  cost_Q = jnp.sum(sel_QxA * jnp.where(nan_QxA, 0.0, cost_QxA), axis=-1)
  unknown = jnp.any((sel_QxA > 0) & nan_QxA)
  return jnp.where(unknown, jnp.nan, jnp.mean(cost_Q))


def new_model_selection_rate(sel_QxA: jax.Array, new_A: jax.Array) -> jax.Array:
  """Scalar share of rows routed to a new (held-out) candidate; 0 when there is none."""
  return jnp.mean(jnp.sum(sel_QxA * new_A[None, :].astype(sel_QxA.dtype), axis=-1))


def new_model_recall(sel_QxA: jax.Array, perf_QxA: jax.Array, new_A: jax.Array) -> jax.Array:
  """Scalar cold-start recall (SPEC §3): how often the router finds the new model where it pays.

  Eligible rows: a new candidate is among the best candidates of the row (ties included) and not
  all candidates tie. The metric is the share of eligible rows routed to a new candidate (any new
  candidate, when several are held out); NaN if no row is eligible (e.g. no new candidate).
  """
  best_QxA = perf_QxA == jnp.max(perf_QxA, axis=-1, keepdims=True)
  new_1xA = new_A[None, :]
  eligible_Q = jnp.any(best_QxA & new_1xA, axis=-1) & ~jnp.all(best_QxA, axis=-1)
  routed_new_Q = jnp.sum(sel_QxA * new_1xA.astype(sel_QxA.dtype), axis=-1)
  num_eligible = jnp.sum(eligible_Q)
  hits = jnp.sum(jnp.where(eligible_Q, routed_new_Q, 0.0))
  return jnp.where(num_eligible > 0, hits / jnp.maximum(num_eligible, 1), jnp.nan)


def new_model_precision(sel_QxA: jax.Array, perf_QxA: jax.Array, new_A: jax.Array) -> jax.Array:
  """Scalar share of the rows routed to a new candidate on which that choice is among the best.

  A row on which all candidates tie counts as right. NaN if no row is routed to a new candidate.
  """
  best_QxA = perf_QxA == jnp.max(perf_QxA, axis=-1, keepdims=True)
  new_QxA = sel_QxA * new_A[None, :].astype(sel_QxA.dtype)
  routed = jnp.sum(new_QxA)
  right = jnp.sum(new_QxA * best_QxA.astype(sel_QxA.dtype))
  return jnp.where(routed > 0, right / jnp.maximum(routed, 1e-12), jnp.nan)


def evaluate(sel_QxA: jax.Array, test: TestSet) -> dict[str, jax.Array]:
  """All metrics of one selection on a test set.

  Jittable, and vmappable over a leading sweep axis: ``jax.vmap(evaluate, (0, None))``.

  Args:
    sel_QxA: [Q, A] selection (one-hot rows for a hard router; rows sum to 1).
    test: the TestSet the selection refers to.

  Returns:
    Scalars ``avg_performance``, ``hit_rate``, ``regret``, ``selection_entropy``,
    ``cost_per_query``, ``new_model_selection_rate``, ``new_model_recall``,
    ``new_model_precision``, and arrays
    ``per_task`` [T] (``test.task_names`` order) and ``histogram`` [A] (``test.candidate_names``
    order).
  """
  sel_QxA = jnp.asarray(sel_QxA)
  _check_shapes(sel_QxA, test)
  perf_QxA = jnp.asarray(test.perf_QxA)
  new_A = jnp.asarray(test.new_A, bool)
  return {
    "avg_performance": avg_performance(sel_QxA, perf_QxA),
    "hit_rate": hit_rate(sel_QxA, perf_QxA),
    "regret": regret(sel_QxA, perf_QxA),
    "selection_entropy": selection_entropy(sel_QxA),
    "cost_per_query": cost_per_query(sel_QxA, jnp.asarray(test.cost_QxA)),
    "new_model_selection_rate": new_model_selection_rate(sel_QxA, new_A),
    "new_model_recall": new_model_recall(sel_QxA, perf_QxA, new_A),
    "new_model_precision": new_model_precision(sel_QxA, perf_QxA, new_A),
    "per_task": per_task_means(sel_QxA, perf_QxA, jnp.asarray(test.task_Q), test.num_tasks),
    "histogram": selection_histogram(sel_QxA),
  }


# -- paired bootstrap over test rows -------------------------------------------------------------


def resample_counts(key: jax.Array, num_rows: int, num_resamples: int) -> jax.Array:
  """[W, Q] float32 how often each row is drawn in each bootstrap resample.

  Row indices come from ``jax.random.randint(key, (W, Q), 0, Q)``, so the same key gives the same
  resamples in ``bootstrap`` and ``prob_better`` (paired comparisons).
  """
  idx_WxQ = jax.random.randint(key, (num_resamples, num_rows), 0, num_rows)
  counts = lambda idx_Q: jnp.zeros(num_rows, jnp.float32).at[idx_Q].add(1.0)
  return jax.vmap(counts)(idx_WxQ)


def _resampled_means(key, rows_SxQ, num_resamples):
  """[S, W] mean of each row vector on each resample (a matmul with counts, not a gather)."""
  num_rows = rows_SxQ.shape[-1]
  counts_WxQ = resample_counts(key, num_rows, num_resamples)
  # HIGHEST: accelerators would otherwise multiply float32 in bfloat16/tf32.
  sums_SxW = jnp.matmul(
    rows_SxQ.astype(jnp.float32), counts_WxQ.T, precision=jax.lax.Precision.HIGHEST
  )
  return sums_SxW / num_rows


@functools.partial(jax.jit, static_argnames=("num_resamples", "level"))
def bootstrap(
  key: jax.Array, perf_rows_SxQ: jax.Array, num_resamples: int = 1000, level: float = 0.95
) -> dict[str, jax.Array]:
  """Paired percentile bootstrap of the mean per-row performance of S routers.

  All S routers are evaluated on the same W resamples of the Q rows, so their intervals (and
  differences) are paired. Deterministic for a fixed key.

  Args:
    key: a ``jax.random`` key.
    perf_rows_SxQ: [S, Q] per-row performance of each router's chosen models
      (``row_performance(sel_SxQxA, test.perf_QxA)``).
    num_resamples: W (static).
    level: coverage of the interval, in (0, 1) (static).

  Returns:
    ``mean`` [S] mean over the original rows, ``lo`` [S] and ``hi`` [S] the (1 - level) / 2 and
    (1 + level) / 2 percentiles of the resampled means.
  """
  if not 0.0 < level < 1.0:
    raise ValueError(f"level must lie in (0, 1); got {level}")
  if perf_rows_SxQ.ndim != 2:
    raise ValueError(f"perf_rows_SxQ must have shape (S, Q); got {perf_rows_SxQ.shape}")
  means_SxW = _resampled_means(key, perf_rows_SxQ, num_resamples)
  q_2 = jnp.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0], jnp.float32)
  lo_S, hi_S = jnp.quantile(means_SxW, q_2, axis=-1)
  return {"mean": jnp.mean(perf_rows_SxQ, axis=-1), "lo": lo_S, "hi": hi_S}


@functools.partial(jax.jit, static_argnames=("num_resamples",))
def prob_better(
  key: jax.Array, rows_a_Q: jax.Array, rows_b_Q: jax.Array, num_resamples: int = 1000
) -> jax.Array:
  """Scalar share of paired bootstrap resamples on which router a's mean beats router b's.

  Ties count one half, so identical routers give exactly 0.5. The comparison is made on the
  resampled mean of the row differences a - b (the same quantity, without rounding noise).

  Args:
    key: a ``jax.random`` key (the same key as ``bootstrap`` gives the same resamples).
    rows_a_Q, rows_b_Q: [Q] per-row performance of the two routers on the same rows.
    num_resamples: W (static).
  """
  if rows_a_Q.shape != rows_b_Q.shape or rows_a_Q.ndim != 1:
    raise ValueError(
      f"expected two [Q] row vectors of the same length; got {rows_a_Q.shape}, {rows_b_Q.shape}"
    )
  diff_1xW = _resampled_means(key, (rows_a_Q - rows_b_Q)[None, :], num_resamples)
  return jnp.mean(jnp.where(diff_1xW > 0, 1.0, jnp.where(diff_1xW == 0, 0.5, 0.0)))


def ratio_interval(
  key: jax.Array, num_Q: jax.Array, den_Q: jax.Array, num_resamples: int = 1000, level=0.95
) -> tuple[float, float, float]:
  """(ratio, lo, hi): mean(num) / mean(den) and its paired percentile bootstrap interval.

  Both means are taken on the same W resamples of the Q rows (e.g. gap recovered = mean(A_k -
  A_zero) / mean(A_full - A_zero) per resample). Resamples whose denominator is 0 are dropped;
  NaN when all are.
  """
  num_Q, den_Q = jnp.asarray(num_Q, jnp.float32), jnp.asarray(den_Q, jnp.float32)
  if num_Q.shape != den_Q.shape or num_Q.ndim != 1:
    raise ValueError(f"expected two [Q] vectors; got {num_Q.shape}, {den_Q.shape}")
  means_2xW = np.asarray(_resampled_means(key, jnp.stack([num_Q, den_Q]), num_resamples))
  ok = means_2xW[1] != 0
  ratio_W = means_2xW[0, ok] / means_2xW[1, ok]
  den = float(den_Q.mean())
  point = float(num_Q.mean()) / den if den != 0 else float("nan")
  if not ok.any():
    return point, float("nan"), float("nan")
  lo, hi = np.quantile(ratio_W, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
  return point, float(lo), float(hi)
