"""Tests of the synthetic history generator (rp_jax.data.synthetic)."""

import collections
import dataclasses
import re

import numpy as np
import pytest

from rp_jax.data import synthetic as S
from rp_jax.data import synthetic_world as W
from rp_jax.types import TEST, TRAIN, History

TINY = dict(num_models=6, num_candidates=3, num_tasks=5, train_per_task=10, test_per_task=5)


@pytest.fixture(scope="module")
def default():
  return S.make_history_and_latent(seed=0)


@pytest.fixture(scope="module")
def newllm():
  return S.make_history_and_latent(seed=0, setting="newllm")


def _assert_same(h1: History, h2: History):
  for f in dataclasses.fields(History):
    a, b = getattr(h1, f.name), getattr(h2, f.name)
    if isinstance(a, np.ndarray):
      assert a.dtype == b.dtype and a.shape == b.shape, f.name
      assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f.name
    else:
      assert a == b, f.name


def _test_table(h: History):
  """[Qte, A] candidate outcomes on test rows, [Qte] task, [T_route] routing tasks."""
  te = h.test_queries
  return h.outcomes_QxM[np.ix_(te, h.candidates)], h.query_task[te], h.routing_tasks


def _ranks(x):
  return np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float)


def test_default_sizes_and_validity(default):
  h, _ = default
  h.check()
  assert (h.num_families, h.num_models, len(h.candidates)) == (5, 24, 8)
  assert (h.num_tasks, h.num_domains) == (29 + 15, 6)
  scored = np.isfinite(h.scores_MxT).any(0)
  assert scored.sum() == 29 and not scored[29:].any()  # text-only tasks have no scores
  route = h.routing_tasks
  assert len(route) == 12 and scored[route].all()
  n_tr = np.bincount(h.query_task[h.query_split == TRAIN], minlength=h.num_tasks)
  n_te = np.bincount(h.query_task[h.query_split == TEST], minlength=h.num_tasks)
  graph_only = np.flatnonzero((n_tr > 0) & (n_te == 0))
  assert (n_tr[route] == 150).all() and (n_te[route] == 50).all()
  assert len(graph_only) == 2 and (n_tr[graph_only] == 150).all() and scored[graph_only].all()
  assert np.array_equal(h.query_in_graph, h.query_split == TRAIN)
  # Graph-only tasks: no pairs, no outcomes.
  go_q = np.isin(h.query_task, graph_only)
  assert not np.isin(h.pairs_Px3[:, 0], np.flatnonzero(go_q)).any()
  assert np.isnan(h.outcomes_QxM[go_q]).all()
  # ~30% of the scores missing (candidates keep their routing-task scores).
  miss = np.isnan(h.scores_MxT[:, :29]).mean()
  assert 0.15 < miss < 0.4
  assert np.isfinite(h.scores_MxT[np.ix_(h.candidates, route)]).all()
  sc = h.scores_MxT[np.isfinite(h.scores_MxT)]
  assert sc.min() >= 0 and sc.max() <= 100
  # ~4 pairs per training query that has any.
  n_pq = len(np.unique(h.pairs_Px3[:, 0]))
  assert 3.0 < len(h.pairs_Px3) / n_pq < 5.0
  assert 0.3 < n_pq / 1800 < 0.9  # like the public data, many queries have no pair (all tie)
  # Test outcomes and tokens exactly for candidates on test rows; cost works there.
  te, cand = h.query_split == TEST, np.isin(np.arange(h.num_models), h.candidates)
  known = te[:, None] & cand[None, :]
  assert np.isfinite(h.outcomes_QxM[known]).all() and np.isnan(h.outcomes_QxM[te][:, ~cand]).all()
  assert np.array_equal(np.isfinite(h.tokens_QxMx2).all(-1), known)
  assert (h.query_cost_QxM()[known] > 0).all()
  assert (h.prices_Mx2 > 0).all()
  # One continuous task with non-binary outcomes; all other tasks binary.
  cont = np.flatnonzero(~h.task_binary)
  assert len(cont) == 1 and np.isin(cont, route).all() and h.task_metric[cont[0]] == "coverage"
  o_cont = h.outcomes_QxM[np.ix_(te & (h.query_task == cont[0]), h.candidates)]
  assert ((o_cont > 0) & (o_cont < 1)).mean() > 0.3
  o_bin = h.outcomes_QxM[te & h.task_binary[h.query_task]]
  assert np.isin(o_bin[np.isfinite(o_bin)], (0.0, 1.0)).all()
  assert set(h.task_domain_TxC.sum(1).tolist()) <= {1, 2} and h.task_domain_TxC.any(0).all()
  # Realistic, unique names.
  assert all(re.fullmatch(r"synth-[a-z0-9]+-\d+b(-v\d+)?", m) for m in h.model_names)
  assert all(re.fullmatch(r"synth-[a-z]+-\d+", t) for t in h.task_names)
  assert "seed=0" in " ".join(h.notes)


