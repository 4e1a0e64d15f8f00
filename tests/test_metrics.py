"""Metrics against hand-computed values; jit/vmap equivalence; the paired bootstrap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rp_jax import metrics as mt

NAN = np.nan

# 6 rows, 3 candidates (the last one new), 2 tasks. Rows: a clear win for c0; a tie of c1 and
# the new c2; all zero; the new c2 uniquely best; all tie at 1; c1 best.
PERF_QxA = np.array(
  [
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 1.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.2, 0.8],
    [1.0, 1.0, 1.0],
    [0.3, 0.9, 0.1],
  ],
  np.float32,
)
COST_QxA = np.array([[1.0, 2.0, 3.0]] * 5 + [[1.0, 2.0, NAN]], np.float32)
CHOICES_Q = np.array([0, 2, 1, 0, 2, 1])


def make_test(new_A=(False, False, True)) -> mt.TestSet:
  return mt.TestSet(
    perf_QxA=PERF_QxA,
    cost_QxA=COST_QxA,
    task_Q=np.array([0, 0, 0, 1, 1, 1], np.int32),
    new_A=np.array(new_A, bool),
    query_ids=np.arange(10, 16, dtype=np.int32),
    names=mt.TestNames(task_names=("math", "code"), candidate_names=("c0", "c1", "c2")),
  )


def as_float(d):
  return {k: np.asarray(v, np.float64) for k, v in d.items()}


def test_hard_router_every_metric_by_hand():
  test = make_test()
  sel = mt.one_hot(CHOICES_Q, 3)
  np.testing.assert_array_equal(sel.sum(1), np.ones(6))
  r = as_float(mt.evaluate(sel, test))
  # chosen outcomes 1, 1, 0, 0, 1, 0.9; row oracle 1, 1, 0, 0.8, 1, 0.9.
  np.testing.assert_allclose(r["avg_performance"], 3.9 / 6, rtol=1e-6)
  np.testing.assert_allclose(r["per_task"], [2 / 3, 1.9 / 3], rtol=1e-6)
  np.testing.assert_allclose(r["regret"], 0.8 / 6, rtol=1e-6)
  # Row 3 (chose a 0) is the only miss; row 2 is a hit because every candidate scored 0.
  np.testing.assert_allclose(r["hit_rate"], 5 / 6, rtol=1e-6)
  np.testing.assert_allclose(r["histogram"], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
  np.testing.assert_allclose(r["selection_entropy"], 1.0, rtol=1e-6)
  # Costs 1, 3, 2, 1, 3, 2: the NaN cost of c2 on row 5 is not chosen, so it does not matter.
  np.testing.assert_allclose(r["cost_per_query"], 2.0, rtol=1e-6)
  np.testing.assert_allclose(r["new_model_selection_rate"], 2 / 6, rtol=1e-6)
  # Eligible: row 1 (c2 ties for best with c1) and row 3 (c2 best); row 4 is an all-way tie and
  # does not count although c2 was chosen there. Routed to c2 on row 1 only.
  np.testing.assert_allclose(r["new_model_recall"], 0.5, rtol=1e-6)


def test_avg_equals_mean_of_per_task_means_with_equal_task_sizes():
  r = mt.evaluate(mt.one_hot(CHOICES_Q, 3), make_test())
  np.testing.assert_allclose(np.mean(r["per_task"]), r["avg_performance"], rtol=1e-6)


def test_uniform_random_expected_values():
  test = make_test()
  r = as_float(mt.evaluate(jnp.full((6, 3), 1 / 3), test))
  np.testing.assert_allclose(r["avg_performance"], 8.3 / 18, rtol=1e-6)
  # Expected hits per row: 1/3, 2/3, 1 (all zero), 2/3, 1, 1.
  np.testing.assert_allclose(r["hit_rate"], 14 / 18, rtol=1e-6)
  np.testing.assert_allclose(r["selection_entropy"], 1.0, rtol=1e-6)
  np.testing.assert_allclose(r["new_model_selection_rate"], 1 / 3, rtol=1e-6)
  np.testing.assert_allclose(r["new_model_recall"], 1 / 3, rtol=1e-6)
  # c2's NaN cost on row 5 now carries weight 1/3.
  assert np.isnan(r["cost_per_query"])


def test_entropy_collapsed_half_and_uniform():
  collapsed = mt.one_hot(np.zeros(6, int), 3)
  half = mt.one_hot(np.array([0, 1, 0, 1, 0, 1]), 3)
  assert float(mt.selection_entropy(collapsed)) == 0.0
  np.testing.assert_allclose(mt.selection_histogram(collapsed), [1, 0, 0])
  np.testing.assert_allclose(mt.selection_entropy(half), np.log(2) / np.log(3), rtol=1e-6)
  np.testing.assert_allclose(mt.selection_entropy(jnp.full((6, 3), 1 / 3)), 1.0, rtol=1e-6)
  assert float(mt.selection_entropy(jnp.ones((6, 1)))) == 0.0


def test_cost_nan_when_a_chosen_cost_is_unknown():
  choices = CHOICES_Q.copy()
  choices[5] = 2
  assert np.isnan(float(mt.cost_per_query(mt.one_hot(choices, 3), COST_QxA)))
  finite = mt.cost_per_query(mt.one_hot(np.zeros(6, int), 3), COST_QxA)
  np.testing.assert_allclose(finite, 1.0)


def test_new_model_recall_rules():
  test = make_test()
  always_new = mt.one_hot(np.full(6, 2), 3)
  never_new = mt.one_hot(np.zeros(6, int), 3)
  r_new = mt.evaluate(always_new, test)
  np.testing.assert_allclose(r_new["new_model_recall"], 1.0)
  np.testing.assert_allclose(r_new["new_model_selection_rate"], 1.0)
  np.testing.assert_allclose(mt.evaluate(never_new, test)["new_model_recall"], 0.0)
  # No new model at all: nothing is eligible, recall is undefined.
  r_none = mt.evaluate(always_new, make_test(new_A=(False, False, False)))
  assert np.isnan(float(r_none["new_model_recall"]))
  assert float(r_none["new_model_selection_rate"]) == 0.0


def test_new_model_precision_by_hand():
  test = make_test()
  # CHOICES_Q routes rows 1 and 4 to the new c2: row 1 ties c1 and c2 at the top (right), row 4
  # all tie (right). Routing rows 0 and 3 to c2: row 0 wrong, row 3 right.
  np.testing.assert_allclose(mt.evaluate(mt.one_hot(CHOICES_Q, 3), test)["new_model_precision"], 1)
  choices = np.array([2, 0, 0, 2, 0, 0])
  np.testing.assert_allclose(mt.evaluate(mt.one_hot(choices, 3), test)["new_model_precision"], 0.5)
  never = mt.evaluate(mt.one_hot(np.zeros(6, int), 3), test)["new_model_precision"]
  assert np.isnan(float(never))


def test_per_task_nan_for_empty_task():
  per_task = mt.per_task_means(mt.one_hot(CHOICES_Q, 3), PERF_QxA, np.zeros(6, np.int32), 2)
  np.testing.assert_allclose(per_task[0], 3.9 / 6, rtol=1e-6)
  assert np.isnan(float(per_task[1]))


def test_evaluate_rejects_wrong_shape():
  with pytest.raises(ValueError, match=r"expected \(Q, A\)"):
    mt.evaluate(jnp.ones((6, 4)) / 4, make_test())


def stacked_selections(rng, num):
  choices_SxQ = rng.integers(0, 3, size=(num, 6))
  sel = np.asarray(mt.one_hot(choices_SxQ, 3))
  return np.concatenate([sel, np.full((1, 6, 3), 1 / 3, np.float32)])


def test_jit_equals_eager_and_vmap_equals_loop():
  test = make_test()
  sel_SxQxA = stacked_selections(np.random.default_rng(0), 5)
  eager = [as_float(mt.evaluate(s, test)) for s in sel_SxQxA]
  jitted = [as_float(jax.jit(mt.evaluate)(s, test)) for s in sel_SxQxA]
  vmapped = as_float(jax.jit(jax.vmap(mt.evaluate, (0, None)))(sel_SxQxA, test))
  assert set(vmapped) == set(eager[0])
  for i, (e, j) in enumerate(zip(eager, jitted, strict=True)):
    for k in e:
      np.testing.assert_allclose(j[k], e[k], rtol=1e-6, err_msg=k)
      np.testing.assert_allclose(vmapped[k][i], e[k], rtol=1e-6, err_msg=k)
  assert vmapped["per_task"].shape == (6, 2)
  assert vmapped["histogram"].shape == (6, 3)


def test_row_performance_keeps_leading_axes():
  sel_SxQxA = stacked_selections(np.random.default_rng(1), 3)
  rows_SxQ = mt.row_performance(sel_SxQxA, PERF_QxA)
  assert rows_SxQ.shape == (4, 6)
  np.testing.assert_allclose(rows_SxQ[-1], PERF_QxA.mean(1), rtol=1e-6)


# -- bootstrap -------------------------------------------------------------------------------------


def bernoulli_rows(seed, num_routers, num_rows, p=0.6):
  rng = np.random.default_rng(seed)
  return (rng.random((num_routers, num_rows)) < p).astype(np.float32)


def test_bootstrap_contains_mean_and_is_deterministic():
  rows_SxQ = bernoulli_rows(0, 3, 200)
  key = jax.random.key(7)
  a = mt.bootstrap(key, rows_SxQ, num_resamples=500)
  b = mt.bootstrap(key, rows_SxQ, num_resamples=500)
  c = mt.bootstrap(jax.random.key(8), rows_SxQ, num_resamples=500)
  for k in ("mean", "lo", "hi"):
    assert a[k].shape == (3,)
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a["lo"], c["lo"])
  np.testing.assert_allclose(a["mean"], rows_SxQ.mean(1), rtol=1e-6)
  assert np.all(a["lo"] < a["mean"]) and np.all(a["mean"] < a["hi"])
  # A wider level gives a wider interval on the same resamples.
  wide = mt.bootstrap(key, rows_SxQ, num_resamples=500, level=0.99)
  assert np.all(wide["lo"] <= a["lo"]) and np.all(wide["hi"] >= a["hi"])


def test_bootstrap_matches_an_explicit_gather():
  rows_SxQ = bernoulli_rows(1, 2, 40)
  key = jax.random.key(3)
  out = mt.bootstrap(key, rows_SxQ, num_resamples=200, level=0.9)
  idx_WxQ = np.asarray(jax.random.randint(key, (200, 40), 0, 40))
  means_SxW = rows_SxQ[:, idx_WxQ].mean(-1)
  lo, hi = np.quantile(means_SxW, [0.05, 0.95], axis=-1)
  np.testing.assert_allclose(out["lo"], lo, atol=1e-5)
  np.testing.assert_allclose(out["hi"], hi, atol=1e-5)


def test_bootstrap_interval_shrinks_with_more_rows():
  key = jax.random.key(0)
  small = mt.bootstrap(key, bernoulli_rows(2, 1, 50), num_resamples=1000)
  large = mt.bootstrap(key, bernoulli_rows(2, 1, 2000), num_resamples=1000)
  width_small = float(small["hi"][0] - small["lo"][0])
  width_large = float(large["hi"][0] - large["lo"][0])
  # Width ~ 1 / sqrt(Q): the ratio should be near sqrt(40) ~ 6.3.
  assert width_large < width_small / 3


def test_bootstrap_rejects_bad_level():
  with pytest.raises(ValueError, match="level"):
    mt.bootstrap(jax.random.key(0), bernoulli_rows(0, 1, 10), level=1.5)


def test_prob_better():
  key = jax.random.key(11)
  good, bad = bernoulli_rows(4, 1, 300, p=0.8)[0], bernoulli_rows(5, 1, 300, p=0.4)[0]
  assert float(mt.prob_better(key, good, bad)) > 0.99
  assert float(mt.prob_better(key, bad, good)) < 0.01
  assert float(mt.prob_better(key, good, good)) == 0.5
  # Paired: a router better by 0.01 on every single row wins on every resample, although the
  # two unpaired intervals overlap almost entirely.
  base = np.random.default_rng(6).random(300).astype(np.float32) * 0.9
  assert float(mt.prob_better(key, base + 0.01, base)) == 1.0
  # Antisymmetric up to ties.
  x, y = bernoulli_rows(7, 1, 100)[0], bernoulli_rows(8, 1, 100)[0]
  np.testing.assert_allclose(
    mt.prob_better(key, x, y, num_resamples=300) + mt.prob_better(key, y, x, num_resamples=300),
    1.0,
    rtol=1e-6,
  )
