"""Loader for the public RouteProfile release (``profile_data/`` + ``route_data/``) -> History.

Layout (SPEC §3)::

  profile_data/model_feature_{setting}.json   model -> {feature, architecture, detailed_scores,
                                               input_price, output_price, ...}
  profile_data/model_family_feature.json      family (architecture) -> text
  profile_data/task_feature.json              task -> text
  profile_data/domain_feature.json            domain -> text
  profile_data/domain_task_map.json           domain -> [task, ...]
  profile_data/candidate_models.json          candidate model -> {...}
  route_data/routing_test_data.json           [{task_name, query, metric, choices,
                                                formatted_query (some rows): {system, user},
                                                model_performance: {model: {task_performance,
                                                prompt_tokens, completion_tokens}}}]
  route_data/pairwise_training_data_{setting}.json
                                              {pairwise_data: [{task_name, query, better_model,
                                                worse_model, metric, choices}]}
  route_data/default_query_train.jsonl        training queries (graph query nodes)

``load_routeprofile`` is a short driver over the steps below, each testable alone: read the model
pool, the tasks and domains, the benchmark scores and the candidates; read the test rows, the
graph queries and the pairs into one query table; remove the held-out model's routing-task
scores; decide which tasks are binary; rebuild the training outcomes that the pairs imply; fill
the prompts.

What the loader decides, and reports in ``History.notes``:
- Training queries are those of the pairwise file plus ``default_query_train.jsonl`` (the
  latter are the graph's query nodes; the release's own per-benchmark query lists are not public).
- Training rows whose (task, query) also occurs among the test rows are dropped (the release
  duplicates some human_eval and mbpp test queries in its training data).
- Training outcomes are rebuilt from pairs only where exact: on a binary task the better model
  scored 1 and the worse 0; everything else is NaN. Which tasks are binary follows from the
  task's metric name (table in rp_jax.data.task_kinds: em_mc, math, gsm8k, code_eval are 0/1;
  f1_score, commongen_coverage and unknown names are continuous), never from the test outcomes.
- ``query_prompts``: the text the LLM received. Test rows keep their stored
  ``formatted_query``; every other query is rendered from its raw query and choices in its
  task's format, inferred from the stored prompts (rp_jax.data.prompts; the raw query for tasks
  without one). A training query takes the choices of the first of its rows that has any.
- Names the release references without describing them (a domain-map task with no text, a null
  score for an unknown benchmark) are ignored and listed; a real score for an unknown benchmark
  is an error.
"""

from __future__ import annotations

import collections
import pathlib
from typing import Any, NamedTuple

import numpy as np

from rp_jax.data import prompts as P
from rp_jax.data import validate as V
from rp_jax.data.routeprofile_pool import (
  Pool,
  read_candidates,
  read_pool,
  read_scores,
  read_tasks_and_domains,
  remove_held_out_scores,
)
from rp_jax.data.task_kinds import binary_from_metrics
from rp_jax.types import TEST, TRAIN, DataError, History

SETTINGS = ("standard", "newllm")
# The release's new-LLM setting holds out this model (SPEC §3); it is not named in any file.
DEFAULT_HELD_OUT = ("mistral-small-24b-instruct-2501-bf16",)


