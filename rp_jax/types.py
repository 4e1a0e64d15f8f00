"""Core host-side types of rp_jax and the shape-letter legend.

Shape letters used in array names across the code base (``profile_SxMxD`` etc.), one meaning
each:

  A  candidate models          M  models (the whole pool)     Q  queries
  B  batch                     N  graph nodes                 R  relation types
  C  domains                   O  points of a fit, front or   S  sweep cells (configurations)
  D  feature width (inputs,       curve (hull vertices,       T  tasks (benchmarks)
     hidden units, ranks,         isotonic knots, bins)       U  the λ grid (cost-quality)
     channels per head)        P  pairwise records            V  validation queries
  E  graph edges               G  relation groups (HAN)       W  bootstrap resamples
  F  families                  H  attention heads             X  hashing buckets
  I  training-curve points     J  slots of a row (a query's   Y  cross-validation folds
     (epochs, steps)              pairs, a batch's items,     Z  seeds (independent runs)
  K  hops / layers                a query's neighbours)
  L  tokens

Digits are literal sizes (``prices_Mx2``).

Everything in this module is numpy (host side). Arrays after the jit boundary are jax arrays of
the same names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

TRAIN = 0
TEST = 1
SPLIT_NAMES = ("train", "test")
# Setting names: "<dataset>@<setting>" in a multi-dataset run, "<setting>~<method>-<k>" for a quiz
# setting (a cold-start setting with a held-out model's answers to a k-query quiz revealed).
DATASET_SEP = "@"
QUIZ_SEP = "~"


def setting_parts(name: str) -> tuple[str, str, str]:
  """(dataset, base setting, quiz) of a setting name: "rb@lomo:m~random-50" -> ("rb", "lomo:m",
  "random-50"); "" for the parts a name does not have."""
  head, sep, rest = name.partition(DATASET_SEP)
  if not sep or ":" in head:  # dataset names (sources, file stems) hold no ":"; lomo folds do
    head, rest = "", name
  base, sep, quiz = rest.rpartition(QUIZ_SEP)
  return (head, base, quiz) if sep else (head, rest, "")


class DataError(ValueError):
  """Bad input data. The message names the file, the row or key, and what was expected."""

  def __init__(self, source: str, where: str | None, message: str):
    self.source = str(source)
    self.where = where
    self.detail = message
    loc = f"{self.source}" + (f", {where}" if where else "")
    super().__init__(f"{loc}: {message}")


def _tuple_of_str(xs: Sequence[str]) -> tuple[str, ...]:
  return tuple(str(x) for x in xs)


@dataclasses.dataclass(frozen=True, eq=False)
class History:
  """A validated interaction history: the model pool, benchmarks, queries and outcomes.

  Indices everywhere are positions in the name tuples. Missing values are NaN.

  Attributes:
    model_names: [M] unique model names (the whole pool, graph nodes).
    model_texts: [M] text description of each model.
    model_family: [M] int32 index into ``family_names``.
    prices_Mx2: [M, 2] float32, $ per million tokens (input, output); NaN if unknown.
    family_names, family_texts: [F].
    task_names, task_texts: [T] benchmarks (graph task nodes; routing tasks among them).
    task_metric: [T] metric name of each task ("" if unknown).
    task_binary: [T] bool, outcomes of the task are 0/1 (so a pair's better model scored 1).
    domain_names, domain_texts: [C].
    task_domain_TxC: [T, C] bool, task belongs to domain.
    scores_MxT: [M, T] float32 benchmark scores (usually 0..100; some benchmarks such as
      WildBench go below 0), NaN where missing.
    query_texts: [Q] query texts; (task, text) is unique.
    query_prompts: [Q] the text the LLM receives for each query (system line + user message,
      joined as in rp_jax.data.prompts); the raw ``query_texts`` when not given. A ``replace``
      that changes ``query_texts`` must pass matching ``query_prompts`` too.
    query_task: [Q] int32 task index of each query.
    query_split: [Q] int8, ``TRAIN`` or ``TEST``.
    query_in_graph: [Q] bool, the query is a node of the interaction graph (never a test query).
    outcomes_QxM: [Q, M] float32 performance in [0, 1], NaN where unknown.
    tokens_QxMx2: [Q, M, 2] float32 prompt / completion tokens, NaN where unknown.
    cost_QxM: [Q, M] float32 $ per query when given explicitly, else NaN (derived from tokens).
    pairs_Px3: [P, 3] int32 (query, better model, worse model) training records.
    candidates: [A] int32 model indices the router chooses among (sorted by pool order).
    held_out: int32 model indices held out of training (newllm setting); subset of candidates.
    quiz_queries: int32 indices of the training queries of a quiz: the held-out models' outcomes
      (and pairs) there are revealed (``data.holdout.reveal_quiz``) — a held-out model's training
      data exists on these queries only — and probe profiles measure every model on them.
    setting: name of the setting ("standard", "newllm", "synthetic", ...).
    source: where the history came from (folder or generator description).
    notes: human-readable facts found while loading (e.g. rows dropped and why).
  """

  model_names: tuple[str, ...]
  model_texts: tuple[str, ...]
  model_family: np.ndarray
  prices_Mx2: np.ndarray
  family_names: tuple[str, ...]
  family_texts: tuple[str, ...]
  task_names: tuple[str, ...]
  task_texts: tuple[str, ...]
  task_metric: tuple[str, ...]
  task_binary: np.ndarray
  domain_names: tuple[str, ...]
  domain_texts: tuple[str, ...]
  task_domain_TxC: np.ndarray
  scores_MxT: np.ndarray
  query_texts: tuple[str, ...]
  query_task: np.ndarray
  query_split: np.ndarray
  query_in_graph: np.ndarray
  outcomes_QxM: np.ndarray
  tokens_QxMx2: np.ndarray
  cost_QxM: np.ndarray
  pairs_Px3: np.ndarray
  candidates: np.ndarray
  held_out: np.ndarray
  setting: str = "custom"
  source: str = "<memory>"
  notes: tuple[str, ...] = ()
  query_prompts: tuple[str, ...] | None = None
  quiz_queries: np.ndarray = ()

  def __post_init__(self):
    set_ = lambda k, v: object.__setattr__(self, k, v)
    for k in (
      "model_names",
      "model_texts",
      "family_names",
      "family_texts",
      "task_names",
      "task_texts",
      "task_metric",
      "domain_names",
      "domain_texts",
      "query_texts",
      "notes",
    ):
      set_(k, _tuple_of_str(getattr(self, k)))
    # Not coerced with str(): check() rejects a non-string prompt rather than printing it.
    set_(
      "query_prompts", self.query_texts if self.query_prompts is None else tuple(self.query_prompts)
    )
    as_ = lambda k, dt: set_(k, np.asarray(getattr(self, k), dtype=dt))
    as_("model_family", np.int32)
    as_("prices_Mx2", np.float32)
    as_("task_binary", bool)
    as_("task_domain_TxC", bool)
    as_("scores_MxT", np.float32)
    as_("query_task", np.int32)
    as_("query_split", np.int8)
    as_("query_in_graph", bool)
    as_("outcomes_QxM", np.float32)
    as_("tokens_QxMx2", np.float32)
    as_("cost_QxM", np.float32)
    set_("pairs_Px3", np.asarray(self.pairs_Px3, np.int32).reshape(-1, 3))
    set_("candidates", np.asarray(self.candidates, np.int32).reshape(-1))
    set_("held_out", np.asarray(self.held_out, np.int32).reshape(-1))
    set_("quiz_queries", np.asarray(self.quiz_queries, np.int32).reshape(-1))
    self.check()

  # -- sizes ---------------------------------------------------------------------------------
  @property
  def num_models(self) -> int:
    return len(self.model_names)

  @property
  def num_tasks(self) -> int:
    return len(self.task_names)

  @property
  def num_queries(self) -> int:
    return len(self.query_texts)

  @property
  def num_domains(self) -> int:
    return len(self.domain_names)

  @property
  def num_families(self) -> int:
    return len(self.family_names)

  # -- views ---------------------------------------------------------------------------------
  @property
  def train_queries(self) -> np.ndarray:
    """[Q_train] int32 indices of training queries."""
    return np.flatnonzero(self.query_split == TRAIN).astype(np.int32)

  @property
  def test_queries(self) -> np.ndarray:
    """[Q_test] int32 indices of test queries."""
    return np.flatnonzero(self.query_split == TEST).astype(np.int32)

  @property
  def candidate_names(self) -> tuple[str, ...]:
    return tuple(self.model_names[i] for i in self.candidates)

  @property
  def held_out_names(self) -> tuple[str, ...]:
    return tuple(self.model_names[i] for i in self.held_out)

  @property
  def routing_tasks(self) -> np.ndarray:
    """[T_route] int32 indices of tasks that have test queries, sorted."""
    return np.unique(self.query_task[self.query_split == TEST]).astype(np.int32)

  def model_index(self, name: str) -> int:
    try:
      return self.model_names.index(name)
    except ValueError:
      raise KeyError(f"unknown model {name!r}; the pool has {list(self.model_names)}") from None

  def task_index(self, name: str) -> int:
    try:
      return self.task_names.index(name)
    except ValueError:
      raise KeyError(f"unknown task {name!r}; known tasks: {list(self.task_names)}") from None

  def query_cost_QxM(self) -> np.ndarray:
    """[Q, M] $ per query: the explicit cost where given, else tokens x prices / 1e6."""
    derived = (
      self.tokens_QxMx2[..., 0] * self.prices_Mx2[None, :, 0]
      + self.tokens_QxMx2[..., 1] * self.prices_Mx2[None, :, 1]
    ) / 1e6
    return np.where(np.isnan(self.cost_QxM), derived, self.cost_QxM).astype(np.float32)

  def summary(self) -> str:
    """A few lines describing sizes, for logs and reports."""
    n_tr, n_te = len(self.train_queries), len(self.test_queries)
    lines = [
      f"History {self.setting!r} from {self.source}",
      f"  {self.num_families} families, {self.num_models} models "
      f"({len(self.candidates)} candidates: {', '.join(self.candidate_names)})",
      f"  {self.num_tasks} tasks ({int(np.isfinite(self.scores_MxT).any(0).sum())} with scores, "
      f"{len(self.routing_tasks)} routing), {self.num_domains} domains",
      f"  {self.num_queries} queries: {n_tr} train ({int(self.query_in_graph.sum())} graph nodes), "
      f"{n_te} test; {len(self.pairs_Px3)} pairs",
    ]
    if len(self.held_out):
      lines.append(f"  held out (new LLM): {', '.join(self.held_out_names)}")
    if len(self.quiz_queries):
      lines.append(f"  quiz: {len(self.quiz_queries)} training queries")
    lines += [f"  note: {n}" for n in self.notes]
    return "\n".join(lines)

  # -- validation ----------------------------------------------------------------------------
  def check(self) -> None:
    """Raises DataError if shapes, ranges or indices are inconsistent."""
    self._check_models()
    self._check_tasks()
    self._check_prompts()
    self._check_queries()
    self._check_outcomes_and_pairs()
    self._check_candidates()

  def _need(self, cond, where, msg) -> None:
    """Raises DataError (from this History's source, at ``where``) unless ``cond``."""
    if not cond:
      raise DataError(self.source, where, msg)

  def _check_models(self) -> None:
    """Unique names; model texts, families and prices."""
    need, M, F = self._need, self.num_models, self.num_families
    for name, xs in (
      ("model_names", self.model_names),
      ("task_names", self.task_names),
      ("domain_names", self.domain_names),
      ("family_names", self.family_names),
    ):
      dup = sorted({x for x in xs if xs.count(x) > 1})
      need(not dup, name, f"names must be unique; duplicated: {dup}")
    need(M > 0, "model_names", "expected at least one model")
    need(
      len(self.model_texts) == M, "model_texts", f"expected {M} texts, got {len(self.model_texts)}"
    )
    need(self.model_family.shape == (M,), "model_family", f"expected shape ({M},)")
    need(
      bool(((self.model_family >= 0) & (self.model_family < F)).all()),
      "model_family",
      f"family index out of range [0, {F})",
    )
    need(self.prices_Mx2.shape == (M, 2), "prices_Mx2", f"expected shape ({M}, 2)")

  def _check_tasks(self) -> None:
    """Family, task and domain texts; task metrics and kinds; domains; benchmark scores."""
    need, M, T, C = self._need, self.num_models, self.num_tasks, self.num_domains
    need(
      len(self.family_texts) == self.num_families,
      "family_texts",
      f"expected {self.num_families} texts",
    )
    need(len(self.task_texts) == T, "task_texts", f"expected {T} texts")
    need(len(self.task_metric) == T, "task_metric", f"expected {T} entries")
    need(self.task_binary.shape == (T,), "task_binary", f"expected shape ({T},)")
    need(len(self.domain_texts) == C, "domain_texts", f"expected {C} texts")
    need(self.task_domain_TxC.shape == (T, C), "task_domain_TxC", f"expected shape ({T}, {C})")
    need(self.scores_MxT.shape == (M, T), "scores_MxT", f"expected shape ({M}, {T})")
    need(
      not bool(np.isinf(self.scores_MxT).any()),
      "scores_MxT",
      "benchmark scores must be finite numbers or NaN (missing)",
    )

  def _check_queries(self) -> None:
    """Query tasks, splits and graph nodes; (task, text) unique."""
    need, T, Q = self._need, self.num_tasks, self.num_queries
    need(self.query_task.shape == (Q,), "query_task", f"expected shape ({Q},)")
    need(
      bool(((self.query_task >= 0) & (self.query_task < T)).all()),
      "query_task",
      f"task index out of range [0, {T})",
    )
    need(self.query_split.shape == (Q,), "query_split", f"expected shape ({Q},)")
    need(bool(np.isin(self.query_split, (TRAIN, TEST)).all()), "query_split", "expected 0 or 1")
    need(self.query_in_graph.shape == (Q,), "query_in_graph", f"expected shape ({Q},)")
    need(
      not bool((self.query_in_graph & (self.query_split == TEST)).any()),
      "query_in_graph",
      "test queries must never be graph nodes",
    )
    keys = list(zip(self.query_task.tolist(), self.query_texts, strict=True))
    if len(set(keys)) != Q:
      seen, dup = set(), None
      for i, k in enumerate(keys):
        if k in seen:
          dup = i
          break
        seen.add(k)
      need(False, f"query {dup}", "(task, query text) must be unique")

  def _check_outcomes_and_pairs(self) -> None:
    """Outcome, token and cost shapes; outcomes in [0, 1]; pairs index training queries."""
    need, M, Q = self._need, self.num_models, self.num_queries
    need(self.outcomes_QxM.shape == (Q, M), "outcomes_QxM", f"expected shape ({Q}, {M})")
    o = self.outcomes_QxM[np.isfinite(self.outcomes_QxM)]
    need(bool(((o >= 0) & (o <= 1)).all()), "outcomes_QxM", "performance must lie in [0, 1]")
    need(self.tokens_QxMx2.shape == (Q, M, 2), "tokens_QxMx2", f"expected shape ({Q}, {M}, 2)")
    need(self.cost_QxM.shape == (Q, M), "cost_QxM", f"expected shape ({Q}, {M})")
    P = self.pairs_Px3
    if len(P):
      need(bool(((P[:, 0] >= 0) & (P[:, 0] < Q)).all()), "pairs_Px3", "query index out of range")
      need(bool(((P[:, 1:] >= 0) & (P[:, 1:] < M)).all()), "pairs_Px3", "model index out of range")
      need(bool((P[:, 1] != P[:, 2]).all()), "pairs_Px3", "better and worse model must differ")
      need(
        bool((self.query_split[P[:, 0]] == TRAIN).all()),
        "pairs_Px3",
        "pairs must refer to training queries",
      )

  def _check_candidates(self) -> None:
    """Candidates, held-out models (no training data but on their quiz queries), test rows."""
    need, M, Q, P = self._need, self.num_models, self.num_queries, self.pairs_Px3
    cand = self.candidates
    need(len(cand) > 0, "candidates", "the candidate set is empty; expected at least one model")
    need(bool(((cand >= 0) & (cand < M)).all()), "candidates", "model index out of range")
    need(len(set(cand.tolist())) == len(cand), "candidates", "duplicate candidate")
    need(bool((np.diff(cand) > 0).all()), "candidates", "candidates must be sorted by pool order")
    for h in self.held_out.tolist():
      need(
        h in set(cand.tolist()),
        "held_out",
        f"held-out model {self.model_names[h] if 0 <= h < M else h!r} is not a candidate",
      )
    quiz = np.zeros(Q, bool)
    if len(self.quiz_queries):
      qz = self.quiz_queries
      need(bool(((qz >= 0) & (qz < Q)).all()), "quiz_queries", "query index out of range")
      need(bool((self.query_split[qz] == TRAIN).all()), "quiz_queries", "must be training queries")
      quiz[qz] = True
    if len(self.held_out) and len(P):
      leak = np.isin(P[:, 1:], self.held_out).any(1) & ~quiz[P[:, 0]]
      need(
        not bool(leak.any()),
        f"pairs_Px3 row {int(np.argmax(leak))}",
        "a held-out model must not appear in training pairs (but on its quiz queries)",
      )
    if len(self.held_out):
      tr = (self.query_split == TRAIN) & ~quiz
      seen = np.isfinite(self.outcomes_QxM[np.ix_(tr, self.held_out)])
      need(
        not bool(seen.any()),
        "outcomes_QxM",
        "a held-out model must have no known training outcome but on its quiz queries (it "
        "would leak into training)",
      )
    te = self.query_split == TEST
    if te.any():
      miss = ~np.isfinite(self.outcomes_QxM[np.ix_(te, cand)])
      if miss.any():
        q = int(np.flatnonzero(te)[np.argmax(miss.any(1))])
        need(False, f"query {q}", "test queries need an outcome for every candidate")

  def _check_prompts(self) -> None:
    Q = self.num_queries
    if len(self.query_prompts) != Q:
      raise DataError(
        self.source,
        "query_prompts",
        f"expected {Q} prompts (one per query), got {len(self.query_prompts)}",
      )
    bad = next((i for i, p in enumerate(self.query_prompts) if not isinstance(p, str)), None)
    if bad is not None:
      raise DataError(
        self.source,
        f"query_prompts[{bad}]",
        f"expected a string, got {self.query_prompts[bad]!r:.60}",
      )

  def replace(self, **changes) -> History:
    """A copy with some fields replaced (validated again).

    Prompts that were the default (the raw texts) follow replaced ``query_texts``.
    """
    if (
      "query_texts" in changes
      and "query_prompts" not in changes
      and self.query_prompts == self.query_texts
    ):
      changes["query_prompts"] = None
    return dataclasses.replace(self, **changes)