@pytest.mark.parametrize("setting", S.SETTINGS)
def test_tiny_histories_are_valid(setting):
  h = S.make_history(seed=1, setting=setting, **TINY)
  assert (h.num_models, len(h.candidates), len(h.routing_tasks)) == (6, 3, 5)
  assert len(h.train_queries) == 50 and len(h.test_queries) == 25
  h1 = S.make_history(
    seed=2,
    setting=setting,
    num_models=1,
    num_tasks=1,
    num_unscored_tasks=0,
    num_domains=1,
    latent_dim=1,
    train_per_task=1,
    test_per_task=1,
  )
  assert (h1.num_models, h1.num_tasks, h1.num_queries) == (1, 1, 2)
  assert len(h1.pairs_Px3) == 0  # one candidate cannot form a pair
  # More domains and skills than the built-in names: generic names, still valid.
  h2 = S.make_history(seed=3, setting=setting, **TINY, num_domains=11, latent_dim=12)
  assert h2.domain_names[-1] == "domain11" and len(set(h2.domain_names)) == 11


def test_same_seed_identical_different_seed_differs():
  h1 = S.make_history(seed=5, **TINY)
  h2 = S.make_history(seed=5, **TINY)
  _assert_same(h1, h2)
  h3 = S.make_history(seed=6, **TINY)
  assert h3.query_texts != h1.query_texts
  assert not np.array_equal(h3.outcomes_QxM, h1.outcomes_QxM, equal_nan=True)
  assert not np.array_equal(h3.scores_MxT, h1.scores_MxT, equal_nan=True)


def test_default_is_deterministic(default):
  _assert_same(S.make_history(), default[0])


def test_newllm_invariants(default, newllm):
  h, lat = newllm
  std, _ = default
  assert len(h.held_out) == 1
  (ho,) = h.held_out.tolist()
  assert ho in h.candidates.tolist()
  # The strongest candidate on average (latent p on test rows), named in the notes.
  p = lat.p_QxM[np.ix_(h.test_queries, h.candidates)].mean(0)
  assert h.candidates[np.argmax(p)] == ho
  assert any(h.model_names[ho] in n and "held out" in n for n in h.notes)
  # No routing-task scores, no pairs, no training outcomes.
  assert np.isnan(h.scores_MxT[ho, h.routing_tasks]).all()
  assert not np.isin(h.pairs_Px3[:, 1:], ho).any()
  assert np.isnan(h.outcomes_QxM[h.train_queries, ho]).all()
  # It stays selectable at test, with outcomes.
  assert np.isfinite(h.outcomes_QxM[h.test_queries, ho]).all()
  # Same latent world as the standard setting: names, texts, test rows, other scores.
  for f in ("model_names", "model_texts", "task_names", "task_texts", "query_texts"):
    assert getattr(h, f) == getattr(std, f), f
  te = h.test_queries
  assert np.array_equal(h.outcomes_QxM[te], std.outcomes_QxM[te], equal_nan=True)
  other = np.ones(h.scores_MxT.shape, bool)
  other[ho, h.routing_tasks] = False
  assert np.array_equal(h.scores_MxT[other], std.scores_MxT[other], equal_nan=True)
  assert np.isfinite(std.scores_MxT[ho, h.routing_tasks]).all()
  assert np.isin(ho, std.pairs_Px3[:, 1:])  # the standard setting does train on it
  # Pairs differ only on the queries where the standard setting paired the held-out model.
  touched = np.unique(std.pairs_Px3[np.isin(std.pairs_Px3[:, 1:], ho).any(1), 0])
  keep_std = std.pairs_Px3[~np.isin(std.pairs_Px3[:, 0], touched)]
  keep_new = h.pairs_Px3[~np.isin(h.pairs_Px3[:, 0], touched)]
  assert np.array_equal(keep_std, keep_new)


