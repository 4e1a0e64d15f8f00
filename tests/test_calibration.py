"""Calibration maps: recovery of known maps, monotonicity, masks and NaNs, fallbacks, diagnostics."""

import jax
import numpy as np
import pytest

from rp_jax.cost import calibration as cal

NAN = np.nan


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def synthetic(num_rows=200, seed=0):
  """Scores on very different scales and their exact soft labels sigmoid(a s + b) per model."""
  rng = np.random.default_rng(seed)
  scores_QxA = (rng.normal(size=(num_rows, 3)) * [3.0, 0.5, 10.0] + [1.0, 0.5, 0.0]).astype(
    np.float32
  )
  a_A, b_A = np.array([1.5, -2.0, 0.3]), np.array([-1.0, 0.5, 0.2])
  return scores_QxA, sigmoid(a_A * scores_QxA + b_A).astype(np.float32), a_A, b_A


def test_platt_recovers_the_map_of_soft_labels_with_its_sign():
  # With soft labels equal to sigmoid(a s + b) the cross-entropy minimum is exactly (a, b); the
  # weak prior moves it by well under 1%. The second model's data say a < 0: the fit follows.
  scores_QxA, y_QxA, a_A, b_A = synthetic()
  platt = cal.fit_platt(scores_QxA=scores_QxA, outcomes_QxA=y_QxA)
  np.testing.assert_allclose(platt.a_A, a_A, rtol=0.02)
  np.testing.assert_allclose(platt.b_A, b_A, atol=0.02)
  assert not np.asarray(platt.shared_A).any()
  p_QxA = np.asarray(cal.apply_platt(platt, scores_QxA))
  np.testing.assert_allclose(p_QxA, y_QxA, atol=0.01)
  # Monotone in the score, in the direction of the data.
  s_G = np.linspace(-5, 5, 11, dtype=np.float32)
  p_GxA = np.asarray(cal.apply_platt(platt, np.stack([s_G] * 3, axis=1)))
  assert (np.diff(p_GxA[:, 0]) > 0).all() and (np.diff(p_GxA[:, 1]) < 0).all()


def test_platt_binary_labels_and_nan_outcomes_are_ignored():
  scores_QxA, y_QxA, _, _ = synthetic(num_rows=400, seed=1)
  rng = np.random.default_rng(2)
  bin_QxA = (rng.random(y_QxA.shape) < y_QxA).astype(np.float32)
  platt = cal.fit_platt(scores_QxA=scores_QxA, outcomes_QxA=bin_QxA)
  assert np.asarray(platt.a_A)[0] > 0.5 and np.asarray(platt.a_A)[1] < -0.5
  # 50 extra rows with unknown outcomes (and garbage scores) change nothing.
  more_s = np.concatenate([scores_QxA, np.full((50, 3), 1e6, np.float32)])
  more_y = np.concatenate([bin_QxA, np.full((50, 3), NAN, np.float32)])
  more_s[400:410] = NAN
  again = cal.fit_platt(scores_QxA=more_s, outcomes_QxA=more_y)
  # float32 sums over different array lengths round differently (~1e-7 relative after the full
  # Newton steps; a line search alone stopped anywhere within ~1e-3 of the optimum, a CI flake).
  np.testing.assert_allclose(again.a_A, platt.a_A, rtol=1e-5)
  np.testing.assert_allclose(again.b_A, platt.b_A, rtol=1e-5, atol=1e-6)


def corrupt(scores_QxA, y_QxA, test_Q):
  """Copies with every test row replaced by garbage (reversed labels, huge and NaN scores)."""
  s, y = scores_QxA.copy(), y_QxA.copy()
  s[test_Q] = -1e6 * scores_QxA[test_Q]
  s[np.flatnonzero(test_Q)[:3]] = NAN
  y[test_Q] = 1.0 - y_QxA[test_Q]
  return s, y


