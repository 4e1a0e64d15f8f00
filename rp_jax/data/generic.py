"""Loader for users' own data: one long table of outcomes plus optional description files.

**Outcome table** (``.csv`` with a header, or ``.jsonl``; either may be gzipped, ``.csv.gz`` /
``.jsonl.gz``; or the same table in memory, e.g. from rp_jax.data.convert), one row per query x
model:

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
  metric              no        metric name of the task (same on every row of a task that
                                gives one; compared in lower case)
  prompt              no        the text the LLM receives for the query (system line + user
                                message, joined as the router should read it; see
                                rp_jax.data.prompts); the same on every row of the query that
                                gives one. A query without one is shown as its raw text.
  ==================  ========  ==========================================================

Every test query needs a row for every candidate. Training queries may be partial.

**Binary tasks** (0/1 outcomes; ``History.task_binary``): by the metric name where the table gives
one that rp_jax.data.task_kinds knows (em_mc, math, gsm8k, code_eval -> binary; f1_score,
commongen_coverage -> continuous); otherwise binary when every known outcome of the task's
TRAINING rows is 0 or 1 (test rows are never looked at: that would leak), and continuous when the
task has no training outcome at all. The notes name the tasks decided by each rule.

**Model cards** (optional JSON): ``{model: {"family": str, "text": str, "input_price": float,
"output_price": float, "scores": {task: float | null}}}`` — prices in $ per million tokens,
scores are benchmark results (any task name; tasks without queries become benchmark-only nodes).
Models that only appear here join the pool (graph nodes) but are not candidates unless listed.

**Families** (optional JSON): ``{family: text}``. **Tasks** (optional JSON): ``{task: text}`` or
``{task: {"text": str, "domains": [domain, ...]}}``. **Domains** (optional JSON):
``{domain: text}`` or ``{domain: {"text": str, "tasks": [task, ...]}}``.

Training pairs for pairwise routers are derived from the training outcomes: for each training
query, every (better, worse) pair of candidates with strictly different performance.

``load_generic`` is a short driver over steps that can be tested alone: read the table rows,
describe the models, describe tasks and domains, build the outcome arrays, choose candidates,
hold models out, derive the pairs, decide which tasks are binary.

Reading is column-wise (rp_jax.data.columns, rp_jax.data.table): every check runs on whole
columns with numpy / pandas, and where one fails, the row-by-row reader ``read_rows`` (the
reference) reads up to the first failing row so that the message is exactly its own. A 150k-row
table loads in about a second on 2 cores (``benchmarks/loader.py``).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from rp_jax.data import validate as V
from rp_jax.data.columns import table_columns
from rp_jax.data.table import REQUIRED as REQUIRED  # the table's columns, re-exported
from rp_jax.data.table import Table, table_from_columns
from rp_jax.data.table import read_rows as read_rows  # the row-by-row reference, re-exported
from rp_jax.data.task_kinds import metric_is_binary
from rp_jax.types import TEST, TRAIN, DataError, History


def load_generic(
  table: str | pathlib.Path | pd.DataFrame | Sequence[Mapping],
  *,
  model_cards: str | pathlib.Path | Mapping | None = None,
  families: str | pathlib.Path | Mapping | None = None,
  tasks: str | pathlib.Path | Mapping | None = None,
  domains: str | pathlib.Path | Mapping | None = None,
  candidates: tuple[str, ...] | None = None,
  held_out: tuple[str, ...] = (),
  setting: str = "custom",
  source: str | None = None,
) -> History:
  """Reads the generic long format (see module docstring) into a validated History.

  Args:
    table: outcome table: a .csv / .jsonl file (or .csv.gz / .jsonl.gz), or the table in memory
      (a DataFrame or a list of row dicts; missing values None or NaN).
    model_cards, families, tasks, domains: optional description JSON files, or their objects.
    candidates: the models a router chooses among (default: every model in the table).
    held_out: candidates to hold out of training (new-LLM setting): their training outcomes,
      pairs and benchmark scores on tasks with test queries are removed, as in the release.
    setting: a name for reports.
    source: what errors and ``History.source`` call an in-memory table (default "<memory>").
  """
  cols, src = table_columns(table, source)
  if not len(cols):
    raise DataError(src, None, "no rows; expected one row per query x model")
  notes = []
  descs = _read_descriptions(src, model_cards, families, tasks, domains)
  tab = table_from_columns(cols, src, descs.cards, descs.model_cards)
  texts = _describe(tab, descs, notes)
  arrays = _outcomes(tab, texts.models, candidates, held_out, src, notes)
  return _history(tab, texts, arrays, setting, src, notes)


class _Descriptions(NamedTuple):
  """The optional description inputs, parsed, each with its name in messages."""

  cards: dict
  model_cards: str | None
  fam_texts: dict
  families: str | None
  task_desc: dict
  tasks: str | None
  dom_desc: dict
  domains: str | None


def _read_descriptions(src: str, model_cards, families, tasks, domains) -> _Descriptions:
  """Parses the four description inputs (files or objects; None: none given)."""
  cards, model_cards = _description(model_cards, "model cards", src)
  fam_texts, families = _description(families, "families", src)
  task_desc, tasks = _description(tasks, "tasks", src)
  dom_desc, domains = _description(domains, "domains", src)
  return _Descriptions(cards, model_cards, fam_texts, families, task_desc, tasks, dom_desc, domains)


@dataclasses.dataclass(frozen=True)
class _Texts:
  """The pool's descriptions: models, family texts [F], task texts [T], domains [C]."""

  models: ModelDescriptions
  family_texts: list[str]
  task_texts: list[str]
  domain_names: list[str]
  domain_texts: list[str]
  task_domain_TxC: np.ndarray


