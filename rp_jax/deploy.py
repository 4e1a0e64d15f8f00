"""Train one router for deployment, save it, route new queries, add a new LLM without retraining.

A ``RouterBundle`` is everything needed to route a query: the router family, its static config,
its traced hyperparameters and its trained *state* (``rp_jax.routers.base``: the parameters, and
e.g. the graph router's query nodes), the candidates' profiles, and the encoder that embeds
queries. Routing calls the family's ``score`` through ``rp_jax.routers.grid.route`` — the very
function the sweep evaluates test rows with — so the deployed router is the evaluated one. It is
saved as ``bundle.json`` (metadata) plus ``arrays.npz`` (state flattened by path, profiles): no
pickles.

Adding a new LLM: the routers score a candidate through its profile only, so a new model joins a
trained router by appending its profile row (``add_candidate``). The profile must come from the
same profile function as the others, e.g. the emb_gnn profile of the model computed on a graph
that includes its family, text and benchmark scores (``profile_for_models``) — the paper's
cold-start use of profiles.

``run(config, workdir, ...)`` is the ``launch.route`` command: fit, add models, route JSONL.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import IO

import jax
import numpy as np
from absl import logging
from flax import traverse_util

from rp_jax import config as cfg_lib
from rp_jax import io, onboard, stages
from rp_jax import train as tr
from rp_jax.cost import model as cost_model
from rp_jax.data import load_history
from rp_jax.routers import grid, registry, validation
from rp_jax.types import DataError, History


@dataclasses.dataclass
class RouterBundle:
  """A trained router ready to route (see module docstring).

  Attributes:
    router: registry name of the family.
    router_config: its static config as a dict (``registry.make_config(router, **it)``).
    hparams: the traced hyperparameters it was trained with (scoring may read them).
    state: the family's state (nested dict of arrays); empty for training-free routers.
    profile_AxD: candidate profiles, in ``candidate_names`` order.
    candidate_names: [A] names.
    encoder: how queries are embedded (``encoder``, ``name``, ``dim``, ...).
    profile_id: the profile spec the candidates' profiles come from.
    inputs: "prompt" (the query text) or "prompt+task" (also the query's task, one-hot over
      ``task_names``).
    task_names: the tasks a "prompt+task" router knows (an unknown task gets no task feature).
    query_format: the text the router was trained on ("prompt": the formatted prompt an LLM
      receives; "raw": the bare query): route the same kind of text.
    cost: the cost model's arrays (``rp_jax.cost.model.CostModel``: calibration, prices, usage
      statistics, the validation front of the budget mode); empty without prices.
    info: provenance (setting, data source, seed, best epoch).
  """

  router: str
  router_config: dict
  hparams: dict
  state: dict
  profile_AxD: np.ndarray
  candidate_names: list[str]
  encoder: dict
  profile_id: str
  inputs: str = "prompt"
  task_names: list[str] = dataclasses.field(default_factory=list)
  query_format: str = "prompt"
  cost: dict = dataclasses.field(default_factory=dict)
  info: dict = dataclasses.field(default_factory=dict)

  def static_config(self):
    return registry.make_config(self.router, **self.router_config)


def profile_for_models(config, history: History, profile: str, embed, seed: int = 0) -> np.ndarray:
  """[M, D] profile of every pool model under one profile entry (seed picks the trainable HAN),
  scaled as the router sees it (``config.profile_norm``)."""
  ctx = stages.make_context(_one_profile(config, profile), history, embed, seeds=[seed])
  pset = stages.profiles(ctx, lambda s: None)
  return stages.normalize_profiles(pset.profile_SxZxMxD, config.profile_norm)[0, 0]


def _one_profile(config, profile: str):
  """The config with ``profile`` as its only profile entry, in every setting."""
  cfg = config.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.profiles, cfg.profiles_newllm, cfg.profiles_lomo = (profile,), (), ()
  return cfg


def single_hparams(config, router: str) -> dict[str, float]:
  """The config's one value of each traced hyperparameter of ``router`` (ValueError if swept)."""
  combos = cfg_lib.hparam_grid(cfg_lib.router_settings(config, router)[1])
  if len(combos) != 1:
    swept = sorted(k for k, v in cfg_lib.router_settings(config, router)[1].items() if len(v) > 1)
    raise ValueError(
      f"config.{router} sweeps {swept}; a deployed router needs one value each: pass "
      "hparams= (e.g. the validation-selected values in quality.csv) or set single values"
    )
  return combos[0]


