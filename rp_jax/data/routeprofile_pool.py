"""Readers of the release's ``profile_data/`` folder: model pool, tasks, domains, scores.

Each reader checks its file and fails with a DataError naming file, key and need; facts worth
knowing (ignored names, prices filled from elsewhere) are appended to the caller's ``notes``.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from rp_jax.data import validate as V
from rp_jax.types import DataError


@dataclasses.dataclass
class Pool:
  """The model pool as read from ``model_feature_{setting}.json`` (host-side lists).

  Attributes:
    names, texts: [M] model names and descriptions, in file order.
    family: [M] index into ``family_names``.
    prices: [M] [input, output] $ per million tokens (NaN if missing; filled from candidates).
    family_names, family_texts: [F] from ``model_family_feature.json``.
    cards: the raw model objects (for their scores).
    file: the model-feature file (for error messages).
  """

  names: list[str]
  texts: list[str]
  family: list[int]
  prices: list[list[float]]
  family_names: list[str]
  family_texts: list[str]
  cards: dict
  file: pathlib.Path

  @property
  def index(self) -> dict[str, int]:
    return {m: i for i, m in enumerate(self.names)}


def read_pool(pd_: pathlib.Path, setting: str) -> Pool:
  """Reads the models of one setting and their families; checks every model's fields."""
  f_models = pd_ / f"model_feature_{setting}.json"
  src = str(f_models)
  models = V.read_json(f_models, dict)
  if not models:
    raise DataError(src, "top level", "expected at least one model")
  f_fam = pd_ / "model_family_feature.json"
  families = V.read_json(f_fam, dict)
  family_names = list(families)
  family_texts = [V.to_str(v, str(f_fam), f"key {k!r}") for k, v in families.items()]
  texts, family, prices = [], [], []
  for name, card in models.items():
    where = f"model {name!r}"
    if not isinstance(card, dict):
      raise DataError(src, where, f"expected an object, got {type(card).__name__}")
    feature = V.get_field(card, "feature", src, where)
    texts.append(V.to_str(feature, src, f"{where}, field 'feature'"))
    arch = V.get_field(card, "architecture", src, where, str)
    if arch not in families:
      raise DataError(
        src,
        f"{where}, field 'architecture'",
        f"unknown family {arch!r}; {f_fam.name} has {family_names}",
      )
    family.append(family_names.index(arch))
    prices.append(
      [
        V.to_float(card.get(k), src, f"{where}, field {k!r}", 0, 1e6, allow_missing=True)
        for k in ("input_price", "output_price")
      ]
    )
  return Pool(list(models), texts, family, prices, family_names, family_texts, models, f_models)


@dataclasses.dataclass
class Tasks:
  """Benchmark tasks and domains: names and texts in file order, membership [T, C]."""

  names: list[str]
  texts: list[str]
  domain_names: list[str]
  domain_texts: list[str]
  domain_TxC: np.ndarray
  file: pathlib.Path

  @property
  def index(self) -> dict[str, int]:
    return {t: i for i, t in enumerate(self.names)}


def read_tasks_and_domains(pd_: pathlib.Path, notes: list[str]) -> Tasks:
  """Reads task and domain texts and the domain -> tasks map (unknown map tasks are noted)."""
  f_task = pd_ / "task_feature.json"
  tasks = V.read_json(f_task, dict)
  task_names = list(tasks)
  task_texts = [V.to_str(v, str(f_task), f"key {k!r}") for k, v in tasks.items()]
  t_index = {t: i for i, t in enumerate(task_names)}
  f_dom, f_map = pd_ / "domain_feature.json", pd_ / "domain_task_map.json"
  domains = V.read_json(f_dom, dict)
  domain_names = list(domains)
  domain_texts = [V.to_str(v, str(f_dom), f"key {k!r}") for k, v in domains.items()]
  dmap = V.read_json(f_map, dict)
  task_domain_TxC = np.zeros((len(task_names), len(domain_names)), bool)
  ignored = []
  for d, ts in dmap.items():
    if d not in domains:
      raise DataError(str(f_map), f"key {d!r}", f"unknown domain; {f_dom.name} has {domain_names}")
    if not isinstance(ts, list):
      raise DataError(
        str(f_map), f"key {d!r}", f"expected a list of task names, got {type(ts).__name__}"
      )
    for t in ts:
      if t in t_index:
        task_domain_TxC[t_index[t], domain_names.index(d)] = True
      else:
        ignored.append(f"{d}/{t}")
  if ignored:
    notes.append(
      f"{f_map.name}: tasks without a text in {f_task.name} ignored: {', '.join(ignored)}"
    )
  return Tasks(task_names, task_texts, domain_names, domain_texts, task_domain_TxC, f_task)


