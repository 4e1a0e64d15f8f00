"""Deployable routers: fit, save/load, route texts, add a new LLM without retraining, launcher."""

import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import route as route_config
from configs import test as test_config
from rp_jax import deploy, stages
from rp_jax.cost import costq
from rp_jax.cost import model as cost_model
from rp_jax.cost import stage as frontier
from rp_jax.data import load_history
from rp_jax.routers import registry
from rp_jax.types import TEST, DataError

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config():
  c = route_config.get_config()
  t = test_config.get_config()
  with c.unlocked():
    c.data = t.data
    c.encoder_dim = t.encoder_dim
    c.mlp = t.mlp
    c.graph = t.graph
  c.route.profile = "emb_gnn:TQD:1"
  c.val_folds = 1  # one stratified split (the K-fold ensemble has its own test below)
  return c


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
  c = _config()
  history = load_history(c.data, "newllm")
  bundle = deploy.fit(c, history, c.route.profile, "mlp", seed=0, log=lambda s: None)
  folder = tmp_path_factory.mktemp("bundle")
  deploy.save(bundle, folder)
  return c, history, bundle, folder


def test_save_load_roundtrip_routes_identically(fitted):
  c, history, bundle, folder = fitted
  loaded = deploy.load(folder)
  assert loaded.candidate_names == bundle.candidate_names
  assert loaded.static_config() == bundle.static_config()
  _, embed = stages.make_embed(c)
  texts = [history.query_texts[i] for i in history.test_queries[:10]]
  assert deploy.route_texts(loaded, texts, embed) == deploy.route_texts(bundle, texts, embed)
  assert not any(p.suffix == ".tmp" for p in folder.iterdir())


def with_training_tokens(h):
  """The History with token counts on its training rows (the usage log is then those rows, and
  the sweep's cost estimate of a test row is exactly what a deployed router estimates)."""
  tok = h.tokens_QxMx2.copy()
  tr = h.query_split != TEST
  tok[tr] = np.random.default_rng(0).integers(10, 400, tok[tr].shape).astype(np.float32)
  return h.replace(tokens_QxMx2=tok)


# The paper's families take the longest: .ci/run's slow tier.
SLOW = ("graph", "mlp", "sim")


@pytest.mark.parametrize(
  "router", [pytest.param(r, marks=pytest.mark.slow) if r in SLOW else r for r in registry.ROUTERS]
)
def test_deployed_router_routes_the_test_rows_as_the_sweep_evaluated_them(router):
  """For every family: the bundle routes the test rows exactly as the sweep's grid evaluated
  that cell, by plain argmax and by cost at every λ of the setting's grid."""
  c = _config()
  profile = "flat:TQD" if router == "sim" else c.route.profile
  with c.unlocked():
    c.profiles = ("index", profile)
    c.seeds = 2
  history = with_training_tokens(
    stages.router_history(load_history(c.data, "standard"), c.data.query_format)
  )
  ctx = stages.make_context(c, history, stages.make_embed(c)[1])
  rin = stages.router_inputs(ctx, stages.profiles(ctx, lambda s: None), "prompt")
  swept = stages.router_grid(ctx, router, rin, lambda s: None)  # the sweep's grid path
  bundle = deploy.fit(c, history, profile, router, seed=1, log=lambda s: None)
  texts = [history.query_texts[i] for i in history.test_queries]
  q_emb = ctx.query_emb_QxD[history.test_queries]
  np.testing.assert_array_equal(
    deploy.route_embeddings(bundle, q_emb), swept["choices_SxZxQ"][1, 1], err_msg=router
  )
  # Cost routing: the sweep's calibrated p̂ of that cell, its cost estimates and λ grid.
  p_test, _ = frontier.calibrate(*(swept[k][1:2, 1:2] for k in SCORE_KEYS))
  cs = ctx.cost
  want_UxQ = np.asarray(costq.route_utility(p_test[0, 0], cs.cost_est_QxA, cs.lambdas_U))
  model = cost_model.CostModel.from_arrays(bundle.cost)
  np.testing.assert_array_equal(model.lambdas_U, cs.lambdas_U)
  rows = np.arange(len(texts))
  tasks = [history.task_names[t] for t in history.query_task[history.test_queries]]
  for u, lam in enumerate(cs.lambdas_U):
    got, est, _ = deploy.route_indices(bundle, texts, ctx.embed, tasks, lam=float(lam))
    np.testing.assert_array_equal(est, cs.cost_est_QxA[rows, got])  # the same cost estimates
    # The same choices, up to float32 ties: the bundle scores from its saved state in its own
    # compiled call, so a utility may differ in the last bits; where a choice differs, the
    # sweep's utilities of the two choices tie to 1e-5.
    u_QxA = p_test[0, 0] - lam * cs.cost_est_QxA
    differ = got != want_UxQ[u]
    gap = np.abs(u_QxA[rows, got] - u_QxA[rows, want_UxQ[u]])
    assert differ.mean() <= 0.05 and (gap[differ] < 1e-5).all(), (router, lam, gap[differ])
  if router == "graph":
    # The graph's query nodes are the training queries of the evaluated cell (validation
    # queries held out), not every training query.
    n_nodes = bundle.state["nodes_NxD"].shape[0]
    assert 0 < n_nodes < rin.data.num_train


