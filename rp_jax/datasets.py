"""The cross-dataset study's tables: which router and which profile family win on each dataset.

A multi-dataset run (``config.datasets``; settings ``<dataset>@<setting>``) gives, per dataset's
standard setting:

- ``datasets.csv`` — one row per (dataset, router family incl. the validation-selected "best",
  inputs): the selected cell's test avg performance [95% CI], its paired differences with the
  per-task lookup and with the best single model chosen on training rows, and its cost–quality
  scores (AIQ and the zero router's AIQ, the 95% bootstrap interval over test rows of their
  difference, quality at the best single model's cost, the cost at
  which its hull reaches the best single model's quality, that model's cost; $ per query);
- ``profile_families.csv`` — one row per (dataset, router, inputs, profile family): the family's
  validation-selected cell (hyperparameters chosen on validation) and its test avg performance
  [95% CI], ranked by validation utility within (dataset, router, inputs) — whether the paper's
  ranking of profile families holds outside its own data.

Selection is on validation utility only (``results.select_best``); test rows are read once.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from rp_jax import metrics
from rp_jax.results import CellKey, SettingResult, choice_text, select_best
from rp_jax.types import DATASET_SEP, setting_parts

COLUMNS = (
  "dataset",
  "router",
  "inputs",
  "choice",
  "avg_performance",
  "ci_low",
  "ci_high",
  "delta_vs_lookup",
  "delta_vs_best_single",
  "aiq",
  "aiq_zero_router",
  "aiq_margin_ci_low",
  "aiq_margin_ci_high",
  "quality_at_best_single_cost",
  "cost_to_best_single_quality",
  "best_single_cost",
)
PROFILE_COLUMNS = (
  "dataset",
  "router",
  "inputs",
  "profile",
  "rank_by_validation",
  "val_utility",
  "choice",
  "avg_performance",
  "ci_low",
  "ci_high",
)


def _dataset(setting: str) -> str:
  return setting_parts(setting)[0]


def _get(row, key: str) -> float:
  return float("nan") if row is None or key not in row else float(row[key])


def datasets_table(quality: pd.DataFrame, aiq: pd.DataFrame, by_setting: dict, seed: int):
  """``datasets.csv`` (module docstring) from ``quality.csv`` rows of ``<dataset>@standard``."""
  del seed  # the intervals come from quality.csv (paired bootstrap there)
  rows = []
  q = (
    quality[quality["setting"].str.endswith(f"{DATASET_SEP}standard")] if len(quality) else quality
  )
  for r in q.itertuples():
    res: SettingResult = by_setting[r.setting]
    cell = next(k for k in res.cell_rows if k.name == r.cell) if r.cell else None
    if cell is None:
      continue
    perf_Q = res.cell_rows[cell].mean(0)
    single_Q = res.baseline_rows["best_single"]
    a = aiq[(aiq["setting"] == r.setting)] if len(aiq) else aiq
    cost = a[a["name"] == r.cell].iloc[0] if len(a) and (a["name"] == r.cell).any() else None
    zero = a[a["name"] == "zero_router"] if len(a) else a
    single = res.baselines["best_single"].sel_QxA
    single_cost = float((single * np.asarray(res.test.cost_QxA)).sum(1).mean())
    rows.append(
      {
        "dataset": _dataset(r.setting),
        "router": r.router,
        "inputs": r.inputs,
        "choice": r.choice,
        "avg_performance": r.avg_performance,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "delta_vs_lookup": r.delta_vs_lookup,
        "delta_vs_best_single": float((perf_Q - single_Q).mean()),
        "aiq": _get(cost, "aiq"),
        "aiq_zero_router": zero["aiq"].iloc[0] if len(zero) else np.nan,
        "aiq_margin_ci_low": _get(cost, "aiq_vs_zero_ci_low"),
        "aiq_margin_ci_high": _get(cost, "aiq_vs_zero_ci_high"),
        "quality_at_best_single_cost": _get(cost, "quality_at_best_single_cost"),
        "cost_to_best_single_quality": _get(cost, "cost_to_best_single_quality"),
        "best_single_cost": single_cost,
      }
    )
  return pd.DataFrame(rows, columns=list(COLUMNS))


def profiles_table(stats: pd.DataFrame, by_setting: dict, num_resamples: int, seed: int):
  """``profile_families.csv`` (module docstring): every profile family's validation-selected cell."""
  if stats.empty:
    return pd.DataFrame(columns=list(PROFILE_COLUMNS))
  s = stats[stats["setting"].str.endswith(f"{DATASET_SEP}standard")]
  s = s[select_best(s, ("setting", "router", "inputs", "profile"))] if len(s) else s
  rows = []
  for r in s.itertuples():
    res = by_setting[r.setting]
    perf_Q = res.cell_rows[CellKey.of(r)].mean(0)
    ci = metrics.bootstrap(
      jax.random.key(seed), np.asarray(perf_Q, np.float32)[None], num_resamples
    )
    rows.append(
      {
        "dataset": _dataset(r.setting),
        "router": r.router,
        "inputs": r.inputs,
        "profile": r.profile,
        "val_utility": r.val_utility,
        "choice": choice_text(r._asdict()),
        "avg_performance": float(perf_Q.mean()),
        "ci_low": float(ci["lo"][0]),
        "ci_high": float(ci["hi"][0]),
      }
    )
  out = pd.DataFrame(rows)
  if out.empty:
    return pd.DataFrame(columns=list(PROFILE_COLUMNS))
  group = out.groupby(["dataset", "router", "inputs"])["val_utility"]
  out["rank_by_validation"] = group.rank(ascending=False, method="first").astype(int)
  return out.reindex(columns=list(PROFILE_COLUMNS))