def test_pairs_and_training_outcomes_are_consistent(default):
  h, lat = default
  P = h.pairs_Px3
  q, better, worse = P.T
  assert (h.query_split[q] == TRAIN).all() and np.isin(h.query_task[q], h.routing_tasks).all()
  assert np.isin(better, h.candidates).all() and np.isin(worse, h.candidates).all()
  assert len(np.unique(P, axis=0)) == len(P)
  assert (lat.outcome_QxM[q, better] > lat.outcome_QxM[q, worse]).all()
  binary = h.task_binary[h.query_task[q]]
  assert binary.any() and (~binary).any()
  ob, ow = h.outcomes_QxM[q[binary], better[binary]], h.outcomes_QxM[q[binary], worse[binary]]
  assert (ob >= ow).all() and (ob == 1).all() and (ow == 0).all()
  # Training outcomes are exactly what the binary-task pairs imply, NaN everywhere else.
  rebuilt = np.full(h.outcomes_QxM.shape, np.nan, np.float32)
  rebuilt[q[binary], better[binary]] = 1
  rebuilt[q[binary], worse[binary]] = 0
  tr = h.train_queries
  assert np.array_equal(h.outcomes_QxM[tr], rebuilt[tr], equal_nan=True)
  # Consistent with the latent outcomes they were drawn from.
  known = np.isfinite(h.outcomes_QxM)
  assert np.array_equal(h.outcomes_QxM[known], lat.outcome_QxM[known].astype(np.float32))


def test_latent_signal_exists(default):
  h, _ = default
  o_QxA, task_Q, route = _test_table(h)
  per_task_TxA = np.stack([o_QxA[task_Q == t].mean(0) for t in route])
  best_single = o_QxA.mean(0).max()
  oracle = o_QxA.max(1).mean()
  task_oracle = per_task_TxA.max(1).mean()
  winners = per_task_TxA.argmax(1)
  # Not one model dominating everything.
  assert len(set(winners.tolist())) >= 3
  assert np.bincount(winners).max() <= 0.75 * len(route)
  assert oracle - best_single > 0.08
  assert task_oracle > best_single
  # Benchmark scores on a routing task predict the candidates' test performance on it.
  sc_TxA = h.scores_MxT[np.ix_(h.candidates, route)].T
  rho = [np.corrcoef(_ranks(s), _ranks(o))[0, 1] for s, o in zip(sc_TxA, per_task_TxA, strict=True)]
  assert np.mean(rho) > 0.3
  bench_pick = per_task_TxA[np.arange(len(route)), sc_TxA.argmax(1)].mean()
  assert bench_pick > per_task_TxA.mean() + 0.03


def test_outcomes_and_scores_follow_the_latent_model(default):
  h, lat = default
  te, A = h.test_queries, h.candidates
  o, p = h.outcomes_QxM[np.ix_(te, A)], lat.p_QxM[np.ix_(te, A)]
  assert abs(o.mean() - p.mean()) < 0.03
  assert np.corrcoef(o.ravel(), p.ravel())[0, 1] > 0.5
  # Bigger models are stronger on average.
  strength = lat.p_QxM.mean(0)
  assert np.corrcoef(np.log(lat.size_M), strength)[0, 1] > 0
  # Prices grow with size.
  assert np.corrcoef(np.log(lat.size_M), np.log(h.prices_Mx2[:, 0]))[0, 1] > 0.7


