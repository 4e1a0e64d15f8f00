"""Calibration of router scores into expected performance p̂(q, m) in [0, 1], and its diagnostics.

A router emits a score per (query, candidate) whose scale means nothing in itself; cost-aware
routing (``rp_jax.costq``) trades an *expected performance* against dollars, so the score must
first be mapped to [0, 1]. Two maps, each per candidate or shared by all candidates:

* Platt scaling, p = sigmoid(a_m · s + b_m): damped Newton on the masked binary cross-entropy
  (soft labels in [0, 1] allowed), in ``jax.numpy``; jittable, and vmappable over a leading
  sweep axis of scores.
* Isotonic regression (pool-adjacent-violators), fitted host side in numpy; the fitted step
  function is stored as knots and applied with ``jnp.interp`` (linear between the blocks, flat
  outside the fitted range), so applying it is jittable and vmappable.

Fit on validation rows only: outcomes may be NaN (unknown; ignored) and ``mask_Q`` selects the
rows to fit on, so the caller can pass all rows with fixed shapes and a validation mask. A
candidate with fewer than ``min_labels`` known outcomes among those rows (e.g. a held-out new
model, which has none) gets the shared map fitted on every known entry of every candidate.

  platt = fit_platt(scores_QxA=val_scores, outcomes_QxA=val_perf)
  p_QxA = apply_platt(platt, test_scores)
  iso = fit_isotonic(scores_QxA=val_scores, outcomes_QxA=val_perf)
  p_QxA = apply_isotonic(iso, test_scores)
  brier(p_QxA=..., outcomes_QxA=test_perf), reliability(p_QxA=..., outcomes_QxA=test_perf)

Shape letters as in ``rp_jax.types``: Q rows, A candidates, S sweep configurations; here also
K knots of an isotonic map and G reliability bins.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# Step sizes tried along each Newton direction; 0 keeps the current point, so the penalised loss
# never increases (plain Newton can overshoot on logistic losses far from the optimum).
_STEP_SIZES = tuple(2.0**-i for i in range(12)) + (0.0,)
# The last Newton steps are full steps: near the optimum the line search compares float32 loss
# sums whose differences are below their rounding, so it would stop anywhere in a flat region
# (~1e-3 in the slope); full steps solve gradient = 0 instead, to the gradient's own precision.
_FULL_STEPS = 5


class Platt(NamedTuple):
  """Per-candidate Platt maps p = sigmoid(a_A · s + b_A) (a pytree of arrays).

  Attributes:
    a_A: [A] slope on the raw score.
    b_A: [A] intercept.
    shared_A: [A] bool, the candidate uses the shared map (too few labels of its own).
  """

  a_A: jax.Array
  b_A: jax.Array
  shared_A: jax.Array


class Isotonic(NamedTuple):
  """Per-candidate isotonic maps as knots of a piecewise-linear function (a pytree of arrays).

  Between knots the map is linear, outside them flat. Rows are padded to K knots by repeating
  the last knot, which ``jnp.interp`` treats as a zero-width segment.

  Attributes:
    x_AxO: [A, K] non-decreasing scores of the knots.
    y_AxO: [A, K] non-decreasing calibrated values in [0, 1].
    shared_A: [A] bool, the candidate uses the shared map (too few labels of its own).
  """

  x_AxO: jax.Array
  y_AxO: jax.Array
  shared_A: jax.Array


def _fit_weights(scores_QxA, outcomes_QxA, mask_Q):
  """[Q, A] float32 1 where a row is fitted on and both score and outcome are known, else 0."""
  known_QxA = jnp.isfinite(outcomes_QxA) & jnp.isfinite(scores_QxA)
  if mask_Q is not None:
    assert mask_Q.shape == scores_QxA.shape[:1], (mask_Q.shape, scores_QxA.shape)
    known_QxA = known_QxA & jnp.asarray(mask_Q, bool)[:, None]
  return known_QxA.astype(jnp.float32)


# -- Platt scaling ------------------------------------------------------------------------------


def _platt_1d(s_N, y_N, w_N, num_steps, l2):
  """(a, b) minimising sum w·BCE(sigmoid(a s + b), y) + l2/2 (a'² + b'²) on standardised s.

  The score is standardised (weighted mean 0, std 1) before the fit, so the prior and the
  Newton steps do not depend on the router's score scale; (a, b) are returned for the raw score.
  Entries with weight 0 never reach an arithmetic operation (``where`` first), so garbage there
  (NaN, inf) cannot leak into the fit.
  """
  on_N = w_N > 0
  s_N = jnp.where(on_N, s_N, 0.0)
  y_N = jnp.where(on_N, y_N, 0.0)
  n = jnp.sum(w_N)
  mean = jnp.sum(w_N * s_N) / jnp.maximum(n, 1.0)
  std = jnp.sqrt(jnp.sum(w_N * (s_N - mean) ** 2) / jnp.maximum(n, 1.0))
  std = jnp.where(std > 0, std, 1.0)
  z_N = jnp.where(on_N, (s_N - mean) / std, 0.0)

  def loss(theta_2):
    logit_N = theta_2[0] * z_N + theta_2[1]
    bce_N = jax.nn.softplus(logit_N) - y_N * logit_N
    return jnp.sum(w_N * bce_N) + 0.5 * l2 * jnp.sum(theta_2**2)

  steps_T = jnp.asarray(_STEP_SIZES, jnp.float32)

  def newton(i, theta_2):
    p_N = jax.nn.sigmoid(theta_2[0] * z_N + theta_2[1])
    r_N = w_N * (p_N - y_N)
    g_2 = jnp.stack([jnp.sum(r_N * z_N), jnp.sum(r_N)]) + l2 * theta_2
    h_N = w_N * p_N * (1.0 - p_N)
    haa = jnp.sum(h_N * z_N**2) + l2
    hab = jnp.sum(h_N * z_N)
    hbb = jnp.sum(h_N) + l2
    det = haa * hbb - hab**2  # > 0: the prior makes the Hessian positive definite
    step_2 = jnp.stack([hbb * g_2[0] - hab * g_2[1], haa * g_2[1] - hab * g_2[0]]) / det
    cand_Tx2 = theta_2[None, :] - steps_T[:, None] * step_2[None, :]
    searched_2 = cand_Tx2[jnp.argmin(jax.vmap(loss)(cand_Tx2))]
    return jnp.where(i >= num_steps - _FULL_STEPS, theta_2 - step_2, searched_2)

  a, b = jax.lax.fori_loop(0, num_steps, newton, jnp.zeros(2, jnp.float32))
  return a / std, b - a * mean / std


@functools.partial(jax.jit, static_argnames=("num_steps",))
def fit_platt(
  *,
  scores_QxA: jax.Array,
  outcomes_QxA: jax.Array,
  mask_Q: jax.Array | None = None,
  min_labels: int = 20,
  num_steps: int = 50,
  l2: float = 1e-2,
) -> Platt:
  """Platt maps per candidate, falling back to the shared map for candidates with few labels.

  Each fit is damped Newton (``num_steps`` steps, the last five full; it converges in about ten)
  on the masked binary cross-entropy, which accepts fractional outcomes as soft labels. ``l2``
  is a weak Gaussian prior on the slope and intercept of the *standardised* score: it keeps
  separable data (all labels 1, or a perfect score) finite (e.g. ten labels all 1 give
  p̂ ≈ 0.995) and otherwise barely moves the fit; few labels are handled by the shared fallback
  instead. Jittable (it is jitted) and vmappable over a leading sweep axis of scores: ``jax.vmap(lambda s: fit_platt(scores_QxA=s, outcomes_QxA=y))``.

  Args:
    scores_QxA: [Q, A] router scores (higher = better).
    outcomes_QxA: [Q, A] outcomes in [0, 1]; NaN = unknown, ignored.
    mask_Q: [Q] bool rows to fit on (the validation rows); default all rows.
    min_labels: a candidate with fewer known outcomes than this uses the shared map.
    num_steps: Newton steps (static).
    l2: prior precision on the standardised (a, b).

  Returns:
    A Platt with [A] parameters for the raw scores.
  """
  assert scores_QxA.shape == outcomes_QxA.shape, (scores_QxA.shape, outcomes_QxA.shape)
  scores_QxA = jnp.asarray(scores_QxA, jnp.float32)
  outcomes_QxA = jnp.asarray(outcomes_QxA, jnp.float32)
  w_QxA = _fit_weights(scores_QxA, outcomes_QxA, mask_Q)
  fit = functools.partial(_platt_1d, num_steps=num_steps, l2=l2)
  a_A, b_A = jax.vmap(fit, in_axes=1)(scores_QxA, outcomes_QxA, w_QxA)
  a_sh, b_sh = fit(scores_QxA.reshape(-1), outcomes_QxA.reshape(-1), w_QxA.reshape(-1))
  shared_A = jnp.sum(w_QxA, axis=0) < min_labels
  return Platt(
    a_A=jnp.where(shared_A, a_sh, a_A), b_A=jnp.where(shared_A, b_sh, b_A), shared_A=shared_A
  )


def fit_platt_shared(
  *,
  scores_QxA: jax.Array,
  outcomes_QxA: jax.Array,
  mask_Q: jax.Array | None = None,
  num_steps: int = 50,
  l2: float = 1e-2,
) -> Platt:
  """One Platt map shared by all candidates (fitted on every known entry), as a Platt over [A].

  Args and Returns as ``fit_platt``.
  """
  big = scores_QxA.shape[0] * scores_QxA.shape[1] + 1  # more labels than any candidate has
  return fit_platt(
    scores_QxA=scores_QxA,
    outcomes_QxA=outcomes_QxA,
    mask_Q=mask_Q,
    min_labels=big,
    num_steps=num_steps,
    l2=l2,
  )


def apply_platt(platt: Platt, scores_QxA: jax.Array) -> jax.Array:
  """[..., Q, A] calibrated p̂ = sigmoid(a_A · s + b_A) (leading axes of scores are kept)."""
  scores_QxA = jnp.asarray(scores_QxA, jnp.float32)
  a_QxA = jnp.broadcast_to(platt.a_A, scores_QxA.shape)
  b_QxA = jnp.broadcast_to(platt.b_A, scores_QxA.shape)
  return jax.nn.sigmoid(a_QxA * scores_QxA + b_QxA)


# -- isotonic regression --------------------------------------------------------------------------


def _pav_knots(s_N: np.ndarray, y_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Knots (x, y) of the non-decreasing least-squares fit of y on s (pool-adjacent-violators).

  Equal scores are pooled first (their mean outcome, weighted by their count). Each block of the
  fit contributes its first and last score with the block's value, so interpolating linearly
  between blocks and holding the end values outside reproduces the usual isotonic predictor.
  """
  x_U, inv_N = np.unique(s_N, return_inverse=True)
  w_U = np.bincount(inv_N, minlength=len(x_U)).astype(np.float64)
  y_U = np.bincount(inv_N, weights=y_N, minlength=len(x_U)) / w_U
  # Stack of blocks: value, weight, index of its first and last unique score.
  val, wt, lo, hi = [], [], [], []
  for u in range(len(x_U)):
    val.append(y_U[u])
    wt.append(w_U[u])
    lo.append(u)
    hi.append(u)
    while len(val) > 1 and val[-2] > val[-1]:
      w = wt[-2] + wt[-1]
      v = (val[-2] * wt[-2] + val[-1] * wt[-1]) / w
      h = hi[-1]
      for stack in (val, wt, lo, hi):
        stack.pop()
      val[-1], wt[-1], hi[-1] = v, w, h
  xs, ys = [], []
  for v, first, last in zip(val, lo, hi, strict=True):
    xs.append(x_U[first])
    ys.append(v)
    if last != first:
      xs.append(x_U[last])
      ys.append(v)
  return np.asarray(xs), np.clip(np.asarray(ys), 0.0, 1.0)


