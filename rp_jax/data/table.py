"""The generic outcome table checked into a ``Table`` (queries, models, tasks, outcome records).

``read_rows`` checks row dicts one by one (the reference, and the messages);
``table_from_columns`` does the same for a whole ``Columns`` table at once with numpy / pandas,
and where a check fails, lets ``read_rows`` read up to the first failing row so that the message
is exactly its own. Columns and rules: rp_jax.data.generic.
"""

from __future__ import annotations

import dataclasses
import operator
from itertools import repeat

import numpy as np
import pandas as pd

from rp_jax.data import columns as Co
from rp_jax.data import validate as V
from rp_jax.types import TEST, TRAIN, DataError

REQUIRED = ("query", "task", "model", "performance")
OPTIONAL = ("split", "prompt_tokens", "completion_tokens", "cost", "metric", "prompt")


@dataclasses.dataclass
class Table:
  """What the outcome table holds: names in order of appearance, queries and outcome records.

  Attributes:
    model_names, m_index: the pool (model-card models first, then new table models).
    task_names, t_index: tasks in order of appearance (table first, then scores, descriptions).
    q_text, q_task, q_split, q_index: queries keyed by (task index, text).
    recs: one (query, model, performance, prompt tokens, completion tokens, cost) per row (a
      list of tuples, or a [R, 6] float64 array from ``table_from_columns``).
    metrics, metric_line: per task index, its metric name (lower case) and the line giving it.
    prompts, prompt_line: per query index, its prompt and the line giving it (if any row does).
  """

  model_names: list[str]
  m_index: dict[str, int]
  task_names: list[str] = dataclasses.field(default_factory=list)
  t_index: dict[str, int] = dataclasses.field(default_factory=dict)
  q_text: list[str] = dataclasses.field(default_factory=list)
  q_task: list[int] = dataclasses.field(default_factory=list)
  q_split: list[int] = dataclasses.field(default_factory=list)
  q_index: dict[tuple[int, str], int] = dataclasses.field(default_factory=dict)
  recs: list[tuple] = dataclasses.field(default_factory=list)
  metrics: dict[int, str] = dataclasses.field(default_factory=dict)
  metric_line: dict[int, int] = dataclasses.field(default_factory=dict)
  prompts: dict[int, str] = dataclasses.field(default_factory=dict)
  prompt_line: dict[int, int] = dataclasses.field(default_factory=dict)

  def add_task(self, task: str) -> int:
    if task not in self.t_index:
      self.t_index[task] = len(self.task_names)
      self.task_names.append(task)
    return self.t_index[task]

  def add_query(self, ti: int, text: str, split: int) -> int:
    key = (ti, text)
    if key not in self.q_index:
      self.q_index[key] = len(self.q_text)
      self.q_text.append(text)
      self.q_task.append(ti)
      self.q_split.append(split)
    return self.q_index[key]


def read_rows(rows: list[dict], src: str, cards: dict, model_cards) -> Table:
  """Checks every table row and collects queries, models, tasks and outcome records.

  A model not among the cards is an error when cards are given, else it joins the pool.
  A query must be on one split; a (query, model) pair may occur once.
  """
  names = list(cards)
  tab = Table(model_names=names, m_index={m: i for i, m in enumerate(names)})
  seen: dict[tuple[int, int], int] = {}
  for n, row in enumerate(rows, 1):
    line = row.get("__line__", n)
    where = f"line {line}"
    for k in REQUIRED:
      if k not in row:
        raise DataError(src, where, f"missing field {k!r}; required columns are {list(REQUIRED)}")
    text = V.to_str(row["query"], src, f"{where}, field 'query'")
    task = V.to_str(row["task"], src, f"{where}, field 'task'")
    model = V.to_str(row["model"], src, f"{where}, field 'model'")
    perf = V.to_float(row["performance"], src, f"{where}, field 'performance'", 0, 1)
    split = row.get("split") or "train"
    if split not in ("train", "test"):
      raise DataError(src, f"{where}, field 'split'", f"expected 'train' or 'test', got {split!r}")
    if model not in tab.m_index:
      if cards:
        raise DataError(
          src, f"{where}, field 'model'", f"unknown model {model!r}; not in {model_cards}"
        )
      tab.m_index[model] = len(tab.model_names)
      tab.model_names.append(model)
    sp = TRAIN if split == "train" else TEST
    ti = tab.add_task(task)
    _read_metric(tab, ti, row.get("metric"), src, where, line)
    q = tab.add_query(ti, text, sp)
    _read_prompt(tab, q, row.get("prompt"), src, where, line)
    if tab.q_split[q] != sp:
      raise DataError(
        src, f"{where}, field 'split'", f"query of task {task!r} is both train and test"
      )
    m = tab.m_index[model]
    if (q, m) in seen:
      raise DataError(src, where, f"duplicate (query, model) row; first seen on line {seen[q, m]}")
    seen[q, m] = line
    opt = [
      V.to_float(row.get(k), src, f"{where}, field {k!r}", 0, 1e12, allow_missing=True)
      for k in ("prompt_tokens", "completion_tokens", "cost")
    ]
    tab.recs.append((q, m, perf, *opt))
  return tab


