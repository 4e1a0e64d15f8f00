"""Onboard a new LLM into a deployed router from its answers to the router's quiz (no retraining).

  python -m launch.route ... --print_quiz=50 > quiz.jsonl        # the quiz (saved in the bundle)
  # run the new model on each quiz query, grade it, write {"quiz", "query", "outcome"} lines
  python -m launch.route ... --add_models=NAME --quiz_outcomes=answers.jsonl \
      [--model_card=card.json]                                  # NAME need not be in the pool

The quiz is chosen once per bundle, from its training queries with known outcomes of the
candidates (``profiles.quiz.choose_quiz``; method ``config.quiz.methods[0]``, else random) and
stored in ``bundle.info["quiz"]`` with an id that every answer line must carry. A router whose
profile has a probe block measured its candidates on that very quiz at fit time (``deploy.fit``),
so seen and new models share one profile space. Adding the model:

- its profile comes from the bundle's profile entry computed on the training History with the
  model added (its model card: family, text, prices; a pool model keeps its own) and its quiz
  answers revealed — the probe block reads those answers, text profiles read its card;
- kNN routers also take its answers as neighbour evidence on the memory rows of the quiz
  queries (``Family.extend``); every other family scores it through its profile alone.

Bad input (a query that is not on the quiz, an outcome outside [0, 1], a quiz id of another
bundle, a malformed card) raises ``DataError`` naming the file and line or key.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import jax
import numpy as np

from rp_jax import stages
from rp_jax.data import validate as V
from rp_jax.data.holdout import with_new_model
from rp_jax.profiles import quiz as quiz_lib
from rp_jax.types import DataError, History


def choose_quiz(config, history: History, k: int) -> dict:
  """The quiz record of a bundle: k training queries (ids, texts, tasks), its method and id."""
  train = history.train_queries
  cand = history.candidates
  outcomes = history.outcomes_QxM[np.ix_(train, cand)]
  eligible = np.isfinite(outcomes).any(1)
  methods = tuple(config.quiz.methods) if "quiz" in config else ()
  method = methods[0] if methods else "random"
  key = jax.random.fold_in(jax.random.key(int(config.quiz.seed) if "quiz" in config else 0), k)
  emb = None
  if method in ("cluster", "info"):
    emb = stages.make_embed(config)[1]([history.query_texts[q] for q in train])
  idx = quiz_lib.choose_quiz(
    method,
    int(k),
    eligible_Q=eligible,
    key=key,
    emb_QxD=emb,
    outcomes_QxA=outcomes,
    task_Q=history.query_task[train],
  )
  ids = [int(train[i]) for i in idx]
  texts = [history.query_texts[q] for q in ids]
  digest = hashlib.sha256(json.dumps([history.source, method, texts]).encode()).hexdigest()
  tasks = [history.task_names[history.query_task[q]] for q in ids]
  return {"id": digest[:12], "method": method, "query_ids": ids, "texts": texts, "tasks": tasks}


def quiz_lines(quiz: dict) -> list[dict]:
  """The lines ``--print_quiz`` prints: ``{"quiz", "query", "task"}`` per quiz query."""
  return [
    {"quiz": quiz["id"], "query": q, "task": t}
    for q, t in zip(quiz["texts"], quiz["tasks"], strict=True)
  ]


def read_quiz_outcomes(path: str, quiz: dict) -> dict[int, float]:
  """History query id -> outcome from a JSONL file of ``{"quiz", "query", "outcome"}`` lines.

  Raises DataError naming the line for a query not on the quiz, an outcome outside [0, 1], a
  quiz id of another bundle or a query answered twice.
  """
  rows = V.read_jsonl(path, with_lines=True)
  by_text = dict(zip(quiz["texts"], quiz["query_ids"], strict=True))
  out: dict[int, float] = {}
  for row in rows:
    where = f"line {row['__line__']}"
    if row.get("quiz", quiz["id"]) != quiz["id"]:
      raise DataError(
        path, where, f"quiz {row.get('quiz')!r} is not this router's quiz {quiz['id']!r}"
      )
    text = V.to_str(V.get_field(row, "query", path, where), path, f"{where}, field 'query'")
    if text not in by_text:
      raise DataError(path, f"{where}, field 'query'", f"not a query of quiz {quiz['id']!r}")
    q = by_text[text]
    if q in out:
      raise DataError(path, where, "this quiz query is answered twice")
    out[q] = V.to_float(
      V.get_field(row, "outcome", path, where), path, f"{where}, field 'outcome'", 0, 1
    )
  if not out:
    raise DataError(path, None, "no answer; expected one JSON line per quiz query")
  return out


def read_model_card(path: str) -> dict:
  """A model card ``{"family": str, "text": str, "input_price": float, "output_price": float}``."""
  card = V.read_json(path, dict)
  for k in ("family", "text"):
    V.to_str(V.get_field(card, k, path, "top level"), path, f"field {k!r}")
  for k in ("input_price", "output_price"):
    V.to_float(card.get(k), path, f"field {k!r}", 0, 1e6, allow_missing=True)
  return card


def onboarding_history(history: History, name: str, answers: dict[int, float], card=None):
  """(the History with ``name`` added, held out and its quiz answers revealed, its pool index)."""
  ids = np.asarray(sorted(answers), np.int64)
  values = np.asarray([answers[q] for q in ids], np.float32)
  h = with_new_model(history, name, card, ids, values)
  return h, h.model_index(name)


def memory_evidence(state: dict, answers: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
  """(evidence, known) of a new model on a kNN memory's rows (its quiz answers where the row is a
  quiz query), shaped like ``state["memory_ids_N"]`` (a fold axis included)."""
  ids = np.asarray(state["memory_ids_N"])
  ev = np.vectorize(lambda q: answers.get(int(q), 0.0), otypes=[np.float32])(ids)
  known = np.isin(ids, list(answers)).astype(np.float32)
  return ev, known


def load_answers(path: str | pathlib.Path, quiz: dict | None) -> dict[int, float]:
  """``read_quiz_outcomes`` with a clear error when the bundle has no quiz yet."""
  if quiz is None:
    raise DataError(str(path), None, "this router has no quiz yet: print one with --print_quiz=K")
  return read_quiz_outcomes(str(path), quiz)
