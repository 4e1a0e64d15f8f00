"""Cold-start curves: how much of the gap a quiz closes, per router family and quiz size.

A quiz setting ``<cold>~<method>-<k>`` (``stages.quiz_settings``) is the cold-start setting
``<cold>`` (newllm, a lomo fold) with the held-out model's answers to a k-query quiz revealed.
Per quiz setting and (router, inputs), the validation-selected cell (``results.select_cells``:
validation utility only, never test rows) gives A_k; the two ends of its curve are

- a_zero: the same cell routing among the seen candidates only (the new model ignored);
- a_full: the same family's validation-selected cell in the standard setting, trained with all
  of the model's training data (NaN when the run has no standard setting);

and gap_recovered = (A_k − a_zero) / (a_full − a_zero), with a 95% paired bootstrap interval over
the test rows. Leave-one-out folds are pooled — Σ(A_k − a_zero) / Σ(a_full − a_zero) over the
folds' test rows — because a fold whose model is never best has a gap near 0, which makes a
per-fold ratio noise (SPEC §8).
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from rp_jax import metrics
from rp_jax.results import CellKey, SettingResult, choice_text, select_cells
from rp_jax.types import DATASET_SEP, setting_parts

COLUMNS = (
  "setting",
  "held_out",
  "router",
  "inputs",
  "quiz",
  "k",
  "choice",
  "avg_performance",
  "ci_low",
  "ci_high",
  "new_model_recall",
  "new_model_precision",
  "a_zero",
  "a_full",
  "gap_recovered",
  "gap_ci_low",
  "gap_ci_high",
)


def parse(setting: str) -> tuple[str, str, int] | None:
  """("<cold>", method, k) of a quiz setting name (the cold setting keeps its dataset prefix),
  None for other settings."""
  dataset, base, quiz = setting_parts(setting)
  if not quiz:
    return None
  method, _, k = quiz.rpartition("-")
  return (f"{dataset}{DATASET_SEP}{base}" if dataset else base), method, int(k)


def _rows(res: SettingResult, r) -> tuple[np.ndarray, np.ndarray]:
  """Seed-averaged per-row performance of a stats row's cell, and of it ignoring new models."""
  key = CellKey.of(r)
  return res.cell_rows[key].mean(0), res.ignoring[key].mean(0)


def _full_rows(sel: pd.DataFrame, by_setting: dict, r, num_rows: int):
  """The standard setting's (of the same dataset) selected cell of r's (router, inputs), or
  None."""
  dataset = setting_parts(str(r["setting"]))[0]
  name = f"{dataset}{DATASET_SEP}standard" if dataset else "standard"
  std = sel[(sel["setting"] == name) & (sel["router"] == r["router"])]
  std = std[std["inputs"] == r["inputs"]]
  if std.empty or name not in by_setting:
    return None
  rows = by_setting[name].cell_rows[CellKey.of(std.iloc[0])].mean(0)
  return rows if len(rows) == num_rows else None


def _stat(key, a_Q, zero_Q, full_Q, num_resamples: int) -> dict:
  """avg performance with its CI, a_zero, a_full and the gap recovered with its CI."""
  ci = metrics.bootstrap(key, a_Q[None].astype(np.float32), num_resamples)
  out = {
    "avg_performance": float(a_Q.mean()),
    "ci_low": float(ci["lo"][0]),
    "ci_high": float(ci["hi"][0]),
    "a_zero": float(zero_Q.mean()),
    "a_full": float("nan") if full_Q is None else float(full_Q.mean()),
  }
  gap = (float("nan"),) * 3
  if full_Q is not None:
    gap = metrics.ratio_interval(key, a_Q - zero_Q, full_Q - zero_Q, num_resamples)
  out["gap_recovered"], out["gap_ci_low"], out["gap_ci_high"] = gap
  return out


def coldstart_table(
  stats: pd.DataFrame, by_setting: dict[str, SettingResult], num_resamples: int, seed: int
) -> pd.DataFrame:
  """``coldstart.csv``: one row per (quiz setting, router, inputs) and, for leave-one-out folds,
  one pooled row per (router, inputs, quiz, k) with ``setting = "lomo"`` (module docstring)."""
  sel = select_cells(stats)
  if sel.empty:
    return pd.DataFrame(columns=list(COLUMNS))
  key = jax.random.key(seed)
  out, pooled = [], {}
  for _, r in sel.iterrows():
    quiz = parse(str(r["setting"]))
    if quiz is None or CellKey.of(r) not in by_setting[r["setting"]].ignoring:
      continue
    base, method, k = quiz
    res = by_setting[r["setting"]]
    a_Q, zero_Q = _rows(res, r)
    full_Q = _full_rows(sel, by_setting, r, len(a_Q))
    row = {"setting": base, "held_out": ",".join(res.history.held_out_names)}
    row.update(router=r["router"], inputs=r["inputs"], quiz=method, k=k, choice=choice_text(r))
    row.update(_stat(key, a_Q, zero_Q, full_Q, num_resamples))
    row.update(new_model_recall=float(r["recall"]), new_model_precision=float(r["precision"]))
    out.append(row)
    dataset, plain, _ = setting_parts(base)
    if plain.startswith("lomo:") and full_Q is not None:
      key_p = (dataset, r["router"], r["inputs"], method, k)
      p = pooled.setdefault(key_p, ([], [], [], [], []))
      for lst, x in zip(p, (a_Q, zero_Q, full_Q, [r["recall"]], [r["precision"]]), strict=True):
        lst.append(np.asarray(x, np.float64))
  for (dataset, router, inputs, method, k), (a, zero, full, rec, prec) in pooled.items():
    lomo = f"{dataset}{DATASET_SEP}lomo" if dataset else "lomo"
    row = {"setting": lomo, "held_out": f"{len(a)} folds", "router": router, "inputs": inputs}
    row.update(quiz=method, k=k, choice="per fold")
    a, zero, full = (np.concatenate(x) for x in (a, zero, full))
    row.update(_stat(key, a, zero, full, num_resamples))
    row.update(new_model_recall=float(np.nanmean(rec)), new_model_precision=float(np.nanmean(prec)))
    out.append(row)
  return pd.DataFrame(out, columns=list(COLUMNS))
