"""The pure stages of a sweep, one setting at a time: encode -> profiles -> routers -> metrics.

``rp_jax.sweep`` orchestrates them (which stages run, the stage cache, progress, outputs); every
function here takes arrays and configs and returns arrays, so each stage can be run and tested
alone. Host-side text work (encoding, summaries) happens before the jit boundary; the profile,
router and metric grids are single compiled calls.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax import config as cfg_lib
from rp_jax import graphs, io, metrics
from rp_jax.config import ProfileSpec
from rp_jax.profiles.build import ProfileSet, build_profiles
from rp_jax.routers import grid
from rp_jax.routers.baselines import Baseline, baselines
from rp_jax.routers.data import make_router_data
from rp_jax.text import encode_cached, make_encoder
from rp_jax.text.summarize import make_summarizer
from rp_jax.types import History

Log = Callable[[str], None]


# -- text --------------------------------------------------------------------------------------


def make_embed(config):
  """(encoder, embed) where embed(texts) -> [n, D] float32 goes through the embedding cache."""
  opts = {}
  if config.encoder == "hashing":
    opts["dim"] = int(config.encoder_dim)
  elif config.encoder == "minilm":
    opts["long_texts"] = config.minilm_long_texts
    if config.model_dir:
      opts["model_dir"] = config.model_dir
  enc = make_encoder(config.encoder, **opts)
  cache = config.cache_dir or None
  return enc, lambda texts: encode_cached(enc, list(texts), cache_dir=cache)


def make_summarize(config, cache_dir=None):
  """The text-GNN summariser of a config (template, or an OpenAI-compatible endpoint)."""
  if config.summarizer == "template":
    return make_summarizer("template")
  llm = config.llm
  return make_summarizer(
    "openai",
    base_url=llm.base_url,
    model=llm.model,
    api_key_env=llm.api_key_env or None,
    timeout_s=float(llm.timeout_s),
    max_retries=int(llm.max_retries),
    concurrency=int(llm.concurrency),
    max_tokens=int(llm.max_tokens),
    cache_dir=cache_dir or (config.cache_dir or None),
  )


# -- profiles ------------------------------------------------------------------------------------


def profiles(config, history: History, specs: Sequence[ProfileSpec], embed, log: Log) -> ProfileSet:
  """Every spec's profile of one setting, stacked as ``ProfileSet.profile_SxRxMxD``."""
  graph, info = graphs.build_graph(history)
  x_NxD = np.asarray(embed(info.node_texts), np.float32)
  needs_text = any(s.profile == "text_gnn" for s in specs)
  needs_tr = any(s.profile == "trainable" for s in specs)
  return build_profiles(
    list(specs),
    graph,
    info,
    x_NxD,
    embed,
    seeds=list(range(int(config.seeds))),
    summarize=make_summarize(config) if needs_text else None,
    max_hops=int(config.max_hops),
    index_seed=int(config.index_seed),
    flat_seed=int(config.flat_seed),
    emb_l2=bool(config.emb_gnn.l2_normalize),
    trainable_config=cfg_lib.trainable_settings(config) if needs_tr else None,
    log=log,
  )


def write_profiles(folder: pathlib.Path, history: History, pset: ProfileSet, config) -> None:
  """``<folder>/<id>.npz`` per profile (per seed for trainable ones) and ``index.csv``."""
  entries = []
  for s, spec in enumerate(pset.specs):
    meta = {
      "profile": spec.profile,
      "graph": spec.graph,
      "hops": spec.hops,
      "norm": spec.norm,
      "learn": spec.learn,
      "self_loop": int(spec.self_loop),
      "encoder": config.encoder,
      "summariser": config.summarizer if spec.profile == "text_gnn" else "",
    }
    if pset.per_seed[s]:
      for r in range(pset.profile_SxRxMxD.shape[1]):
        entries.append((f"{spec.id}-s{r}", pset.profile_SxRxMxD[s, r], {**meta, "seed": r}))
    else:
      entries.append((spec.id, pset.profile_SxRxMxD[s, 0], {**meta, "seed": ""}))
  cols = [
    "id",
    "profile",
    "graph",
    "hops",
    "norm",
    "learn",
    "self_loop",
    "seed",
    "encoder",
    "summariser",
  ]
  io.write_profile_dir(folder, history.model_names, entries, cols)
  for form, rec in pset.texts.items():
    io.write_json(folder / f"text_gnn_texts_{form}.json", rec)


# -- routers -------------------------------------------------------------------------------------


def grid_is_sequential(mode: str) -> bool:
  """``config.grid`` -> train the cells one after another inside the compiled call?"""
  if mode == "auto":
    return jax.default_backend() == "cpu" and len(jax.devices()) == 1
  return mode == "sequential"


def router_choices(
  router: str,
  config,
  history: History,
  query_emb_QxD: np.ndarray,
  profile_SxRxAxD: np.ndarray,
  seeds: Sequence[int],
  log: Log,
) -> np.ndarray:
  """[S, R, Q_test] choices of one router over a setting's profiles x seeds (one compiled call).

  Args:
    router: a registry name.
    config: the sweep ConfigDict (router sections, ``val_fraction``, ``chunk_size``, ``shard``,
      ``grid``).
    history: the setting's History.
    query_emb_QxD: embeddings of all History queries.
    profile_SxRxAxD: candidate profiles per profile spec and seed.
    seeds: the R seeds.
    log: progress messages.
  """
  static, hp = cfg_lib.router_settings(config, router)
  data = make_router_data(history, query_emb_QxD)
  static = grid.resolve_config(router, static, data)
  if router == "mlp":
    log(
      f"  mlp: {data.num_train} training queries, {len(data.pairs_Px3)} pairs, "
      f"{static.batching} batches ({static.queries_per_batch or static.batch_size} per batch)"
    )
  res = grid.train_grid(
    router,
    static,
    data,
    profile_SxRxAxD,
    list(seeds),
    hp,
    chunk_size=int(config.chunk_size),
    shard=bool(config.shard),
    sequential=grid_is_sequential(str(config.grid)),
  )
  return res.choices_SxRxQ


# -- metrics -------------------------------------------------------------------------------------


@jax.jit
def _evaluate_all(sel_SxQxA, test):
  return jax.vmap(metrics.evaluate, (0, None))(sel_SxQxA, test)


def evaluate_selections(sel_SxQxA: np.ndarray, test: metrics.TestSet) -> tuple[dict, np.ndarray]:
  """(metrics with a leading [S] axis, per-row performance [S, Q]) of S selections (numpy)."""
  sel = jnp.asarray(sel_SxQxA, jnp.float32)
  ms = jax.tree.map(np.asarray, _evaluate_all(sel, test))
  rows_SxQ = np.asarray(metrics.row_performance(sel, jnp.asarray(test.perf_QxA)))
  return ms, rows_SxQ


def evaluate_choices(choices_SxRxQ: np.ndarray, test: metrics.TestSet) -> tuple[dict, np.ndarray]:
  """(metrics with leading [S*R], per-row performance [S, R, Q]) of a router grid's choices."""
  S, R, Q = choices_SxRxQ.shape
  sel = metrics.one_hot(jnp.asarray(choices_SxRxQ.reshape(S * R, Q)), test.num_candidates)
  ms, rows = evaluate_selections(sel, test)
  return ms, rows.reshape(S, R, Q)


def baseline_selections(history: History, test: metrics.TestSet) -> dict[str, Baseline]:
  """Every baseline of the setting as a selection over the test rows."""
  return baselines(history, test)
