"""Fit, extend and use a deployable router (see configs/route.py for the commands).

Flags only; the work is in ``rp_jax.deploy``.
"""

import json
import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

from rp_jax import deploy, pipeline, runtime
from rp_jax.config import parse_profile
from rp_jax.data import load_history

_CONFIG = config_flags.DEFINE_config_file("config", None, "Route config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder of the router bundle.")
_FIT = flags.DEFINE_bool("fit", False, "Train the router and save the bundle.")
_QUERIES = flags.DEFINE_string("queries", None, "JSONL ({'query': ...} per line) or '-' (stdin).")
_ADD = flags.DEFINE_list("add_models", [], "Pool models to add as candidates, no retraining.")
flags.mark_flags_as_required(["config", "workdir"])


def _read_queries(path: str) -> list[str]:
  lines = (
    sys.stdin.read().splitlines() if path == "-" else pathlib.Path(path).read_text().splitlines()
  )
  out = []
  for i, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      obj = json.loads(line)
    except json.JSONDecodeError:
      obj = line  # a plain text line is a query too
    if isinstance(obj, dict):
      if not isinstance(obj.get("query"), str):
        raise SystemExit(f"{path}: line {i}: expected a JSON object with a string 'query'")
      obj = obj["query"]
    out.append(str(obj))
  return out


def main(argv):
  del argv
  c = _CONFIG.value
  runtime.configure(c)
  folder = pathlib.Path(_WORKDIR.value)
  if _FIT.value:
    history = load_history(c.data, c.settings[0])
    bundle = deploy.fit(c, history, c.route.profile, c.route.router, c.route.seed)
    deploy.save(bundle, folder)
    print(f"saved {bundle.router} router on {bundle.profile_id} to {folder}", file=sys.stderr)
  if _ADD.value:
    bundle = deploy.load(folder)
    history = load_history(c.data, c.settings[0])
    _, embed = pipeline.make_embed(c)
    spec = parse_profile(c.route.profile, c.emb_gnn.norm, c.emb_gnn.self_loop)
    prof = deploy.profile_for_models(c, history, spec, embed, c.route.seed)
    for name in _ADD.value:
      bundle = deploy.add_candidate(bundle, name, prof[history.model_index(name)])
    deploy.save(bundle, folder)
    print(f"candidates now: {', '.join(bundle.candidate_names)}", file=sys.stderr)
  if _QUERIES.value:
    bundle = deploy.load(folder)
    _, embed = pipeline.make_embed(c)
    texts = _read_queries(_QUERIES.value)
    for q, m in zip(texts, deploy.route_texts(bundle, texts, embed), strict=True):
      print(json.dumps({"query": q, "model": m}))


if __name__ == "__main__":
  app.run(main)