def _bow(texts, vocab):
  index = {w: i for i, w in enumerate(vocab)}
  X = np.zeros((len(texts), len(vocab)))
  for i, s in enumerate(texts):
    for w in re.findall(r"\w+", s.lower()):
      if w in index:
        X[i, index[w]] += 1
  return X


def test_texts_carry_signal(default):
  h, lat = default
  vocab = sorted({w for s in h.query_texts for w in re.findall(r"\w+", s.lower())})
  X = _bow(h.query_texts, vocab)
  X /= np.linalg.norm(X, axis=1, keepdims=True)
  # Queries of a task look alike: nearest train centroid recovers the task of test queries
  # (chance is 1/12; tasks of one domain share words, so they are confused now and then).
  tr, te = h.train_queries, h.test_queries
  tasks = h.routing_tasks
  cent = np.stack([X[tr][h.query_task[tr] == t].mean(0) for t in tasks])
  pred = tasks[np.argmax(X[te] @ cent.T, 1)]
  assert (pred == h.query_task[te]).mean() > 0.75
  # A query's words follow its own skill mixture: the skill whose word set is most cosine-similar
  # to the query text is usually the heaviest skill of the query.
  K = len(lat.skill_names)
  sets = np.stack([_bow([" ".join(ws)], vocab)[0] for _, ws in S.SKILLS[:K]])
  sim_QxK = X @ (sets / np.linalg.norm(sets, axis=1, keepdims=True)).T
  assert (sim_QxK.argmax(1) == lat.w_QxJ.argmax(1)).mean() > 0.5
  # ... and beyond the task: within-task deviations of similarity and mixture correlate.
  dev_sim = sim_QxK - np.stack([sim_QxK[h.query_task == t].mean(0) for t in h.query_task])
  dev_w = lat.w_QxJ - lat.w_TxK[h.query_task]
  assert np.corrcoef(dev_sim.ravel(), dev_w.ravel())[0, 1] > 0.2
  # Model texts name family, size and price.
  for m in range(h.num_models):
    t = h.model_texts[m]
    assert h.family_names[h.model_family[m]] in t
    assert f"{int(lat.size_M[m])}-billion" in t and f"${h.prices_Mx2[m, 0]:.2f}" in t
  assert len(set(h.model_texts)) == h.num_models and len(set(h.task_texts)) == h.num_tasks


def test_skill_vocabularies_are_disjoint():
  words = [w for _, ws in S.SKILLS for w in ws] + list(S.FILLER)
  dup = [w for w, n in collections.Counter(words).items() if n > 1]
  assert not dup


@pytest.mark.parametrize(
  "overrides, field",
  [
    (dict(num_models=4, num_candidates=5), "num_candidates"),
    (dict(num_routing_tasks=0), "num_routing_tasks"),
    (dict(num_models=0), "num_models"),
    (dict(num_families=30), "num_families"),
    (dict(num_tasks=5, num_routing_tasks=4, num_graph_only_tasks=2), "num_graph_only_tasks"),
    (dict(num_continuous_tasks=13), "num_continuous_tasks"),
    (dict(test_per_task=0), "test_per_task"),
    (dict(train_per_task=0), "train_per_task"),
    (dict(latent_dim=len(S.SKILLS) + 1), "latent_dim"),
    (dict(score_missing=1.5), "score_missing"),
    (dict(pairs_per_query=0.5), "pairs_per_query"),
    (dict(num_models=2.5), "num_models"),
    (dict(discrimination=float("nan")), "discrimination"),
    (dict(num_modles=3), "num_modles"),
  ],
)
def test_invalid_sizes_raise_naming_the_field(overrides, field):
  with pytest.raises(ValueError, match=field):
    S.make_history(**overrides)


def test_invalid_setting_and_direct_config():
  with pytest.raises(ValueError, match="unknown setting 'fresh'"):
    S.make_history(setting="fresh")
  with pytest.raises(ValueError, match="num_candidates"):
    S.SyntheticConfig(num_models=3, num_candidates=4)


