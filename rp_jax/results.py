"""Results: rows of the results table, cell ids, and the statistics the report prints.

The sweep turns every evaluated selection into one row (``metric_rows``); ``SettingResult`` keeps
a setting's rows and the per-test-row performance of every cell and baseline, from which
``cell_stats`` / ``baseline_stats`` compute means over seeds with paired bootstrap intervals, and
``claims`` the evidence for the paper's three claims. ``rp_jax.report`` only formats these.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from rp_jax import metrics
from rp_jax.config import ProfileSpec
from rp_jax.routers.baselines import Baseline
from rp_jax.types import DATASET_SEP, QUIZ_SEP, History, setting_parts

RESULT_COLUMNS = (
  "setting",
  "profile",
  "graph",
  "hops",
  "learn",
  "norm",
  "router",
  "inputs",
  "hparams",
  "seed",
  "val_utility",
  "avg_performance",
  "hit_rate",
  "cost_per_query",
  "selection_entropy",
  "new_model_selection_rate",
  "new_model_recall",
  "new_model_precision",
)
KEY_COLUMNS = RESULT_COLUMNS[:10]
METRIC_COLUMNS = RESULT_COLUMNS[11:]


class CellKey(NamedTuple):
  """The identity of a router cell: one point of the design space in one setting.

  The stages emit it with every cell's per-row performance; ``results`` and ``report`` look cells
  up by it and never re-key them. ``learn`` follows from the profile, so ``id`` leaves it out.
  """

  setting: str
  router: str
  inputs: str
  hparams: str
  profile: str
  graph: str
  hops: str
  learn: str
  norm: str

  @classmethod
  def of(cls, row) -> CellKey:
    """The key of a results / stats row (a dict, Series or namedtuple with the key columns)."""
    get = (lambda k: row[k]) if isinstance(row, pd.Series | dict) else (lambda k: getattr(row, k))
    return cls(*(str(get(k)) for k in cls._fields))

  @property
  def name(self) -> str:
    """``router|inputs|hparams|profile|graph|hops|norm``: the cell within its setting (the
    ``cell`` / ``name`` columns of quality.csv, aiq.csv and cost_quality.csv)."""
    fields = (self.router, self.inputs, self.hparams, self.profile, self.graph, self.hops)
    return "|".join((*fields, self.norm))

  def id(self) -> str:
    """``setting|name``: the key of the cell's rows in rows.npz."""
    return f"{self.setting}|{self.name}"


CELL_COLUMNS = CellKey._fields
# A profile cell: the cell without its hyperparameters (the grid a selection chooses from).
PROFILE_CELL = tuple(c for c in CELL_COLUMNS if c != "hparams")


def select_best(frame: pd.DataFrame, by, score: str = "val_utility") -> pd.Series:
  """[len(frame)] bool: per group of ``by``, the first row with the highest ``score``.

  NaN scores count as -inf (ties and all-NaN groups: the first row in frame order). The one
  selection rule of rp_jax: hyperparameters, profiles and router families are all chosen by it,
  on validation utilities only.
  """
  if frame.empty:
    return pd.Series(np.zeros(0, bool), index=frame.index)
  key = frame[score].astype(float).fillna(-np.inf)
  group = [frame[c] for c in by]
  top = key == key.groupby(group, sort=False).transform("max")
  return top & (top.groupby(group, sort=False).cumsum() == 1)


def cell_key(setting: str, router: str, inputs: str, hparams: str, spec: ProfileSpec) -> CellKey:
  """The key of a router cell on profile ``spec``."""
  return CellKey(
    setting, router, inputs, hparams, **{k: str(v) for k, v in spec_keys(spec).items()}
  )


def spec_keys(spec: ProfileSpec) -> dict:
  """The profile columns of a results row (a probe block shows in ``profile`` and ``norm``)."""
  norm = spec.norm + ("+self" if spec.self_loop else "")
  profile = spec.profile
  if spec.probe:
    norm = f"{norm}|{spec.probe}" if norm else spec.probe
    profile = profile if profile == "probe" else f"{profile}+probe"
  return {
    "profile": profile,
    "graph": spec.graph,
    "hops": spec.hops,
    "learn": spec.learn,
    "norm": norm,
  }


