"""The cost–quality stage: calibrated expected performance, λ fronts and their scores per cell.

For every router cell (profile x hyperparameters, seeds averaged) of a setting whose test rows
have costs:

1. p̂(q, m): the cell's scores calibrated per candidate on its validation queries (Platt scaling
   against the known training outcomes, with a shared map for candidates with few labels, e.g. a
   held-out model; ``rp_jax.calibration``). Brier scores on validation and test rows.
2. cost known before the call: ``rp_jax.cost.model.Usage.expected_cost``, the estimate a
   deployed router makes (prompt length x tokens per character x input price + predicted
   completion tokens x output price; the usage log's medians, never a row's own count).
3. the front: route argmax_m p̂ - λ cost_est over the setting's λ grid (``model.setting_lambdas``,
   the deployed router's grid; one more vmapped axis of the same compiled evaluation), scoring
   the true outcomes and true costs of the test rows.
4. scores (``rp_jax.costq``): AIQ (RouterBench), quality at the best single model's cost,
   cost to reach the lookup's quality, and RouteLLM's APGR / CPT(50%) / CPT(80%) for the pair
   (strong = the best single model by training pairs, weak = the cheapest candidate).

Baselines on the same axes: every constant router, the zero router (the hull of the constants),
uniform random, the per-task lookup and best single model, and the oracles (per task and per
query, cheapest of the best).

Shape letters as in ``rp_jax.types``; here U is the λ grid and C the cells.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax.cost import calibration, costq
from rp_jax.cost import model as cost_model
from rp_jax.metrics import TestSet
from rp_jax.routers.baselines import Baseline
from rp_jax.types import History


@dataclasses.dataclass(frozen=True)
class CostSetting:
  """What every front of a setting is measured against (numpy).

  Attributes:
    perf_QxA, cost_QxA: true outcomes and $ per query of the test rows.
    cost_est_QxA: $ per query known before the call (routing uses it).
    lambdas_U: the setting's λ grid (``cost.model.setting_lambdas``).
    const_quality_A, const_cost_A: the constant routers' points.
    best_single_cost, best_single_quality: $ per query and quality on the test rows of the best
      single model chosen on training rows (``baselines["best_single"]``).
    lookup_quality, lookup_cost: the per-task lookup (task_best_pairs).
    strong, weak: candidate positions of the APGR pair (the best single, the cheapest).
    train_quality_A: each candidate's mean known training outcome (which of a pair is strong).
    row_cost_est_QxA, row_cost_QxA: estimated and true $ of every History query (the validation
      queries' fronts; NaN where unknown).
    calibration: "platt", "shared" or "isotonic" (``cost.model.calibrate``).
  """

  perf_QxA: np.ndarray
  cost_QxA: np.ndarray
  cost_est_QxA: np.ndarray
  lambdas_U: np.ndarray
  const_quality_A: np.ndarray
  const_cost_A: np.ndarray
  best_single_cost: float
  lookup_quality: float
  lookup_cost: float
  strong: int
  weak: int
  best_single_quality: float = float("nan")
  train_quality_A: np.ndarray | None = None
  row_cost_est_QxA: np.ndarray | None = None
  row_cost_QxA: np.ndarray | None = None
  calibration: str = "platt"

  @property
  def cost_min(self) -> float:
    return float(self.const_cost_A.min())

  @property
  def cost_max(self) -> float:
    return float(self.const_cost_A.max())


def cost_setting(
  history: History, test: TestSet, baselines: dict[str, Baseline], calibration: str = "platt"
):
  """The CostSetting of a setting, or None when its test rows lack costs."""
  perf, cost = np.asarray(test.perf_QxA), np.asarray(test.cost_QxA)
  if not np.isfinite(cost).all():
    return None
  cand = history.candidates
  row_est, row_true = estimated_costs(history)
  q = np.asarray(test.query_ids)
  look = baselines["task_best_pairs"].sel_QxA
  strong = int(np.argmax(baselines["best_single"].sel_QxA[0]))
  cost_est = row_est[q]
  weak = int(np.argmin(cost_est.mean(0)))
  train = history.outcomes_QxM[np.ix_(history.train_queries, cand)]
  with np.errstate(all="ignore"):
    train_quality = np.nanmean(train, axis=0)
  return CostSetting(
    perf_QxA=perf,
    cost_QxA=cost,
    cost_est_QxA=cost_est.astype(np.float32),
    lambdas_U=cost_model.setting_lambdas(history, cost_model.usage_log(history)),
    const_quality_A=perf.mean(0),
    const_cost_A=cost.mean(0),
    best_single_cost=float(cost.mean(0)[strong]),
    lookup_quality=float((look * perf).sum(1).mean()),
    lookup_cost=float((look * cost).sum(1).mean()),
    strong=strong,
    weak=weak if weak != strong else int(np.argsort(cost_est.mean(0))[1]),
    best_single_quality=float(perf.mean(0)[strong]),
    train_quality_A=train_quality,
    row_cost_est_QxA=row_est,
    row_cost_QxA=row_true,
    calibration=calibration,
  )


def estimated_costs(history: History) -> tuple[np.ndarray, np.ndarray]:
  """([Q, A] estimated, [Q, A] true) $ per query of every History query (candidates).

  The estimate is ``Usage.expected_cost`` (a log row never estimated from its own count); where
  the History has explicit costs and no tokens, the cost is taken as known before the call."""
  cand = history.candidates
  true = history.query_cost_QxM()[:, cand]
  prices = history.prices_Mx2[cand]
  usage = cost_model.usage_log(history)
  if usage is None or not np.isfinite(prices).all():
    return true.astype(np.float32), true.astype(np.float32)
  q = np.arange(history.num_queries)
  chars = cost_model.query_chars(history, q)
  est = usage.expected_cost(prices, chars, history.query_task, exclude_Q=q)
  return est.astype(np.float32), true.astype(np.float32)


def calibrate(test_CxZxQxA, val_CxZxVxA, labels_CxZxVxA, method: str = "platt"):
  """(p̂ test [C, R, Q, A], p̂ validation [C, R, V, A]): maps fitted on each cell's and seed's
  validation rows, as a deployed router's (``cost.model``): Platt per candidate or shared by all
  candidates in one vmapped call, or isotonic (host-side pool-adjacent-violators fits)."""
  args = (np.asarray(x, np.float32) for x in (test_CxZxQxA, val_CxZxVxA, labels_CxZxVxA))
  if method == "isotonic":
    return cost_model.calibrate_isotonic_grid(*args)
  one = functools.partial(cost_model.calibrate, shared=method == "shared")
  f = jax.vmap(jax.vmap(one))
  p_test, p_val, _, _ = f(*(jnp.asarray(x) for x in args))
  return np.asarray(p_test), np.asarray(p_val)


@jax.jit
def _fronts(p_CxZxQxA, cost_est_QxA, perf_QxA, cost_QxA, lambdas_U):
  one = lambda p: costq.front(p, cost_est_QxA, perf_QxA, cost_QxA, lambdas_U)
  return jax.vmap(jax.vmap(one))(p_CxZxQxA)


def fronts(p_CxZxQxA: np.ndarray, cs: CostSetting) -> tuple[np.ndarray, np.ndarray]:
  """(quality [C, R, U], cost [C, R, U]) of every cell and seed over the λ grid (one call)."""
  q, c = _fronts(
    jnp.asarray(p_CxZxQxA, jnp.float32),
    jnp.asarray(cs.cost_est_QxA),
    jnp.asarray(cs.perf_QxA, jnp.float32),
    jnp.asarray(cs.cost_QxA, jnp.float32),
    jnp.asarray(cs.lambdas_U),
  )
  return np.asarray(q), np.asarray(c)


def front_scores(cost_N: np.ndarray, quality_N: np.ndarray, cs: CostSetting) -> dict[str, float]:
  """AIQ, quality at the best single model's cost, cost to reach the lookup's and the best
  single model's quality (read off the hull)."""
  h = costq.hull(cost_N, quality_N)
  return {
    "aiq": float(costq.aiq(cost_N, quality_N, cs.cost_min, cs.cost_max)),
    "quality_at_best_single_cost": float(costq.quality_at_cost(h, cs.best_single_cost)),
    "cost_to_lookup_quality": float(costq.cost_to_quality(h, cs.lookup_quality)),
    "cost_to_best_single_quality": float(costq.cost_to_quality(h, cs.best_single_quality)),
  }


def pair_rows(setting: str, name: str, p_ZxQxA: np.ndarray, cs: CostSetting) -> list[dict]:
  """APGR / CPT(50%) / CPT(80%) of one cell for every (weak, strong) pair of candidates (strong:
  the better on training rows; preference p̂_strong − p̂_weak; seeds averaged). ``apgr.csv``."""
  out = []
  names = range(p_ZxQxA.shape[-1])
  for i in names:
    for j in names:
      if i == j or not cs.train_quality_A[j] > cs.train_quality_A[i]:
        continue  # j strong, i weak
      gs = [
        costq.gap_recovered(p[:, j] - p[:, i], cs.perf_QxA[:, j], cs.perf_QxA[:, i])
        for p in p_ZxQxA
      ]
      row = {"setting": setting, "name": name, "weak": i, "strong": j}
      for k in ("apgr", "cpt50", "cpt80"):
        with np.errstate(all="ignore"):
          row[k] = float(np.nanmean([g[k] for g in gs]))
      out.append(row)
  return out


def validation_pick(
  p_val_ZxVxA: np.ndarray, labels_ZxVxA, val_ids_ZxV, quality_ZxU, cost_ZxU, cs: CostSetting
) -> dict[str, float]:
  """The λ reaching the best single model's quality at the lowest cost, chosen per seed on its
  validation queries (``costq.pick_lambda``, rows with every outcome and cost known), and the
  test quality and $ per query it gives (seeds averaged). NaN without validation costs."""
  picks = []
  for z in range(len(p_val_ZxVxA)):
    ids = np.asarray(val_ids_ZxV[z])
    y, est, true = labels_ZxVxA[z], cs.row_cost_est_QxA[ids], cs.row_cost_QxA[ids]
    ok = np.isfinite(y).all(1) & np.isfinite(true).all(1) & np.isfinite(est).all(1)
    if ok.sum() < 10:
      continue
    target = float(y[ok, cs.strong].mean())
    pick = costq.pick_lambda(
      p_val_ZxVxA[z][ok], est[ok], y[ok], true[ok], cs.lambdas_U, min_quality=target
    )
    picks.append((pick.lam, quality_ZxU[z, pick.index], cost_ZxU[z, pick.index]))
  if not picks:
    nan = float("nan")
    return {"val_lambda": nan, "quality_at_val_lambda": nan, "cost_at_val_lambda": nan}
  lam, q, c = np.asarray(picks, np.float64).mean(0)
  return {"val_lambda": lam, "quality_at_val_lambda": q, "cost_at_val_lambda": c}


def gap_scores(p_ZxQxA: np.ndarray, cs: CostSetting) -> dict[str, float]:
  """APGR, CPT(50%), CPT(80%) for the strong/weak pair, preference p̂_strong - p̂_weak (seeds
  averaged)."""
  out = []
  for p_QxA in p_ZxQxA:
    pref = p_QxA[:, cs.strong] - p_QxA[:, cs.weak]
    g = costq.gap_recovered(pref, cs.perf_QxA[:, cs.strong], cs.perf_QxA[:, cs.weak])
    out.append([g["apgr"], g["cpt50"], g["cpt80"]])
  apgr, cpt50, cpt80 = np.nanmean(np.asarray(out, np.float64), axis=0)
  return {"apgr": float(apgr), "cpt50": float(cpt50), "cpt80": float(cpt80)}


def baseline_points(baselines: dict[str, Baseline], cs: CostSetting) -> list[tuple]:
  """(name, kind, quality, cost) of every baseline, plus the cheapest-of-best oracles."""
  out = []
  for name, b in baselines.items():
    if name in ("oracle_query", "oracle_task"):
      continue  # replaced by their cheapest-of-best versions below
    kind = "oracle" if b.kind == "upper_bound" else "baseline"
    q = float((b.sel_QxA * cs.perf_QxA).sum(1).mean())
    c = float((b.sel_QxA * cs.cost_QxA).sum(1).mean())
    out.append((name, kind, q, c))
  perf, cost = cs.perf_QxA, cs.cost_QxA
  best = perf == perf.max(1, keepdims=True)
  pick = np.argmin(np.where(best, cost, np.inf), axis=1)
  rows = np.arange(len(perf))
  out.append(
    ("oracle_query", "oracle", float(perf[rows, pick].mean()), float(cost[rows, pick].mean()))
  )
  return out


def task_oracle_point(test: TestSet, cs: CostSetting) -> tuple:
  """The per-task oracle, cheapest of the best: per task the best mean test outcome, ties to the
  lower mean cost."""
  task = np.asarray(test.task_Q)
  pick = np.zeros(len(task), int)
  for t in np.unique(task):
    rows = task == t
    m, c = cs.perf_QxA[rows].mean(0), cs.cost_QxA[rows].mean(0)
    pick[rows] = np.lexsort((c, -m))[0]
  r = np.arange(len(task))
  return (
    "oracle_task",
    "oracle",
    float(cs.perf_QxA[r, pick].mean()),
    float(cs.cost_QxA[r, pick].mean()),
  )


@jax.jit
def _briers(p_test_CxZxQxA, perf_QxA, p_val_CxZxVxA, labels_CxZxVxA):
  b = lambda p, y: calibration.brier(p_QxA=p, outcomes_QxA=y)
  test = jax.vmap(jax.vmap(lambda p: b(p, perf_QxA)))(p_test_CxZxQxA)
  val = jax.vmap(jax.vmap(b))(p_val_CxZxVxA, labels_CxZxVxA)
  return test, val


@jax.jit
def _reliabilities(p_test_CxZxQxA, perf_QxA, p_val_CxZxVxA, labels_CxZxVxA):
  """Reliability bins of every cell, its seeds pooled: (test, val) dicts of [C, G] arrays."""

  def pooled(p_ZxQxA, y_ZxQxA):
    a = p_ZxQxA.shape[-1]
    return calibration.reliability(
      p_QxA=p_ZxQxA.reshape(-1, a), outcomes_QxA=y_ZxQxA.reshape(-1, a)
    )

  perf_ZxQxA = jnp.broadcast_to(perf_QxA, p_test_CxZxQxA.shape[1:])
  test = jax.vmap(lambda p: pooled(p, perf_ZxQxA))(p_test_CxZxQxA)
  return test, jax.vmap(pooled)(p_val_CxZxVxA, labels_CxZxVxA)


def _reliability_rows(setting: str, names: list[str], split: str, bins: dict) -> list[dict]:
  """Rows of ``calibration.csv``: one per (cell, bin)."""
  count, pred, obs = (np.asarray(bins[k]) for k in ("count_O", "mean_pred_O", "mean_obs_O"))
  return [
    {
      "setting": setting,
      "name": name,
      "split": split,
      "bin": g,
      "count": float(count[c, g]),
      "mean_pred": float(pred[c, g]),
      "mean_obs": float(obs[c, g]),
    }
    for c, name in enumerate(names)
    for g in range(count.shape[1])
  ]


AIQ_RESAMPLES = 200


@jax.jit
def _chosen_rows(p_CxZxQxA, cost_est_QxA, perf_QxA, cost_QxA, lambdas_U):
  """([C, U, Q] chosen outcome, [C, U, Q] chosen true cost) per λ, seeds averaged."""

  def one(p_QxA):
    choice_UxQ = costq.route_utility(p_QxA, cost_est_QxA, lambdas_U)
    take = lambda v: jnp.take_along_axis(v[None], choice_UxQ[..., None], axis=-1)[..., 0]
    return take(perf_QxA), take(cost_QxA)

  q, c = jax.vmap(jax.vmap(one))(p_CxZxQxA)
  return q.mean(1), c.mean(1)


def aiq_margin_interval(p_CxZxQxA: np.ndarray, cs: CostSetting, seed: int = 0) -> np.ndarray:
  """[C, 2] 95% bootstrap interval over test rows of each cell's AIQ minus the zero router's.

  Each resample of the test rows recomputes the cells' fronts (their choices per λ are fixed),
  the constant routers' points and so the zero router's hull and the normalised cost range.
  """
  args = (cs.cost_est_QxA, cs.perf_QxA, cs.cost_QxA, cs.lambdas_U)
  q_CxUxQ, c_CxUxQ = (np.asarray(x, np.float64) for x in _chosen_rows(p_CxZxQxA, *args))
  rng = np.random.default_rng(seed)
  idx_WxQ = rng.integers(0, cs.perf_QxA.shape[0], (AIQ_RESAMPLES, cs.perf_QxA.shape[0]))
  out = np.zeros((q_CxUxQ.shape[0], AIQ_RESAMPLES))
  for w, idx in enumerate(idx_WxQ):
    const_q, const_c = cs.perf_QxA[idx].mean(0), cs.cost_QxA[idx].mean(0)
    _, zero = costq.zero_router(const_c, const_q)
    cmin, cmax = float(const_c.min()), float(const_c.max())
    q_CxU, c_CxU = q_CxUxQ[..., idx].mean(-1), c_CxUxQ[..., idx].mean(-1)
    out[:, w] = [costq.aiq(c_CxU[c], q_CxU[c], cmin, cmax) - zero for c in range(len(out))]
  return np.percentile(out, [2.5, 97.5], axis=1).T


class CellScores(NamedTuple):
  """The raw scores of C router cells x Z seeds (a router grid's stored outputs).

  Attributes:
    test_CxZxQxA: scores of the test rows.
    val_CxZxVxA: scores of the validation queries; labels_CxZxVxA their known outcomes.
    val_ids_CxZxV: History query ids of the validation queries.
  """

  test_CxZxQxA: np.ndarray
  val_CxZxVxA: np.ndarray
  labels_CxZxVxA: np.ndarray
  val_ids_CxZxV: np.ndarray


def cell_rows(setting: str, names: list[str], sc: CellScores, cs: CostSetting) -> dict:
  """The cost–quality rows of C router cells named ``names`` (seeds averaged):

  ``front``: ``setting, name, kind, lambda, avg_performance, cost_per_query`` per λ;
  ``scores``: ``setting, name, kind, aiq, quality_at_best_single_cost, cost_to_lookup_quality,
  cost_to_best_single_quality, apgr, cpt50, cpt80, brier_val, brier_test, val_lambda,
  quality_at_val_lambda, cost_at_val_lambda``; ``calibration`` (reliability diagrams, seeds
  pooled): ``setting, name, split (val | test), bin, count, mean_pred, mean_obs``; ``pairs``:
  ``pair_rows`` of every cell.
  """
  labels = sc.labels_CxZxVxA
  p_test, p_val = calibrate(sc.test_CxZxQxA, sc.val_CxZxVxA, labels, cs.calibration)
  quality_CxZxU, cost_CxZxU = fronts(p_test, cs)
  b_test, b_val = (np.asarray(x) for x in _briers(p_test, cs.perf_QxA, p_val, labels))
  r_test, r_val = _reliabilities(p_test, cs.perf_QxA, p_val, labels)
  out = {"front": [], "scores": [], "pairs": []}
  out["calibration"] = _reliability_rows(setting, names, "val", r_val)
  out["calibration"] += _reliability_rows(setting, names, "test", r_test)
  quality_CxU, cost_CxU = quality_CxZxU.mean(1), cost_CxZxU.mean(1)
  _, zero_aiq = costq.zero_router(cs.const_cost_A, cs.const_quality_A)
  margin_ci = aiq_margin_interval(p_test, cs)
  for c, name in enumerate(names):
    for lam, q, cost in zip(cs.lambdas_U, quality_CxU[c], cost_CxU[c], strict=True):
      out["front"].append(
        {
          "setting": setting,
          "name": name,
          "kind": "router",
          "lambda": float(lam),
          "avg_performance": float(q),
          "cost_per_query": float(cost),
        }
      )
    row = {"setting": setting, "name": name, "kind": "router"}
    row.update(front_scores(cost_CxU[c], quality_CxU[c], cs))
    row.update(
      aiq_vs_zero_router=row["aiq"] - zero_aiq,
      aiq_vs_zero_ci_low=float(margin_ci[c, 0]),
      aiq_vs_zero_ci_high=float(margin_ci[c, 1]),
    )
    row.update(gap_scores(p_test[c], cs))
    row.update(brier_val=float(np.nanmean(b_val[c])), brier_test=float(np.nanmean(b_test[c])))
    pick = (p_val[c], labels[c], sc.val_ids_CxZxV[c], quality_CxZxU[c], cost_CxZxU[c], cs)
    row.update(validation_pick(*pick))
    out["scores"].append(row)
    out["pairs"] += pair_rows(setting, name, p_test[c], cs)
  return out


def baseline_rows(
  setting: str, baselines: dict[str, Baseline], test: TestSet, cs: CostSetting
) -> tuple[list[dict], list[dict]]:
  """(front rows, score rows) of the baselines: single points, plus the zero router's hull."""
  pts = baseline_points(baselines, cs) + [task_oracle_point(test, cs)]
  front, scores = [], []
  for name, kind, q, c in pts:
    front.append(
      {
        "setting": setting,
        "name": name,
        "kind": kind,
        "lambda": float("nan"),
        "avg_performance": q,
        "cost_per_query": c,
      }
    )
    scores.append(
      {
        "setting": setting,
        "name": name,
        "kind": kind,
        **front_scores(np.asarray([c]), np.asarray([q]), cs),
      }
    )
  zero, _ = costq.zero_router(cs.const_cost_A, cs.const_quality_A)
  for c, q in zip(zero.cost_O, zero.quality_O, strict=True):
    front.append(
      {
        "setting": setting,
        "name": "zero_router",
        "kind": "baseline",
        "lambda": float("nan"),
        "avg_performance": float(q),
        "cost_per_query": float(c),
      }
    )
  scores.append(
    {
      "setting": setting,
      "name": "zero_router",
      "kind": "baseline",
      **front_scores(np.asarray(zero.cost_O), np.asarray(zero.quality_O), cs),
    }
  )
  return front, scores
