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
from rp_jax import graphs, io, metrics, progress
from rp_jax.config import ProfileSpec
from rp_jax.profiles.build import ProfileSet, build_profiles
from rp_jax.routers import grid, registry, validation
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
  """Every spec's profile of one setting, stacked as ``ProfileSet.profile_SxZxMxD``."""
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
    scores_MxT=history.scores_MxT,
    candidates=history.candidates,
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
      for r in range(pset.profile_SxZxMxD.shape[1]):
        entries.append((f"{spec.id}-s{r}", pset.profile_SxZxMxD[s, r], {**meta, "seed": r}))
    else:
      entries.append((spec.id, pset.profile_SxZxMxD[s, 0], {**meta, "seed": ""}))
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


def router_history(history: History, query_format: str) -> History:
  """The History whose query texts are what routers (and the graph's query nodes) read.

  "prompt": the formatted prompt the LLM receives (``History.query_prompts``); "raw": the query.
  """
  if query_format == "raw":
    return history
  if query_format != "prompt":
    raise ValueError(f"unknown query_format {query_format!r}; expected 'prompt' or 'raw'")
  return history.replace(query_texts=history.query_prompts)


def query_features(history: History, emb_QxD: np.ndarray, inputs: str) -> np.ndarray:
  """[Q, D] query embeddings ("prompt"), or [Q, D + T] with the task one-hot ("prompt+task")."""
  if inputs == "prompt":
    return np.asarray(emb_QxD, np.float32)
  if inputs == "prompt+task":
    onehot_QxT = np.eye(history.num_tasks, dtype=np.float32)[history.query_task]
    return np.concatenate([np.asarray(emb_QxD, np.float32), onehot_QxT], axis=1)
  raise ValueError(f"unknown router inputs {inputs!r}; expected 'prompt' or 'prompt+task'")


def normalize_profiles(profile_xMxD: np.ndarray, mode: str) -> np.ndarray:
  """Every model's profile on one scale: "l2" = unit norm rows (zero rows stay zero); "none"."""
  if mode == "none":
    return profile_xMxD
  if mode != "l2":
    raise ValueError(f"unknown profile_norm {mode!r}; expected 'l2' or 'none'")
  norm = np.linalg.norm(profile_xMxD, axis=-1, keepdims=True)
  return (profile_xMxD / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def grid_is_sequential(mode: str) -> bool:
  """``config.grid`` -> train the cells one after another inside the compiled call?"""
  if mode == "auto":
    return jax.default_backend() == "cpu" and len(jax.devices()) == 1
  return mode == "sequential"


def router_grid(
  router: str,
  config,
  history: History,
  query_feat_QxD: np.ndarray,
  profile_SxZxAxD: np.ndarray,
  seeds: Sequence[int],
  log: Log,
  return_scores: bool = False,
) -> dict[str, np.ndarray]:
  """One router over a setting's profiles x hyperparameter grid x seeds (one compiled call).

  Cells are ordered profile-major: cell ``s * H + h`` is profile ``s`` with the ``h``-th
  combination of ``config.hparam_grid(router_settings(config, router)[1])``.

  Returns:
    ``choices_SxZxQ`` [S*H, Z, Q_test], ``val_utility_SxZ`` [S*H, Z], ``best_epoch_SxZ``, and
    with ``return_scores`` the scores of the kept states: ``test_scores_SxZxQxA``,
    ``val_scores_SxZxVxA``, the validation queries ``val_idx_SxZxV`` (indices into the
    training queries of ``RouterData``) and their known outcomes ``val_labels_SxZxVxA``.
  """
  static, hp_values = cfg_lib.router_settings(config, router)
  combos = cfg_lib.hparam_grid(hp_values)
  data = make_router_data(history, query_feat_QxD)
  static = grid.resolve_config(router, static, data)
  if router == "mlp":
    log(
      f"  mlp: {data.num_train} training queries, {len(data.pairs_Px3)} pairs, "
      f"{static.batching} batches ({static.queries_per_batch or static.batch_size} per batch)"
    )
  num_h = len(combos)
  prof = np.repeat(np.asarray(profile_SxZxAxD, np.float32), num_h, axis=0)
  hp = {k: np.tile([c[k] for c in combos], len(profile_SxZxAxD)) for k in hp_values}
  splits, folds = None, 1
  if config.val_split == "stratified":
    folds = cfg_lib.router_folds(config, router)
    splits = validation.validation_splits(data, float(config.val_fraction), folds, seeds)
  every = float(config.progress_every_s)
  report = every > 0 and registry.family(router).trainable
  epochs = int(getattr(static, "epochs", 1))
  total = len(prof) * len(seeds) * folds * epochs  # cell-epochs: every fold model's epochs
  with progress.tracking(f"{router}", total, log, every):
    res = grid.train_grid(
      router,
      static,
      data,
      prof,
      list(seeds),
      hp,
      splits=splits,
      chunk_size=int(config.chunk_size),
      shard=bool(config.shard),
      sequential=grid_is_sequential(cfg_lib.router_grid_mode(config, router)),
      return_scores=return_scores,
      report_progress=report,
    )
  out = {
    "choices_SxZxQ": res.choices_SxZxQ,
    "val_utility_SxZ": res.val_utility_SxZ,
    "best_epoch_SxZ": res.best_epoch_SxZ,
  }
  if return_scores and res.scores.get("val") is not None:
    out["test_scores_SxZxQxA"] = res.scores["test"]
    out["val_scores_SxZxVxA"] = res.scores["val"]
    if res.scores.get("val_idx") is not None:
      val_idx = np.broadcast_to(res.scores["val_idx"], res.scores["val"].shape[:3])
      out["val_idx_SxZxV"] = val_idx.astype(np.int32)
      out["val_labels_SxZxVxA"] = np.asarray(data.labels_QxA)[val_idx]
  return out


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


def evaluate_choices(choices_SxZxQ: np.ndarray, test: metrics.TestSet) -> tuple[dict, np.ndarray]:
  """(metrics with leading [S*R], per-row performance [S, Z, Q]) of a router grid's choices."""
  S, R, Q = choices_SxZxQ.shape
  sel = metrics.one_hot(jnp.asarray(choices_SxZxQ.reshape(S * R, Q)), test.num_candidates)
  ms, rows = evaluate_selections(sel, test)
  return ms, rows.reshape(S, R, Q)


def baseline_selections(history: History, test: metrics.TestSet) -> dict[str, Baseline]:
  """Every baseline of the setting as a selection over the test rows."""
  return baselines(history, test)
