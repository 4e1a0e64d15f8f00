"""Holding candidates out of training, and revealing a held-out model's answers to a quiz.

``hold_out(history, names)`` does to the named candidates exactly what the public ``newllm``
setting does to mistral-small: their training pairs are removed, their training outcomes become
unknown, and their benchmark scores on the routing tasks (the tasks with test rows) are removed
from the interaction graph; they stay candidates (selectable at test time, through their profile
only). ``leave_one_out(history)`` gives one such History per candidate: the folds of the
leave-each-candidate-out protocol (``settings=("lomo",)``). ``reveal_quiz(cold, full, quiz)``
then reveals what the data knows of the held-out models on a few training queries (their answers
to a quiz, SPEC §8) and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rp_jax.types import TRAIN, History


def hold_out(history: History, names: Sequence[str], setting: str | None = None) -> History:
  """The History with ``names`` held out of training as newllm holds out mistral-small.

  Args:
    history: a History without held-out models (e.g. the standard setting).
    names: candidates to hold out.
    setting: the new History's setting name (default ``"lomo:<name>+..."``).
  """
  if len(history.held_out):
    raise ValueError(
      f"history {history.setting!r} already holds out {list(history.held_out_names)}; "
      "hold models out of a history without held-out models"
    )
  idx = []
  for n in names:
    m = history.model_index(n)
    if m not in set(history.candidates.tolist()):
      raise ValueError(f"{n!r} is not a candidate; only candidates can be held out")
    idx.append(m)
  idx = np.asarray(sorted(set(idx)), np.int32)
  pairs = history.pairs_Px3
  keep = ~np.isin(pairs[:, 1:], idx).any(1)
  outcomes = history.outcomes_QxM.copy()
  outcomes[np.ix_(history.query_split == TRAIN, idx)] = np.nan
  scores = history.scores_MxT.copy()
  scores[np.ix_(idx, history.routing_tasks)] = np.nan
  dropped = int((~keep).sum())
  names_txt = ", ".join(history.model_names[i] for i in idx)
  return history.replace(
    pairs_Px3=pairs[keep],
    outcomes_QxM=outcomes,
    scores_MxT=scores,
    held_out=idx,
    setting=setting or "lomo:" + "+".join(history.model_names[i] for i in idx),
    notes=(
      *history.notes,
      f"held out {names_txt}: {dropped} training pairs, its training outcomes and its "
      "routing-task scores removed",
    ),
  )


def leave_one_out(history: History) -> list[History]:
  """One History per candidate, that candidate held out (the folds of ``settings=lomo``)."""
  return [hold_out(history, [n]) for n in history.candidate_names]


def reveal_quiz(cold: History, full: History, quiz_Q, setting: str | None = None) -> History:
  """The cold-start History with the held-out models' answers to a quiz revealed.

  What ``full`` (the same data without the models held out) knows of the held-out models on the
  quiz queries — and nothing else of them — is copied into ``cold``: their outcomes on those
  queries and their training pairs there with the other candidates. A quiz query on which
  ``full`` knows nothing of a held-out model stays unanswered. Queries are matched by (task name,
  text), models by name.

  Args:
    cold: a History with held-out models (newllm, a lomo fold, a generic ``held_out``).
    full: the same data with those models' training data (e.g. the standard setting).
    quiz_Q: indices of ``cold``'s *training* queries (``rp_jax.profiles.quiz.choose_quiz``).
    setting: the new History's setting name (default ``"<cold>+quiz<k>"``).

  Raises:
    ValueError: no held-out model, or a quiz query that is not a training query.
  """
  quiz_Q = np.unique(np.asarray(quiz_Q, np.int64))
  if not len(cold.held_out):
    raise ValueError(f"history {cold.setting!r} holds no model out; there is nobody to quiz")
  if len(quiz_Q) and ((quiz_Q < 0) | (quiz_Q >= cold.num_queries)).any():
    raise ValueError(f"quiz: query index out of range [0, {cold.num_queries})")
  if len(quiz_Q) and (cold.query_split[quiz_Q] != TRAIN).any():
    raise ValueError("quiz: every quiz query must be a training query (never a test query)")
  key = lambda h, q: (h.task_names[h.query_task[q]], h.query_texts[q])
  full_q = {key(full, q): q for q in range(full.num_queries)}
  q_full = np.asarray([full_q.get(key(cold, q), -1) for q in quiz_Q], np.int64)
  held = [full.model_index(n) for n in cold.held_out_names]
  m_cold = np.asarray(
    [cold.model_names.index(n) if n in cold.model_names else -1 for n in full.model_names]
  )
  outcomes = cold.outcomes_QxM.copy()
  found = q_full >= 0
  for hf, hc in zip(held, cold.held_out.tolist(), strict=True):
    outcomes[quiz_Q[found], hc] = full.outcomes_QxM[q_full[found], hf]
  local = np.full(full.num_queries, -1, np.int64)
  local[q_full[found]] = quiz_Q[found]
  P = full.pairs_Px3.astype(np.int64)
  take = (local[P[:, 0]] >= 0) & np.isin(P[:, 1:], held).any(1) & (m_cold[P[:, 1:]] >= 0).all(1)
  new_pairs = np.stack([local[P[take, 0]], m_cold[P[take, 1]], m_cold[P[take, 2]]], axis=1)
  answered = int(np.isfinite(outcomes[np.ix_(quiz_Q, cold.held_out)]).any(1).sum())
  note = (
    f"quiz: {len(quiz_Q)} training queries revealed for {', '.join(cold.held_out_names)} "
    f"({answered} with a known outcome, {len(new_pairs)} pairs)"
  )
  return cold.replace(
    outcomes_QxM=outcomes,
    pairs_Px3=np.concatenate([cold.pairs_Px3, new_pairs.astype(np.int32)]),
    quiz_queries=quiz_Q.astype(np.int32),
    setting=setting or f"{cold.setting}+quiz{len(quiz_Q)}",
    notes=(*cold.notes, note),
  )


def _train_only(history: History) -> History:
  """The History restricted to its training queries (query indices renumbered)."""
  keep = np.flatnonzero(history.query_split == TRAIN)
  local = np.full(history.num_queries, -1, np.int64)
  local[keep] = np.arange(len(keep))
  pairs = history.pairs_Px3.astype(np.int64)
  pairs = np.stack([local[pairs[:, 0]], pairs[:, 1], pairs[:, 2]], axis=1) if len(pairs) else pairs
  take = lambda xs: [xs[i] for i in keep]
  return history.replace(
    query_texts=take(history.query_texts),
    query_prompts=take(history.query_prompts),
    query_task=history.query_task[keep],
    query_split=history.query_split[keep],
    query_in_graph=history.query_in_graph[keep],
    outcomes_QxM=history.outcomes_QxM[keep],
    tokens_QxMx2=history.tokens_QxMx2[keep],
    cost_QxM=history.cost_QxM[keep],
    pairs_Px3=pairs,
    quiz_queries=local[history.quiz_queries],
  )


def with_new_model(history: History, name: str, card, quiz_Q, outcomes_Q) -> History:
  """A training-only History with model ``name`` as a held-out candidate and only its answers to
  a quiz known: what a deployed router needs to profile a new model (``rp_jax.onboard``).

  Args:
    history: the router's training History.
    name: a pool model, or a new one described by ``card`` ({"family", "text", "input_price",
      "output_price"}; required for a model outside the pool).
    quiz_Q: [k] History indices of the quiz's training queries; outcomes_Q: [k] its answers.
  """
  h = history.replace(quiz_queries=np.asarray(quiz_Q, np.int32))
  if name not in h.model_names:
    if card is None:
      raise ValueError(f"{name!r} is not in the data's model pool: give its model card")
    h = _append_model(h, name, card)
  m = h.model_index(name)
  outcomes = h.outcomes_QxM.copy()
  outcomes[h.query_split == TRAIN, m] = np.nan
  outcomes[np.asarray(quiz_Q, np.int64), m] = np.asarray(outcomes_Q, np.float32)
  h = _train_only(h.replace(outcomes_QxM=outcomes))
  pairs = h.pairs_Px3
  return h.replace(
    pairs_Px3=pairs[~np.isin(pairs[:, 1:], [m]).any(1)],
    candidates=np.union1d(h.candidates, [m]).astype(np.int32),
    held_out=np.asarray([m], np.int32),
  )


def _append_model(h: History, name: str, card: dict) -> History:
  """``h`` with one more pool model (its card's family, text and prices; nothing else known)."""
  fam = str(card["family"])
  families, texts = list(h.family_names), list(h.family_texts)
  if fam not in families:
    families.append(fam)
    texts.append(f"The {fam} model family.")
  prices = [[card.get("input_price", np.nan), card.get("output_price", np.nan)]]
  nan = lambda shape: np.full(shape, np.nan, np.float32)
  Q, T = h.num_queries, h.num_tasks
  return h.replace(
    model_names=(*h.model_names, name),
    model_texts=(*h.model_texts, str(card["text"])),
    model_family=np.append(h.model_family, families.index(fam)),
    prices_Mx2=np.concatenate([h.prices_Mx2, np.asarray(prices, np.float32)]),
    family_names=families,
    family_texts=texts,
    scores_MxT=np.concatenate([h.scores_MxT, nan((1, T))]),
    outcomes_QxM=np.concatenate([h.outcomes_QxM, nan((Q, 1))], axis=1),
    tokens_QxMx2=np.concatenate([h.tokens_QxMx2, nan((Q, 1, 2))], axis=1),
    cost_QxM=np.concatenate([h.cost_QxM, nan((Q, 1))], axis=1),
  )
