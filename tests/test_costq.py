"""Cost–quality module: utility routing over λ, cost estimates, hulls, AIQ, APGR, budget mode."""

import jax
import numpy as np
import pytest

from rp_jax.cost import costq as cq

NAN = np.nan

# 5 rows, 3 candidates. Row 1 ties on p̂ (-> lowest index).
P_QxA = np.array(
  [[0.9, 0.8, 0.1], [0.5, 0.5, 0.5], [0.2, 0.6, 0.7], [0.3, 0.3, 0.9], [0.2, 0.4, 0.9]],
  np.float32,
)
COST_QxA = np.array([[3, 2, 1], [1, 2, 3], [2, 2, 1], [1, 3, 2], [1.5, 1, 3]], np.float32)
PERF_QxA = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1]], np.float32)
COST_TRUE_QxA = COST_QxA + 0.5  # the reported cost differs from the routing estimate


def reference_route(p_QxA, cost_QxA, lam):
  """[Q] float64 numpy argmax of p̂ - λ cost (λ = 0: argmax of p̂)."""
  u = np.asarray(p_QxA, np.float64) - (0.0 if lam == 0 else lam * np.asarray(cost_QxA, np.float64))
  return np.argmax(u, axis=1)


def test_lambda_zero_is_the_argmax_of_p_and_a_huge_lambda_the_cheapest():
  choice_UxQ = np.asarray(cq.route_utility(P_QxA, COST_QxA, np.array([0.0, 1e9])))
  np.testing.assert_array_equal(choice_UxQ[0], [0, 0, 2, 2, 2])
  np.testing.assert_array_equal(choice_UxQ[0], np.argmax(P_QxA, axis=1))
  np.testing.assert_array_equal(choice_UxQ[1], [2, 0, 2, 0, 1])
  cheapest_Q = COST_QxA[np.arange(5), choice_UxQ[1]]
  np.testing.assert_array_equal(cheapest_Q, COST_QxA.min(1))


def test_unknown_costs_are_ignored_at_lambda_zero_and_never_chosen_otherwise():
  cost_QxA = COST_QxA.copy()
  cost_QxA[0, 0] = NAN  # the best p̂ of row 0
  cost_QxA[2, 2] = NAN  # the cheapest of row 2
  choice_UxQ = np.asarray(cq.route_utility(P_QxA, cost_QxA, np.array([0.0, 0.01, 1e9])))
  assert choice_UxQ[0, 0] == 0 and choice_UxQ[1, 0] == 1 and choice_UxQ[2, 0] == 2
  assert choice_UxQ[0, 2] == 2 and (choice_UxQ[1:, 2] != 2).all()


def test_vmapped_lambda_axis_equals_a_loop_and_a_numpy_reference():
  rng = np.random.default_rng(0)
  p_QxA = rng.random((30, 4)).astype(np.float32)
  cost_QxA = (rng.random((30, 4)) * 1e-3).astype(np.float32)
  lambdas_U = np.array([0.0, 10.0, 100.0, 300.0, 1e3, 1e4, 1e9], np.float32)
  batched_LxQ = np.asarray(jax.jit(cq.route_utility)(p_QxA, cost_QxA, lambdas_U))
  for i, lam in enumerate(lambdas_U):
    one_Q = np.asarray(cq.route_utility(p_QxA, cost_QxA, lambdas_U[i : i + 1]))[0]
    np.testing.assert_array_equal(batched_LxQ[i], one_Q)
    np.testing.assert_array_equal(batched_LxQ[i], reference_route(p_QxA, cost_QxA, lam))
  # The grid is not degenerate: the routing changes along λ.
  assert len({tuple(c) for c in batched_LxQ}) >= 4


def test_front_reports_true_outcomes_and_true_costs_by_hand():
  quality_U, cost_U = cq.front(P_QxA, COST_QxA, PERF_QxA, COST_TRUE_QxA, np.array([0.0, 1e9]))
  # λ = 0 routes to 0, 0, 2, 2, 2: outcomes 1, 0, 1, 0, 1; true costs 3.5, 1.5, 1.5, 2.5, 3.5.
  # λ = 1e9 routes to 2, 0, 2, 0, 1: outcomes 0, 0, 1, 1, 1; true costs 1.5 everywhere.
  np.testing.assert_allclose(quality_U, [0.6, 0.6], rtol=1e-6)
  np.testing.assert_allclose(cost_U, [2.5, 1.5], rtol=1e-6)
  # An unknown true cost of a chosen candidate makes the mean unknown; of another, it does not.
  cost_true = COST_TRUE_QxA.copy()
  cost_true[0, 0] = NAN
  _, cost_U = cq.front(P_QxA, COST_QxA, PERF_QxA, cost_true, np.array([0.0, 1e9]))
  assert np.isnan(cost_U[0]) and np.isclose(cost_U[1], 1.5)


