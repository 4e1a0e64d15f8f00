"""Loader for users' own data: one long table of outcomes plus optional description files.

**Outcome table** (``.csv`` with a header, or ``.jsonl``), one row per query x model:

  ==================  ========  ==========================================================
  column              required  meaning
  ==================  ========  ==========================================================
  query               yes       query text; (task, query) identifies a query
  task                yes       benchmark / task name of the query
  model               yes       model name
  performance         yes       outcome in [0, 1] (accuracy, F1, pass@1, ...)
  split               no        "train" (default) or "test"
  prompt_tokens       no        tokens sent to the model (for cost)
  completion_tokens   no        tokens produced by the model (for cost)
  cost                no        $ spent on this query by this model (overrides tokens x prices)
  ==================  ========  ==========================================================

Every test query needs a row for every candidate. Training queries may be partial.

**Model cards** (optional JSON): ``{model: {"family": str, "text": str, "input_price": float,
"output_price": float, "scores": {task: float | null}}}`` — prices in $ per million tokens,
scores are benchmark results (any task name; tasks without queries become benchmark-only nodes).
Models that only appear here join the pool (graph nodes) but are not candidates unless listed.

**Families** (optional JSON): ``{family: text}``. **Tasks** (optional JSON): ``{task: text}`` or
``{task: {"text": str, "domains": [domain, ...]}}``. **Domains** (optional JSON):
``{domain: text}`` or ``{domain: {"text": str, "tasks": [task, ...]}}``.

Training pairs for pairwise routers are derived from the training outcomes: for each training
query, every (better, worse) pair of candidates with strictly different performance.
"""

from __future__ import annotations

import pathlib

import numpy as np

from rp_jax.data import validate as V
from rp_jax.types import TEST, TRAIN, DataError, History

REQUIRED = ("query", "task", "model", "performance")
OPTIONAL = ("split", "prompt_tokens", "completion_tokens", "cost")