def fit(
  config,
  history: History,
  profile: str,
  router: str,
  seed: int = 0,
  log=logging.info,
  hparams: dict[str, float] | None = None,
) -> RouterBundle:
  """Builds one profile, trains one router on it (one seed) and returns the bundle.

  The router is trained by the sweep's own pipeline (``stages.make_context``, ``profiles``,
  ``router_inputs``, ``router_grid`` with one profile, one hyperparameter setting and one seed:
  the same splits, epoch selection and cross-validation folds), and the bundle keeps that cell's
  state and, where the data has prices and token counts, its cost model (``cost.model.fit``:
  the calibration and λ grid the sweep's cost stage uses).

  Args:
    hparams: the traced hyperparameters to train with (e.g. the validation-selected values of a
      sweep's ``quality.csv``); None: the config's, which must then hold one value each.
  """
  enc, embed = stages.make_embed(config)
  quiz = None
  if "+probe" in profile or profile.startswith("probe"):
    # A probe profile measures every candidate on the bundle's quiz (the one a new model will
    # answer), so that seen and new models share one profile space (rp_jax.onboard).
    quiz = onboard.choose_quiz(config, history, int(config.route.get("quiz_size", 50)))
    history = history.replace(quiz_queries=np.asarray(quiz["query_ids"], np.int32))
  ctx = stages.make_context(_one_profile(config, profile), history, embed, seeds=[seed])
  spec = ctx.specs[0]
  inputs = str(config.route.get("inputs", "prompt")) if "route" in config else "prompt"
  hp = {k: float(v) for k, v in (hparams or single_hparams(config, router)).items()}
  rin = stages.router_inputs(ctx, stages.profiles(ctx, log), inputs)
  out = stages.router_grid(ctx, router, rin, log, hparams=hp, keep_state=True)
  static = grid.resolve_config(router, cfg_lib.router_settings(config, router)[0], rin.data)
  folds = cfg_lib.router_folds(config, router) if config.val_split == "stratified" else 1
  info = {"setting": history.setting, "source": history.source, "seed": seed, "folds": folds}
  if quiz is not None:
    info["quiz"] = quiz
  if registry.family(router).trainable:
    info["best_epoch"] = int(out["best_epoch_SxZ"][0, 0])
    log(f"trained {router} on {spec.id}: best epoch {info['best_epoch']}")
  return RouterBundle(
    router=router,
    router_config=dataclasses.asdict(static),
    hparams=hp,
    state=jax.tree.map(lambda x: np.asarray(x)[0, 0], out["state"]),
    profile_AxD=rin.profile_SxZxAxD[0, 0].astype(np.float32),
    candidate_names=list(history.candidate_names),
    encoder={
      "encoder": config.encoder,
      "name": enc.name,
      "dim": int(enc.dim),
      "encoder_dim": int(config.encoder_dim),
      "model_dir": config.model_dir,
    },
    profile_id=spec.id,
    inputs=inputs,
    task_names=list(history.task_names),
    query_format=str(config.data.query_format),
    cost=_cost_model(ctx, rin, out, folds),
    info=info,
  )


def _cost_model(ctx, rin, out, folds: int) -> dict:
  """The bundle's cost model arrays (empty without validation scores, prices or tokens)."""
  if "val_scores_SxZxVxA" not in out:
    return {}
  data, val_idx = rin.data, out["val_idx_SxZxV"][0, 0]
  split = None
  if ctx.config.val_split == "stratified":
    split = validation.validation_splits(data, ctx.config.val_fraction, folds, ctx.seeds)
    split = tr.QuerySplit(*(np.asarray(x)[0] for x in split))
  u = _oof_utility(data, split, val_idx)
  model = cost_model.fit(
    ctx.history,
    out["val_scores_SxZxVxA"][0, 0],
    out["val_labels_SxZxVxA"][0, 0],
    u,
    data.train_ids[val_idx],
    str(ctx.config.get("calibration", "platt")),
  )
  return {} if model is None else model.arrays()