def _describe(tab: Table, d: _Descriptions, notes: list[str]) -> _Texts:
  """Describes models, tasks, domains and families (templates where undescribed)."""
  desc = describe_models(tab, d.cards, d.fam_texts, d.model_cards, d.families)
  for t in d.task_desc:
    tab.add_task(t)
  domain_names, domain_texts, task_domain_TxC = describe_domains(tab, d.dom_desc, d.domains)
  task_texts = describe_tasks(tab, d.task_desc, domain_names, task_domain_TxC, d.tasks, d.domains)
  undescribed = [t for t in tab.task_names if t not in d.task_desc]
  if d.tasks is not None and undescribed:
    notes.append(f"tasks without a description (named only): {', '.join(undescribed)}")
  fam_texts = d.fam_texts
  for fam in desc.family_names:
    fam_texts.setdefault(fam, f"The {fam} model family.")
  family_texts = [
    V.to_str(fam_texts[f], str(d.families), f"family {f!r}") for f in desc.family_names
  ]
  return _Texts(desc, family_texts, task_texts, domain_names, domain_texts, task_domain_TxC)


@dataclasses.dataclass(frozen=True)
class _Outcomes:
  """The History's arrays: outcomes, scores, queries, candidates, held-out models, pairs."""

  outcomes_QxM: np.ndarray
  tokens_QxMx2: np.ndarray
  cost_QxM: np.ndarray
  scores_MxT: np.ndarray
  candidates: np.ndarray
  held: list[int]
  q_task_Q: np.ndarray
  q_split_Q: np.ndarray
  pairs_Px3: np.ndarray
  task_metric: list[str]
  binary_T: np.ndarray