def metric_rows(setting: str, ms: dict, test: metrics.TestSet, keys: list[dict]) -> list[dict]:
  """One results row per entry of ``keys`` from metrics ``ms`` with a matching leading axis.

  Args:
    setting: the setting's name.
    ms: ``metrics.evaluate`` outputs with a leading axis of len(keys) (numpy).
    test: the TestSet (task and candidate names of the per-task and share columns).
    keys: the key columns of each row (profile, graph, hops, learn, norm, router, inputs,
      hparams, seed) and its ``val_utility``.
  """
  rows = []
  for i, k in enumerate(keys):
    row = {"setting": setting, **k}
    for c in METRIC_COLUMNS:
      row[c] = float(ms[c][i])
    row["regret"] = float(ms["regret"][i])
    for t, v in zip(test.task_names, np.asarray(ms["per_task"][i]).tolist(), strict=True):
      row[f"perf/{t}"] = v
    for c, v in zip(test.candidate_names, np.asarray(ms["histogram"][i]).tolist(), strict=True):
      row[f"share/{c}"] = v
    rows.append(row)
  return rows


def baseline_keys(name: str) -> dict:
  return {
    "profile": "",
    "graph": "",
    "hops": "",
    "learn": "",
    "norm": "",
    "router": name,
    "seed": 0,
  }


@dataclasses.dataclass
class CostRows:
  """Rows of ``cost_quality.csv`` (fronts), ``aiq.csv`` (their scores), ``calibration.csv``
  (reliability bins of the cells' calibrated p̂) and ``apgr.csv`` (every weak/strong pair) of one
  setting."""

  front: list[dict] = dataclasses.field(default_factory=list)
  scores: list[dict] = dataclasses.field(default_factory=list)
  calibration: list[dict] = dataclasses.field(default_factory=list)
  pairs: list[dict] = dataclasses.field(default_factory=list)

  def add(self, front: list[dict], scores: list[dict], calibration=(), pairs=()) -> None:
    self.front += front
    self.scores += scores
    self.calibration += list(calibration)
    self.pairs += list(pairs)


class GridRows(NamedTuple):
  """What one evaluated router grid adds to its setting's results.

  Attributes:
    rows: results rows, one per (cell, seed).
    cells: CellKey -> [Z, Q] per-test-row performance of each seed.
    cost: cost–quality rows of the cells (empty without costs).
    ignoring: CellKey -> [Z, Q] per-row performance of the cell routing among the seen
      candidates only (cold-start settings; empty otherwise).
  """

  rows: list[dict]
  cells: dict[CellKey, np.ndarray]
  cost: CostRows
  ignoring: dict[CellKey, np.ndarray] = {}


@dataclasses.dataclass
class SettingResult:
  """What the sweep produced for one setting.

  Attributes:
    history, test: the setting's data and test rows.
    rows: results rows (baselines and router cells).
    cell_rows: CellKey -> [Z, Q] per-test-row performance of each seed.
    baselines: name -> Baseline (its kind, rule and selection).
    baseline_rows: name -> [Q] per-test-row performance.
    specs: the profile specs of the setting.
    cost: cost–quality fronts and scores (empty when the test rows have no costs).
    ignoring: CellKey -> [Z, Q] the cells routing among the seen candidates (cold start).
  """

  history: History
  test: metrics.TestSet
  rows: list[dict]
  cell_rows: dict[CellKey, np.ndarray]
  baselines: dict[str, Baseline]
  baseline_rows: dict[str, np.ndarray]
  specs: list[ProfileSpec]
  cost: CostRows = dataclasses.field(default_factory=CostRows)
  ignoring: dict[CellKey, np.ndarray] = dataclasses.field(default_factory=dict)

  def add(self, grid: GridRows) -> None:
    """Adds one evaluated router grid's rows, cells and cost rows."""
    self.rows += grid.rows
    self.cell_rows.update(grid.cells)
    self.ignoring.update(grid.ignoring)
    self.cost.add(grid.cost.front, grid.cost.scores, grid.cost.calibration, grid.cost.pairs)


