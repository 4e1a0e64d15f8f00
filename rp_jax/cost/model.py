"""The one cost model: calibrated p̂, the cost of a call known before it, the λ grid, a budget.

The sweep's cost–quality stage (``rp_jax.cost.stage``) and a deployed router (``rp_jax.deploy``)
route by argmax_m p̂(q, m) − λ · cost_est(q, m) through these same functions:

- p̂: the router's scores through per-candidate Platt maps fitted on the validation queries of
  its training run (``calibrate``: ``calibration.fit_platt`` then ``apply_platt``; a candidate
  added later without labels uses the shared map, ``fit_platt_shared``);
- cost_est (``Usage.expected_cost``): prompt tokens x input price + predicted completion tokens
  x output price, $ per million tokens. A prompt's token count per candidate is its length in
  characters times the candidate's median tokens-per-character of the usage log; completion
  tokens are the median of the log per (task, candidate), falling back to the candidate's
  median, then the log's. The usage log is the History's rows with token counts: its training
  rows where they have them, else its test rows (the public release records tokens on its test
  rows only; their outcomes play no part here). A row of the log is never estimated from its own
  count (``exclude``: leave-one-out for the test rows in that case). Where the History gives
  explicit costs and no tokens, the cost is taken as known before the call;
- λ: the one grid of the setting (``costq.lambda_grid`` over the log's cost estimates), or the
  budget mode (``CostModel.lam_for_budget``: the λ whose validation front meets a $ per query).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax.cost import calibration, costq
from rp_jax.types import TEST, History

NUM_LAMBDAS = 33


def _median_or_nan(v: np.ndarray) -> float:
  """The median of the finite entries (NaN when there are none)."""
  v = np.asarray(v, np.float64)
  return float(np.median(v[np.isfinite(v)])) if np.isfinite(v).any() else np.nan


@dataclasses.dataclass(frozen=True)
class Usage:
  """Token statistics of a usage log, per candidate (A) and task (T); numpy.

  Attributes:
    tokens_per_char_A: median prompt tokens per prompt character.
    completion_TxA: median completion tokens per (task, candidate) (NaN: no log row).
    completion_A: median completion tokens per candidate.
    completion: the log's median completion tokens.
    log_query_L, log_task_L, log_completion_LxA: the log's rows (History query ids), for
      leave-one-out estimates of rows that are themselves in the log.
  """

  tokens_per_char_A: np.ndarray
  completion_TxA: np.ndarray
  completion_A: np.ndarray
  completion: float
  log_query_L: np.ndarray
  log_task_L: np.ndarray
  log_completion_LxA: np.ndarray

  def completion_tokens(self, task_Q, exclude_Q=None) -> np.ndarray:
    """[Q, A] predicted completion tokens; ``task_Q`` History task ids (-1 = unknown);
    ``exclude_Q`` History query ids whose own log row must not count (-1 = none)."""
    task_Q = np.asarray(task_Q, np.int64)
    out = np.where(
      (task_Q >= 0)[:, None], self.completion_TxA[np.maximum(task_Q, 0)], self.completion_A
    )
    if exclude_Q is not None:
      for i in np.flatnonzero(np.isin(exclude_Q, self.log_query_L)):
        rows = (self.log_task_L == task_Q[i]) & (self.log_query_L != exclude_Q[i])
        out[i] = [_median_or_nan(c) for c in self.log_completion_LxA[rows].T]
    out = np.where(np.isfinite(out), out, self.completion_A[None, :])
    return np.where(np.isfinite(out), out, self.completion)

  def expected_cost(self, prices_Ax2, chars_Q, task_Q, exclude_Q=None) -> np.ndarray:
    """[Q, A] float32 $ per query known before the call (see module docstring)."""
    chars_Q = np.asarray(chars_Q, np.float64)
    prompt_QxA = chars_Q[:, None] * self.tokens_per_char_A[None, :]
    comp_QxA = self.completion_tokens(task_Q, exclude_Q)
    return np.asarray(costq.expected_cost(prompt_QxA, comp_QxA, prices_Ax2), np.float32)


def usage_log(history: History) -> Usage | None:
  """The Usage of the History's rows with token counts (training rows if any has them, else test
  rows); None when no row has token counts."""
  cand = history.candidates
  tok = history.tokens_QxMx2[:, cand]
  has = np.isfinite(tok).all(-1).any(-1)
  if not has.any():
    return None
  train = has & (history.query_split != TEST)
  rows = np.flatnonzero(train if train.any() else has)
  chars = np.asarray([max(len(history.query_texts[q]), 1) for q in rows], np.float64)
  with np.errstate(all="ignore"):
    per_char = np.nanmedian(tok[rows, :, 0] / chars[:, None], axis=0)
  comp = tok[rows, :, 1]
  task = history.query_task[rows]
  comp_TxA = np.full((history.num_tasks, len(cand)), np.nan)
  for t in np.unique(task):
    comp_TxA[t] = [_median_or_nan(c) for c in comp[task == t].T]
  return Usage(
    tokens_per_char_A=per_char,
    completion_TxA=comp_TxA,
    completion_A=np.asarray([_median_or_nan(c) for c in comp.T]),
    completion=float(_median_or_nan(comp)),
    log_query_L=rows.astype(np.int32),
    log_task_L=task.astype(np.int32),
    log_completion_LxA=comp.astype(np.float32),
  )


def query_chars(history: History, query_ids) -> np.ndarray:
  """[Q] characters of the router-visible text of each query (at least 1)."""
  return np.asarray([max(len(history.query_texts[q]), 1) for q in query_ids], np.float64)


def setting_lambdas(history: History, usage: Usage | None) -> np.ndarray:
  """[U] float32 λ grid of a History: ``costq.lambda_grid`` over its usage log's cost estimates
  (the explicit costs of its training rows when it has no tokens)."""
  cand = history.candidates
  if usage is None:
    cost = history.cost_QxM[np.ix_(history.train_queries, cand)]
    if not np.isfinite(cost).any():
      cost = history.cost_QxM[np.ix_(history.test_queries, cand)]
    return costq.lambda_grid(cost, NUM_LAMBDAS).astype(np.float32)
  q = usage.log_query_L
  est = usage.expected_cost(
    history.prices_Mx2[cand], query_chars(history, q), history.query_task[q], q
  )
  return costq.lambda_grid(est, NUM_LAMBDAS).astype(np.float32)


@functools.partial(jax.jit, static_argnames="shared")
def calibrate(test_QxA, val_VxA, labels_VxA, shared: bool = False):
  """(p̂ of ``test_QxA``, p̂ of ``val_VxA``, Platt a_A, b_A) with per-candidate Platt maps fitted
  on the validation rows' known outcomes, or with ``shared`` one map for every candidate (fitted
  on all their known entries; it keeps the order of the raw scores, so the λ = 0 choice is the
  router's own argmax). Vmappable over cells and seeds."""
  fit = calibration.fit_platt_shared if shared else calibration.fit_platt
  platt = fit(scores_QxA=val_VxA, outcomes_QxA=labels_VxA)
  apply = lambda s: calibration.apply_platt(platt, s)
  return apply(test_QxA), apply(val_VxA), platt.a_A, platt.b_A


