"""Deployable routers: fit, save/load, route texts, add a new LLM without retraining, launcher."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from rp_jax import deploy, pipeline
from rp_jax.data import load_history
from rp_jax.types import DataError

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from configs import route as route_config  # noqa: E402
from configs import test as test_config  # noqa: E402


def _config():
  c = route_config.get_config()
  t = test_config.get_config()
  with c.unlocked():
    c.data = t.data
    c.encoder_dim = t.encoder_dim
    c.mlp = t.mlp
  c.route.profile = "emb_gnn:TQD:1"
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
  _, embed = pipeline.make_embed(c)
  texts = [history.query_texts[i] for i in history.test_queries[:10]]
  assert deploy.route_texts(loaded, texts, embed) == deploy.route_texts(bundle, texts, embed)
  assert not any(p.suffix == ".tmp" for p in folder.iterdir())


def test_add_candidate_without_retraining(fitted):
  c, history, bundle, _ = fitted
  spec_profile = deploy.profile_for_models(
    c, history, deploy.parse_profile(c.route.profile), pipeline.make_embed(c)[1], 0
  )
  extra = "new-model"
  grown = deploy.add_candidate(bundle, extra, spec_profile[0])
  assert (
    grown.candidate_names[-1] == extra
    and grown.profile_AxD.shape[0] == len(bundle.candidate_names) + 1
  )
  # The trained parameters are untouched; the router now ranks one more candidate, so every query
  # either goes to the new model or keeps its old choice.
  assert grown.params is bundle.params
  q = np.asarray(pipeline.make_embed(c)[1](list(history.query_texts[:60])), np.float32)
  base, now = deploy.route_embeddings(bundle, q), deploy.route_embeddings(grown, q)
  new = len(bundle.candidate_names)
  assert ((now == base) | (now == new)).all()
  with pytest.raises(ValueError, match="already"):
    deploy.add_candidate(grown, extra, spec_profile[0])
  with pytest.raises(ValueError, match="dimension"):
    deploy.add_candidate(bundle, "x", spec_profile[0][:3])


def test_sim_router_picks_an_added_model_that_matches_the_query(tmp_path):
  c = _config()
  history = load_history(c.data, "standard")
  bundle = deploy.fit(c, history, "flat:TQD", "sim", log=lambda s: None)
  _, embed = pipeline.make_embed(c)
  text = "a very particular query about zebras and quasars"
  grown = deploy.add_candidate(bundle, "zebra-expert", embed([text])[0])
  assert deploy.route_texts(grown, [text], embed) == ["zebra-expert"]
  deploy.save(grown, tmp_path)
  assert deploy.route_texts(deploy.load(tmp_path), [text], embed) == ["zebra-expert"]


def test_load_missing_bundle_is_a_clear_error(tmp_path):
  with pytest.raises(DataError, match="bundle.json"):
    deploy.load(tmp_path)


def test_route_launcher_subprocess(fitted, tmp_path):
  _, history, bundle, folder = fitted
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
  assert all(x["model"] in bundle.candidate_names for x in lines)