def results_frame(rows: list[dict]) -> pd.DataFrame:
  """The results table: key and metric columns, then per-task, regret and share columns."""
  frame = pd.DataFrame(rows)
  if frame.empty:
    return pd.DataFrame(columns=list(RESULT_COLUMNS))
  task_cols = sorted({c for c in frame.columns if c.startswith("perf/")})
  share_cols = sorted({c for c in frame.columns if c.startswith("share/")})
  cols = [*RESULT_COLUMNS, *task_cols, "regret", *share_cols]
  return frame.reindex(columns=cols)


# -- statistics ----------------------------------------------------------------------------------


def is_router_row(frame: pd.DataFrame, routers) -> pd.Series:
  return frame["router"].isin(tuple(routers))


def cell_stats(
  frame: pd.DataFrame, results: dict[str, SettingResult], routers, num_resamples: int, seed: int
) -> pd.DataFrame:
  """One row per (setting, router, profile cell): mean and sd over seeds, bootstrap CI.

  The interval is a 95% paired percentile bootstrap over test rows of the seed-averaged per-row
  performance; all cells of a setting share the resamples (``jax.random.key(seed)``).
  """
  cells = frame[is_router_row(frame, routers)]
  if cells.empty:
    return pd.DataFrame()
  g = cells.groupby(list(CELL_COLUMNS), dropna=False, sort=False)
  stats = g.agg(
    val_utility=("val_utility", "mean"),
    mean=("avg_performance", "mean"),
    sd=("avg_performance", "std"),
    seeds=("seed", "count"),
    recall=("new_model_recall", "mean"),
    precision=("new_model_precision", "mean"),
    new_rate=("new_model_selection_rate", "mean"),
    entropy=("selection_entropy", "mean"),
  ).reset_index()
  lo, hi = [], []
  for setting in stats["setting"].unique():
    sel = stats["setting"] == setting
    keys = [CellKey.of(r) for r in stats[sel].itertuples()]
    rows_SxQ = np.stack([results[setting].cell_rows[k].mean(0) for k in keys])
    ci = metrics.bootstrap(jax.random.key(seed), jnp.asarray(rows_SxQ), num_resamples)
    lo += np.asarray(ci["lo"]).tolist()
    hi += np.asarray(ci["hi"]).tolist()
  stats["ci_lo"], stats["ci_hi"] = lo, hi
  # Per profile cell: the hyperparameters with the best mean validation utility (ties, or no
  # validation: the first in config order). Never test rows.
  stats["selected"] = select_best(stats, PROFILE_CELL)
  return stats


def baseline_stats(
  frame: pd.DataFrame, results: dict[str, SettingResult], routers, num_resamples: int, seed: int
) -> pd.DataFrame:
  """One row per (setting, baseline): its metrics, kind, rule and a paired bootstrap CI."""
  out = []
  for setting, res in results.items():
    b = frame[(frame["setting"] == setting) & ~is_router_row(frame, routers)]
    if b.empty:
      continue
    names = list(res.baselines)
    rows_SxQ = jnp.asarray(np.stack([res.baseline_rows[n] for n in names]))
    ci = metrics.bootstrap(jax.random.key(seed), rows_SxQ, num_resamples)
    lo = dict(zip(names, np.asarray(ci["lo"]).tolist(), strict=True))
    hi = dict(zip(names, np.asarray(ci["hi"]).tolist(), strict=True))
    for r in b.itertuples():
      x = res.baselines[r.router]
      out.append(
        {
          "setting": setting,
          "name": r.router,
          "kind": x.kind,
          "description": x.description,
          "avg_performance": r.avg_performance,
          "ci_lo": lo[r.router],
          "ci_hi": hi[r.router],
          "hit_rate": r.hit_rate,
          "cost_per_query": r.cost_per_query,
          "selection_entropy": r.selection_entropy,
        }
      )
  return pd.DataFrame(out)