def test_front_vmaps_over_a_sweep_axis_of_p():
  rng = np.random.default_rng(1)
  p_SxQxA = rng.random((3, 20, 3)).astype(np.float32)
  cost_QxA = rng.random((20, 3)).astype(np.float32)
  perf_QxA = (rng.random((20, 3)) > 0.5).astype(np.float32)
  lambdas_U = np.array([0.0, 0.3, 1.0, 1e9], np.float32)
  q_SxL, c_SxL = jax.jit(jax.vmap(cq.front, (0, None, None, None, None)))(
    p_SxQxA, cost_QxA, perf_QxA, cost_QxA, lambdas_U
  )
  for s in range(3):
    q_U, c_U = cq.front(p_SxQxA[s], cost_QxA, perf_QxA, cost_QxA, lambdas_U)
    np.testing.assert_allclose(q_SxL[s], q_U, rtol=1e-6)
    np.testing.assert_allclose(c_SxL[s], c_U, rtol=1e-6)


def test_expected_cost_by_hand():
  prompt_QxA = np.array([[1000.0, 2000.0], [0.0, NAN]])
  completion_QxA = np.array([[500.0, 100.0], [10.0, 10.0]])
  prices_Ax2 = np.array([[1.0, 2.0], [3.0, 4.0]])  # $ per million tokens
  got = np.asarray(cq.expected_cost(prompt_QxA, completion_QxA, prices_Ax2))
  np.testing.assert_allclose(got, [[0.002, 0.0064], [2e-5, NAN]], rtol=1e-6)


def test_predict_completion_tokens_by_hand_with_fallbacks():
  task_train_Q = np.array([0, 0, 0, 1, 1])
  # Candidate 2 is new (no training completion at all); candidate 1 has none on task 1.
  comp_QxA = np.array(
    [[10, 100, NAN], [20, NAN, NAN], [60, 300, NAN], [5, NAN, NAN], [7, NAN, NAN]], np.float64
  )
  task_Q = np.array([1, 0, 2])  # task 2 has no training row
  got = cq.predict_completion_tokens(task_train_Q, comp_QxA, task_Q)
  # Cells: (1, c0) median(5, 7) = 6; (1, c1) -> c1's median(100, 300) = 200; c2 -> the global
  # median of 10, 100, 20, 60, 300, 5, 7 = 20; task 2 -> per-candidate medians (c0: 10).
  np.testing.assert_allclose(got, [[6, 200, 20], [20, 200, 20], [10, 200, 20]])
  got = cq.predict_completion_tokens(task_train_Q, comp_QxA, task_Q, min_count=3)
  np.testing.assert_allclose(got[:, 0], [10, 20, 10])  # task 1 has only 2 lengths for c0
  got = cq.predict_completion_tokens(task_train_Q, comp_QxA, task_Q, statistic="mean")
  np.testing.assert_allclose(got[:, :2], [[6, 200], [30, 200], [20.4, 200]], rtol=1e-6)
  with pytest.raises(ValueError, match="unknown statistic"):
    cq.predict_completion_tokens(task_train_Q, comp_QxA, task_Q, statistic="mode")


# Points: (1.5, .3) lies under the chord from (1, .2) to (2, .5); (2.5, .45) and (2.8, .5) are
# dominated; the NaN point is dropped. Hull: (1, .2), (2, .5), (2.8, .55).
COST_N = np.array([2.5, 1.0, 1.5, 2.0, 2.8, 2.8, NAN])
QUALITY_N = np.array([0.45, 0.2, 0.3, 0.5, 0.5, 0.55, 0.9])


def test_hull_drops_dominated_and_interior_points():
  h = cq.hull(COST_N, QUALITY_N)
  np.testing.assert_allclose(h.cost_O, [1.0, 2.0, 2.8])
  np.testing.assert_allclose(h.quality_O, [0.2, 0.5, 0.55])
  # A point exactly on a hull segment is not a vertex.
  h = cq.hull([0.0, 1.0, 2.0], [0.0, 0.5, 1.0])
  np.testing.assert_allclose(h.cost_O, [0.0, 2.0])