def calibrate_isotonic(test_QxA, val_VxA, labels_VxA):
  """(p̂ test, p̂ validation, Isotonic) with per-candidate isotonic maps fitted on the validation
  rows' known outcomes (host side; a candidate with few labels uses the shared map)."""
  iso = calibration.fit_isotonic(scores_QxA=val_VxA, outcomes_QxA=labels_VxA)
  apply = lambda s: np.asarray(calibration.apply_isotonic(iso, jnp.asarray(s, jnp.float32)))
  return apply(test_QxA), apply(val_VxA), iso


def calibrate_isotonic_grid(test_CxZxQxA, val_CxZxVxA, labels_CxZxVxA):
  """``calibrate_isotonic`` for every cell and seed: (p̂ test [C, Z, Q, A], p̂ val [C, Z, V, A])."""
  C, Z = test_CxZxQxA.shape[:2]
  p_test, p_val = np.empty_like(test_CxZxQxA), np.empty_like(val_CxZxVxA)
  for c in range(C):
    for z in range(Z):
      p_test[c, z], p_val[c, z], _ = calibrate_isotonic(
        test_CxZxQxA[c, z], val_CxZxVxA[c, z], labels_CxZxVxA[c, z]
      )
  return p_test, p_val


@dataclasses.dataclass
class CostModel:
  """What a deployed router needs to route by cost (arrays; A candidates, T History tasks).

  Attributes:
    a_A, b_A: per-candidate Platt maps; shared_ab: [2] the shared map (new candidates).
    prices_Ax2: $ per million tokens (input, output).
    tokens_per_char_A, completion_TxA, completion_A: the usage log's statistics (``Usage``).
    lambdas_U: the setting's λ grid.
    val_p_VxA, val_cost_VxA, val_u_VxA: the validation front (budget mode).
    iso_x_AxO, iso_y_AxO: isotonic knots when the model calibrates isotonically (else empty).
  """

  a_A: np.ndarray
  b_A: np.ndarray
  shared_ab: np.ndarray
  prices_Ax2: np.ndarray
  tokens_per_char_A: np.ndarray
  completion_TxA: np.ndarray
  completion_A: np.ndarray
  lambdas_U: np.ndarray
  val_p_VxA: np.ndarray
  val_cost_VxA: np.ndarray
  val_u_VxA: np.ndarray
  iso_x_AxO: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0), np.float32))
  iso_y_AxO: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0), np.float32))

  def arrays(self) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in dataclasses.asdict(self).items()}

  @classmethod
  def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CostModel:
    return cls(
      **{f.name: np.asarray(arrays[f.name]) for f in dataclasses.fields(cls) if f.name in arrays}
    )

  @property
  def usage(self) -> Usage:
    comp = self.completion_A[np.isfinite(self.completion_A)]
    empty = np.zeros(0, np.int32)
    return Usage(
      self.tokens_per_char_A,
      self.completion_TxA,
      self.completion_A,
      float(np.median(comp)) if len(comp) else np.nan,
      empty,
      empty,
      np.zeros((0, len(self.a_A)), np.float32),
    )

  def expected_performance(self, scores_QxA) -> np.ndarray:
    """[Q, A] p̂ of raw router scores (``calibration.apply_platt`` / ``apply_isotonic``, as the
    sweep)."""
    if self.iso_x_AxO.size:
      iso = calibration.Isotonic(
        jnp.asarray(self.iso_x_AxO), jnp.asarray(self.iso_y_AxO), jnp.zeros(len(self.a_A), bool)
      )
      return np.asarray(calibration.apply_isotonic(iso, jnp.asarray(scores_QxA, jnp.float32)))
    a_A, b_A = jnp.asarray(self.a_A, jnp.float32), jnp.asarray(self.b_A, jnp.float32)
    platt = calibration.Platt(a_A, b_A, jnp.zeros(a_A.shape, bool))
    return np.asarray(calibration.apply_platt(platt, jnp.asarray(scores_QxA, jnp.float32)))

  def expected_cost(self, texts, task_Q) -> np.ndarray:
    """[Q, A] $ per query known before the call; ``task_Q`` History task ids, -1 = unknown."""
    chars_Q = [max(len(t), 1) for t in texts]
    return self.usage.expected_cost(self.prices_Ax2, chars_Q, task_Q)

  def lam_for_budget(self, max_cost: float) -> costq.Pick:
    """The λ meeting ``max_cost`` $ per query on the validation front (budget mode)."""
    v = (self.val_p_VxA, self.val_cost_VxA, self.val_u_VxA, self.val_cost_VxA)
    return costq.pick_lambda(*v, self.lambdas_U, max_cost=max_cost)

  def route(self, scores_QxA, cost_QxA, lam: float) -> np.ndarray:
    """[Q] argmax_m p̂ − λ cost (λ = 0: plain argmax of p̂)."""
    p = self.expected_performance(scores_QxA)
    return np.asarray(costq.route_utility(p, cost_QxA, jnp.asarray([lam], jnp.float32)))[0]

  def add_candidate(self, prices_2: np.ndarray) -> CostModel:
    """One more candidate: the shared calibration, its prices, the log's overall medians."""
    if self.iso_x_AxO.size:
      raise ValueError(
        "an isotonically calibrated router has no shared map for a new candidate; fit it with "
        "config.calibration='platt' to add models"
      )
    overall = lambda v: np.nanmedian(v) if np.isfinite(v).any() else np.nan
    col = lambda v_A: np.append(v_A, overall(v_A))
    rows = np.asarray([[overall(r)] for r in self.completion_TxA]).reshape(-1, 1)
    empty = np.full((0, len(self.a_A) + 1), np.nan)
    return dataclasses.replace(
      self,
      a_A=np.append(self.a_A, self.shared_ab[0]),
      b_A=np.append(self.b_A, self.shared_ab[1]),
      prices_Ax2=np.concatenate([self.prices_Ax2, np.asarray(prices_2, np.float32)[None]]),
      tokens_per_char_A=col(self.tokens_per_char_A),
      completion_TxA=np.concatenate([self.completion_TxA, rows], axis=1),
      completion_A=col(self.completion_A),
      val_p_VxA=empty,
      val_cost_VxA=empty,
      val_u_VxA=empty,
    )