def load_routeprofile(
  data_dir: str | pathlib.Path,
  setting: str = "standard",
  *,
  held_out: tuple[str, ...] | None = None,
  include_choices: bool = False,
  dedupe: bool = True,
) -> History:
  """Reads a folder laid out like the public release into a validated History.

  Args:
    data_dir: the folder holding ``profile_data/`` and ``route_data/``.
    setting: "standard" or "newllm" (selects the model-feature and pairwise files).
    held_out: models held out in the newllm setting (default: mistral-small, as in the paper).
      Ignored for "standard".
    include_choices: append a query's answer choices to its text ("Choices: ..."); the
      prompts are the same either way.
    dedupe: drop training rows whose (task, query) also occurs in the test set.

  Returns:
    History with all 24 pool models, 44 task texts, the 600 test rows and the training queries.
  """
  root = _data_root(data_dir, setting)
  pd_, rd = root / "profile_data", root / "route_data"
  notes: list[str] = []

  pool = read_pool(pd_, setting)
  tasks = read_tasks_and_domains(pd_, notes)
  scores_MxT = read_scores(pool, tasks, notes)
  candidates = read_candidates(pd_, pool, notes)

  qt = QueryTable(tasks.names, pd_ / "task_feature.json", include_choices)
  f_test = rd / "routing_test_data.json"
  perf_NxM, tok_NxMx2, test_rows = read_test_rows(f_test, qt, pool, candidates)
  train = _read_training_queries(rd, setting, held_out, dedupe, qt, pool, notes)
  held_idx = [pool.index[h] for h in train.held]
  q_task_Q, q_split_Q = np.asarray(qt.task, np.int32), np.asarray(qt.split, np.int8)
  if held_idx:
    routing_T = sorted(set(q_task_Q[q_split_Q == TEST].tolist()))
    notes += remove_held_out_scores(scores_MxT, held_idx, routing_T, pool, tasks)

  task_metric = [qt.metrics.get(t, "") for t in range(len(tasks.names))]
  outcomes_QxM, tokens_QxMx2, binary_T = derive_outcomes(
    perf_NxM, tok_NxMx2, train.pairs_Px3, q_task_Q, candidates, task_metric, tasks.names, notes
  )
  query_prompts = fill_prompts(qt, test_rows, str(f_test), notes)

  return History(
    model_names=pool.names,
    model_texts=pool.texts,
    model_family=pool.family,
    prices_Mx2=pool.prices,
    family_names=pool.family_names,
    family_texts=pool.family_texts,
    task_names=tasks.names,
    task_texts=tasks.texts,
    task_metric=task_metric,
    task_binary=binary_T,
    domain_names=tasks.domain_names,
    domain_texts=tasks.domain_texts,
    task_domain_TxC=tasks.domain_TxC,
    scores_MxT=scores_MxT,
    query_texts=qt.text,
    query_prompts=query_prompts,
    query_task=q_task_Q,
    query_split=q_split_Q,
    query_in_graph=qt.graph,
    outcomes_QxM=outcomes_QxM,
    tokens_QxMx2=tokens_QxMx2,
    cost_QxM=np.full((len(qt.text), len(pool.names)), np.nan, np.float32),
    pairs_Px3=train.pairs_Px3,
    candidates=candidates,
    held_out=held_idx,
    setting=setting,
    source=str(root),
    notes=[f"{train.pairs_file}: {train.pairs_in_file} pairs in the file", *notes],
  )


def _data_root(data_dir: str | pathlib.Path, setting: str) -> pathlib.Path:
  """The release folder, once the setting is known and the folder exists."""
  if setting not in SETTINGS:
    raise ValueError(f"unknown setting {setting!r}; expected one of {SETTINGS}")
  root = pathlib.Path(data_dir)
  if not root.is_dir():
    raise DataError(
      str(root), None, "data folder not found (expected profile_data/ and route_data/)"
    )
  return root


class _TrainingQueries(NamedTuple):
  """What ``_read_training_queries`` read: held-out models, pairs, and the pairwise file."""

  held: tuple[str, ...]
  pairs_Px3: np.ndarray
  pairs_file: str
  pairs_in_file: int


def _read_training_queries(
  rd: pathlib.Path,
  setting: str,
  held_out: tuple[str, ...] | None,
  dedupe: bool,
  qt: QueryTable,
  pool: Pool,
  notes: list[str],
) -> _TrainingQueries:
  """Adds the graph queries and the pairs' queries to ``qt`` (after the test rows: test queries
  are dropped from both); notes what was dropped."""
  test_keys = set(qt.index)
  f_qtrain = rd / "default_query_train.jsonl"
  dropped_graph = read_graph_queries(f_qtrain, qt, test_keys, notes)
  f_pairs = rd / f"pairwise_training_data_{setting}.json"
  held = resolve_held_out(held_out, setting, pool)
  pairs_Px3, n_pairs_file, dropped_pairs = read_pairs(
    f_pairs, qt, pool, held, test_keys, dedupe, graph=not f_qtrain.is_file()
  )
  if dropped_pairs or dropped_graph:
    notes += _dropped_notes(n_pairs_file, len(pairs_Px3), dropped_pairs, dropped_graph)
  return _TrainingQueries(held, pairs_Px3, f_pairs.name, n_pairs_file)


