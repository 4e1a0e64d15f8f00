"""Cost–quality trade-offs: cost estimates, utility routing over a λ grid, fronts and their scores.

A router that knows the expected performance p̂(q, m) in [0, 1] of each candidate (scores
calibrated with ``rp_jax.calibration``) and an estimate of its dollar cost *before the call*
routes each query to argmax_m p̂(q, m) - λ · cost_est(q, m). Sweeping λ traces a front of
(average performance, $ per query) points, measured with the *true* outcomes and costs:

  p_QxA = calibration.apply_platt(calibration.fit_platt(...validation rows...), scores_QxA)
  completion_QxA = predict_completion_tokens(task_train_Q, completion_train_QxA, task_Q)
  cost_est_QxA = expected_cost(prompt_tokens_QxA, completion_QxA, prices_Ax2)
  lambdas_U = lambda_grid(cost_est_QxA)                          # cost estimates only
  pick = pick_lambda(p_val_QxA, cost_est_val_QxA, perf_val_QxA, cost_val_QxA, lambdas_U,
                     max_cost=0.0001)                             # budget mode, validation only
  quality_U, cost_U = front(p_QxA, cost_est_QxA, test.perf_QxA, test.cost_QxA, lambdas_U)
  const_quality_A, const_cost_A = test.perf_QxA.mean(0), test.cost_QxA.mean(0)  # constants
  score = aiq(cost_U, quality_U, cost_min=min(const_cost_A), cost_max=max(const_cost_A))
  zero_hull, zero_aiq = zero_router(const_cost_A, const_quality_A)

``route_utility`` returns choices [L, Q]; ``metrics.one_hot(choice_UxQ, A)`` turns them into
selections for ``jax.vmap(metrics.evaluate, (0, None))``. The routing functions are jnp, take
numpy or jnp arrays, and vmap over a leading sweep axis of p̂ (``jax.vmap(front, (0, None, None,
None, None))``). Fronts, hulls and scores (``hull``, ``aiq``, ``quality_at_cost``, ...,
``gap_recovered``) are host-side numpy on a handful of points per router.

Definitions (and why):

* **Completion tokens** are unknown before the call; ``predict_completion_tokens`` uses the
  median over the training rows of the same (task, candidate), falling back to the candidate's
  median over all training rows, then to the global median. The median, not the mean: output
  lengths are right-skewed with rare runaway generations, and one of them would dominate a
  (task, candidate) cell of a few dozen rows; routing needs the typical cost of a call, and the
  reported cost is always the true one. ``statistic="mean"`` is available.
* **Hull** (RouterBench's non-decreasing convex hull): sort the points by cost, keep only those
  that raise the best quality seen so far (a dominated point, costlier and no better, goes),
  then take the upper concave envelope. Between vertices the hull is reached by a random
  mixture of the two neighbouring routers, which is what ``quality_at_cost`` and
  ``cost_to_quality`` interpolate.
* **AIQ**: cost is normalised as x = (c - cost_min) / (cost_max - cost_min) with the cheapest
  and the most expensive constant router; AIQ = ∫_0^1 f(x) dx where f is the hull between its
  vertices, flat at the hull's best quality to the right of its last vertex, and 0 left of its
  cheapest vertex (a router cannot be run for less than its cheapest operating point). Parts of
  the hull outside [0, 1] do not count. This is the paper's formula 1/(c_max - c_min) ∫ R̃(c) dc
  over the candidates' cost range. RouterBench's released code instead divides the trapezoid
  area by the largest cost of the compared routers (origin at $0); ours does not depend on which
  routers are compared. The zero router is the hull of the constant routers.
* **APGR** (RouteLLM): for a weak/strong pair, PGR(x) = (q(x) - q_weak) / (q_strong - q_weak)
  where q(x) is the mean outcome when a share x of the calls go to the strong model, namely the
  rows with the highest preference score (ties among equal scores broken uniformly at random,
  taken as the expected value, so any share x is exact). q(x) is then piecewise linear in x and
  APGR = ∫_0^1 PGR(x) dx is computed exactly (RouteLLM approximates it on a grid of
  thresholds, 10 equally spaced call shares in the paper; a finer grid converges to ours). A
  router without information (constant preference) gets exactly 0.5; the per-row oracle gets
  1 - f/2 when the strong model is never worse and strictly better on a share f of rows (it
  can exceed 1 when the weak model wins some rows). CPT(p) = the least share of strong calls
  with PGR >= p (linear between kinks).

Shape letters as in ``rp_jax.types``: Q rows, A candidates, S sweep configurations; here also L
the λ grid (in ``rp_jax.types`` L means tokens, which never appear here), N points of a front,
H hull vertices, G points of a plotting grid.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# -- cost known before the call -------------------------------------------------------------------


def expected_cost(prompt_tokens_QxA, completion_pred_QxA, prices_Ax2) -> jax.Array:
  """[Q, A] estimated $ per query: prompt × input price + predicted completion × output price.

  Args:
    prompt_tokens_QxA: [Q, A] prompt tokens (known before the call; tokenizers differ by model).
    completion_pred_QxA: [Q, A] predicted completion tokens (``predict_completion_tokens``).
    prices_Ax2: [A, 2] $ per million tokens (input, output), as ``History.prices_Mx2``.

  Returns:
    [Q, A] float32 $; NaN where a token count or a price is unknown.
  """
  prompt_QxA = jnp.asarray(prompt_tokens_QxA, jnp.float32)
  completion_QxA = jnp.asarray(completion_pred_QxA, jnp.float32)
  prices_Ax2 = jnp.asarray(prices_Ax2, jnp.float32)
  assert prompt_QxA.shape == completion_QxA.shape, (prompt_QxA.shape, completion_QxA.shape)
  assert prices_Ax2.shape == (prompt_QxA.shape[-1], 2), (prices_Ax2.shape, prompt_QxA.shape)
  return (prompt_QxA * prices_Ax2[None, :, 0] + completion_QxA * prices_Ax2[None, :, 1]) / 1e6


def _column_stat(v_QxA: np.ndarray, statistic: str, min_count: int) -> np.ndarray:
  """[A] median or mean of each column over its finite entries; NaN below ``min_count`` of them."""
  out_A = np.full(v_QxA.shape[1], np.nan)
  for a in range(v_QxA.shape[1]):
    v = v_QxA[np.isfinite(v_QxA[:, a]), a]
    if len(v) >= max(min_count, 1):
      out_A[a] = np.median(v) if statistic == "median" else np.mean(v)
  return out_A


def predict_completion_tokens(
  task_train_Q, completion_train_QxA, task_Q, *, statistic: str = "median", min_count: int = 1
) -> np.ndarray:
  """[Q, A] predicted completion tokens per (task, candidate), from training rows only.

  Each entry is the median (or mean) completion length of the candidate over the training rows
  of the same task; where the candidate has fewer than ``min_count`` known lengths on that task
  (or the task has no training rows), its median over all training rows; where it has none at
  all (a new model), the median over every known training entry. The median is the default: see
  the module docstring.

  Args:
    task_train_Q: [Q_train] int task id of each training row.
    completion_train_QxA: [Q_train, A] completion tokens of the training rows; NaN = unknown.
    task_Q: [Q] int task id of each row to predict (any split).
    statistic: "median" or "mean".
    min_count: least number of known lengths for a (task, candidate) cell to be used.

  Returns:
    [Q, A] float32 predicted completion tokens.

  Raises:
    ValueError: unknown statistic, or no known training completion length at all.
  """
  if statistic not in ("median", "mean"):
    raise ValueError(f"unknown statistic {statistic!r}; expected one of ('median', 'mean')")
  task_train_Q = np.asarray(task_train_Q)
  comp_QxA = np.asarray(completion_train_QxA, np.float64)
  task_Q = np.asarray(task_Q)
  assert task_train_Q.shape == comp_QxA.shape[:1], (task_train_Q.shape, comp_QxA.shape)
  known = comp_QxA[np.isfinite(comp_QxA)]
  if len(known) == 0:
    raise ValueError("no known training completion length; cannot predict completion tokens")
  overall = np.median(known) if statistic == "median" else np.mean(known)
  model_A = _column_stat(comp_QxA, statistic, 1)
  model_A = np.where(np.isnan(model_A), overall, model_A)
  out_QxA = np.empty((len(task_Q), comp_QxA.shape[1]))
  for t in np.unique(task_Q):
    cell_A = _column_stat(comp_QxA[task_train_Q == t], statistic, min_count)
    out_QxA[task_Q == t] = np.where(np.isnan(cell_A), model_A, cell_A)
  return out_QxA.astype(np.float32)


# -- utility routing over a λ grid ------------------------------------------------------------------


def lambda_grid(cost_QxA, num_lambdas: int = 33) -> np.ndarray:
  """[U] the λ grid of a setting: 0, then ``num_lambdas - 1`` values log-spaced over six decades
  around 1 / (the typical cost spread of a query).

  The spread is the median over rows of (most expensive − cheapest) estimated cost, so λ · cost
  is on the scale of p̂ (in [0, 1]) in the middle of the grid: the small λ change little, the
  largest (1000 / spread) route every row to its cheapest candidate. Built from cost estimates
  only (never outcomes or a router's scores), so every cell of a sweep and the deployed router
  share one grid. All λ are 0 when no row has a cost spread.

  Args:
    cost_QxA: [Q, A] estimated $ per query (e.g. the usage log's rows).
    num_lambdas: U >= 2.
  """
  if num_lambdas < 2:
    raise ValueError(f"num_lambdas must be >= 2; got {num_lambdas}")
  c_QxA = np.asarray(cost_QxA, np.float64)
  spread_Q = np.nanmax(c_QxA, axis=1) - np.nanmin(c_QxA, axis=1)
  spread_Q = spread_Q[np.isfinite(spread_Q)]
  spread = float(np.median(spread_Q)) if len(spread_Q) else 0.0
  if not spread > 0:
    return np.zeros(num_lambdas)
  return np.concatenate([[0.0], np.logspace(-3, 3, num_lambdas - 1) / spread])


def _route_one(lam, p_QxA, cost_QxA):
  """[Q] argmax_a p̂ - λ cost; λ = 0 ignores cost; NaN utilities never win; ties -> lowest a."""
  penalty_QxA = jnp.where(lam == 0, 0.0, lam * cost_QxA)
  u_QxA = p_QxA - penalty_QxA
  u_QxA = jnp.where(jnp.isnan(u_QxA), -jnp.inf, u_QxA)
  return jnp.argmax(u_QxA, axis=-1).astype(jnp.int32)


def route_utility(p_QxA, cost_QxA, lambdas_U) -> jax.Array:
  """[L, Q] int32 choice argmax_a p̂[q, a] - λ_l · cost[q, a] for each λ of the grid.

  λ = 0 is the plain argmax of p̂ (cost ignored, even where unknown); a huge λ picks the cheapest
  candidate of each row. Ties go to the lowest index (in float32: once λ · cost swamps p̂,
  equally cheap candidates tie whatever their p̂). A candidate with an unknown (NaN) p̂, or an
  unknown cost when λ > 0, is never chosen unless every candidate of the row is unknown (then
  index 0). Jittable; vmaps over leading sweep axes.

  Args:
    p_QxA: [Q, A] expected performance p̂ in [0, 1].
    cost_QxA: [Q, A] $ per query known before the call (``expected_cost``).
    lambdas_U: [L] λ >= 0 in quality per $.
  """
  p_QxA = jnp.asarray(p_QxA, jnp.float32)
  cost_QxA = jnp.asarray(cost_QxA, jnp.float32)
  lambdas_U = jnp.asarray(lambdas_U, jnp.float32)
  assert p_QxA.shape == cost_QxA.shape, (p_QxA.shape, cost_QxA.shape)
  assert lambdas_U.ndim == 1, lambdas_U.shape
  return jax.vmap(_route_one, in_axes=(0, None, None))(lambdas_U, p_QxA, cost_QxA)


def front(p_QxA, cost_est_QxA, perf_QxA, cost_true_QxA, lambdas_U):
  """(quality_U, cost_U): mean true outcome and mean true $ per query of the router at each λ.

  Routing uses the estimated cost; the reported cost is the true one. A mean is NaN if any
  chosen outcome or true cost is unknown (NaN), as in ``metrics.cost_per_query``: pass rows
  whose outcomes are known for every candidate (test rows are; restrict validation rows).

  Args:
    p_QxA: [Q, A] expected performance p̂ used for routing.
    cost_est_QxA: [Q, A] estimated $ per query used for routing.
    perf_QxA: [Q, A] true outcomes.
    cost_true_QxA: [Q, A] true $ per query.
    lambdas_U: [L] λ grid.

  Returns:
    ``quality_U`` [L] and ``cost_U`` [L] float32 jnp arrays.
  """
  perf_QxA = jnp.asarray(perf_QxA, jnp.float32)
  cost_true_QxA = jnp.asarray(cost_true_QxA, jnp.float32)
  shapes = (jnp.shape(p_QxA), perf_QxA.shape, cost_true_QxA.shape)
  assert shapes[0] == shapes[1] == shapes[2], shapes
  choice_UxQ = route_utility(p_QxA, cost_est_QxA, lambdas_U)
  take = lambda v_QxA, c_Q: jnp.take_along_axis(v_QxA, c_Q[:, None], axis=1)[:, 0]
  chosen = jax.vmap(take, in_axes=(None, 0))  # [Q, A], [L, Q] -> [L, Q]
  quality_U = jnp.mean(chosen(perf_QxA, choice_UxQ), axis=-1)
  cost_U = jnp.mean(chosen(cost_true_QxA, choice_UxQ), axis=-1)
  return quality_U, cost_U


class Pick(NamedTuple):
  """The λ chosen on validation rows, with its validation front point."""

  index: int
  lam: float
  quality: float
  cost: float
  feasible: bool


def pick_lambda(
  p_QxA,
  cost_est_QxA,
  perf_QxA,
  cost_true_QxA,
  lambdas_U,
  *,
  max_cost: float | None = None,
  min_quality: float | None = None,
) -> Pick:
  """Budget mode: the λ of the grid that meets a target on validation rows (never test rows).

  With ``max_cost``: among the λ whose validation $ per query is <= max_cost, the one with the
  best validation quality (ties: lower cost, then smaller λ). With a front that rises with cost
  this is the λ with the largest cost within budget; the quality rule also holds when noise
  makes the validation front non-monotone. With ``min_quality``: the cheapest λ whose validation
  quality reaches it (ties: better quality, then smaller λ). If no λ meets the target,
  ``feasible`` is False and the cheapest (max_cost) or the best (min_quality) λ is returned.

  Args:
    p_QxA, cost_est_QxA, perf_QxA, cost_true_QxA: [Q, A] validation rows, as for ``front``.
    lambdas_U: [L] λ grid.
    max_cost: target $ per query (exactly one of max_cost and min_quality).
    min_quality: target mean outcome.
  """
  if (max_cost is None) == (min_quality is None):
    raise ValueError("give exactly one of max_cost and min_quality")
  lambdas_U = np.asarray(lambdas_U, np.float64)
  quality_U, cost_U = (
    np.asarray(v, np.float64)
    for v in front(p_QxA, cost_est_QxA, perf_QxA, cost_true_QxA, lambdas_U)
  )
  known_U = np.isfinite(quality_U) & np.isfinite(cost_U)
  if not known_U.any():
    raise ValueError("every λ has an unknown validation quality or cost (NaN outcomes or costs)")
  q_U = np.where(known_U, quality_U, -np.inf)
  c_U = np.where(known_U, cost_U, np.inf)
  # np.lexsort sorts by its last key first.
  if max_cost is not None:
    ok_U = known_U & (cost_U <= max_cost)
    rank, fallback = (lambdas_U, c_U, -q_U), (lambdas_U, -q_U, c_U)
  else:
    ok_U = known_U & (quality_U >= min_quality)
    rank, fallback = (lambdas_U, -q_U, c_U), (lambdas_U, c_U, -q_U)
  feasible = bool(ok_U.any())
  pool_L = ok_U if feasible else known_U
  i = int(next(j for j in np.lexsort(rank if feasible else fallback) if pool_L[j]))
  return Pick(i, float(lambdas_U[i]), float(quality_U[i]), float(cost_U[i]), feasible)


# -- fronts and scores (host side) ----------------------------------------------------------------


class Hull(NamedTuple):
  """Vertices of a non-decreasing concave front, sorted by cost (strictly increasing both).

  Attributes:
    cost_O: [H] $ per query of the vertices.
    quality_O: [H] quality of the vertices.
  """

  cost_O: np.ndarray
  quality_O: np.ndarray


def hull(cost_N, quality_N) -> Hull:
  """The non-decreasing upper convex hull (RouterBench) of (cost, quality) points.

  Points with NaN are dropped. After sorting by cost, only points that beat the quality of every
  cheaper (or equally cheap) point are kept; the upper concave envelope of those is returned
  (points on a segment between two vertices are dropped).

  Args:
    cost_N: [N] $ per query of each point (any leading shape is flattened).
    quality_N: [N] quality of each point.

  Raises:
    ValueError: no point with a known cost and quality.
  """
  c_N = np.asarray(cost_N, np.float64).reshape(-1)
  q_N = np.asarray(quality_N, np.float64).reshape(-1)
  assert c_N.shape == q_N.shape, (c_N.shape, q_N.shape)
  ok_N = np.isfinite(c_N) & np.isfinite(q_N)
  if not ok_N.any():
    raise ValueError("no point with a finite cost and quality; cannot build a hull")
  c_N, q_N = c_N[ok_N], q_N[ok_N]
  order = np.lexsort((-q_N, c_N))  # cost ascending, best quality first among equal costs
  c_N, q_N = c_N[order], q_N[order]
  best_before_N = np.maximum.accumulate(np.concatenate([[-np.inf], q_N[:-1]]))
  rising_N = q_N > best_before_N
  hc, hq = [], []
  for x, y in zip(c_N[rising_N], q_N[rising_N], strict=True):
    # Drop the last vertex while it lies on or below the segment from the one before it to (x, y).
    while len(hc) >= 2 and (hc[-1] - hc[-2]) * (y - hq[-2]) - (hq[-1] - hq[-2]) * (x - hc[-2]) >= 0:
      hc.pop()
      hq.pop()
    hc.append(x)
    hq.append(y)
  return Hull(np.asarray(hc), np.asarray(hq))


def aiq(cost_N, quality_N, cost_min: float, cost_max: float) -> float:
  """RouterBench's AIQ: the area under the hull over the candidates' normalised cost range.

  x = (cost - cost_min) / (cost_max - cost_min); the area over x in [0, 1] under the hull,
  flat at its best quality right of its last vertex and 0 left of its first (see the module
  docstring for the choice and how it differs from RouterBench's released code).

  Args:
    cost_N: [N] $ per query of the router's operating points (e.g. ``front``'s cost_U).
    quality_N: [N] their quality.
    cost_min: $ per query of the cheapest constant router.
    cost_max: $ per query of the most expensive constant router.
  """
  if not cost_max > cost_min:
    raise ValueError(f"need cost_max > cost_min; got {cost_min} and {cost_max}")
  h = hull(cost_N, quality_N)
  x_H = (h.cost_O - cost_min) / (cost_max - cost_min)
  start = max(x_H[0], 0.0)
  if start >= 1.0:
    return 0.0
  x_G = np.concatenate([[start], x_H[(x_H > start) & (x_H < 1.0)], [1.0]])
  y_G = np.interp(x_G, x_H, h.quality_O)  # flat beyond the last vertex
  return float(np.sum(0.5 * (y_G[1:] + y_G[:-1]) * np.diff(x_G)))


def zero_router(cost_A, quality_A) -> tuple[Hull, float]:
  """RouterBench's zero router: random mixtures of the constant routers, and its AIQ.

  Args:
    cost_A: [A] $ per query of each constant router (always route to candidate a).
    quality_A: [A] its quality.

  Returns:
    The hull of the constant routers' points and its AIQ over their cost range.
  """
  cost_A = np.asarray(cost_A, np.float64)
  return hull(cost_A, quality_A), aiq(cost_A, quality_A, np.nanmin(cost_A), np.nanmax(cost_A))


def quality_at_cost(h: Hull, budget):
  """Best quality the hull reaches at cost <= budget (NaN below its cheapest vertex).

  Between two vertices this is the linear interpolation, reached by a random mixture of the two
  routers; beyond the last vertex the best quality (spending more does not help).

  Args:
    h: a ``hull``.
    budget: $ per query, scalar or array.
  """
  budget = np.asarray(budget, np.float64)
  out = np.where(budget < h.cost_O[0], np.nan, np.interp(budget, h.cost_O, h.quality_O))
  return out if out.ndim else float(out)


def cost_to_quality(h: Hull, target):
  """Least $ per query at which the hull reaches quality target (inf if it never does).

  Targets at or below the cheapest vertex's quality cost that vertex's cost.

  Args:
    h: a ``hull``.
    target: quality, scalar or array.
  """
  target = np.asarray(target, np.float64)
  out = np.where(target > h.quality_O[-1], np.inf, np.interp(target, h.quality_O, h.cost_O))
  return out if out.ndim else float(out)


def gap_recovered(pref_Q, perf_strong_Q, perf_weak_Q, *, num_points: int = 21) -> dict:
  """RouteLLM's APGR and CPT(50%), CPT(80%) of a weak/strong router (exact; module docstring).

  Args:
    pref_Q: [Q] preference for the strong model (higher = call strong first), e.g.
      p̂_strong - p̂_weak.
    perf_strong_Q: [Q] true outcome of the strong model on each row.
    perf_weak_Q: [Q] true outcome of the weak model.
    num_points: G, points of the returned PGR curve (for plots and tables).

  Returns:
    ``apgr`` (area under PGR over the strong-call share in [0, 1]), ``cpt50`` and ``cpt80``
    (least share reaching 50% / 80% PGR), ``share_O`` [G] evenly spaced shares and ``pgr_O`` [G]
    PGR at them. All NaN when the two models tie on average (no gap to recover).

  Raises:
    ValueError: an outcome or preference is not finite.
  """
  pref_Q = np.asarray(pref_Q, np.float64)
  gain_Q = np.asarray(perf_strong_Q, np.float64) - np.asarray(perf_weak_Q, np.float64)
  assert pref_Q.shape == gain_Q.shape and pref_Q.ndim == 1, (pref_Q.shape, gain_Q.shape)
  if not (np.isfinite(pref_Q).all() and np.isfinite(gain_Q).all()):
    raise ValueError("preferences and outcomes must be finite on every row")
  share_O = np.linspace(0.0, 1.0, num_points)
  total = gain_Q.sum()
  if total == 0:
    nan = float("nan")
    return {"apgr": nan, "cpt50": nan, "cpt80": nan, "share_O": share_O, "pgr_O": share_O * nan}
  # Rows with equal preference form one group, called together in expectation, so the
  # recovered gain is linear within a group: the kinks are the group boundaries.
  values, inverse = np.unique(-pref_Q, return_inverse=True)  # groups by preference, descending
  count_U = np.bincount(inverse, minlength=len(values))
  gain_U = np.bincount(inverse, weights=gain_Q, minlength=len(values))
  share_K = np.concatenate([[0.0], np.cumsum(count_U) / len(pref_Q)])
  pgr_K = np.concatenate([[0.0], np.cumsum(gain_U) / total])
  pgr_K[-1] = 1.0  # exact, whatever the rounding of the cumulative sum

  def cpt(level):
    k = int(np.argmax(pgr_K >= level))  # pgr_K[-1] = 1 >= level, so one exists
    if k == 0:
      return 0.0
    frac = (level - pgr_K[k - 1]) / (pgr_K[k] - pgr_K[k - 1])
    return float(share_K[k - 1] + frac * (share_K[k] - share_K[k - 1]))

  return {
    "apgr": float(np.sum(0.5 * (pgr_K[1:] + pgr_K[:-1]) * np.diff(share_K))),
    "cpt50": cpt(0.5),
    "cpt80": cpt(0.8),
    "share_O": share_O,
    "pgr_O": np.interp(share_O, share_K, pgr_K),
  }