def test_aiq_by_hand():
  # Normalised to [1, 3]: x = 0, .5, .9. Area: .5 (.2 + .5) / 2 + .4 (.5 + .55) / 2 + .1 * .55.
  np.testing.assert_allclose(cq.aiq(COST_N, QUALITY_N, 1.0, 3.0), 0.175 + 0.21 + 0.055)
  # Starts at x = .5: the area left of the cheapest point counts 0; flat to the right.
  np.testing.assert_allclose(cq.aiq([2.0], [0.5], 1.0, 3.0), 0.25)
  # Parts outside the candidates' range are cut at x = 0 and x = 1 (hull value there).
  np.testing.assert_allclose(cq.aiq([0.0, 2.0], [0.1, 0.5], 1.0, 3.0), 0.2 + 0.25)
  np.testing.assert_allclose(cq.aiq([2.0, 4.0], [0.5, 0.9], 1.0, 3.0), 0.3)
  with pytest.raises(ValueError, match="cost_max > cost_min"):
    cq.aiq([1.0], [0.5], 2.0, 2.0)


def test_zero_router_is_the_hull_of_the_constants():
  h, score = cq.zero_router([1.0, 2.0, 3.0], [0.2, 0.3, 0.6])
  np.testing.assert_allclose(h.cost_O, [1.0, 3.0])  # (2, .3) lies under the mixture line
  np.testing.assert_allclose(score, 0.4)


def test_quality_at_cost_and_cost_to_quality_interpolate_the_hull():
  h = cq.hull(COST_N, QUALITY_N)
  # Between (1, .2) and (2, .5): a mixture; beyond (2.8, .55): flat; below the cheapest: NaN.
  np.testing.assert_allclose(cq.quality_at_cost(h, 1.5), 0.35)
  np.testing.assert_allclose(cq.quality_at_cost(h, [2.4, 10.0]), [0.525, 0.55])
  assert np.isnan(cq.quality_at_cost(h, 0.5))
  np.testing.assert_allclose(cq.cost_to_quality(h, 0.35), 1.5)
  np.testing.assert_allclose(cq.cost_to_quality(h, [0.525, 0.1]), [2.4, 1.0])
  assert cq.cost_to_quality(h, 0.6) == np.inf


def test_apgr_of_an_uninformed_router_is_one_half():
  # No information: every row has the same preference, so any share of strong calls recovers
  # that share of the gap on average. Symmetric example: each model wins on half of the rows.
  strong_Q = np.array([1, 1, 0, 1, 0, 1, 1, 0], np.float64)
  weak_Q = np.array([0, 1, 1, 0, 0, 0, 1, 1], np.float64)
  r = cq.gap_recovered(np.zeros(8), strong_Q, weak_Q)
  np.testing.assert_allclose(r["apgr"], 0.5)
  np.testing.assert_allclose([r["cpt50"], r["cpt80"]], [0.5, 0.8])
  np.testing.assert_allclose(r["pgr_O"], r["share_O"], atol=1e-12)


def test_apgr_of_the_oracle_and_of_the_reversed_oracle_by_hand():
  # The strong model is never worse and strictly better on 1 row of 4 (f = 1/4): the oracle's
  # PGR(x) = min(4x, 1), so APGR = 1 - f/2 = 0.875, CPT(50%) = 1/8, CPT(80%) = 1/5.
  strong_Q = np.array([1.0, 1.0, 0.0, 0.5])
  weak_Q = np.array([0.0, 1.0, 0.0, 0.5])
  r = cq.gap_recovered(strong_Q - weak_Q, strong_Q, weak_Q)
  np.testing.assert_allclose(r["apgr"], 0.875)
  np.testing.assert_allclose([r["cpt50"], r["cpt80"]], [0.125, 0.2])
  # Calling strong on the useless rows first: nothing recovered until x = 3/4.
  r = cq.gap_recovered(weak_Q - strong_Q, strong_Q, weak_Q)
  np.testing.assert_allclose(r["apgr"], 0.125)
  np.testing.assert_allclose([r["cpt50"], r["cpt80"]], [0.875, 0.95])
  # As the informative share f shrinks, the oracle approaches APGR 1.
  strong_Q = np.r_[1.0, np.zeros(99)]
  r = cq.gap_recovered(strong_Q, strong_Q, np.zeros(100))
  np.testing.assert_allclose(r["apgr"], 0.995)
  assert np.isnan(cq.gap_recovered(np.zeros(3), np.ones(3), np.ones(3))["apgr"])