# -- queries ----------------------------------------------------------------------------------------


class QueryTable:
  """Queries keyed by (task, text) in order of first appearance, plus each task's metric name.

  Per query it also keeps the raw query, the first choices any of its rows gives, and where that
  row is (file, row) for error messages; ``choice_conflicts`` counts rows whose choices differ.
  """

  def __init__(self, task_names: list[str], task_file: pathlib.Path, include_choices: bool):
    self.task_names = task_names
    self.t_index = {t: i for i, t in enumerate(task_names)}
    self.task_file = task_file
    self.include_choices = include_choices
    self.text: list[str] = []
    self.task: list[int] = []
    self.split: list[int] = []
    self.graph: list[bool] = []
    self.index: dict[tuple[int, str], int] = {}
    self.metrics: dict[int, str] = {}
    self.raw: list[str] = []
    self.choices: list[Any] = []
    self.origin: list[tuple[str, str]] = []
    self.choice_conflicts = 0

  def task_of(self, row: dict, src: str, where: str) -> int:
    """The task index of a row; records (and checks) the task's metric name."""
    t = V.to_str(V.get_field(row, "task_name", src, where), src, f"{where}, field 'task_name'")
    if t not in self.t_index:
      raise DataError(
        src, f"{where}, field 'task_name'", f"unknown task {t!r}; not in {self.task_file.name}"
      )
    ti = self.t_index[t]
    m = row.get("metric")
    if isinstance(m, str) and m:
      m = m.lower()  # the release writes "math" and "MATH", "gsm8k" and "GSM8K"
      if self.metrics.setdefault(ti, m) != m:
        raise DataError(
          src,
          f"{where}, field 'metric'",
          f"task {t!r} has metric {self.metrics[ti]!r} elsewhere, got {m!r}",
        )
    return ti

  def task_and_query(self, row, src: str, where: str) -> tuple[int, tuple[str, str, Any]]:
    """(``task_of``, ``query_of``) of a row, which must be an object."""
    if not isinstance(row, dict):
      raise DataError(src, where, f"expected an object, got {type(row).__name__}")
    return self.task_of(row, src, where), self.query_of(row, src, where)

  def query_of(self, row: dict, src: str, where: str) -> tuple[str, str, Any]:
    """(text, raw query, parsed choices) of a row; the text has the choices appended when
    ``include_choices``."""
    raw = V.to_str(V.get_field(row, "query", src, where), src, f"{where}, field 'query'")
    choices = V.parse_literal(row.get("choices"), src, f"{where}, field 'choices'")
    text = raw
    if self.include_choices and choices is not None:
      text = f"{raw}\nChoices: {_choices_text(choices)}"
    return text, raw, choices

  def add(
    self,
    ti: int,
    query: tuple[str, str, Any],
    split: int,
    graph: bool,
    origin: tuple[str, str] = ("", ""),
  ) -> int:
    """Index of query (ti, text), added if new; a repeated query joins the graph if ``graph``.

    Args:
      ti: task index.
      query: (text, raw query, choices) as ``query_of`` returns them.
      split: TRAIN or TEST.
      graph: the query is a graph node.
      origin: (file, row) of the row, named if its choices do not fit the task's prompt layout.
    """
    text, raw, choices = query
    key = (ti, text)
    if key in self.index:
      q = self.index[key]
      self.graph[q] = self.graph[q] or graph
      if choices is not None and self.choices[q] is None:
        self.choices[q], self.origin[q] = choices, origin
      elif choices is not None and choices != self.choices[q]:
        self.choice_conflicts += 1
      return q
    self.index[key] = len(self.text)
    self.text.append(text)
    self.task.append(ti)
    self.split.append(split)
    self.graph.append(graph)
    self.raw.append(raw)
    self.choices.append(choices)
    self.origin.append(origin)
    return self.index[key]