def _outcomes(
  tab: Table,
  desc: ModelDescriptions,
  candidates: tuple[str, ...] | None,
  held_out: tuple[str, ...],
  src: str,
  notes: list[str],
) -> _Outcomes:
  """Builds the arrays, chooses candidates, holds models out, derives pairs and binary tasks."""
  Q, M, T = len(tab.q_text), len(tab.model_names), len(tab.task_names)
  outcomes_QxM, tokens_QxMx2, cost_QxM = outcome_arrays(tab.recs, Q, M)
  scores_MxT = np.full((M, T), np.nan, np.float32)
  for (i, t), x in desc.scores.items():
    scores_MxT[i, tab.t_index[t]] = x
  in_table = np.unique(np.asarray(tab.recs, np.float64).reshape(-1, 6)[:, 1]).astype(int).tolist()
  cand = choose_candidates(candidates, held_out, tab, in_table, src)
  held = [tab.m_index[h] for h in held_out]
  q_task_Q, q_split_Q = np.asarray(tab.q_task, np.int32), np.asarray(tab.q_split, np.int8)
  te, tr = q_split_Q == TEST, q_split_Q == TRAIN
  check_test_complete(outcomes_QxM, te, cand, tab, src)
  if held:
    notes += hold_out(outcomes_QxM, scores_MxT, held, held_out, q_task_Q, te, tr)
  pairs_Px3 = derive_pairs(outcomes_QxM, tr, cand, held)
  task_metric = [tab.metrics.get(t, "") for t in range(T)]
  if tab.prompts and len(tab.prompts) < Q:
    notes.append(f"{Q - len(tab.prompts)} of {Q} queries have no prompt: shown as their raw text")
  binary_T, kind_notes = binary_tasks(outcomes_QxM, q_task_Q, tr, task_metric, tab.task_names)
  notes += kind_notes
  return _Outcomes(
    outcomes_QxM,
    tokens_QxMx2,
    cost_QxM,
    scores_MxT,
    cand,
    held,
    q_task_Q,
    q_split_Q,
    pairs_Px3,
    task_metric,
    binary_T,
  )


def _history(
  tab: Table, texts: _Texts, a: _Outcomes, setting: str, src: str, notes: list[str]
) -> History:
  """The validated History of the table, its descriptions and its arrays."""
  M = len(tab.model_names)
  return History(
    model_names=tab.model_names,
    model_texts=texts.models.model_texts,
    model_family=texts.models.model_family,
    prices_Mx2=np.asarray(texts.models.prices, np.float32).reshape(M, 2),
    family_names=texts.models.family_names,
    family_texts=texts.family_texts,
    task_names=tab.task_names,
    task_texts=texts.task_texts,
    task_metric=a.task_metric,
    task_binary=a.binary_T,
    domain_names=texts.domain_names,
    domain_texts=texts.domain_texts,
    task_domain_TxC=texts.task_domain_TxC,
    scores_MxT=a.scores_MxT,
    query_texts=tab.q_text,
    query_prompts=[tab.prompts.get(q, text) for q, text in enumerate(tab.q_text)],
    query_task=a.q_task_Q,
    query_split=a.q_split_Q,
    query_in_graph=a.q_split_Q == TRAIN,
    outcomes_QxM=a.outcomes_QxM,
    tokens_QxMx2=a.tokens_QxMx2,
    cost_QxM=a.cost_QxM,
    pairs_Px3=a.pairs_Px3,
    candidates=a.candidates,
    held_out=a.held,
    setting=setting,
    source=src,
    notes=notes,
  )


def _description(obj, what: str, src: str) -> tuple[dict, str | None]:
  """(parsed description, its name in messages): a JSON file's object, or an object as given."""
  if obj is None:
    return {}, None
  if isinstance(obj, Mapping):
    return dict(obj), f"{src} ({what})"
  return V.read_json(obj, dict), str(obj)


@dataclasses.dataclass
class ModelDescriptions:
  """Per model [M]: family index, text, [input, output] price; families; scores by (m, task)."""

  family_names: list[str]
  model_family: list[int]
  model_texts: list[str]
  prices: list[list[float]]
  scores: dict[tuple[int, str], float]


