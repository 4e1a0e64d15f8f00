"""The deployable cost model of a router bundle: calibrated p̂, the cost of a call known before
it, and a budget.

A deployed router routes a new prompt by argmax_m p̂(q, m) − λ · cost_est(q, m) (``route``):

- p̂: the router's scores through per-candidate Platt maps fitted on the validation queries of
  its training run (a candidate added later without labels uses the shared map);
- cost_est: prompt tokens x input price + predicted completion tokens x output price, $ per
  million tokens. A new prompt's token count per candidate is its length in characters times the
  candidate's median tokens-per-character of a usage log; completion tokens are the median of
  the log per (task, candidate), falling back to the candidate's median. The usage log is the
  History's rows with token counts (training rows where they have them; the public release only
  records them on its test rows, whose outcomes play no part here);
- λ: given directly, or the budget mode: the λ whose validation front (the validation queries'
  p̂ and estimated costs, outcomes from the validation utility table) meets a target $ per query
  (``lam_for_budget``).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from rp_jax import calibration, costq
from rp_jax.types import TEST, History

NUM_LAMBDAS = 33


@dataclasses.dataclass
class CostModel:
  """Arrays of the cost model (see module docstring); A candidates, T History tasks."""

  a_A: np.ndarray
  b_A: np.ndarray
  shared_ab: np.ndarray  # [2] the shared Platt map
  prices_Ax2: np.ndarray
  tokens_per_char_A: np.ndarray
  completion_TxA: np.ndarray
  completion_A: np.ndarray
  lambdas_U: np.ndarray
  val_p_VxA: np.ndarray
  val_cost_VxA: np.ndarray
  val_u_VxA: np.ndarray

  def arrays(self) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in dataclasses.asdict(self).items()}

  @classmethod
  def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CostModel:
    return cls(**{f.name: np.asarray(arrays[f.name]) for f in dataclasses.fields(cls)})

  def expected_performance(self, scores_QxA) -> np.ndarray:
    """[Q, A] p̂ of raw router scores."""
    s = np.asarray(scores_QxA, np.float64)
    return 1.0 / (1.0 + np.exp(-(self.a_A[None, :] * s + self.b_A[None, :])))

  def expected_cost(self, texts, task_Q) -> np.ndarray:
    """[Q, A] $ per query known before the call; ``task_Q`` History task ids, -1 = unknown."""
    chars_Q = np.asarray([len(t) for t in texts], np.float64)
    prompt_QxA = chars_Q[:, None] * self.tokens_per_char_A[None, :]
    task_Q = np.asarray(task_Q)
    known = (task_Q >= 0)[:, None]
    comp_QxA = np.where(known, self.completion_TxA[np.maximum(task_Q, 0)], self.completion_A)
    comp_QxA = np.where(np.isfinite(comp_QxA), comp_QxA, self.completion_A[None, :])
    return np.asarray(costq.expected_cost(prompt_QxA, comp_QxA, self.prices_Ax2), np.float64)

  def lam_for_budget(self, max_cost: float) -> costq.Pick:
    """The λ meeting ``max_cost`` $ per query on the validation front (budget mode)."""
    return costq.pick_lambda(
      self.val_p_VxA,
      self.val_cost_VxA,
      self.val_u_VxA,
      self.val_cost_VxA,
      self.lambdas_U,
      max_cost=max_cost,
    )

  def route(self, scores_QxA, cost_QxA, lam: float) -> np.ndarray:
    """[Q] argmax_m p̂ − λ cost (λ = 0: plain argmax of p̂)."""
    p = self.expected_performance(scores_QxA)
    lam_U = jnp.asarray([lam], jnp.float32)
    return np.asarray(costq.route_utility(p, cost_QxA, lam_U))[0]

  def add_candidate(self, prices_2: np.ndarray) -> CostModel:
    """One more candidate: the shared calibration, its prices, the log's overall medians."""
    overall = lambda v: np.nanmedian(v) if np.isfinite(v).any() else np.nan
    col = lambda v_A: np.append(v_A, overall(v_A))
    return dataclasses.replace(
      self,
      a_A=np.append(self.a_A, self.shared_ab[0]),
      b_A=np.append(self.b_A, self.shared_ab[1]),
      prices_Ax2=np.concatenate([self.prices_Ax2, np.asarray(prices_2, np.float32)[None]]),
      tokens_per_char_A=col(self.tokens_per_char_A),
      completion_TxA=np.concatenate(
        [self.completion_TxA, _row_medians(self.completion_TxA)], axis=1
      ),
      completion_A=col(self.completion_A),
      val_p_VxA=np.full((0, len(self.a_A) + 1), np.nan),
      val_cost_VxA=np.full((0, len(self.a_A) + 1), np.nan),
      val_u_VxA=np.full((0, len(self.a_A) + 1), np.nan),
    )