def _pad(x_O, y_O, num_knots):
  """Pads knots to ``num_knots`` by repeating the last one."""
  pad = num_knots - len(x_O)
  return np.pad(x_O, (0, pad), mode="edge"), np.pad(y_O, (0, pad), mode="edge")


def fit_isotonic(
  *,
  scores_QxA,
  outcomes_QxA,
  mask_Q=None,
  min_labels: int = 20,
  shared_only: bool = False,
) -> Isotonic:
  """Non-decreasing isotonic maps per candidate (numpy, host side), with a shared fallback.

  Outcomes may be fractional (least squares on them is the usual isotonic fit). A candidate with
  fewer than ``min_labels`` known outcomes among the fitted rows, or every candidate when
  ``shared_only``, uses the shared map fitted on all known entries of all candidates.

  Args:
    scores_QxA: [Q, A] router scores (higher = better).
    outcomes_QxA: [Q, A] outcomes in [0, 1]; NaN = unknown, ignored.
    mask_Q: [Q] bool rows to fit on (the validation rows); default all rows.
    min_labels: a candidate with fewer known outcomes than this uses the shared map.
    shared_only: every candidate uses the shared map.

  Returns:
    An Isotonic of float32 jnp arrays, [A, K] knots with K >= 2.

  Raises:
    ValueError: no known outcome at all among the fitted rows.
  """
  scores_QxA = np.asarray(scores_QxA, np.float64)
  outcomes_QxA = np.asarray(outcomes_QxA, np.float64)
  assert scores_QxA.shape == outcomes_QxA.shape, (scores_QxA.shape, outcomes_QxA.shape)
  known_QxA = np.isfinite(scores_QxA) & np.isfinite(outcomes_QxA)
  if mask_Q is not None:
    mask_Q = np.asarray(mask_Q, bool)
    assert mask_Q.shape == scores_QxA.shape[:1], (mask_Q.shape, scores_QxA.shape)
    known_QxA &= mask_Q[:, None]
  if not known_QxA.any():
    raise ValueError("no known outcome among the fitted rows; cannot fit an isotonic map")
  shared = _pav_knots(scores_QxA[known_QxA], outcomes_QxA[known_QxA])
  count_A = known_QxA.sum(0)
  shared_A = np.full(len(count_A), True) if shared_only else count_A < max(min_labels, 1)
  knots = [
    shared
    if shared_A[a]
    else _pav_knots(scores_QxA[known_QxA[:, a], a], outcomes_QxA[known_QxA[:, a], a])
    for a in range(len(count_A))
  ]
  num_knots = max(2, *(len(x) for x, _ in knots))
  x_AxO, y_AxO = zip(*(_pad(x, y, num_knots) for x, y in knots), strict=True)
  return Isotonic(
    x_AxO=jnp.asarray(np.stack(x_AxO), jnp.float32),
    y_AxO=jnp.asarray(np.stack(y_AxO), jnp.float32),
    shared_A=jnp.asarray(shared_A),
  )