def test_fits_on_validation_rows_do_not_see_test_rows():
  scores_QxA, y_QxA, _, _ = synthetic(num_rows=120, seed=3)
  bin_QxA = (np.random.default_rng(4).random(y_QxA.shape) < y_QxA).astype(np.float32)
  val_Q = np.arange(120) % 3 != 0
  bad_s, bad_y = corrupt(scores_QxA, bin_QxA, ~val_Q)
  assert not np.allclose(bad_y, bin_QxA)
  for fit in (cal.fit_platt, cal.fit_isotonic):
    clean = fit(scores_QxA=scores_QxA, outcomes_QxA=bin_QxA, mask_Q=val_Q)
    dirty = fit(scores_QxA=bad_s, outcomes_QxA=bad_y, mask_Q=val_Q)
    for x, y in zip(clean, dirty, strict=True):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
    # The mask matters: fitting on every row (test rows included) gives a different map.
    leaky = fit(scores_QxA=bad_s, outcomes_QxA=bad_y)
    apply = cal.apply_platt if fit is cal.fit_platt else cal.apply_isotonic
    assert not np.allclose(apply(leaky, scores_QxA), apply(clean, scores_QxA), atol=0.05)


def test_platt_vmaps_over_a_sweep_axis_of_scores():
  scores_QxA, y_QxA, _, _ = synthetic(num_rows=60)
  scores_SxQxA = np.stack([scores_QxA, 2.0 * scores_QxA + 1.0, -scores_QxA])
  fit = lambda s_QxA: cal.fit_platt(scores_QxA=s_QxA, outcomes_QxA=y_QxA)
  batched = jax.vmap(fit)(scores_SxQxA)
  for s in range(3):
    one = fit(scores_SxQxA[s])
    # Batched and single programs round float32 sums differently (~1e-5 relative).
    np.testing.assert_allclose(batched.a_A[s], one.a_A, rtol=1e-4)
    np.testing.assert_allclose(batched.b_A[s], one.b_A, rtol=1e-4, atol=1e-5)
  # An affine change of the score gives the same probabilities (standardisation inside the fit).
  p0 = cal.apply_platt(jax.tree.map(lambda v: v[0], batched), scores_SxQxA[0])
  p1 = cal.apply_platt(jax.tree.map(lambda v: v[1], batched), scores_SxQxA[1])
  np.testing.assert_allclose(p0, p1, atol=1e-5)


def test_models_with_few_labels_fall_back_to_the_shared_map():
  scores_QxA, y_QxA, _, _ = synthetic(num_rows=100, seed=5)
  y_QxA = y_QxA.copy()
  y_QxA[:, 2] = NAN  # a new model: no label at all
  y_QxA[5:, 1] = NAN  # 5 labels only
  platt = cal.fit_platt(scores_QxA=scores_QxA, outcomes_QxA=y_QxA, min_labels=20)
  np.testing.assert_array_equal(platt.shared_A, [False, True, True])
  shared = cal.fit_platt_shared(scores_QxA=scores_QxA, outcomes_QxA=y_QxA)
  assert np.asarray(shared.shared_A).all()
  np.testing.assert_allclose(shared.a_A, np.full(3, shared.a_A[0]))
  np.testing.assert_allclose(platt.a_A[1:], shared.a_A[1:])
  np.testing.assert_allclose(platt.b_A[1:], shared.b_A[1:])
  assert not np.isclose(platt.a_A[0], shared.a_A[0])
  iso = cal.fit_isotonic(scores_QxA=scores_QxA, outcomes_QxA=y_QxA, min_labels=20)
  np.testing.assert_array_equal(iso.shared_A, [False, True, True])
  np.testing.assert_allclose(iso.x_AxO[2], iso.x_AxO[1])
  np.testing.assert_allclose(iso.y_AxO[2], iso.y_AxO[1])
  iso = cal.fit_isotonic(scores_QxA=scores_QxA, outcomes_QxA=y_QxA, shared_only=True)
  assert np.asarray(iso.shared_A).all()
  np.testing.assert_allclose(iso.y_AxO[0], iso.y_AxO[1])