def _row_medians(v_TxA: np.ndarray) -> np.ndarray:
  """[T, 1] median of each row's finite entries (NaN for rows without any)."""
  out = np.full((v_TxA.shape[0], 1), np.nan)
  for t, row in enumerate(v_TxA):
    if np.isfinite(row).any():
      out[t, 0] = np.median(row[np.isfinite(row)])
  return out


def usage_log(history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(tokens per character [A], completion tokens [T, A], completion tokens [A]) medians of the
  rows with token counts (training rows if any has them, else test rows)."""
  cand = history.candidates
  tok = history.tokens_QxMx2[:, cand]
  has = np.isfinite(tok).all(-1).any(-1)
  train = has & (history.query_split != TEST)
  rows = np.flatnonzero(train if train.any() else has)
  chars = np.asarray([max(len(history.query_texts[q]), 1) for q in rows], np.float64)
  per_char = np.nanmedian(tok[rows, :, 0] / chars[:, None], axis=0)
  comp = tok[rows, :, 1]
  comp_A = np.nanmedian(comp, axis=0)
  comp_TxA = np.full((history.num_tasks, len(cand)), np.nan)
  task = history.query_task[rows]
  for t in np.unique(task):
    comp_TxA[t] = np.nanmedian(comp[task == t], axis=0)
  return per_char, comp_TxA, comp_A


def fit(
  history: History,
  val_scores_VxA: np.ndarray,
  val_labels_VxA: np.ndarray,
  val_utility_VxA: np.ndarray,
  val_query_ids: np.ndarray,
) -> CostModel | None:
  """The cost model of a trained router (None when the candidates' prices or tokens are unknown).

  Args:
    history: the training History (prices, usage log).
    val_scores_VxA: the router's scores on its validation queries.
    val_labels_VxA: their known outcomes (NaN = unknown): the calibration targets.
    val_utility_VxA: their validation utility table (the budget mode's outcomes).
    val_query_ids: History indices of the validation queries.
  """
  prices = history.prices_Mx2[history.candidates]
  if not np.isfinite(prices).all() or not np.isfinite(history.tokens_QxMx2).any():
    return None
  platt = calibration.fit_platt(
    scores_QxA=jnp.asarray(val_scores_VxA), outcomes_QxA=jnp.asarray(val_labels_VxA)
  )
  shared = calibration.fit_platt_shared(
    scores_QxA=jnp.asarray(val_scores_VxA), outcomes_QxA=jnp.asarray(val_labels_VxA)
  )
  per_char, comp_TxA, comp_A = usage_log(history)
  model = CostModel(
    a_A=np.asarray(platt.a_A, np.float64),
    b_A=np.asarray(platt.b_A, np.float64),
    shared_ab=np.asarray([shared.a_A[0], shared.b_A[0]], np.float64),
    prices_Ax2=np.asarray(prices, np.float32),
    tokens_per_char_A=per_char,
    completion_TxA=comp_TxA,
    completion_A=comp_A,
    lambdas_U=np.zeros(NUM_LAMBDAS),
    val_p_VxA=np.zeros((0, len(prices))),
    val_cost_VxA=np.zeros((0, len(prices))),
    val_u_VxA=np.asarray(val_utility_VxA, np.float64),
  )
  texts = [history.query_texts[q] for q in val_query_ids]
  model.val_p_VxA = model.expected_performance(val_scores_VxA)
  model.val_cost_VxA = model.expected_cost(texts, history.query_task[val_query_ids])
  spread = np.median(model.val_cost_VxA.max(1) - model.val_cost_VxA.min(1))
  spread = spread if spread > 0 else 1e-6
  model.lambdas_U = np.concatenate([[0.0], np.logspace(-3, 3, NUM_LAMBDAS - 1) / spread])
  return model