def apply_isotonic(iso: Isotonic, scores_QxA: jax.Array) -> jax.Array:
  """[Q, A] calibrated p̂: each candidate's knots interpolated at its scores (jit/vmappable)."""
  scores_QxA = jnp.asarray(scores_QxA, jnp.float32)
  interp = jax.vmap(jnp.interp, in_axes=(1, 0, 0), out_axes=1)
  return interp(scores_QxA, iso.x_AxO, iso.y_AxO)


# -- diagnostics ----------------------------------------------------------------------------------


def brier(*, p_QxA: jax.Array, outcomes_QxA: jax.Array, mask_Q: jax.Array | None = None):
  """Scalar mean (p̂ - outcome)² over the known entries (NaN outcomes skipped); NaN if none.

  Args:
    p_QxA: [Q, A] predicted performance.
    outcomes_QxA: [Q, A] outcomes in [0, 1] (fractional allowed); NaN = unknown.
    mask_Q: [Q] bool rows to score; default all rows.
  """
  assert p_QxA.shape == outcomes_QxA.shape, (p_QxA.shape, outcomes_QxA.shape)
  w_QxA = _fit_weights(p_QxA, outcomes_QxA, mask_Q)
  on_QxA = w_QxA > 0
  diff_QxA = jnp.where(on_QxA, p_QxA, 0.0) - jnp.where(on_QxA, outcomes_QxA, 0.0)
  sq_QxA = diff_QxA**2
  n = jnp.sum(w_QxA)
  return jnp.where(n > 0, jnp.sum(sq_QxA) / jnp.maximum(n, 1.0), jnp.nan)