def _oof_utility(data, split, val_idx: np.ndarray) -> np.ndarray:
  """[V, A] the validation utility table of each validation query, from its own fold."""
  if split is None or np.ndim(split.val_idx) == 1:
    sp = split if split is not None else tr.QuerySplit(val_idx, np.zeros(0, np.int32))
    return np.asarray(validation.utility_table(data, sp))[val_idx]
  rows = [
    np.asarray(validation.utility_table(data, tr.QuerySplit(v, t)))[v]
    for v, t in zip(np.asarray(split.val_idx), np.asarray(split.train_idx), strict=True)
  ]
  return np.concatenate(rows)


def add_candidate(
  bundle: RouterBundle,
  name: str,
  profile_D: np.ndarray,
  prices_2: np.ndarray | None = None,
  evidence: tuple[np.ndarray, np.ndarray] | None = None,
) -> RouterBundle:
  """A copy of the bundle with one more candidate (no retraining; see module docstring).

  ``prices_2``: its $ per million tokens (input, output), needed when the bundle has a cost
  model; the new candidate then uses the shared calibration and the usage log's medians.
  ``evidence``: (evidence_N, known_N) on the memory rows of a family with per-candidate
  evidence (kNN; ``rp_jax.onboard`` passes a new model's quiz answers); none by default.
  """
  if name in bundle.candidate_names:
    raise ValueError(f"candidate {name!r} is already in the router ({bundle.candidate_names})")
  p = np.asarray(profile_D, np.float32).reshape(-1)
  if p.shape[0] != bundle.profile_AxD.shape[1]:
    raise ValueError(
      f"profile of {name!r} has dimension {p.shape[0]}; the router's profiles have "
      f"{bundle.profile_AxD.shape[1]} (build it with the same profile spec {bundle.profile_id!r})"
    )
  cost = bundle.cost
  if cost:
    if prices_2 is None or not np.isfinite(np.asarray(prices_2, np.float64)).all():
      raise ValueError(f"this router has a cost model: give the prices of {name!r} (prices_2=)")
    cost = cost_model.CostModel.from_arrays(cost).add_candidate(prices_2).arrays()
  state = bundle.state
  fam = registry.family(bundle.router)
  if fam.extend is not None:
    ev, known = evidence if evidence is not None else (0.0, 0.0)
    state = jax.tree.map(np.asarray, fam.extend(state, ev, known))
  return dataclasses.replace(
    bundle,
    profile_AxD=np.concatenate([bundle.profile_AxD, p[None]]),
    candidate_names=[*bundle.candidate_names, name],
    cost=cost,
    state=state,
  )


def score_embeddings(bundle: RouterBundle, query_QxD: np.ndarray) -> np.ndarray:
  """[Q, A] scores of embedded queries (the family's ``score``, as in the evaluation)."""
  return _apply(grid.scores, bundle, query_QxD)


def route_embeddings(bundle: RouterBundle, query_QxD: np.ndarray) -> np.ndarray:
  """[Q] int index into ``bundle.candidate_names`` for embedded queries."""
  return _apply(grid.route, bundle, query_QxD)


def _apply(fn, bundle: RouterBundle, query_QxD: np.ndarray) -> np.ndarray:
  """``fn`` (``grid.scores`` or ``grid.route``) of the bundle's trained cell, as a numpy array
  (a cross-validated cell scores with the mean of its fold models)."""
  return np.asarray(
    fn(
      bundle.router,
      bundle.static_config(),
      bundle.state,
      bundle.profile_AxD,
      query_QxD,
      bundle.hparams,
      ensemble=_ensemble(bundle),
    )
  )


def _ensemble(bundle: RouterBundle) -> bool:
  return int(bundle.info.get("folds", 1)) > 1 and not registry.family(bundle.router).seed_free