def read_test_rows(
  f_test: pathlib.Path, qt: QueryTable, pool: Pool, candidates: list[int]
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
  """Adds the test rows to ``qt``; returns their outcomes [N, M], tokens [N, M, 2] and the rows.

  Every test row needs an outcome for every candidate; a repeated test query is an error.
  """
  src = str(f_test)
  rows = V.read_json(f_test, list)
  if not rows:
    raise DataError(src, "top level", "expected at least one test row")
  m_index = pool.index
  M = len(pool.names)
  cand_names = [pool.names[c] for c in candidates]
  perf_NxM = np.full((len(rows), M), np.nan, np.float32)
  tok_NxMx2 = np.full((len(rows), M, 2), np.nan, np.float32)
  for r, row in enumerate(rows):
    where = f"row {r}"
    ti, query = qt.task_and_query(row, src, where)
    if (ti, query[0]) in qt.index:
      raise DataError(src, where, f"duplicate test query of task {qt.task_names[ti]!r}")
    qt.add(ti, query, TEST, False, (src, where))
    mp = V.get_field(row, "model_performance", src, where, dict)
    for m, rec in mp.items():
      w = f"{where}, model_performance[{m!r}]"
      if m not in m_index:
        raise DataError(src, w, f"unknown model; not in {pool.file.name}")
      if not isinstance(rec, dict):
        raise DataError(src, w, f"expected an object, got {type(rec).__name__}")
      perf = V.get_field(rec, "task_performance", src, w)
      perf_NxM[r, m_index[m]] = V.to_float(perf, src, f"{w}.task_performance", 0, 1)
      for j, k in enumerate(("prompt_tokens", "completion_tokens")):
        tok_NxMx2[r, m_index[m], j] = V.to_float(
          rec.get(k), src, f"{w}.{k}", 0, 1e9, allow_missing=True
        )
    missing = [c for c in cand_names if c not in mp]
    if missing:
      raise DataError(
        src, f"{where}, field 'model_performance'", f"no outcome for candidate(s) {missing}"
      )
  return perf_NxM, tok_NxMx2, rows


def read_graph_queries(
  f_qtrain: pathlib.Path, qt: QueryTable, test_keys: set, notes: list[str]
) -> collections.Counter:
  """Adds the graph's query nodes (training queries) to ``qt``, minus test queries.

  Returns:
    Per task name, the number of rows dropped because they are test queries.
  """
  dropped = collections.Counter()
  if not f_qtrain.is_file():
    notes.append(
      f"{f_qtrain.name} not found: the graph's query nodes are the pairwise training queries"
    )
    return dropped
  for r, row in enumerate(V.read_jsonl(f_qtrain), 1):
    where = f"line {r}"
    ti, query = qt.task_and_query(row, str(f_qtrain), where)
    if (ti, query[0]) in test_keys:
      dropped[qt.task_names[ti]] += 1
      continue
    qt.add(ti, query, TRAIN, True, (str(f_qtrain), where))
  return dropped


def resolve_held_out(held_out: tuple[str, ...] | None, setting: str, pool: Pool) -> tuple[str, ...]:
  """The held-out model names of a setting (none for "standard"); each must be in the pool."""
  held = (
    tuple(held_out if held_out is not None else DEFAULT_HELD_OUT) if setting == "newllm" else ()
  )
  for h in held:
    if h not in pool.cards:
      raise DataError(str(pool.file), f"held-out model {h!r}", "not in the model pool")
  return held


def read_pairs(
  f_pairs: pathlib.Path,
  qt: QueryTable,
  pool: Pool,
  held: tuple[str, ...],
  test_keys: set,
  dedupe: bool,
  graph: bool,
) -> tuple[np.ndarray, int, collections.Counter]:
  """Reads the pairwise training rows, adding their queries to ``qt``.

  Args:
    f_pairs: the pairwise file of the setting.
    qt: the query table (test rows already in it).
    pool: the model pool.
    held: held-out model names (an error if one appears in a pair).
    test_keys: (task, text) of the test queries.
    dedupe: drop pairs of test queries (else an error).
    graph: pair queries are graph nodes (when the graph query file is missing).

  Returns:
    (pairs [P, 3] int32 (query, better, worse), rows in the file, dropped rows per task name).
  """
  src = str(f_pairs)
  pobj = V.read_json(f_pairs, dict)
  prows = V.get_field(pobj, "pairwise_data", src, "top level", list)
  m_index = pool.index
  pairs, dropped = [], collections.Counter()
  for r, row in enumerate(prows):
    where = f"pairwise_data[{r}]"
    ti, query = qt.task_and_query(row, src, where)
    ab = []
    for k in ("better_model", "worse_model"):
      m = V.to_str(V.get_field(row, k, src, where), src, f"{where}, field {k!r}")
      if m not in m_index:
        raise DataError(
          src, f"{where}, field {k!r}", f"unknown model {m!r}; not in {pool.file.name}"
        )
      if m in held:
        raise DataError(
          src, f"{where}, field {k!r}", f"held-out model {m!r} in a training pair (it would leak)"
        )
      ab.append(m_index[m])
    if ab[0] == ab[1]:
      raise DataError(src, where, "better_model and worse_model are the same model")
    if (ti, query[0]) in test_keys:
      if dedupe:
        dropped[qt.task_names[ti]] += 1
        continue
      raise DataError(src, where, "training query also in the test set (pass dedupe=True)")
    pairs.append((qt.add(ti, query, TRAIN, graph, (src, where)), ab[0], ab[1]))
  if not pairs:
    raise DataError(src, "pairwise_data", "no training pairs left")
  return np.asarray(pairs, np.int32), len(prows), dropped


def _dropped_notes(
  n_file: int, n_kept: int, dropped_pairs: collections.Counter, dropped_graph: collections.Counter
) -> list[str]:
  return [
    f"dropped {sum(dropped_pairs.values())} of {n_file} training pairs whose (task, query) is a "
    f"test query ({_fmt_counts(dropped_pairs)}); {n_kept} pairs remain",
    f"dropped {sum(dropped_graph.values())} graph query nodes that are test queries "
    f"({_fmt_counts(dropped_graph)})",
  ]


def fill_prompts(qt: QueryTable, test_rows: list[dict], f_test: str, notes: list[str]) -> list[str]:
  """[Q] the text the LLM receives for each query (rp_jax.data.prompts).

  Test rows keep their stored ``formatted_query`` where they have one; every other query is
  rendered from its raw query and choices with its task's format inferred from the stored prompts
  (the raw query for tasks without one). Appends the layouts found to ``notes``.
  """
  formats, prompt_notes = P.infer_formats(test_rows, f_test)
  notes += prompt_notes
  out = []
  for q, (ti, raw, choices) in enumerate(zip(qt.task, qt.raw, qt.choices, strict=True)):
    sp = P.stored_prompt(test_rows[q], f_test, f"row {q}") if q < len(test_rows) else None
    if sp is not None:
      out.append(P.join_prompt(*sp))
      continue
    fmt = formats.get(qt.task_names[ti], P.RAW)
    try:
      out.append(P.prompt_text(fmt, raw, choices))
    except P.LayoutError as e:
      src, where = qt.origin[q]
      raise DataError(
        src, f"{where}, field 'choices'", f"task {qt.task_names[ti]!r}: {e}"
      ) from None
  no_test = sorted({qt.task_names[t] for t in qt.task} - set(formats))
  if no_test:
    notes.append(
      f"tasks without test rows (so no stored prompt) get the raw query: {', '.join(no_test)}"
    )
  if qt.choice_conflicts:
    notes.append(
      f"{qt.choice_conflicts} training rows give a query other choices than its first row with "
      "choices; its prompt uses the first"
    )
  return out


# -- derived arrays ---------------------------------------------------------------------------------


def derive_outcomes(
  perf_NxM: np.ndarray,
  tok_NxMx2: np.ndarray,
  pairs_Px3: np.ndarray,
  query_task_Q: np.ndarray,
  candidates: list[int],
  task_metric: list[str],
  task_names: list[str],
  notes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Outcomes [Q, M] and tokens [Q, M, 2] of all queries, and which tasks are binary [T].

  The first N queries are the test rows (their outcomes and tokens as read). Binary tasks come
  from the metric names (rp_jax.data.task_kinds), never from the test outcomes; training outcomes
  are those the pairs imply on binary tasks. Appends the decisions and counts to ``notes``.
  """
  n_test, M = perf_NxM.shape
  Q = len(query_task_Q)
  binary_T, kind_notes = binary_from_metrics(task_names, task_metric, query_task_Q)
  notes += kind_notes
  notes += _binary_check_notes(binary_T, query_task_Q[:n_test], perf_NxM[:, candidates], task_names)
  outcomes_QxM = np.full((Q, M), np.nan, np.float32)
  outcomes_QxM[:n_test] = perf_NxM
  train_QxM, n_conflict = rebuild_training_outcomes(pairs_Px3, binary_T, query_task_Q, (Q, M))
  outcomes_QxM[n_test:] = train_QxM[n_test:]
  tokens_QxMx2 = np.full((Q, M, 2), np.nan, np.float32)
  tokens_QxMx2[:n_test] = tok_NxMx2
  if n_conflict:
    notes.append(
      f"{n_conflict} (query, model) outcomes are both better and worse in pairs; left unknown"
    )
  pair_T = sorted(set(query_task_Q[pairs_Px3[:, 0]].tolist()))
  continuous = [task_names[t] for t in pair_T if not binary_T[t]]
  notes.append(
    "training outcomes rebuilt from pairs on binary tasks (better => 1, worse => 0): "
    f"{int(np.isfinite(outcomes_QxM[n_test:]).sum())} known; continuous tasks "
    f"({', '.join(continuous) or 'none'}) keep only the pairs"
  )
  return outcomes_QxM, tokens_QxMx2, binary_T


def _binary_check_notes(
  binary_T: np.ndarray, test_task_N: np.ndarray, test_perf_NxA: np.ndarray, task_names: list[str]
) -> list[str]:
  """A note naming binary tasks whose test outcomes are not all 0/1 (a check, not a decision)."""
  odd_N = np.any(np.isfinite(test_perf_NxA) & (test_perf_NxA != 0) & (test_perf_NxA != 1), axis=1)
  odd_T = sorted(set(test_task_N[odd_N & binary_T[test_task_N]].tolist()))
  if not odd_T:
    return []
  return [
    "binary by metric name but with test outcomes other than 0/1 (pairs still rebuild 1/0): "
    + ", ".join(task_names[t] for t in odd_T)
  ]


def rebuild_training_outcomes(
  pairs_Px3: np.ndarray, binary_T: np.ndarray, query_task_Q: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, int]:
  """Outcomes [Q, M] that pairs on binary tasks imply: better => 1, worse => 0, else NaN.

  A (query, model) that is better in one pair and worse in another stays NaN.

  Returns:
    (outcomes_QxM float32, number of such contradictory (query, model) entries).
  """
  Pb = pairs_Px3[binary_T[query_task_Q[pairs_Px3[:, 0]]]]
  ones_QxM = np.zeros(shape, bool)
  zeros_QxM = np.zeros(shape, bool)
  ones_QxM[Pb[:, 0], Pb[:, 1]] = True
  zeros_QxM[Pb[:, 0], Pb[:, 2]] = True
  conflict_QxM = ones_QxM & zeros_QxM
  out_QxM = np.where(ones_QxM, 1.0, np.where(zeros_QxM, 0.0, np.nan)).astype(np.float32)
  out_QxM[conflict_QxM] = np.nan
  return out_QxM, int(conflict_QxM.sum())


def _choices_text(choices) -> str:
  if isinstance(choices, dict):
    texts = choices.get("text") or choices.get("label") or []
    labels = choices.get("labels") or choices.get("label") or []
    if isinstance(texts, list) and isinstance(labels, list) and len(labels) == len(texts):
      return " ".join(f"({a}) {b}" for a, b in zip(labels, texts, strict=True))
    return str(texts)
  if isinstance(choices, list):
    return " | ".join(str(c) for c in choices)
  return str(choices)


def _fmt_counts(c: collections.Counter) -> str:
  return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"