def load_generic(
  table: str | pathlib.Path,
  *,
  model_cards: str | pathlib.Path | None = None,
  families: str | pathlib.Path | None = None,
  tasks: str | pathlib.Path | None = None,
  domains: str | pathlib.Path | None = None,
  candidates: tuple[str, ...] | None = None,
  held_out: tuple[str, ...] = (),
  setting: str = "custom",
) -> History:
  """Reads the generic long format (see module docstring) into a validated History.

  Args:
    table: outcome table (.csv or .jsonl).
    model_cards, families, tasks, domains: optional description JSON files.
    candidates: the models a router chooses among (default: every model in the table).
    held_out: candidates to hold out of training (new-LLM setting): their training outcomes,
      pairs and benchmark scores on tasks with test queries are removed, as in the release.
    setting: a name for reports.
  """
  src = str(table)
  rows, _ = V.read_table(table)
  if not rows:
    raise DataError(src, None, "no rows; expected one row per query x model")
  notes = []

  cards = V.read_json(model_cards, dict) if model_cards is not None else {}
  fam_texts = V.read_json(families, dict) if families is not None else {}
  task_desc = V.read_json(tasks, dict) if tasks is not None else {}
  dom_desc = V.read_json(domains, dict) if domains is not None else {}

  # -- pass 1: rows -> (query key, model, values) ----------------------------------------------
  model_names: list[str] = list(cards)
  m_index = {m: i for i, m in enumerate(model_names)}
  task_names: list[str] = []
  t_index: dict[str, int] = {}
  q_index: dict[tuple[int, str], int] = {}
  q_text, q_task, q_split = [], [], []
  recs = []  # (q, m, perf, prompt, completion, cost, line)
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
    if model not in m_index:
      if cards:
        raise DataError(
          src, f"{where}, field 'model'", f"unknown model {model!r}; not in {model_cards}"
        )
      m_index[model] = len(model_names)
      model_names.append(model)
    if task not in t_index:
      t_index[task] = len(task_names)
      task_names.append(task)
    key = (t_index[task], text)
    sp = TRAIN if split == "train" else TEST
    if key not in q_index:
      q_index[key] = len(q_text)
      q_text.append(text)
      q_task.append(t_index[task])
      q_split.append(sp)
    q = q_index[key]
    if q_split[q] != sp:
      raise DataError(
        src, f"{where}, field 'split'", f"query of task {task!r} is both train and test"
      )
    m = m_index[model]
    if (q, m) in seen:
      raise DataError(src, where, f"duplicate (query, model) row; first seen on line {seen[q, m]}")
    seen[q, m] = line
    opt = [
      V.to_float(row.get(k), src, f"{where}, field {k!r}", 0, 1e12, allow_missing=True)
      for k in ("prompt_tokens", "completion_tokens", "cost")
    ]
    recs.append((q, m, perf, *opt))

  # -- descriptions ----------------------------------------------------------------------------
  f_cards = str(model_cards)
  family_names: list[str] = list(fam_texts)
  model_family, model_texts, prices = [], [], []
  score_map: dict[tuple[int, str], float] = {}
  for i, name in enumerate(model_names):
    card = cards.get(name, {})
    where = f"model {name!r}"
    if not isinstance(card, dict):
      raise DataError(f_cards, where, f"expected an object, got {type(card).__name__}")
    fam = card.get("family", name)
    if not isinstance(fam, str) or not fam:
      raise DataError(f_cards, f"{where}, field 'family'", "expected a non-empty string")
    if fam not in family_names:
      if families is not None:
        raise DataError(
          f_cards, f"{where}, field 'family'", f"unknown family {fam!r}; not in {families}"
        )
      family_names.append(fam)
    model_family.append(family_names.index(fam))
    text = card.get("text", f"{name} is a large language model of the {fam} family.")
    model_texts.append(V.to_str(text, f_cards, f"{where}, field 'text'"))
    prices.append(
      [
        V.to_float(card.get(k), f_cards, f"{where}, field {k!r}", 0, 1e6, allow_missing=True)
        for k in ("input_price", "output_price")
      ]
    )
    sc = card.get("scores", {})
    if not isinstance(sc, dict):
      raise DataError(f_cards, f"{where}, field 'scores'", "expected an object {task: score}")
    for t, s in sc.items():
      x = V.to_float(
        s, f_cards, f"{where}, field 'scores', key {t!r}", -1e4, 1e4, allow_missing=True
      )
      if not np.isnan(x):
        score_map[i, t] = x
        if t not in t_index:
          t_index[t] = len(task_names)
          task_names.append(t)
  for t in task_desc:
    if t not in t_index:
      t_index[t] = len(task_names)
      task_names.append(t)

  domain_names = list(dom_desc)
  task_domain = np.zeros((len(task_names), len(domain_names)), bool)
  domain_texts = []
  for c, (d, desc) in enumerate(dom_desc.items()):
    where = f"domain {d!r}"
    if not isinstance(desc, str | dict):
      raise DataError(str(domains), where, "expected a text or an object {text, tasks}")
    dtext, dtasks = (
      (desc, []) if isinstance(desc, str) else (desc.get("text"), desc.get("tasks", []))
    )
    if not isinstance(dtasks, list):
      raise DataError(str(domains), f"{where}, field 'tasks'", "expected a list of task names")
    domain_texts.append(V.to_str(dtext, str(domains), f"{where}, field 'text'"))
    for t in dtasks:
      if t not in t_index:
        raise DataError(str(domains), f"{where}, field 'tasks'", f"unknown task {t!r}")
      task_domain[t_index[t], c] = True
  task_texts = []
  for t in task_names:
    desc = task_desc.get(t)
    if desc is None:
      task_texts.append(f"The {t} benchmark.")
      continue
    where = f"task {t!r}"
    if isinstance(desc, dict):
      if not isinstance(desc.get("domains", []), list):
        raise DataError(str(tasks), f"{where}, field 'domains'", "expected a list of domain names")
      for d in desc.get("domains", []):
        if d not in domain_names:
          raise DataError(
            str(tasks), f"{where}, field 'domains'", f"unknown domain {d!r}; not in {domains}"
          )
        task_domain[t_index[t], domain_names.index(d)] = True
      desc = desc.get("text")
    task_texts.append(V.to_str(desc, str(tasks), f"{where}, field 'text'"))
  undescribed = [t for t in task_names if t not in task_desc]
  if tasks is not None and undescribed:
    notes.append(f"tasks without a description (named only): {', '.join(undescribed)}")
  for fam in family_names:
    fam_texts.setdefault(fam, f"The {fam} model family.")
  family_texts = [V.to_str(fam_texts[f], str(families), f"family {f!r}") for f in family_names]

  # -- arrays ----------------------------------------------------------------------------------
  Q, M, T = len(q_text), len(model_names), len(task_names)
  R = np.asarray(recs, np.float64)
  qi, mi = R[:, 0].astype(np.int64), R[:, 1].astype(np.int64)
  outcomes = np.full((Q, M), np.nan, np.float32)
  outcomes[qi, mi] = R[:, 2]
  tokens = np.full((Q, M, 2), np.nan, np.float32)
  tokens[qi, mi] = R[:, 3:5]
  cost = np.full((Q, M), np.nan, np.float32)
  cost[qi, mi] = R[:, 5]
  scores = np.full((M, T), np.nan, np.float32)
  for (i, t), x in score_map.items():
    scores[i, t_index[t]] = x

  in_table = sorted(set(mi.tolist()))
  if candidates is None:
    cand = in_table
  else:
    if not candidates:
      raise DataError(src, "candidates", "empty candidate set; expected at least one model")
    for c in candidates:
      if c not in m_index:
        raise DataError(
          src, "candidates", f"candidate {c!r} is not in the model pool {model_names}"
        )
    cand = sorted(m_index[c] for c in candidates)
  for h in held_out:
    if h not in m_index:
      raise DataError(
        src, "held_out", f"held-out model {h!r} is not in the model pool {model_names}"
      )
    if m_index[h] not in cand:
      raise DataError(src, "held_out", f"held-out model {h!r} is not a candidate")
  held = [m_index[h] for h in held_out]
  q_task_a, q_split_a = np.asarray(q_task, np.int32), np.asarray(q_split, np.int8)
  te, tr = q_split_a == TEST, q_split_a == TRAIN

  missing = ~np.isfinite(outcomes[np.ix_(te, cand)])
  if missing.any():
    r, c = np.argwhere(missing)[0]
    q = int(np.flatnonzero(te)[r])
    raise DataError(
      src,
      f"test query {q_text[q][:60]!r} (task {task_names[q_task[q]]!r})",
      f"no row for candidate {model_names[cand[c]]!r}; test queries need every candidate",
    )
  if held:
    outcomes[np.ix_(tr, held)] = np.nan
    test_tasks = np.unique(q_task_a[te])
    scores[np.ix_(held, test_tasks)] = np.nan
    notes.append(
      f"held out {list(held_out)}: training outcomes and scores on the {len(test_tasks)} test tasks removed"
    )

  # Pairs: every strictly ordered pair of trainable candidates on each training query.
  trainable = np.asarray([c for c in cand if c not in held], np.int64)
  o = outcomes[np.ix_(tr, trainable)]
  better = o[:, :, None] > o[:, None, :]  # NaN compares False
  qq, bb, ww = np.nonzero(better)
  pairs = np.stack([np.flatnonzero(tr)[qq], trainable[bb], trainable[ww]], 1)

  binary = np.ones(T, bool)
  fin = np.isfinite(outcomes)
  nonbin = fin & (outcomes != 0) & (outcomes != 1)
  np.logical_and.at(binary, q_task_a, ~nonbin.any(1))

  return History(
    model_names=model_names,
    model_texts=model_texts,
    model_family=model_family,
    prices_Mx2=np.asarray(prices, np.float32).reshape(M, 2),
    family_names=family_names,
    family_texts=family_texts,
    task_names=task_names,
    task_texts=task_texts,
    task_metric=[""] * T,
    task_binary=binary,
    domain_names=domain_names,
    domain_texts=domain_texts,
    task_domain_TxC=task_domain,
    scores_MxT=scores,
    query_texts=q_text,
    query_task=q_task_a,
    query_split=q_split_a,
    query_in_graph=tr,
    outcomes_QxM=outcomes,
    tokens_QxMx2=tokens,
    cost_QxM=cost,
    pairs_Px3=pairs,
    candidates=cand,
    held_out=held,
    setting=setting,
    source=src,
    notes=notes,
  )