def read_scores(pool: Pool, tasks: Tasks, notes: list[str]) -> np.ndarray:
  """[M, T] float32 benchmark scores from the model cards (NaN where missing).

  A null score for a task without a text is ignored (and noted); a real one is an error.
  """
  src = str(pool.file)
  t_index = tasks.index
  scores_MxT = np.full((len(pool.names), len(tasks.names)), np.nan, np.float32)
  ignored, unusual = set(), []
  for i, (name, card) in enumerate(pool.cards.items()):
    where = f"model {name!r}, field 'detailed_scores'"
    ds = V.get_field(card, "detailed_scores", src, f"model {name!r}", dict)
    for t, s in ds.items():
      x = V.to_float(s, src, f"{where}, key {t!r}", -1e4, 1e4, allow_missing=True)
      if not np.isnan(x) and not 0 <= x <= 100:
        unusual.append(f"{name}/{t}={x:g}")
      if t not in t_index:
        if np.isnan(x):
          ignored.add(t)
          continue
        raise DataError(
          src, f"{where}, key {t!r}", f"score for an unknown task; {tasks.file.name} has no {t!r}"
        )
      scores_MxT[i, t_index[t]] = x
  if ignored:
    notes.append(
      f"{pool.file.name}: null scores of undescribed tasks ignored: {', '.join(sorted(ignored))}"
    )
  return scores_MxT


def read_candidates(pd_: pathlib.Path, pool: Pool, notes: list[str]) -> list[int]:
  """Sorted pool indices of ``candidate_models.json``; fills pool prices missing from the cards.

  The release prices llama-3.3-70b only in candidate_models.json: missing prices come from there.
  """
  f_cand = pd_ / "candidate_models.json"
  cand = V.read_json(f_cand, (dict, list))
  cand_names = list(cand)
  if not cand_names:
    raise DataError(str(f_cand), "top level", "empty candidate set; expected at least one model")
  for c in cand_names:
    if not isinstance(c, str):
      raise DataError(
        str(f_cand),
        f"entry {c!r:.60}",
        "expected model names (an object keyed by name or a list of names)",
      )
    if c not in pool.cards:
      raise DataError(
        str(f_cand), f"key {c!r}", f"candidate is not in the pool of {pool.file.name}"
      )
  candidates = sorted(pool.names.index(c) for c in cand_names)
  filled = []
  if isinstance(cand, dict):
    for c, card in cand.items():
      i = pool.names.index(c)
      for j, k in enumerate(("input_price", "output_price")):
        if np.isnan(pool.prices[i][j]) and isinstance(card, dict) and card.get(k) is not None:
          pool.prices[i][j] = V.to_float(card[k], str(f_cand), f"key {c!r}, field {k!r}", 0, 1e6)
          filled.append(f"{c}.{k}")
  if filled:
    notes.append(
      f"prices missing from {pool.file.name} taken from {f_cand.name}: {', '.join(filled)}"
    )
  return candidates


def remove_held_out_scores(
  scores_MxT: np.ndarray, held: list[int], routing_T: list[int], pool: Pool, tasks: Tasks
) -> list[str]:
  """Sets the held-out models' routing-task scores to NaN in place; notes any the file kept.

  newllm: a held-out model must reach the graph without any routing-task score. The release's
  model_feature_newllm.json nulls all of mistral-small's but one (mmlu, 80.67).
  """
  kept = [
    f"{pool.names[h]}/{tasks.names[t]}"
    for h in held
    for t in routing_T
    if np.isfinite(scores_MxT[h, t])
  ]
  for h in held:
    scores_MxT[h, routing_T] = np.nan
  if not kept:
    return []
  return [
    f"{pool.file.name} still scores the held-out model on routing task(s) {', '.join(kept)}; "
    "removed so that its profile carries no test-task benchmark result"
  ]
