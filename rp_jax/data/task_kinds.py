"""Which tasks have 0/1 outcomes, decided from the task's metric name (never from test outcomes).

A task is *binary* when every outcome is 0 or 1, so that in a pair (better, worse) on one query
the better model scored 1 and the worse 0: the loaders rebuild training outcomes from pairs only
on binary tasks. Deciding this from the test outcomes would let the test rows shape training
data (a leak), so the RouteProfile loader decides from the metric name with this table:

  ==================  ==========  =====================================================
  metric              kind        what it scores
  ==================  ==========  =====================================================
  em_mc               binary      exact match of a multiple-choice letter (mmlu, arc, ...)
  math                binary      final answer correct (MATH, agentverse-mgsm)
  gsm8k               binary      final number correct
  code_eval           binary      the generated code passes the tests (pass@1)
  f1_score            continuous  token F1 against the reference answers (natural_qa,
                                  trivia_qa); 0/1 on many rows, but not by construction
  commongen_coverage  continuous  share of the concept words the sentence covers
  ==================  ==========  =====================================================

Names are compared in lower case (the release writes "MATH" and "GSM8K"). An unknown metric name
counts as continuous (no outcome is rebuilt from a pair; the pairs themselves stay), and the
loaders say so in ``History.notes``. The generic loader, whose training rows carry real outcomes,
falls back to them instead (see rp_jax.data.generic).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# metric name (lower case) -> outcomes are 0/1
METRIC_KINDS: dict[str, bool] = {
  "em_mc": True,
  "math": True,
  "gsm8k": True,
  "code_eval": True,
  "f1_score": False,
  "commongen_coverage": False,
}
BINARY_METRICS = frozenset(m for m, b in METRIC_KINDS.items() if b)


def metric_is_binary(metric: str) -> bool | None:
  """True / False for a metric name in the table (any case), None for an unknown name."""
  return METRIC_KINDS.get(str(metric).strip().lower())


def binary_from_metrics(
  task_names: Sequence[str], task_metric: Sequence[str], used_T: Sequence[int]
) -> tuple[np.ndarray, list[str]]:
  """[T] bool from the metric table (unknown -> continuous), and notes on the decision.

  Args:
    task_names: [T] task names.
    task_metric: [T] metric name per task ("" if none given).
    used_T: indices of the tasks that have queries; only they are named in the notes.

  Returns:
    (binary_T, notes): one note naming the binary and continuous tasks among ``used_T``, and one
    naming the tasks whose metric the table does not know, if any.
  """
  kind_T = [metric_is_binary(m) for m in task_metric]
  binary_T = np.array([k is True for k in kind_T], bool).reshape(len(task_names))
  used = sorted(set(int(t) for t in used_T))
  fmt = lambda ts: ", ".join(ts) or "none"
  notes = [
    "binary tasks decided by metric name ("
    + ", ".join(f"{m} -> {'0/1' if b else 'continuous'}" for m, b in METRIC_KINDS.items())
    + f"): binary {fmt([task_names[t] for t in used if binary_T[t]])}; "
    f"continuous {fmt([task_names[t] for t in used if not binary_T[t]])}"
  ]
  unknown = [
    f"{task_names[t]} ({task_metric[t] or 'no metric'})" for t in used if kind_T[t] is None
  ]
  if unknown:
    notes.append(
      f"metric unknown to the table, counted as continuous (no outcome rebuilt from pairs): "
      f"{', '.join(unknown)}"
    )
  return binary_T, notes
