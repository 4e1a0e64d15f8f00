"""Train one router for deployment, save it, route new queries, add a new LLM without retraining.

A ``RouterBundle`` is everything needed to route a query: the router's static config and trained
parameters, the candidates' profiles, the encoder that embeds queries, and (graph router) the
training queries the model nodes attend over. It is saved as ``bundle.json`` (metadata) plus
``arrays.npz`` (parameters flattened by path, profiles) — no pickles.

Adding a new LLM: the sim, mlp and graph routers score a candidate through its profile only, so a
new model joins a trained router by appending its profile row (``add_candidate``). The profile
must come from the same profile function as the others, e.g. the emb_gnn profile of the model
computed on a graph that includes its family, text and benchmark scores
(``profile_for_models``) — the paper's cold-start use of profiles.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import numpy as np
from flax import traverse_util

from rp_jax import io
from rp_jax.config import ProfileSpec, parse_profile
from rp_jax.types import History


@dataclasses.dataclass
class RouterBundle:
  """A trained router ready to route (see module docstring)."""

  router: str
  router_config: dict
  params: dict | None
  profile_AxD: np.ndarray
  candidate_names: list[str]
  encoder: dict
  profile_id: str
  graph_q_NxD: np.ndarray | None = None
  info: dict = dataclasses.field(default_factory=dict)

  def static_config(self):
    from rp_jax.routers import api

    kw = {k: v for k, v in self.router_config.items() if k != "name"}
    return api.make_config(self.router, **kw)


def profile_for_models(
  config, history: History, spec: ProfileSpec, embed, seed: int = 0
) -> np.ndarray:
  """[M, D] profile of every pool model under one spec (seed picks the trainable HAN)."""
  from rp_jax import pipeline

  cfg = config.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.seeds = seed + 1
  pset, _, _ = pipeline.setting_profiles(cfg, history, [spec], embed, lambda s: None)
  return pset.profile_SxRxMxD[0, seed]


def fit(
  config, history: History, profile: str, router: str, seed: int = 0, log=print
) -> RouterBundle:
  """Builds one profile, trains one router on it (one seed) and returns the bundle."""
  from rp_jax import pipeline
  from rp_jax.routers import api

  spec = parse_profile(profile, config.emb_gnn.norm, config.emb_gnn.self_loop)
  enc, embed = pipeline.make_embed(config)
  prof_MxD = profile_for_models(config, history, spec, embed, seed)
  query_emb = np.asarray(embed(history.query_texts), np.float32)
  data = api.make_router_data(history, query_emb)
  static, hp = api.configs_from_sweep(router, config)
  prof_AxD = prof_MxD[history.candidates]
  out = api.train_cell(
    router, static, data, prof_AxD, seed, hp or None, return_params=router != "sim"
  )
  params = None
  if router != "sim":
    params = jax.tree.map(np.asarray, out["params"])
    static = api.resolve_config(static, data)
    log(f"trained {router} on {spec.id}: best epoch {int(out['best_epoch'])}")
  cfg_dict = {} if router == "sim" else dataclasses.asdict(static)
  return RouterBundle(
    router=router,
    router_config=cfg_dict,
    params=params,
    profile_AxD=prof_AxD.astype(np.float32),
    candidate_names=list(history.candidate_names),
    encoder={
      "encoder": config.encoder,
      "name": enc.name,
      "dim": int(enc.dim),
      "encoder_dim": int(config.encoder_dim),
      "model_dir": config.model_dir,
    },
    profile_id=spec.id,
    graph_q_NxD=np.asarray(data.train_q_QxD) if router == "graph" else None,
    info={"setting": history.setting, "source": history.source, "seed": seed},
  )


def add_candidate(bundle: RouterBundle, name: str, profile_D: np.ndarray) -> RouterBundle:
  """A copy of the bundle with one more candidate (no retraining; see module docstring)."""
  if name in bundle.candidate_names:
    raise ValueError(f"candidate {name!r} is already in the router ({bundle.candidate_names})")
  p = np.asarray(profile_D, np.float32).reshape(-1)
  if p.shape[0] != bundle.profile_AxD.shape[1]:
    raise ValueError(
      f"profile of {name!r} has dimension {p.shape[0]}; the router's profiles have "
      f"{bundle.profile_AxD.shape[1]} (build it with the same profile spec {bundle.profile_id!r})"
    )
  return dataclasses.replace(
    bundle,
    profile_AxD=np.concatenate([bundle.profile_AxD, p[None]]),
    candidate_names=[*bundle.candidate_names, name],
  )


def route_embeddings(bundle: RouterBundle, query_QxD: np.ndarray) -> np.ndarray:
  """[Q] int index into ``bundle.candidate_names`` for embedded queries."""
  from rp_jax.routers import api

  if bundle.router == "sim":
    cfg = api.make_config("sim")
  else:
    cfg = bundle.static_config()
  return np.asarray(
    api.route(cfg, bundle.params, bundle.profile_AxD, query_QxD, graph_q_NxD=bundle.graph_q_NxD)
  )


def route_texts(bundle: RouterBundle, texts: list[str], embed) -> list[str]:
  """The chosen model name for each query text (``embed`` = the bundle's encoder, cached)."""
  idx = route_embeddings(bundle, np.asarray(embed(texts), np.float32))
  return [bundle.candidate_names[i] for i in idx.tolist()]


def save(bundle: RouterBundle, folder) -> None:
  """``folder/bundle.json`` + ``folder/arrays.npz`` (atomic writes, no pickles)."""
  folder = pathlib.Path(folder)
  arrays = {"profile_AxD": bundle.profile_AxD}
  if bundle.graph_q_NxD is not None:
    arrays["graph_q_NxD"] = bundle.graph_q_NxD
  if bundle.params is not None:
    flat = traverse_util.flatten_dict(bundle.params, sep="/")
    arrays.update({f"params/{k}": np.asarray(v) for k, v in flat.items()})
  io.write_npz(folder / "arrays.npz", arrays)
  meta = dataclasses.asdict(bundle)
  for k in ("params", "profile_AxD", "graph_q_NxD"):
    meta.pop(k)
  io.write_json(folder / "bundle.json", meta)


def load(folder) -> RouterBundle:
  """Reads a saved bundle (clear error naming the missing file or key)."""
  from rp_jax.types import DataError

  folder = pathlib.Path(folder)
  for f in ("bundle.json", "arrays.npz"):
    if not (folder / f).is_file():
      raise DataError(
        str(folder / f), None, "missing router bundle file (save one with launch.route --fit)"
      )
  meta = json.loads((folder / "bundle.json").read_text(encoding="utf-8"))
  arrays = io.read_npz(folder / "arrays.npz")
  if "profile_AxD" not in arrays:
    raise DataError(str(folder / "arrays.npz"), "profile_AxD", "missing array")
  flat = {k[len("params/") :]: v for k, v in arrays.items() if k.startswith("params/")}
  params = traverse_util.unflatten_dict(flat, sep="/") if flat else None
  return RouterBundle(
    **meta,
    params=params,
    profile_AxD=arrays["profile_AxD"],
    graph_q_NxD=arrays.get("graph_q_NxD"),
  )