def describe_models(
  tab: Table, cards: dict, fam_texts: dict, model_cards, families
) -> ModelDescriptions:
  """Reads each pool model's card (defaults where absent); scored tasks join ``tab``'s tasks."""
  f_cards = str(model_cards)
  out = ModelDescriptions(list(fam_texts), [], [], [], {})
  for i, name in enumerate(tab.model_names):
    card = cards.get(name, {})
    where = f"model {name!r}"
    if not isinstance(card, dict):
      raise DataError(f_cards, where, f"expected an object, got {type(card).__name__}")
    fam = card.get("family", name)
    if not isinstance(fam, str) or not fam:
      raise DataError(f_cards, f"{where}, field 'family'", "expected a non-empty string")
    if fam not in out.family_names:
      if families is not None:
        raise DataError(
          f_cards, f"{where}, field 'family'", f"unknown family {fam!r}; not in {families}"
        )
      out.family_names.append(fam)
    out.model_family.append(out.family_names.index(fam))
    text = card.get("text", f"{name} is a large language model of the {fam} family.")
    out.model_texts.append(V.to_str(text, f_cards, f"{where}, field 'text'"))
    out.prices.append(
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
        out.scores[i, t] = x
        tab.add_task(t)
  return out


def describe_domains(
  tab: Table, dom_desc: dict, domains
) -> tuple[list[str], list[str], np.ndarray]:
  """Domain names, texts and the task membership [T, C] the domain file declares."""
  domain_names = list(dom_desc)
  task_domain_TxC = np.zeros((len(tab.task_names), len(domain_names)), bool)
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
      if t not in tab.t_index:
        raise DataError(str(domains), f"{where}, field 'tasks'", f"unknown task {t!r}")
      task_domain_TxC[tab.t_index[t], c] = True
  return domain_names, domain_texts, task_domain_TxC


def describe_tasks(
  tab: Table,
  task_desc: dict,
  domain_names: list[str],
  task_domain_TxC: np.ndarray,
  tasks,
  domains,
) -> list[str]:
  """Task texts [T] (a template where undescribed); adds the task file's domains in place."""
  task_texts = []
  for t in tab.task_names:
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
        task_domain_TxC[tab.t_index[t], domain_names.index(d)] = True
      desc = desc.get("text")
    task_texts.append(V.to_str(desc, str(tasks), f"{where}, field 'text'"))
  return task_texts


# -- arrays ---------------------------------------------------------------------------------------


def outcome_arrays(recs: list[tuple], Q: int, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Scatters the row records into outcomes [Q, M], tokens [Q, M, 2], cost [Q, M] (NaN = none)."""
  R = np.asarray(recs, np.float64)
  qi, mi = R[:, 0].astype(np.int64), R[:, 1].astype(np.int64)
  outcomes_QxM = np.full((Q, M), np.nan, np.float32)
  outcomes_QxM[qi, mi] = R[:, 2]
  tokens_QxMx2 = np.full((Q, M, 2), np.nan, np.float32)
  tokens_QxMx2[qi, mi] = R[:, 3:5]
  cost_QxM = np.full((Q, M), np.nan, np.float32)
  cost_QxM[qi, mi] = R[:, 5]
  return outcomes_QxM, tokens_QxMx2, cost_QxM


def choose_candidates(
  candidates: tuple[str, ...] | None,
  held_out: tuple[str, ...],
  tab: Table,
  in_table: list[int],
  src: str,
) -> list[int]:
  """Sorted candidate indices (default: the models with table rows); checks the held-out ones."""
  if candidates is None:
    cand = in_table
  else:
    if not candidates:
      raise DataError(src, "candidates", "empty candidate set; expected at least one model")
    for c in candidates:
      if c not in tab.m_index:
        raise DataError(
          src, "candidates", f"candidate {c!r} is not in the model pool {tab.model_names}"
        )
    cand = sorted(tab.m_index[c] for c in candidates)
  for h in held_out:
    if h not in tab.m_index:
      raise DataError(
        src, "held_out", f"held-out model {h!r} is not in the model pool {tab.model_names}"
      )
    if tab.m_index[h] not in cand:
      raise DataError(src, "held_out", f"held-out model {h!r} is not a candidate")
  return cand


def check_test_complete(
  outcomes_QxM: np.ndarray, te_Q: np.ndarray, cand: list[int], tab: Table, src: str
) -> None:
  """Raises DataError naming the first test query without a row for some candidate."""
  missing = ~np.isfinite(outcomes_QxM[np.ix_(te_Q, cand)])
  if missing.any():
    r, c = np.argwhere(missing)[0]
    q = int(np.flatnonzero(te_Q)[r])
    raise DataError(
      src,
      f"test query {tab.q_text[q][:60]!r} (task {tab.task_names[tab.q_task[q]]!r})",
      f"no row for candidate {tab.model_names[cand[c]]!r}; test queries need every candidate",
    )


def hold_out(
  outcomes_QxM: np.ndarray,
  scores_MxT: np.ndarray,
  held: list[int],
  held_out: tuple[str, ...],
  query_task_Q: np.ndarray,
  te_Q: np.ndarray,
  tr_Q: np.ndarray,
) -> list[str]:
  """Removes (in place) the held-out models' training outcomes and test-task scores; a note."""
  outcomes_QxM[np.ix_(tr_Q, held)] = np.nan
  test_T = np.unique(query_task_Q[te_Q])
  scores_MxT[np.ix_(held, test_T)] = np.nan
  return [
    f"held out {list(held_out)}: training outcomes and scores on the {len(test_T)} test tasks removed"
  ]


def derive_pairs(
  outcomes_QxM: np.ndarray, tr_Q: np.ndarray, cand: list[int], held: list[int]
) -> np.ndarray:
  """[P, 3] (query, better, worse): every strictly ordered pair of trainable candidates.

  Pairs come from the training queries only; NaN outcomes never form a pair.
  """
  trainable = np.asarray([c for c in cand if c not in held], np.int64)
  o_QxA = outcomes_QxM[np.ix_(tr_Q, trainable)]
  better_QxAxA = o_QxA[:, :, None] > o_QxA[:, None, :]  # NaN compares False
  qq, bb, ww = np.nonzero(better_QxAxA)
  return np.stack([np.flatnonzero(tr_Q)[qq], trainable[bb], trainable[ww]], 1)


def binary_tasks(
  outcomes_QxM: np.ndarray,
  query_task_Q: np.ndarray,
  tr_Q: np.ndarray,
  task_metric: list[str],
  task_names: list[str],
) -> tuple[np.ndarray, list[str]]:
  """[T] bool: by a known metric name, else every known TRAINING outcome of the task is 0/1.

  A task without a known metric and without any training outcome is continuous. Test outcomes are
  never looked at (deciding from them would leak test rows into training labels).

  Returns:
    (binary_T, notes naming the tasks with queries that each rule decided).
  """
  T = len(task_names)
  fin_QxM = np.isfinite(outcomes_QxM) & tr_Q[:, None]
  nonbin_Q = (fin_QxM & (outcomes_QxM != 0) & (outcomes_QxM != 1)).any(1)
  has_T = np.zeros(T, bool)
  np.logical_or.at(has_T, query_task_Q, fin_QxM.any(1))
  all01_T = np.ones(T, bool)
  np.logical_and.at(all01_T, query_task_Q, ~nonbin_Q)
  kind_T = [metric_is_binary(m) if m else None for m in task_metric]
  binary_T = np.array(
    [k if k is not None else bool(all01_T[t] and has_T[t]) for t, k in enumerate(kind_T)], bool
  ).reshape(T)
  used = sorted(set(query_task_Q.tolist()))
  by_metric = [t for t in used if kind_T[t] is not None]
  unknown = [t for t in used if task_metric[t] and kind_T[t] is None]
  no_train = [t for t in used if kind_T[t] is None and not has_T[t]]
  odd = [t for t in by_metric if kind_T[t] and not all01_T[t]]
  names = lambda ts: ", ".join(task_names[t] for t in ts)
  notes = []
  if by_metric:
    notes.append(
      "binary tasks by metric name (rp_jax.data.task_kinds): "
      + ", ".join(
        f"{task_names[t]} ({task_metric[t]}: {'0/1' if binary_T[t] else 'continuous'})"
        for t in by_metric
      )
    )
  if unknown:
    notes.append(
      f"metric unknown to the table, decided from the training outcomes: {names(unknown)}"
    )
  if no_train:
    notes.append(
      f"no training outcome tells whether these are 0/1, counted continuous: {names(no_train)}"
    )
  if odd:
    notes.append(f"binary by metric name but with training outcomes other than 0/1: {names(odd)}")
  return binary_T, notes