@dataclasses.dataclass(frozen=True)
class Evidence:
  """One line of evidence for one of the paper's claims (``report`` formats it).

  Attributes:
    claim: 1 (structured beats flat), 2 (query beats domain), 3 (new-LLM generalisation).
    router: the router the line is about.
    text: what is compared, e.g. "emb_gnn: T+Q vs T+D".
    a, b: the two cells' seed-averaged means (None for claim 3).
    p: P(a better than b) over paired bootstrap resamples (None for claim 3).
  """

  claim: int
  router: str
  text: str
  a: float | None = None
  b: float | None = None
  p: float | None = None


def claims(
  stats: pd.DataFrame, results: dict[str, SettingResult], routers, num_resamples: int, seed: int
) -> list[Evidence]:
  """Evidence for the paper's three claims from our cells (paired bootstrap over test rows)."""
  if stats.empty:
    return []
  key = jax.random.key(seed)

  def rows(setting, r):
    return jnp.asarray(results[setting].cell_rows[CellKey.of(r)].mean(0))

  def compare(claim, router, text, setting, a, b):
    p = float(metrics.prob_better(key, rows(setting, a), rows(setting, b), num_resamples))
    return Evidence(claim, router, text, float(a["mean"]), float(b["mean"]), p)

  out = []
  stats = stats[stats["selected"]]
  stats = stats[stats["inputs"] == stats["inputs"].iloc[0]] if len(stats) else stats
  st = stats[stats["setting"] == "standard"]
  for r in routers:  # (1) structured vs flat, graph T+Q+D
    s = st[st["router"] == r]
    flat = s[(s["profile"] == "flat") & (s["graph"] == "TQD")]
    struct = s[s["profile"].isin(["emb_gnn", "text_gnn", "trainable"]) & (s["graph"] == "TQD")]
    if flat.empty or struct.empty:
      continue
    best = struct.loc[struct["mean"].idxmax()]
    won = int((struct["mean"] > flat.iloc[0]["mean"]).sum())
    text = (
      f"{won}/{len(struct)} structured T+Q+D cells beat flat; best "
      f"{best['profile']} K={best['hops']} vs flat"
    )
    out.append(compare(1, r, text, "standard", best, flat.iloc[0]))
  for r in routers:  # (2) query-level vs domain-level signals (Table 2: T+Q vs T+D)
    for p in ("emb_gnn", "text_gnn", "flat"):
      s = st[(st["router"] == r) & (st["profile"] == p)]
      tq, td = s[s["graph"] == "TQ"], s[s["graph"] == "TD"]
      if tq.empty or td.empty:
        continue
      out.append(compare(2, r, f"{p}: T+Q vs T+D", "standard", tq.iloc[0], td.iloc[0]))
  nl = stats[stats["setting"] == "newllm"]
  for r in routers:  # (3) new-LLM generalisation: new-model recall by profile family
    s = nl[nl["router"] == r]
    if s.empty:
      continue
    fam = s.groupby("profile")["recall"].max().sort_values(ascending=False)
    text = "best new-model recall by profile: " + ", ".join(f"{k} {v:.3f}" for k, v in fam.items())
    out.append(Evidence(3, r, text))
  return out


# -- validation-selected cells (configs/quality.py) -----------------------------------------------

QUALITY_COLUMNS = (
  "setting",
  "router",
  "inputs",
  "choice",
  "val_utility",
  "avg_performance",
  "ci_low",
  "ci_high",
  "delta_vs_lookup",
  "p_vs_lookup",
  "new_model_recall",
  "cell",
)
LOMO_COLUMNS = (
  "router",
  "inputs",
  "held_out",
  "choice",
  "avg_performance",
  "new_model_recall",
  "new_model_precision",
  "lookup_without",
)
LOOKUP = "task_best_pairs"