def test_isotonic_by_hand():
  # PAV pools (1, 0) into 0.5; the second block is 1. Knots (1, .5), (2, .5), (3, 1), (4, 1);
  # linear between blocks and flat outside. Model 1 has every label, model 0 four of five.
  s_QxA = np.array([[1, 4], [2, 3], [3, 2], [4, 1], [9, 0]], np.float32)
  y_QxA = np.array([[1, 0], [0, 0], [1, 1], [1, 1], [NAN, 1]], np.float32)
  iso = cal.fit_isotonic(scores_QxA=s_QxA, outcomes_QxA=y_QxA, min_labels=1)
  np.testing.assert_allclose(iso.x_AxO[0], [1, 2, 3, 4])
  np.testing.assert_allclose(iso.y_AxO[0], [0.5, 0.5, 1, 1])
  # Model 1 sorted by score: 0->1, 1->1, 2->1, 3->0, 4->0: all pool to 3/5.
  np.testing.assert_allclose(iso.x_AxO[1], [0, 4, 4, 4])  # padded with its last knot
  np.testing.assert_allclose(iso.y_AxO[1], [0.6, 0.6, 0.6, 0.6])
  p = np.asarray(cal.apply_isotonic(iso, np.array([[2.5, 7.0], [0.0, -1.0], [9.0, 2.0]])))
  np.testing.assert_allclose(p, [[0.75, 0.6], [0.5, 0.6], [1.0, 0.6]], rtol=1e-6)


def test_isotonic_is_non_decreasing_and_vmaps():
  scores_QxA, y_QxA, _, _ = synthetic(num_rows=150, seed=6)
  bin_QxA = (np.random.default_rng(7).random(y_QxA.shape) < y_QxA).astype(np.float32)
  iso = cal.fit_isotonic(scores_QxA=scores_QxA, outcomes_QxA=bin_QxA)
  assert (np.diff(np.asarray(iso.x_AxO), axis=1) >= 0).all()
  assert (np.diff(np.asarray(iso.y_AxO), axis=1) >= 0).all()
  grid_GxA = np.stack([np.linspace(-40, 40, 201, dtype=np.float32)] * 3, axis=1)
  p_GxA = np.asarray(cal.apply_isotonic(iso, grid_GxA))
  assert (np.diff(p_GxA, axis=0) >= -1e-7).all() and (p_GxA >= 0).all() and (p_GxA <= 1).all()
  # Model 0's outcomes rise steeply with its score: its map spans most of [0, 1].
  assert p_GxA[:, 0].max() - p_GxA[:, 0].min() > 0.8
  stacked = np.stack([scores_QxA, scores_QxA + 1.0])
  batched = jax.jit(jax.vmap(cal.apply_isotonic, (None, 0)))(iso, stacked)
  np.testing.assert_allclose(batched[1], cal.apply_isotonic(iso, stacked[1]), rtol=1e-6)


def test_isotonic_without_labels_raises():
  with pytest.raises(ValueError, match="no known outcome"):
    cal.fit_isotonic(scores_QxA=np.zeros((3, 2)), outcomes_QxA=np.full((3, 2), NAN))


def test_brier_and_reliability_by_hand():
  p_QxA = np.array([[0.1, 0.9], [0.35, 0.8], [0.95, 1.0]], np.float32)
  y_QxA = np.array([[0.0, 1.0], [1.0, NAN], [1.0, 0.5]], np.float32)
  # Known entries: (0.1, 0) (0.9, 1) (0.35, 1) (0.95, 1) (1.0, 0.5).
  want = (0.01 + 0.01 + 0.4225 + 0.0025 + 0.25) / 5
  np.testing.assert_allclose(cal.brier(p_QxA=p_QxA, outcomes_QxA=y_QxA), want, rtol=1e-6)
  rows = np.array([True, False, True])
  want_rows = (0.01 + 0.01 + 0.0025 + 0.25) / 4
  got = cal.brier(p_QxA=p_QxA, outcomes_QxA=y_QxA, mask_Q=rows)
  np.testing.assert_allclose(got, want_rows, rtol=1e-6)
  r = cal.reliability(p_QxA=p_QxA, outcomes_QxA=y_QxA, num_bins=4)
  # Bins [0, .25) [.25, .5) [.5, .75) [.75, 1]: 0.1 | 0.35 | - | 0.9, 0.95, 1.0.
  np.testing.assert_array_equal(r["count_O"], [1, 1, 0, 3])
  np.testing.assert_allclose(r["mean_pred_O"], [0.1, 0.35, NAN, 2.85 / 3], rtol=1e-6)
  np.testing.assert_allclose(r["mean_obs_O"], [0.0, 1.0, NAN, 2.5 / 3], rtol=1e-6)
  assert np.isnan(cal.brier(p_QxA=p_QxA, outcomes_QxA=np.full((3, 2), NAN, np.float32)))