@functools.partial(jax.jit, static_argnames=("num_bins",))
def reliability(
  *,
  p_QxA: jax.Array,
  outcomes_QxA: jax.Array,
  mask_Q: jax.Array | None = None,
  num_bins: int = 10,
) -> dict[str, jax.Array]:
  """Reliability-diagram bins over the known entries: G equal-width bins of p̂ on [0, 1].

  Bin g holds p̂ in [g/G, (g+1)/G); the last bin also holds p̂ = 1.

  Args:
    p_QxA: [Q, A] predicted performance in [0, 1].
    outcomes_QxA: [Q, A] outcomes; NaN = unknown, skipped.
    mask_Q: [Q] bool rows to use; default all rows.
    num_bins: G (static).

  Returns:
    ``count_O`` [G] known entries per bin, ``mean_pred_O`` [G] and ``mean_obs_O`` [G] mean p̂ and
    mean outcome per bin (NaN for empty bins).
  """
  assert p_QxA.shape == outcomes_QxA.shape, (p_QxA.shape, outcomes_QxA.shape)
  w_N = _fit_weights(p_QxA, outcomes_QxA, mask_Q).reshape(-1)
  on_N = w_N > 0
  p_N = jnp.where(on_N, p_QxA.reshape(-1), 0.0)
  y_N = jnp.where(on_N, outcomes_QxA.reshape(-1), 0.0)
  bin_N = jnp.clip(jnp.floor(p_N * num_bins), 0, num_bins - 1).astype(jnp.int32)
  total = lambda v_N: jax.ops.segment_sum(w_N * v_N, bin_N, num_segments=num_bins)
  count_O = total(jnp.ones_like(p_N))
  safe_O = jnp.maximum(count_O, 1.0)
  empty_O = count_O == 0
  return {
    "count_O": count_O,
    "mean_pred_O": jnp.where(empty_O, jnp.nan, total(p_N) / safe_O),
    "mean_obs_O": jnp.where(empty_O, jnp.nan, total(y_N) / safe_O),
  }
