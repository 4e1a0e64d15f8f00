"""Holding candidates out of training: the new-LLM protocol applied to any model of a History.

``hold_out(history, names)`` does to the named candidates exactly what the public ``newllm``
setting does to mistral-small: their training pairs are removed, their training outcomes become
unknown, and their benchmark scores on the routing tasks (the tasks with test rows) are removed
from the interaction graph; they stay candidates (selectable at test time, through their profile
only). ``leave_one_out(history)`` gives one such History per candidate: the folds of the
leave-each-candidate-out protocol (``settings=("lomo",)``).
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