def fit(
  history: History,
  val_scores_VxA,
  val_labels_VxA,
  val_utility_VxA,
  val_query_ids,
  method: str = "platt",
):
  """The CostModel of a trained router (None when prices or token counts are unknown).

  Args:
    history: the training History (prices, usage log).
    val_scores_VxA: the router's scores on its validation queries.
    val_labels_VxA: their known outcomes (NaN = unknown): the calibration targets.
    val_utility_VxA: their validation utility table (the budget mode's outcomes).
    val_query_ids: History indices of the validation queries.
    method: "platt", "shared" (one Platt map for all candidates) or "isotonic" (the sweep's
      ``config.calibration``).
  """
  prices = history.prices_Mx2[history.candidates]
  usage = usage_log(history)
  if not np.isfinite(prices).all() or usage is None:
    return None
  s, y = jnp.asarray(val_scores_VxA, jnp.float32), jnp.asarray(val_labels_VxA, jnp.float32)
  p_val, a_A, b_A = (np.asarray(x) for x in calibrate(s[:1], s, y, method == "shared")[1:])
  shared = calibration.fit_platt_shared(scores_QxA=s, outcomes_QxA=y)
  q = np.asarray(val_query_ids)
  iso_x = iso_y = np.zeros((0, 0), np.float32)
  if method == "isotonic":
    _, p_val, iso = calibrate_isotonic(np.asarray(s[:1]), np.asarray(s), np.asarray(y))
    iso_x, iso_y = np.asarray(iso.x_AxO), np.asarray(iso.y_AxO)
  return CostModel(
    a_A=a_A,
    b_A=b_A,
    shared_ab=np.asarray([shared.a_A[0], shared.b_A[0]], np.float32),
    prices_Ax2=np.asarray(prices, np.float32),
    tokens_per_char_A=usage.tokens_per_char_A,
    completion_TxA=usage.completion_TxA,
    completion_A=usage.completion_A,
    lambdas_U=setting_lambdas(history, usage),
    val_p_VxA=p_val,
    val_cost_VxA=usage.expected_cost(prices, query_chars(history, q), history.query_task[q]),
    val_u_VxA=np.asarray(val_utility_VxA, np.float64),
    iso_x_AxO=iso_x,
    iso_y_AxO=iso_y,
  )