def select_cells(stats: pd.DataFrame) -> pd.DataFrame:
  """Per (setting, router, inputs): the cell (profile and hyperparameters) with the best mean
  validation utility over seeds (ties: the first in config order). Test rows play no part."""
  if stats.empty:
    return pd.DataFrame(columns=[*CELL_COLUMNS, "val_utility"])
  return stats[select_best(stats, ("setting", "router", "inputs"))].reset_index(drop=True)


def choice_text(r) -> str:
  """The selected cell as text: profile id and hyperparameters."""
  parts = [str(r["profile"])]
  if str(r["graph"]):
    parts.append(str(r["graph"]))
  if str(r["profile"]).split("+")[0] not in ("index", "scores", "flat", "probe"):
    parts.append(f"k{r['hops']}")
  if str(r["norm"]):
    parts.append(str(r["norm"]))
  return "-".join(parts) + (f" {r['hparams']}" if r["hparams"] else "")


def _versus_lookup(rows_xQ: np.ndarray, look_xQ: np.ndarray, num_resamples: int, seed: int):
  """(mean, CI low, CI high, mean difference, one-sided p) of rows vs the lookup's, paired."""
  key = jax.random.key(seed)
  rows_Q, look_Q = rows_xQ.reshape(-1), look_xQ.reshape(-1)
  ci = metrics.bootstrap(key, jnp.asarray(rows_Q[None]), num_resamples)
  p_better = float(
    metrics.prob_better(key, jnp.asarray(rows_Q), jnp.asarray(look_Q), num_resamples)
  )
  return (
    float(rows_Q.mean()),
    float(ci["lo"][0]),
    float(ci["hi"][0]),
    float((rows_Q - look_Q).mean()),
    1.0 - p_better,
  )


def quality_table(
  stats: pd.DataFrame,
  results: dict[str, SettingResult],
  num_resamples: int,
  seed: int,
  eligible: tuple[str, ...] | None = None,
) -> pd.DataFrame:
  """``quality.csv``: per (setting, router, inputs) the validation-selected cell, its test avg
  performance (mean over seeds) with a 95% paired bootstrap CI, and its paired comparison with
  the per-task lookup (``task_best_pairs``): mean difference and the one-sided bootstrap p-value
  P(no improvement). A row ``router = "best"`` per (setting, inputs) holds the family whose
  selected cell has the best validation utility (the answer to "which router") among the
  ``eligible`` families (those validated the same way, e.g. with the same folds: utilities
  measured on other validation queries do not compare; default all). Leave-one-out
  folds (settings ``lomo:<model>``) are aggregated into one ``lomo`` row per (router, inputs):
  the selection is made per fold, and the statistics pool the folds' test rows (each fold against
  its own lookup)."""
  sel = select_cells(stats)
  sel = sel[~sel["setting"].str.contains(QUIZ_SEP, regex=False)]  # quiz settings: coldstart.csv
  if sel.empty:
    return pd.DataFrame(columns=list(QUALITY_COLUMNS))
  util = sel["val_utility"]
  if eligible is not None:
    util = util.where(sel["router"].isin(eligible), -np.inf)
  top = select_best(sel.assign(eligible_utility=util), ("setting", "inputs"), "eligible_utility")
  best = sel[top].assign(choice_prefix=lambda f: f["router"] + ": ", name="best")
  sel = pd.concat([sel.assign(choice_prefix="", name=sel["router"]), best], ignore_index=True)
  out = []
  parts = sel["setting"].map(setting_parts)
  dataset = parts.str[0]  # "" unless a multi-dataset run
  is_fold = parts.str[1].str.startswith("lomo:")
  single = sel[~is_fold]
  for _, r in single.iterrows():
    res, key = results[r["setting"]], CellKey.of(r)
    rows = res.cell_rows[key].mean(0)
    stat = _versus_lookup(rows, res.baseline_rows[LOOKUP], num_resamples, seed)
    choice = r["choice_prefix"] + choice_text(r)
    cell = key.name
    out.append(
      (r["setting"], r["name"], r["inputs"], choice, r["val_utility"], *stat, r["recall"], cell)
    )
  folds = sel[is_fold].assign(dataset=dataset[is_fold])
  for (ds, router, inputs), g in folds.groupby(["dataset", "name", "inputs"], sort=False):
    rows = np.stack(
      [results[r["setting"]].cell_rows[CellKey.of(r)].mean(0) for _, r in g.iterrows()]
    )
    look = np.stack([results[f].baseline_rows[LOOKUP] for f in g["setting"]])
    stat = _versus_lookup(rows, look, num_resamples, seed)
    choices = sorted({r["choice_prefix"] + choice_text(r) for _, r in g.iterrows()})
    choice = choices[0] if len(choices) == 1 else f"per fold ({len(choices)} different)"
    lomo = f"{ds}{DATASET_SEP}lomo" if ds else "lomo"
    out.append(
      (lomo, router, inputs, choice, g["val_utility"].mean(), *stat, g["recall"].mean(), "")
    )
  return pd.DataFrame(out, columns=list(QUALITY_COLUMNS))