def query_features(
  bundle: RouterBundle, emb_QxD: np.ndarray, tasks: Sequence[str | None] | None = None
) -> np.ndarray:
  """The router's input features of embedded queries (``stages.query_features``, as the sweep;
  a task the router does not know gets no task feature)."""
  if bundle.inputs != "prompt" and (tasks is None or len(tasks) != len(emb_QxD)):
    raise ValueError(
      f"this router reads the query's task too (inputs {bundle.inputs!r}): give one task name "
      f"per query (known tasks: {bundle.task_names})"
    )
  task_Q = _task_ids(bundle, tasks, len(emb_QxD))
  return stages.query_features(emb_QxD, task_Q, len(bundle.task_names), bundle.inputs)


def route_texts(
  bundle: RouterBundle,
  texts: Sequence[str],
  embed,
  tasks: Sequence[str | None] | None = None,
  *,
  lam: float | None = None,
  max_cost: float | None = None,
) -> list[str]:
  """The chosen model name for each query text (``embed`` = the bundle's encoder, cached).

  Args:
    tasks: each query's task name (for "prompt+task" routers; also sharpens cost estimates).
    lam: route by argmax p̂ − λ·cost (the bundle's cost model) instead of the plain argmax.
    max_cost: budget mode: the λ whose validation front stays within this $ per query.
  """
  return [
    bundle.candidate_names[i] for i in route_indices(bundle, texts, embed, tasks, lam, max_cost)[0]
  ]


def route_indices(bundle, texts, embed, tasks=None, lam=None, max_cost=None):
  """([Q] chosen candidate positions, [Q] estimated $ of the choice or NaN, λ used or None)."""
  feats = query_features(bundle, np.asarray(embed(list(texts)), np.float32), tasks)
  if lam is None and max_cost is None:
    idx = route_embeddings(bundle, feats)
    est = np.full(len(idx), np.nan)
    if bundle.cost:
      model = cost_model.CostModel.from_arrays(bundle.cost)
      est = model.expected_cost(texts, _task_ids(bundle, tasks, len(texts)))[
        np.arange(len(idx)), idx
      ]
    return idx, est, None
  if not bundle.cost:
    raise ValueError("this router has no cost model (its training data had no prices or tokens)")
  if lam is not None and max_cost is not None:
    raise ValueError("give lam or max_cost, not both")
  model = cost_model.CostModel.from_arrays(bundle.cost)
  if max_cost is not None:
    lam = model.lam_for_budget(max_cost).lam
  cost_QxA = model.expected_cost(texts, _task_ids(bundle, tasks, len(texts)))
  idx = model.route(score_embeddings(bundle, feats), cost_QxA, float(lam))
  return idx, cost_QxA[np.arange(len(idx)), idx], float(lam)


def _task_ids(bundle: RouterBundle, tasks, n: int) -> np.ndarray:
  if tasks is None:
    return np.full(n, -1)
  return np.asarray([bundle.task_names.index(t) if t in bundle.task_names else -1 for t in tasks])


def save(bundle: RouterBundle, folder) -> None:
  """``folder/bundle.json`` + ``folder/arrays.npz`` (atomic writes, no pickles)."""
  folder = pathlib.Path(folder)
  arrays = {"profile_AxD": bundle.profile_AxD}
  flat = traverse_util.flatten_dict(bundle.state, sep="/")
  arrays.update({f"state/{k}": np.asarray(v) for k, v in flat.items()})
  arrays.update({f"cost/{k}": np.asarray(v) for k, v in bundle.cost.items()})
  io.write_npz(folder / "arrays.npz", arrays)
  meta = dataclasses.asdict(bundle)
  for k in ("state", "profile_AxD", "cost"):
    meta.pop(k)
  io.write_json(folder / "bundle.json", meta)