def _read_metric(tab: Table, ti: int, metric, src: str, where: str, line: int) -> None:
  """Records a row's metric name for its task; a different name on another row is an error."""
  if metric is None or (isinstance(metric, str) and not metric.strip()):
    return
  m = V.to_str(metric, src, f"{where}, field 'metric'").strip().lower()
  if tab.metrics.setdefault(ti, m) != m:
    raise DataError(
      src,
      f"{where}, field 'metric'",
      f"task {tab.task_names[ti]!r} has metric {tab.metrics[ti]!r} on line "
      f"{tab.metric_line[ti]}, got {m!r}; a task has one metric",
    )
  tab.metric_line.setdefault(ti, line)


def _read_prompt(tab: Table, q: int, prompt, src: str, where: str, line: int) -> None:
  """Records a row's prompt for its query; a different prompt on another row is an error."""
  if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
    return
  p = V.to_str(prompt, src, f"{where}, field 'prompt'")
  if tab.prompts.setdefault(q, p) != p:
    raise DataError(
      src,
      f"{where}, field 'prompt'",
      f"query {tab.q_text[q][:60]!r} of task {tab.task_names[tab.q_task[q]]!r} has another "
      f"prompt on line {tab.prompt_line[q]}; every row of a query must give the same prompt",
    )
  tab.prompt_line.setdefault(q, line)


# -- the whole table at once ----------------------------------------------------------------------


def table_from_columns(c: Co.Columns, src: str, cards: dict, model_cards) -> Table:
  """``read_rows`` on a whole table at once: the same Table and, on bad input, the same error.

  Per-row checks (fields, types, numbers, split, known model) run on whole columns; the checks
  that compare rows (one split per query, one metric per task, one prompt per query, no repeated
  (query, model)) run on the rows before the first failing one. Where any check fails,
  ``read_rows`` reads up to that row and raises its own message.
  """
  n = len(c)
  r0, vals = _row_checks(c, cards)
  keys = _row_keys(c, vals, r0, list(cards))
  r = min(r0, keys.first_conflict)
  if r < n:
    read_rows([c.row(i) for i in range(r + 1)], src, cards, model_cards)
    # Not reached unless these checks are stricter than read_rows: then read_rows decides.
    return read_rows([c.row(i) for i in range(n)], src, cards, model_cards)
  return keys.table


def _row_checks(c: Co.Columns, cards: dict) -> tuple[int, dict[str, np.ndarray]]:
  """(first row that fails a per-row check, or R; the parsed columns)."""
  n = len(c)
  bad = np.zeros(n, bool)
  for k in REQUIRED:
    col = c.cols.get(k)
    if col is None:
      bad[:] = True
    elif not c.dense:
      bad |= Co.is_absent(col)
  if bad.all():
    return 0, {}
  vals = {k: c.cols[k] for k in ("query", "task", "model")}
  for k in ("query", "task", "model"):
    bad |= ~Co.str_column_ok(vals[k])
  vals["performance"], b = Co.float_column(c.cols["performance"], 0, 1)
  bad |= b
  split = c.column("split")
  truthy = np.fromiter(map(bool, split), bool, n)
  is_test = np.fromiter(map(operator.eq, split, repeat("test")), bool, n)
  is_train = np.fromiter(map(operator.eq, split, repeat("train")), bool, n)
  bad |= truthy & ~is_test & ~is_train
  vals["split"] = np.where(truthy & is_test, TEST, TRAIN).astype(np.int8)
  if cards:
    known = lambda m: isinstance(m, str) and m in cards
    bad |= ~np.fromiter(map(known, vals["model"]), bool, n)
  for k in ("metric", "prompt"):
    vals[k] = c.column(k)
    vals[k + "_given"], b = Co.optional_text(vals[k])
    bad |= b
  for k in ("prompt_tokens", "completion_tokens", "cost"):
    if k not in c.cols:
      vals[k] = np.full(n, np.nan)
      continue
    vals[k], b = Co.float_column(c.column(k), 0, 1e12, allow_missing=True)
    bad |= b
  return Co.first_true(bad, n), vals