SCORE_KEYS = ("test_scores_SxZxQxA", "val_scores_SxZxVxA", "val_labels_SxZxVxA")


def test_add_candidate_without_retraining(fitted):
  c, history, bundle, _ = fitted
  embed = stages.make_embed(c)[1]
  prof = deploy.profile_for_models(c, history, c.route.profile, embed, 0)
  extra = "new-model"
  new_D = prof[0] * 3.0 + 0.5  # a profile unlike any candidate's
  grown = deploy.add_candidate(bundle, extra, new_D, np.array([0.2, 0.6]))
  assert grown.candidate_names == [*bundle.candidate_names, extra]
  np.testing.assert_array_equal(grown.profile_AxD[:-1], bundle.profile_AxD)
  np.testing.assert_array_equal(grown.profile_AxD[-1], new_D)
  # The trained state is unchanged, value for value.
  for a, b in zip(jax.tree.leaves(grown.state), jax.tree.leaves(bundle.state), strict=True):
    np.testing.assert_array_equal(a, b)
  # Scores of the old candidates are unchanged; the new column is the score of the new profile
  # alone; routing is the argmax over all columns.
  q = np.asarray(embed(list(history.query_texts[:60])), np.float32)
  base, now = deploy.score_embeddings(bundle, q), deploy.score_embeddings(grown, q)
  np.testing.assert_allclose(now[:, :-1], base, rtol=1e-5, atol=1e-5)
  alone = deploy.score_embeddings(
    deploy.dataclasses.replace(bundle, profile_AxD=new_D[None], candidate_names=[extra]), q
  )
  np.testing.assert_allclose(now[:, -1], alone[:, 0], rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(deploy.route_embeddings(grown, q), now.argmax(1))
  with pytest.raises(ValueError, match="already"):
    deploy.add_candidate(grown, extra, new_D)
  with pytest.raises(ValueError, match="dimension"):
    deploy.add_candidate(bundle, "x", new_D[:3])


def test_sim_router_picks_an_added_model_that_matches_the_query(tmp_path):
  c = _config()
  history = load_history(c.data, "standard")
  bundle = deploy.fit(c, history, "flat:TQD", "sim", log=lambda s: None)
  _, embed = stages.make_embed(c)
  text = "a very particular query about zebras and quasars"
  grown = deploy.add_candidate(bundle, "zebra-expert", embed([text])[0], np.array([0.1, 0.2]))
  assert deploy.route_texts(grown, [text], embed) == ["zebra-expert"]
  deploy.save(grown, tmp_path)
  assert deploy.route_texts(deploy.load(tmp_path), [text], embed) == ["zebra-expert"]


def test_load_missing_bundle_is_a_clear_error(tmp_path):
  with pytest.raises(DataError, match="bundle.json"):
    deploy.load(tmp_path)


def test_read_queries_formats_and_errors(tmp_path):
  f = tmp_path / "q.jsonl"
  f.write_text('{"query": "a"}\nplain text line\n\n{"query": 3}\n')
  with pytest.raises(DataError, match="line 4"):
    deploy.read_queries(str(f))
  f.write_text('{"query": "a", "task": "t0"}\nplain text line\n')
  assert deploy.read_queries(str(f)) == (["a", "plain text line"], ["t0", None])
  with pytest.raises(DataError, match="not found"):
    deploy.read_queries(str(tmp_path / "missing.jsonl"))


def test_route_launcher_subprocess(fitted, tmp_path):
  c, history, bundle, folder = fitted
  queries = tmp_path / "q.jsonl"
  texts = [history.query_texts[i] for i in history.test_queries[:3]]
  queries.write_text("\n".join(json.dumps({"query": t}) for t in texts) + "\n")
  args = [
    sys.executable,
    "-m",
    "launch.route",
    "--config=configs/route.py",
    f"--workdir={folder}",
    f"--queries={queries}",
    "--config.data.source=synthetic",
    "--config.data.synthetic_scale=0.1",
    f"--config.data.synthetic_sizes={test_config.get_config().data.synthetic_sizes}",
    "--config.encoder_dim=64",
  ]
  out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  lines = [json.loads(x) for x in out.stdout.splitlines() if x.strip()]
  assert [x["query"] for x in lines] == texts
  # The launcher routes like the bundle in this process.
  assert [x["model"] for x in lines] == deploy.route_texts(bundle, texts, stages.make_embed(c)[1])


def test_budget_routing_with_the_bundles_cost_model(fitted, tmp_path):
  c, history, bundle, folder = fitted
  assert bundle.cost  # the synthetic data has prices and token counts
  _, embed = stages.make_embed(c)
  texts = [history.query_texts[i] for i in history.test_queries[:30]]
  model = cost_model.CostModel.from_arrays(bundle.cost)
  scores = deploy.score_embeddings(bundle, np.asarray(embed(texts), np.float32))
  zero, _, used = deploy.route_indices(bundle, texts, embed, lam=0.0)
  # λ = 0: the argmax of the calibrated p̂ (per-candidate maps may reorder raw scores).
  np.testing.assert_array_equal(zero, model.expected_performance(scores).argmax(1))
  assert used == 0.0
  cost = model.expected_cost(texts, np.full(len(texts), -1))
  huge, est, _ = deploy.route_indices(bundle, texts, embed, lam=1e12)
  np.testing.assert_array_equal(huge, cost.argmin(1))  # λ -> inf: the cheapest candidate
  np.testing.assert_allclose(est, cost.min(1))
  # Budget mode: the chosen λ meets the budget on the validation front (never on test rows).
  cheap = float(model.val_cost_VxA.min(1).mean())
  pick = model.lam_for_budget(cheap * 1.0001)
  assert pick.feasible and pick.cost <= cheap * 1.0001
  # Saved and loaded with the bundle; adding a candidate needs its prices.
  loaded = deploy.load(folder)
  assert sorted(loaded.cost) == sorted(bundle.cost)
  with pytest.raises(ValueError, match="prices"):
    deploy.add_candidate(bundle, "x", bundle.profile_AxD[0])
  grown = deploy.add_candidate(bundle, "x", bundle.profile_AxD[0], np.array([0.1, 0.2]))
  assert grown.cost["a_A"].shape == (len(bundle.candidate_names) + 1,)


@pytest.mark.parametrize("router", [pytest.param("mf", marks=pytest.mark.slow), "knn"])
def test_cross_validated_router_deploys_as_the_evaluated_ensemble(router):
  c = _config()
  with c.unlocked():
    c.val_folds = 3
    c.profiles = (c.route.profile,)
    c.seeds = 3
  history = stages.router_history(load_history(c.data, "standard"), c.data.query_format)
  bundle = deploy.fit(c, history, c.route.profile, router, seed=2, log=lambda s: None)
  assert bundle.info["folds"] == 3
  assert all(np.shape(x)[0] == 3 for x in jax.tree.leaves(bundle.state))  # one per fold
  ctx = stages.make_context(c, history, stages.make_embed(c)[1])
  rin = stages.router_inputs(ctx, stages.profiles(ctx, lambda s: None), "prompt")
  swept = stages.router_grid(ctx, router, rin, lambda s: None)
  deployed = deploy.route_embeddings(bundle, ctx.query_emb_QxD[history.test_queries])
  np.testing.assert_array_equal(deployed, swept["choices_SxZxQ"][0, 2])