def lomo_table(stats: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
  """``lomo.csv``: per fold and (router, inputs), the validation-selected cell's test numbers and
  the lookup without the held-out model (``task_best_pairs`` of the fold: it never picks it)."""
  sel = select_cells(stats)
  if sel.empty:
    return pd.DataFrame(columns=list(LOMO_COLUMNS))
  parts = sel["setting"].map(setting_parts)
  sel = sel[parts.str[1].str.startswith("lomo:") & (parts.str[2] == "")]
  out = []
  for _, r in sel.iterrows():
    look = frame[(frame["setting"] == r["setting"]) & (frame["router"] == LOOKUP)]
    out.append(
      (
        r["router"],
        r["inputs"],
        setting_parts(r["setting"])[1].removeprefix("lomo:"),
        choice_text(r),
        float(r["mean"]),
        float(r["recall"]),
        float(r["precision"]),
        float(look["avg_performance"].iloc[0]) if len(look) else float("nan"),
      )
    )
  return pd.DataFrame(out, columns=list(LOMO_COLUMNS))


# -- cost–quality ------------------------------------------------------------------------------------


def cost_tables(results: dict[str, SettingResult]) -> dict[str, pd.DataFrame]:
  """``cost_quality``, ``aiq``, ``calibration`` and ``apgr`` frames of every setting (empty
  frames without costs)."""
  frame = lambda attr: pd.DataFrame([r for s in results.values() for r in getattr(s.cost, attr)])
  return {
    "cost_quality": frame("front"),
    "aiq": frame("scores"),
    "calibration": frame("calibration"),
    "apgr": frame("pairs"),
  }


# -- every table of a sweep ----------------------------------------------------------------------------


class StatsOptions(NamedTuple):
  """How the statistics are computed.

  Attributes:
    routers: the router families (rows of other names are baselines).
    num_resamples: paired bootstrap resamples.
    seed: the bootstrap's seed (cells, baselines, claims and quality use seed, +1, +2).
    eligible: families validated alike (same folds): the 'best' row chooses among them.
  """

  routers: tuple[str, ...]
  num_resamples: int
  seed: int
  eligible: tuple[str, ...] | None = None


def tables(frame: pd.DataFrame, by_setting: dict[str, SettingResult], opts: StatsOptions) -> dict:
  """Every statistic of a sweep: ``stats`` (cells), ``bstats`` (baselines), ``evidence``
  (claims) and the frames written as ``quality``, ``lomo``, ``cost_quality``, ``aiq`` and
  ``calibration`` CSV files. The report formats exactly these."""
  nb, seed = opts.num_resamples, opts.seed
  stats = cell_stats(frame, by_setting, opts.routers, nb, seed)
  return {
    **cost_tables(by_setting),
    "stats": stats,
    "bstats": baseline_stats(frame, by_setting, opts.routers, nb, seed),
    "evidence": claims(stats, by_setting, opts.routers, nb, seed + 1),
    "quality": quality_table(stats, by_setting, nb, seed + 2, eligible=opts.eligible),
    "lomo": lomo_table(stats, frame),
  }