def validation_rows(seed=2, num_rows=60):
  """Noisy p̂ of binary outcomes; estimated costs ~1e-4 $ by candidate; true costs near them."""
  rng = np.random.default_rng(seed)
  perf_QxA = (rng.random((num_rows, 3)) < [0.4, 0.6, 0.8]).astype(np.float32)
  p_QxA = np.clip(0.5 * perf_QxA + 0.5 * rng.random((num_rows, 3)), 0, 1).astype(np.float32)
  cost_est_QxA = (np.array([1.0, 3.0, 9.0]) * 1e-4 * rng.uniform(0.8, 1.2, (num_rows, 3))).astype(
    np.float32
  )
  cost_true_QxA = (cost_est_QxA * rng.uniform(0.5, 1.5, (num_rows, 3))).astype(np.float32)
  return p_QxA, cost_est_QxA, perf_QxA, cost_true_QxA


def test_lambda_grid_spans_from_argmax_to_cheapest():
  p_QxA, cost_QxA, _, _ = validation_rows()
  lambdas_U = cq.lambda_grid(cost_QxA, num_lambdas=17)
  assert lambdas_U.shape == (17,) and lambdas_U[0] == 0 and (np.diff(lambdas_U) > 0).all()
  spread = np.median(cost_QxA.max(1) - cost_QxA.min(1))
  np.testing.assert_allclose(lambdas_U[[1, 16]], np.array([1e-3, 1e3]) / spread, rtol=1e-6)
  choice_UxQ = np.asarray(cq.route_utility(p_QxA, cost_QxA, lambdas_U))
  np.testing.assert_array_equal(choice_UxQ[0], np.argmax(p_QxA, axis=1))
  np.testing.assert_array_equal(choice_UxQ[-1], np.argmin(cost_QxA, axis=1))
  assert len({tuple(c) for c in choice_UxQ}) >= 4  # the middle of the grid trades p̂ for cost
  assert (cq.lambda_grid(np.ones((5, 3)), 9) == 0).all()  # no cost spread: no trade-off


def test_budget_mode_meets_the_budget_on_validation():
  val = validation_rows()
  lambdas_U = cq.lambda_grid(val[1], num_lambdas=33)
  quality_U, cost_U = (np.asarray(v, np.float64) for v in cq.front(*val, lambdas_U))
  for budget in np.quantile(cost_U, [0.1, 0.5, 0.9]):
    pick = cq.pick_lambda(*val, lambdas_U, max_cost=budget)
    assert pick.feasible and pick.cost <= budget and lambdas_U[pick.index] == pick.lam
    # Running the router again at the chosen λ spends what was reported, within the budget.
    q_1, c_1 = cq.front(*val, np.array([pick.lam]))
    assert float(c_1[0]) <= budget and np.isclose(float(q_1[0]), pick.quality)
    # No λ of the grid within the budget does better on validation.
    assert quality_U[cost_U <= budget].max() == pytest.approx(pick.quality)
  # A budget below every λ's cost: infeasible, the cheapest λ is returned.
  pick = cq.pick_lambda(*val, lambdas_U, max_cost=0.5 * cost_U.min())
  assert not pick.feasible and pick.cost == pytest.approx(cost_U.min())


def test_quality_mode_picks_the_cheapest_lambda_reaching_the_target():
  val = validation_rows()
  lambdas_U = cq.lambda_grid(val[1], num_lambdas=33)
  quality_U, cost_U = (np.asarray(v, np.float64) for v in cq.front(*val, lambdas_U))
  target = np.quantile(quality_U, 0.5)
  pick = cq.pick_lambda(*val, lambdas_U, min_quality=target)
  assert pick.feasible and pick.quality >= target
  assert cost_U[quality_U >= target].min() == pytest.approx(pick.cost)
  pick = cq.pick_lambda(*val, lambdas_U, min_quality=1.5)
  assert not pick.feasible and pick.quality == pytest.approx(quality_U.max())
  with pytest.raises(ValueError, match="exactly one"):
    cq.pick_lambda(*val, lambdas_U)
