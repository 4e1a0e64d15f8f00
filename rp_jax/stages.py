"""The pure stages of a sweep, one setting at a time: encode -> profiles -> routers -> metrics.

``SettingContext`` holds what every stage of one setting reads (its History, test rows, profile
specs, the encoder, baselines and cost setting) and is built once per setting
(``make_context``). ``rp_jax.sweep`` orchestrates the stages (which run, the stage cache,
progress, outputs); ``rp_jax.deploy`` and the tests call the very same ones:

  ctx = make_context(config, history, embed)
  pset = profiles(ctx, log)                       # every profile spec, [S, Z, M, D]
  rin = router_inputs(ctx, pset, "prompt")        # RouterData + normalised candidate profiles
  out = router_grid(ctx, "mlp", rin, log)         # one compiled call over its cells
  rows, cells = grid_rows(ctx, "mlp", rin, out)   # results rows, {CellKey: per-row performance}

Host-side text work (encoding, summaries) happens before the jit boundary; the profile, router
and metric grids are single compiled calls.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax import config as cfg_lib
from rp_jax import graphs, io, metrics, progress, results
from rp_jax.config import ProfileSpec
from rp_jax.cost import stage as frontier
from rp_jax.data.holdout import reveal_quiz
from rp_jax.profiles import quiz as quiz_lib
from rp_jax.profiles.build import ProfileInputs, ProfileOptions, ProfileSet, build_profiles
from rp_jax.routers import grid, registry, validation
from rp_jax.routers.baselines import Baseline, baselines
from rp_jax.routers.data import RouterData, make_router_data
from rp_jax.text import encode_cached, make_encoder
from rp_jax.text.summarize import make_summarizer
from rp_jax.types import QUIZ_SEP, History

Log = Callable[[str], None]


# -- text --------------------------------------------------------------------------------------


def make_embed(config):
  """(encoder, embed) where embed(texts) -> [n, D] float32 goes through the embedding cache.

  Build it once per run: the MiniLM encoder loads its weights when it is made.
  """
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


def router_history(history: History, query_format: str) -> History:
  """The History whose query texts are what routers (and the graph's query nodes) read.

  "prompt": the formatted prompt the LLM receives (``History.query_prompts``); "raw": the query.
  """
  if query_format == "raw":
    return history
  if query_format != "prompt":
    raise ValueError(f"unknown query_format {query_format!r}; expected 'prompt' or 'raw'")
  return history.replace(query_texts=history.query_prompts)


def quiz_settings(config, cold: History, full: History, embed) -> list[History]:
  """One History per (method, k) of ``config.quiz``: ``cold`` with its held-out models'
  answers to that quiz revealed (``data.holdout.reveal_quiz``; k = 0 once, as ``none-0``).

  The quiz is chosen before any new model is seen, among the training queries with a known
  outcome for some seen candidate, from their embeddings, tasks and the *seen* candidates'
  outcomes only (``profiles.quiz.choose_quiz``; one seeded quiz per (method, k) for every new
  model).
  """
  q = config.quiz
  train = cold.train_queries
  seen = np.setdiff1d(cold.candidates, cold.held_out)
  outcomes_QxA = cold.outcomes_QxM[np.ix_(train, seen)]
  eligible = np.isfinite(outcomes_QxA).any(1)
  emb = np.asarray(embed([cold.query_texts[i] for i in train]), np.float32)
  kw = {"emb_QxD": emb, "outcomes_QxA": outcomes_QxA, "task_Q": cold.query_task[train]}
  out = []
  ks = q.ks_lomo if cold.setting.startswith("lomo") and q.ks_lomo else q.ks
  for k in sorted({int(k) for k in ks}):
    for method in q.methods if k else ("none",):
      key = jax.random.fold_in(jax.random.key(int(q.seed)), k)
      idx = quiz_lib.choose_quiz(method, k, eligible_Q=eligible, key=key, **kw) if k else []
      name = f"{cold.setting}{QUIZ_SEP}{method}-{k}"
      out.append(reveal_quiz(cold, full, train[np.asarray(idx, np.int64)], setting=name))
  return out


# -- the per-setting context -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SettingContext:
  """What every stage of one setting reads, built once (``make_context``).

  Attributes:
    config: the sweep config.
    history: the setting's History (query texts as routers read them).
    test: its test rows (None for a History without any: profiles only).
    specs: the profile specs the setting builds.
    embed: texts -> [n, D] float32 (the run's encoder, through the embedding cache).
    baselines: name -> Baseline selection over the test rows.
    cost: the cost–quality setting, or None (no costs, or ``config.cost_quality`` off).
    seeds: the router (and trainable-profile) seeds.
  """

  config: Any
  history: History
  test: metrics.TestSet | None
  specs: tuple[ProfileSpec, ...]
  embed: Callable[[Sequence[str]], np.ndarray]
  baselines: dict[str, Baseline]
  cost: frontier.CostSetting | None
  seeds: tuple[int, ...]

  @property
  def name(self) -> str:
    return self.history.setting

  @functools.cached_property
  def query_emb_QxD(self) -> np.ndarray:
    """[Q, D] embeddings of every query of the History (computed once per setting)."""
    return np.asarray(self.embed(self.history.query_texts), np.float32)


def make_context(config, history: History, embed, seeds: Sequence[int] | None = None):
  """The SettingContext of ``history`` under ``config`` (baselines and cost setting included)."""
  test, bl, cost = None, {}, None
  if len(history.test_queries):  # a History without test rows (onboarding) only builds profiles
    test = metrics.TestSet.from_history(history)
    bl = baselines(history, test)
    calib = str(config.get("calibration", "platt"))
    cost = frontier.cost_setting(history, test, bl, calib) if config.cost_quality else None
  specs = tuple(cfg_lib.profile_specs(config, history.setting))
  seeds = tuple(range(int(config.seeds))) if seeds is None else tuple(int(s) for s in seeds)
  return SettingContext(config, history, test, specs, embed, bl, cost, seeds)


# -- profiles ------------------------------------------------------------------------------------


def profiles(ctx: SettingContext, log: Log) -> ProfileSet:
  """Every spec's profile of one setting, stacked as ``ProfileSet.profile_SxZxMxD``."""
  config, history = ctx.config, ctx.history
  graph, info = graphs.build_graph(history)
  needs = lambda name: any(s.profile == name for s in ctx.specs)
  options = ProfileOptions(
    summarize=make_summarize(config) if needs("text_gnn") else None,
    max_hops=int(config.max_hops),
    index_seed=int(config.index_seed),
    flat_seed=int(config.flat_seed),
    emb_l2=bool(config.emb_gnn.l2_normalize),
    trainable_config=cfg_lib.trainable_settings(config) if needs("trainable") else None,
  )
  every = float(config.progress_every_s)
  if options.trainable_config is not None and every > 0:
    options = dataclasses.replace(
      options,
      trainable_config=dataclasses.replace(options.trainable_config, report_progress=True),
    )
  x_NxD = np.asarray(ctx.embed(info.node_texts), np.float32)
  inp = ProfileInputs(graph, info, x_NxD, ctx.embed, ctx.seeds, history, options)
  han = sum(s.profile == "trainable" for s in ctx.specs) * len(ctx.seeds)
  total = han * int(getattr(options.trainable_config, "steps", 0) or 0)
  with progress.tracking("trainable HAN", total, log, every):
    return build_profiles(list(ctx.specs), inp, log)


PROFILE_INDEX_COLUMNS = (
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
)


def write_profiles(folder: pathlib.Path, ctx: SettingContext, pset: ProfileSet) -> None:
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
      "encoder": ctx.config.encoder,
      "summariser": ctx.config.summarizer if spec.profile == "text_gnn" else "",
    }
    if pset.per_seed[s]:
      for r in range(pset.profile_SxZxMxD.shape[1]):
        entries.append((f"{spec.id}-s{r}", pset.profile_SxZxMxD[s, r], {**meta, "seed": r}))
    else:
      entries.append((spec.id, pset.profile_SxZxMxD[s, 0], {**meta, "seed": ""}))
  io.write_profile_dir(folder, ctx.history.model_names, entries, list(PROFILE_INDEX_COLUMNS))
  for form, rec in pset.texts.items():
    io.write_json(folder / f"text_gnn_texts_{form}.json", rec)


def normalize_profiles(profile_xMxD: np.ndarray, mode: str) -> np.ndarray:
  """Every model's profile on one scale: "l2" = unit norm rows (zero rows stay zero); "none"."""
  if mode == "none":
    return profile_xMxD
  if mode != "l2":
    raise ValueError(f"unknown profile_norm {mode!r}; expected 'l2' or 'none'")
  norm = np.linalg.norm(profile_xMxD, axis=-1, keepdims=True)
  return (profile_xMxD / np.where(norm > 0, norm, 1.0)).astype(np.float32)


# -- router inputs (the one pipeline of the sweep, deploy and the tests) -----------------------------


def query_features(emb_QxD: np.ndarray, task_Q: np.ndarray, num_tasks: int, inputs: str):
  """[Q, D] query embeddings ("prompt"), or [Q, D + T] with the task one-hot ("prompt+task").

  ``task_Q``: each query's task index into the router's T tasks; -1 (an unknown task) gets an
  all-zero one-hot.
  """
  emb_QxD = np.asarray(emb_QxD, np.float32)
  if inputs == "prompt":
    return emb_QxD
  if inputs != "prompt+task":
    raise ValueError(f"unknown router inputs {inputs!r}; expected 'prompt' or 'prompt+task'")
  task_Q = np.asarray(task_Q, np.int64)
  onehot_QxT = np.zeros((len(task_Q), num_tasks), np.float32)
  known = task_Q >= 0
  onehot_QxT[np.flatnonzero(known), task_Q[known]] = 1.0
  return np.concatenate([emb_QxD, onehot_QxT], axis=1)


class RouterInputs(NamedTuple):
  """What a router grid trains on: the router arrays and the candidates' profiles.

  Attributes:
    inputs: "prompt" or "prompt+task".
    data: RouterData (query features of every History query; pairs, labels, test rows).
    profile_SxZxAxD: the candidates' profiles, scaled by ``config.profile_norm``.
  """

  inputs: str
  data: RouterData
  profile_SxZxAxD: np.ndarray


def router_inputs(ctx: SettingContext, pset: ProfileSet, inputs: str) -> RouterInputs:
  """The router inputs of one input mode: embeddings -> features -> RouterData; profiles
  normalised and cut to the candidates."""
  h = ctx.history
  feats_QxD = query_features(ctx.query_emb_QxD, h.query_task, h.num_tasks, inputs)
  prof = normalize_profiles(pset.profile_SxZxMxD, ctx.config.profile_norm)
  return RouterInputs(inputs, make_router_data(h, feats_QxD), prof[:, :, h.candidates])


# -- router grids --------------------------------------------------------------------------------


def grid_is_sequential(mode: str) -> bool:
  """``config.grid`` -> train the cells one after another inside the compiled call?"""
  if mode == "auto":
    return jax.default_backend() == "cpu" and len(jax.devices()) == 1
  return mode == "sequential"


class GridCell(NamedTuple):
  """One cell of a router grid: its key, profile spec and hyperparameter values."""

  key: results.CellKey
  spec: ProfileSpec
  hparams: dict[str, float]


def cell_grid(
  ctx: SettingContext, router: str, inputs: str, hparams: dict | None = None
) -> list[GridCell]:
  """The cells of one router grid, in grid order: cell ``s * H + h`` is profile spec ``s`` with
  the ``h``-th hyperparameter combination (``config.hparam_grid``; ``hparams``: that one
  combination only). The one definition of the order: ``router_grid`` trains in it and
  ``grid_rows`` labels in it."""
  combos = cfg_lib.hparam_grid(cfg_lib.router_settings(ctx.config, router)[1])
  combos = combos if hparams is None else [{k: float(v) for k, v in hparams.items()}]
  return [
    GridCell(results.cell_key(ctx.name, router, inputs, cfg_lib.hparams_text(hp), spec), spec, hp)
    for spec in ctx.specs
    for hp in combos
  ]


def router_grid(
  ctx: SettingContext,
  router: str,
  rin: RouterInputs,
  log: Log,
  hparams: dict | None = None,
  keep_state: bool = False,
) -> dict[str, np.ndarray]:
  """One router over a setting's profiles x hyperparameter grid x seeds (one compiled call).

  Cells follow ``cell_grid``. ``hparams``: one combination to train instead of the config's grid
  (deploy: the validation-selected values). Returns ``choices_SxZxQ`` [S*H, Z, Q_test],
  ``val_utility_SxZ``, ``best_epoch_SxZ``, and with a cost setting or ``keep_state`` the kept
  states' scores: ``test_scores_SxZxQxA``, ``val_scores_SxZxVxA``, the validation queries
  ``val_idx_SxZxV`` (indices into the RouterData training queries) and their known outcomes
  ``val_labels_SxZxVxA``; with ``keep_state`` also ``state`` (leading [S*H, Z]).
  """
  config, data = ctx.config, rin.data
  static = cfg_lib.router_settings(config, router)[0]
  cells = cell_grid(ctx, router, rin.inputs, hparams)
  per_spec = len(cells) // len(ctx.specs)
  prof = np.repeat(np.asarray(rin.profile_SxZxAxD, np.float32), per_spec, axis=0)
  hp = {k: np.asarray([c.hparams[k] for c in cells]) for k in cells[0].hparams}
  folds = cfg_lib.router_folds(config, router)
  splits = None
  if config.val_split == "stratified":
    splits = validation.validation_splits(data, float(config.val_fraction), folds, ctx.seeds)
  if router == "mlp":
    log(f"  mlp: {data.num_train} training queries, {len(data.pairs_Px3)} pairs")
  every = float(config.progress_every_s)
  report = every > 0 and registry.family(router).trainable
  epochs = int(getattr(static, "epochs", 1))
  total = len(prof) * len(ctx.seeds) * (folds if splits is not None else 1) * epochs
  with progress.tracking(router, total, log, every):
    res = grid.train_grid(
      router,
      static,
      data,
      prof,
      list(ctx.seeds),
      hp,
      splits=splits,
      chunk_size=int(config.chunk_size),
      shard=bool(config.shard),
      sequential=grid_is_sequential(cfg_lib.router_grid_mode(config, router)),
      return_scores=ctx.cost is not None or keep_state or len(ctx.history.held_out) > 0,
      return_state=keep_state,
      report_progress=report,
    )
  return _grid_outputs(res, data)


def _grid_outputs(res: grid.GridResult, data: RouterData) -> dict[str, np.ndarray]:
  out = {
    "choices_SxZxQ": res.choices_SxZxQ,
    "val_utility_SxZ": res.val_utility_SxZ,
    "best_epoch_SxZ": res.best_epoch_SxZ,
  }
  if res.state is not None:
    out["state"] = res.state
  if res.scores is not None and res.scores["val"].shape[2]:
    out["test_scores_SxZxQxA"] = res.scores["test"]
    out["val_scores_SxZxVxA"] = res.scores["val"]
    val_idx = np.broadcast_to(res.scores["val_idx"], res.scores["val"].shape[:3])
    out["val_idx_SxZxV"] = val_idx.astype(np.int32)
    out["val_labels_SxZxVxA"] = np.asarray(data.labels_QxA)[val_idx]
  return out


def grid_rows(ctx: SettingContext, rin: RouterInputs, router: str, out: dict) -> results.GridRows:
  """The results rows, per-row performance and cost rows of one evaluated router grid."""
  cells = cell_grid(ctx, router, rin.inputs)
  ms, perf_SxZxQ = evaluate_choices(out["choices_SxZxQ"], ctx.test)
  row_keys = [
    {
      **results.spec_keys(c.spec),
      "router": router,
      "inputs": rin.inputs,
      "hparams": c.key.hparams,
      "seed": seed,
      "val_utility": float(out["val_utility_SxZ"][i, r]),
    }
    for i, c in enumerate(cells)
    for r, seed in enumerate(ctx.seeds)
  ]
  cost = results.CostRows()
  if ctx.cost is not None and "val_labels_SxZxVxA" in out:
    scores = frontier.CellScores(
      out["test_scores_SxZxQxA"],
      out["val_scores_SxZxVxA"],
      out["val_labels_SxZxVxA"],
      np.asarray(rin.data.train_ids)[out["val_idx_SxZxV"]],
    )
    rows = frontier.cell_rows(ctx.name, [c.key.name for c in cells], scores, ctx.cost)
    names = ctx.test.candidate_names
    for r in rows["pairs"]:
      r["weak"], r["strong"] = names[r["weak"]], names[r["strong"]]
    cost.add(**rows)
  rows = results.metric_rows(ctx.name, ms, ctx.test, row_keys)
  keys = [c.key for c in cells]
  ignoring = {}
  if len(ctx.history.held_out) and "test_scores_SxZxQxA" in out:
    ignoring = dict(zip(keys, ignoring_new_models(ctx, out["test_scores_SxZxQxA"]), strict=True))
  return results.GridRows(rows, dict(zip(keys, perf_SxZxQ, strict=True)), cost, ignoring)


def ignoring_new_models(ctx: SettingContext, test_scores_SxZxQxA: np.ndarray) -> np.ndarray:
  """[S, Z, Q] per-row performance of the same cells routing among the seen candidates only
  (the held-out models' scores masked): the "ignore the new model" end of a cold-start curve."""
  new_A = np.asarray(ctx.test.new_A)
  masked = np.where(new_A, -np.inf, np.asarray(test_scores_SxZxQxA, np.float32))
  choices = np.argmax(masked, axis=-1)
  perf_QxA = np.asarray(ctx.test.perf_QxA)
  return np.take_along_axis(perf_QxA[None, None], choices[..., None], axis=-1)[..., 0]


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


def baseline_rows(ctx: SettingContext) -> tuple[list[dict], dict[str, np.ndarray]]:
  """(results rows, name -> per-row performance [Q]) of the setting's baselines."""
  bl = ctx.baselines
  ms, rows_BxQ = evaluate_selections(np.stack([b.sel_QxA for b in bl.values()]), ctx.test)
  rows = results.metric_rows(ctx.name, ms, ctx.test, [results.baseline_keys(n) for n in bl])
  return rows, dict(zip(bl, rows_BxQ, strict=True))


def baseline_cost_rows(ctx: SettingContext) -> tuple[list[dict], list[dict]]:
  """(front rows, score rows) of the baselines on the cost–quality axes (needs ``ctx.cost``)."""
  return frontier.baseline_rows(ctx.name, ctx.baselines, ctx.test, ctx.cost)