@dataclasses.dataclass
class _Keys:
  table: Table | None
  first_conflict: int


def _row_keys(c: Co.Columns, vals: dict, r0: int, card_names: list[str]) -> _Keys:
  """The Table of rows [0, r0) (all pass the per-row checks) and the first row among them that
  conflicts with an earlier one (or len(c))."""
  n = len(c)
  if r0 == 0:
    empty = Table(model_names=list(card_names), m_index={m: i for i, m in enumerate(card_names)})
    return _Keys(empty if n == 0 else None, n)
  v = {k: x[:r0] for k, x in vals.items()}
  tcode, tnames = pd.factorize(v["task"])
  mcode0, mnames = pd.factorize(v["model"])
  tab = Table(model_names=list(card_names), m_index={m: i for i, m in enumerate(card_names)})
  for m in mnames:
    tab.m_index.setdefault(m, len(tab.model_names))
    if len(tab.m_index) > len(tab.model_names):
      tab.model_names.append(m)
  mcode = np.asarray([tab.m_index[m] for m in mnames], np.int64)[mcode0]
  tab.task_names = list(tnames)
  tab.t_index = {t: i for i, t in enumerate(tab.task_names)}
  textcode, texts = pd.factorize(v["query"])
  qcode, _ = pd.factorize(tcode.astype(np.int64) * len(texts) + textcode)
  _, fq = np.unique(qcode, return_index=True)  # first row of each query
  split = v["split"]
  bad = split != split[fq[qcode]]
  bad |= pd.Index(qcode.astype(np.int64) * len(tab.model_names) + mcode).duplicated()
  line = c.line_R[:r0]
  norm = np.full(r0, None, object)
  g = np.flatnonzero(v["metric_given"])
  norm[g] = [s.strip().lower() for s in v["metric"][g]]
  bad_m, tab.metrics, tab.metric_line = _one_per_key(tcode, norm, v["metric_given"], line)
  bad_p, tab.prompts, tab.prompt_line = _one_per_key(qcode, v["prompt"], v["prompt_given"], line)
  r1 = Co.first_true(bad | bad_m | bad_p, n)
  if r1 < n:
    return _Keys(None, r1)
  tab.q_text = v["query"][fq].tolist()
  tab.q_task = tcode[fq].tolist()
  tab.q_split = split[fq].astype(int).tolist()
  tab.q_index = dict(zip(zip(tab.q_task, tab.q_text, strict=True), range(len(fq)), strict=True))
  tab.recs = np.stack(
    [
      qcode.astype(np.float64),
      mcode.astype(np.float64),
      v["performance"],
      v["prompt_tokens"],
      v["completion_tokens"],
      v["cost"],
    ],
    1,
  )
  return _Keys(tab, n)


def _one_per_key(
  key_R: np.ndarray, value_R: np.ndarray, given_R: np.ndarray, line_R: np.ndarray
) -> tuple[np.ndarray, dict[int, str], dict[int, int]]:
  """Rows that give another value than the first row giving one for their key; per key, that
  first value and its line."""
  g = np.flatnonzero(given_R)
  keys, first = np.unique(key_R[g], return_index=True)
  ref = dict(zip(keys.tolist(), value_R[g[first]].tolist(), strict=True))
  bad = np.zeros(len(key_R), bool)
  if g.size:
    want = np.asarray([ref[k] for k in key_R[g].tolist()], object)
    bad[g] = value_R[g] != want
  lines = dict(zip(keys.tolist(), line_R[g[first]].tolist(), strict=True))
  return bad, ref, lines