def load(folder) -> RouterBundle:
  """Reads a saved bundle (clear error naming the missing file or key)."""
  folder = pathlib.Path(folder)
  for f in ("bundle.json", "arrays.npz"):
    if not (folder / f).is_file():
      raise DataError(
        str(folder / f), None, "missing router bundle file (save one with launch.route --fit)"
      )
  meta = json.loads((folder / "bundle.json").read_text(encoding="utf-8"))
  fields = {f.name for f in dataclasses.fields(RouterBundle)} - {"state", "profile_AxD", "cost"}
  missing = sorted(k for k in fields - {"info"} if k not in meta)
  if missing:
    raise DataError(str(folder / "bundle.json"), None, f"missing key(s) {missing}")
  arrays = io.read_npz(folder / "arrays.npz")
  if "profile_AxD" not in arrays:
    raise DataError(str(folder / "arrays.npz"), "profile_AxD", "missing array")
  flat = {k[len("state/") :]: v for k, v in arrays.items() if k.startswith("state/")}
  state = traverse_util.unflatten_dict(flat, sep="/") if flat else {}
  cost = {k[len("cost/") :]: v for k, v in arrays.items() if k.startswith("cost/")}
  registry.family(meta["router"])  # a clear error for an unknown family
  return RouterBundle(
    **{k: meta[k] for k in fields if k in meta},
    state=state,
    profile_AxD=arrays["profile_AxD"],
    cost=cost,
  )


# -- the launch.route command -------------------------------------------------------------------


def read_queries(path: str, stdin: IO[str] | None = None) -> tuple[list[str], list[str | None]]:
  """(texts, tasks) from JSONL (``{"query": ..., "task": ...}`` per line; ``task`` optional),
  plain text lines, or '-' (stdin)."""
  if path == "-":
    lines = (stdin or sys.stdin).read().splitlines()
  else:
    p = pathlib.Path(path)
    if not p.is_file():
      raise DataError(path, None, "queries file not found")
    lines = p.read_text(encoding="utf-8").splitlines()
  texts, tasks = [], []
  for i, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      obj = json.loads(line)
    except json.JSONDecodeError:
      obj = line  # a plain text line is a query too
    task = None
    if isinstance(obj, dict):
      if not isinstance(obj.get("query"), str) or not obj["query"].strip():
        raise DataError(path, f"line {i}", "expected a JSON object with a non-empty 'query'")
      task = obj.get("task")
      if task is not None and not isinstance(task, str):
        raise DataError(path, f"line {i}", "'task' must be a string (a task name)")
      obj = obj["query"]
    texts.append(str(obj))
    tasks.append(task)
  if not texts:
    raise DataError(path, None, 'no query; expected one JSON line {"query": ...} per query')
  return texts, tasks


@dataclasses.dataclass(frozen=True)
class RouteRequest:
  """What one ``launch.route`` command asks for (each part optional, done in this order).

  Attributes:
    fit: train the router (``config.route``) and save the bundle.
    add_models: pool models to add as candidates, without retraining.
    queries: JSONL / text file of queries, or '-' for stdin; one JSON line ``{"query", "model",
      "expected_cost"}`` per query is written out.
    lam: route by argmax p̂ − λ·cost (the bundle's cost model).
    max_cost: budget mode: the λ whose validation front stays within this $ per query.
    print_quiz: > 0: print the bundle's quiz of this size (choose and save it if needed).
    quiz_outcomes: a new model's answers to the quiz (JSONL ``{"quiz", "query", "outcome"}``):
      with one ``add_models`` name, that model joins from its answers (``rp_jax.onboard``).
    model_card: the new model's card (JSON: family, text, input_price, output_price); needed
      for a model outside the data's pool.
  """

  fit: bool = False
  add_models: tuple[str, ...] = ()
  queries: str | None = None
  lam: float | None = None
  max_cost: float | None = None
  print_quiz: int = 0
  quiz_outcomes: str | None = None
  model_card: str | None = None


def run(config, workdir, request: RouteRequest, out: IO[str] | None = None, log=logging.info):
  """``launch.route``: fit and save a bundle, add pool models as candidates, route queries.

  Args:
    config: a route config (``configs/route.py``: data, profile, router, seed).
    workdir: the bundle's folder.
    request: what to do (``RouteRequest``).
    out: where routed queries are written (stdout by default).
  """
  folder = pathlib.Path(workdir)
  if request.fit:
    history = _route_history(config)
    bundle = fit(config, history, config.route.profile, config.route.router, config.route.seed, log)
    save(bundle, folder)
    log(f"saved {bundle.router} router on {bundle.profile_id} to {folder}")
  if request.print_quiz:
    bundle, quiz = bundle_quiz(config, load(folder), request.print_quiz)
    save(bundle, folder)
    for line in onboard.quiz_lines(quiz):
      print(json.dumps(line), file=out or sys.stdout)
  if request.add_models:
    bundle = load(folder)
    if request.quiz_outcomes:
      bundle = add_new_model(config, bundle, request)
    else:
      bundle = add_pool_models(config, bundle, request.add_models)
    save(bundle, folder)
    log(f"candidates now: {', '.join(bundle.candidate_names)}")
  if request.queries:
    route_file(config, load(folder), request, out or sys.stdout)


