"""Onboarding a new LLM into a deployed router from its quiz answers (no retraining)."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from configs import route as route_config
from configs import test as test_config
from rp_jax import deploy, onboard, stages
from rp_jax.types import DataError

REPO = pathlib.Path(__file__).resolve().parents[1]
CARD = {"family": "NewFam", "text": "A brand-new model.", "input_price": 0.1, "output_price": 0.2}


def _config(router="knn", profile="probe:2:2"):
  c = route_config.get_config()
  t = test_config.get_config()
  with c.unlocked():
    c.data = t.data
    c.encoder_dim = t.encoder_dim
  c.route.router, c.route.profile, c.route.quiz_size = router, profile, 6
  c.val_folds = 1
  return c


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp("onboard")
  deploy.run(_config(), folder, deploy.RouteRequest(fit=True), log=lambda s: None)
  return folder


def _answers(bundle, history, model: str, folder: pathlib.Path) -> pathlib.Path:
  """A new model that answers the quiz exactly as pool model ``model`` did."""
  quiz = bundle.info["quiz"]
  m = history.model_index(model)
  lines = [
    {"quiz": quiz["id"], "query": t, "outcome": float(np.nan_to_num(history.outcomes_QxM[q, m]))}
    for q, t in zip(quiz["query_ids"], quiz["texts"], strict=True)
  ]
  path = folder / "answers.jsonl"
  path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
  return path


def test_print_quiz_and_onboard_a_model_outside_the_pool(bundle_dir, tmp_path):
  c = _config()
  bundle = deploy.load(bundle_dir)
  quiz = bundle.info["quiz"]
  assert len(quiz["query_ids"]) == 6 and len(set(quiz["texts"])) == 6
  out = tmp_path / "quiz.jsonl"
  with open(out, "w") as f:
    deploy.run(c, bundle_dir, deploy.RouteRequest(print_quiz=6), out=f)
  lines = [json.loads(x) for x in out.read_text().splitlines()]
  assert [x["query"] for x in lines] == quiz["texts"] and {x["quiz"] for x in lines} == {quiz["id"]}
  history = deploy._route_history(c)
  best = history.candidate_names[0]
  answers = _answers(bundle, history, best, tmp_path)
  card = tmp_path / "card.json"
  card.write_text(json.dumps(CARD))
  req = deploy.RouteRequest(
    add_models=("brand-new",), quiz_outcomes=str(answers), model_card=str(card)
  )
  deploy.run(c, bundle_dir, req, log=lambda s: None)
  grown = deploy.load(bundle_dir)
  assert grown.candidate_names == [*bundle.candidate_names, "brand-new"]
  # kNN: its answers are neighbour evidence on the quiz queries' memory rows, nothing else.
  ids, known = grown.state["memory_ids_N"], grown.state["known_NxA"][..., -1]
  assert (known > 0).any() and set(np.asarray(ids)[known > 0].tolist()) <= set(quiz["query_ids"])
  # Its probe block reads its answers: identical answers give the copied model's probe block.
  a = bundle.candidate_names.index(best)
  d = grown.profile_AxD.shape[1]
  np.testing.assert_allclose(
    grown.profile_AxD[-1, d - 8 :], grown.profile_AxD[a, d - 8 :], atol=1e-5
  )
  _, embed = stages.make_embed(c)
  texts = [history.query_texts[q] for q in history.test_queries]
  assert len(deploy.route_texts(grown, texts, embed)) == len(texts)


def test_bad_quiz_answers_are_clear_errors(bundle_dir, tmp_path):
  quiz = deploy.load(bundle_dir).info["quiz"]
  f = tmp_path / "a.jsonl"
  cases = {
    '{"query": "not on the quiz", "outcome": 1}': "line 1, field 'query'",
    json.dumps({"query": quiz["texts"][0], "outcome": 1.5}): "line 1, field 'outcome'",
    json.dumps(
      {"quiz": "other", "query": quiz["texts"][0], "outcome": 1}
    ): "not this router's quiz",
  }
  for line, msg in cases.items():
    f.write_text(line + "\n")
    with pytest.raises(DataError, match=msg):
      onboard.read_quiz_outcomes(str(f), quiz)
  f.write_text(json.dumps({"query": quiz["texts"][0], "outcome": 1}) + "\n")
  req = deploy.RouteRequest(add_models=("not-in-pool",), quiz_outcomes=str(f))
  with pytest.raises(ValueError, match="model card"):
    deploy.run(_config(), bundle_dir, req, log=lambda s: None)
  with pytest.raises(ValueError, match="not in the data's model pool"):
    deploy.run(_config(), bundle_dir, deploy.RouteRequest(add_models=("gpt-4o",)))


def test_route_launcher_reports_bad_input_without_a_traceback(bundle_dir, tmp_path):
  t = test_config.get_config()
  args = [
    sys.executable,
    "-m",
    "launch.route",
    "--config=configs/route.py",
    f"--workdir={bundle_dir}",
    "--config.data.source=synthetic",
    f"--config.data.synthetic_scale={t.data.synthetic_scale}",
    f"--config.data.synthetic_sizes={t.data.synthetic_sizes}",
    f"--config.encoder_dim={t.encoder_dim}",
    "--add_models=gpt-4o",
  ]
  out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode != 0 and "Traceback" not in out.stderr
  assert "not in the data's model pool" in out.stderr
  empty = tmp_path / "q.jsonl"
  empty.write_text('{"query": ""}\n')
  args[-1] = f"--queries={empty}"
  out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode != 0 and "Traceback" not in out.stderr and "non-empty" in out.stderr