def test_none_counts_resolve_and_overrides_apply():
  cfg = S.SyntheticConfig(num_models=3, num_tasks=5).resolved()
  assert (cfg.num_families, cfg.num_candidates) == (3, 3)
  assert (cfg.num_routing_tasks, cfg.num_graph_only_tasks, cfg.num_continuous_tasks) == (5, 0, 1)
  h = S.make_history(S.SyntheticConfig(**TINY), seed=4, num_candidates=2, num_unscored_tasks=0)
  assert (h.num_models, len(h.candidates), h.num_tasks) == (6, 2, 5)


# -- generator steps ------------------------------------------------------------------------------


def test_draw_pairs_step():
  """Strictly ordered candidate pairs only, never the held-out model, at most the valid ones."""
  cfg = S.SyntheticConfig(num_models=5, num_candidates=3, pairs_per_query=6.0).resolved()
  latent_PqxM = np.array(
    [
      [1.0, 0.0, 0.0, 1.0, 1.0],  # valid: (0, 1), (0, 2)
      [0.5, 0.5, 0.5, 0.0, 1.0],  # all candidates tie: none
      [0.9, 0.1, 0.5, 0.0, 0.0],  # valid: (0, 1), (0, 2), (2, 1)
    ]
  )
  pair_q = np.array([7, 8, 9])
  P = S.draw_pairs(np.random.default_rng(0), cfg, latent_PqxM, pair_q, np.array([], int))
  got = {tuple(p) for p in P.tolist()}
  assert len(got) == len(P)
  assert got <= {(7, 0, 1), (7, 0, 2), (9, 0, 1), (9, 0, 2), (9, 2, 1)}
  assert {q for q, _, _ in got} == {7, 9}  # each query with a valid pair gets at least one
  P = S.draw_pairs(np.random.default_rng(0), cfg, latent_PqxM, pair_q, np.array([0]))
  assert {tuple(p) for p in P.tolist()} == {(9, 2, 1)}


def test_reveal_outcomes_step():
  latent_QxM = np.array([[1.0, 0.0, 1.0], [0.3, 0.7, 0.1], [1.0, 0.0, 0.0], [0.4, 0.2, 0.9]])
  test_Q = np.array([True, True, False, False])
  pairs_Px3 = np.array([[2, 0, 1], [3, 0, 1]])
  is_cont_Q = np.array([False, True, False, True])
  out = S.reveal_outcomes(latent_QxM, test_Q, 2, pairs_Px3, is_cont_Q)
  want = np.array(
    [[1, 0, np.nan], [0.3, 0.7, np.nan], [1, 0, np.nan], [np.nan] * 3]  # continuous pair: nothing
  )
  np.testing.assert_array_equal(out, want)


def test_query_layout_and_latent_outcome_steps():
  cfg = S.SyntheticConfig(**TINY).resolved()
  tsk = S.draw_tasks(np.random.default_rng(0), cfg, ["a", "b"] * 3, np.full((6, 8), 1 / 8))
  q_task, q_split = S.lay_out_queries(cfg, tsk)
  n_tr = (len(tsk.routing_T) + len(tsk.graph_only_T)) * cfg.train_per_task
  assert (q_split[:n_tr] == TRAIN).all() and (q_split[n_tr:] == TEST).all()
  assert np.isin(q_task[n_tr:], tsk.routing_T).all()
  p_QxM = np.full((4, 3), 0.5)
  out = S.draw_latent_outcomes(np.random.default_rng(0), cfg, p_QxM, np.array([0, 1, 0, 1], bool))
  assert np.isin(out[[0, 2]], (0.0, 1.0)).all()
  assert ((out[[1, 3]] > 0) & (out[[1, 3]] < 1)).all()


def test_unique_names():
  assert W.unique_names(["a", "b", "a", "a"]) == ["a", "b", "a-v2", "a-v3"]
  assert W.join_and(["x"]) == "x" and W.join_and(["x", "y", "z"]) == "x, y and z"