def _route_history(config) -> History:
  """The History a route config trains on (query texts as the router reads them)."""
  fmt = config.data.query_format
  return stages.router_history(load_history(config.data, config.settings[0]), fmt)


def bundle_quiz(config, bundle: RouterBundle, k: int) -> tuple[RouterBundle, dict]:
  """(the bundle with its quiz of size k recorded, that quiz): the stored one when it has k
  queries, else a new one — unless the bundle's probe profiles were measured on another."""
  quiz = bundle.info.get("quiz")
  if quiz is not None and len(quiz["query_ids"]) == k:
    return bundle, quiz
  if quiz is not None and "probe" in bundle.profile_id:
    raise ValueError(
      f"this router's probe profiles were measured on its {len(quiz['query_ids'])}-query quiz: "
      f"print that one (--print_quiz={len(quiz['query_ids'])})"
    )
  quiz = onboard.choose_quiz(config, _route_history(config), k)
  return dataclasses.replace(bundle, info={**bundle.info, "quiz": quiz}), quiz


def add_new_model(config, bundle: RouterBundle, request: RouteRequest) -> RouterBundle:
  """The bundle with one new model added from its quiz answers (and card): no retraining."""
  if len(request.add_models) != 1:
    raise ValueError("--quiz_outcomes answers for one model: give exactly one --add_models name")
  name = request.add_models[0]
  answers = onboard.load_answers(request.quiz_outcomes, bundle.info.get("quiz"))
  card = onboard.read_model_card(request.model_card) if request.model_card else None
  history, m = onboard.onboarding_history(_route_history(config), name, answers, card)
  _, embed = stages.make_embed(config)
  prof = profile_for_models(config, history, config.route.profile, embed, config.route.seed)
  evidence = None
  if "memory_ids_N" in bundle.state:
    evidence = onboard.memory_evidence(bundle.state, answers)
  prices = history.prices_Mx2[m] if bundle.cost else None
  return add_candidate(bundle, name, prof[m], prices, evidence)


def add_pool_models(config, bundle: RouterBundle, names: Sequence[str]) -> RouterBundle:
  """The bundle with models of the data's pool added as candidates (profiles from the same
  profile entry and seed as the trained candidates'; no retraining)."""
  history = _route_history(config)
  unknown = [n for n in names if n not in history.model_names]
  if unknown:
    raise ValueError(
      f"--add_models: {unknown} not in the data's model pool {list(history.model_names)}; a "
      "model outside the pool needs its model card (and its quiz answers)"
    )
  _, embed = stages.make_embed(config)
  prof = profile_for_models(config, history, config.route.profile, embed, config.route.seed)
  for name in names:
    m = history.model_index(name)
    bundle = add_candidate(bundle, name, prof[m], history.prices_Mx2[m] if bundle.cost else None)
  return bundle


def route_file(config, bundle: RouterBundle, request: RouteRequest, out: IO[str]) -> None:
  """Routes the queries of ``request.queries``; one JSON line per query to ``out``."""
  _, embed = stages.make_embed(config)
  texts, tasks = read_queries(request.queries)
  given = None if all(t is None for t in tasks) else tasks
  idx, est, used = route_indices(bundle, texts, embed, given, request.lam, request.max_cost)
  for q, i, c in zip(texts, idx.tolist(), est.tolist(), strict=True):
    line = {"query": q, "model": bundle.candidate_names[i]}
    if np.isfinite(c):
      line["expected_cost"] = c
    if used is not None:
      line["lambda"] = used
    print(json.dumps(line), file=out)
