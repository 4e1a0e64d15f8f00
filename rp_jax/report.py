"""summary.md in the paper's layout (ours beside the paper's numbers) and the figures.

Formatting only: the numbers come from ``rp_jax.results`` (cell and baseline statistics, the
claims' evidence), computed by the sweep. Every router cell is reported as ``mean ± h`` where mean
is the average performance over seeds and h the half-width of a 95% paired bootstrap interval
over test rows of the seed-averaged per-row performance (all cells of a setting share the same
resamples, so differences are paired).
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import pathlib
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rp_jax import io, runtime
from rp_jax.results import Evidence

ROUTER_COLS = ("sim", "mlp", "graph")
ROUTER_LABEL = {"sim": "Sim", "mlp": "MLP", "graph": "Graph"}

# SPEC §4, Table 1 (graph T+Q+D): (profile, hops, learn) -> (Sim, MLP, Graph).
PAPER_TABLE1 = {
  ("index", 0, "tf"): ("Flat Index", (0.499, 0.593, 0.532)),
  ("flat", 0, "tf"): ("Flat Text", (0.554, 0.613, 0.539)),
  ("text_gnn", 1, "tf"): ("Struct Text", (0.527, 0.617, 0.549)),
  ("text_gnn", 2, "tf"): ("Struct Text", (0.549, 0.620, 0.589)),
  ("text_gnn", 3, "tf"): ("Struct Text", (0.566, 0.625, 0.593)),
  ("text_gnn", 4, "tf"): ("Struct Text", (0.580, 0.624, 0.610)),
  ("emb_gnn", 1, "tf"): ("Struct Emb", (0.549, 0.613, 0.600)),
  ("emb_gnn", 2, "tf"): ("Struct Emb", (0.560, 0.610, 0.610)),
  ("emb_gnn", 3, "tf"): ("Struct Emb", (0.534, 0.617, 0.613)),
  ("emb_gnn", 4, "tf"): ("Struct Emb", (0.577, 0.605, 0.614)),
  ("trainable", 1, "tr"): ("Struct Emb", (0.532, 0.613, 0.613)),
  ("trainable", 2, "tr"): ("Struct Emb", (0.538, 0.613, 0.613)),
  ("trainable", 3, "tr"): ("Struct Emb", (0.611, 0.613, 0.604)),
  ("trainable", 4, "tr"): ("Struct Emb", (0.613, 0.557, 0.516)),
}
# SPEC §4, Table 2 (2 hops): (profile, graph) -> (Sim, MLP, Graph).
PAPER_TABLE2 = {
  ("flat", "TQD"): (0.554, 0.613, 0.539),
  ("flat", "TQ"): (0.551, 0.619, 0.532),
  ("flat", "TD"): (0.532, 0.619, 0.523),
  ("flat", "Q"): (0.553, 0.612, 0.512),
  ("flat", "T"): (0.541, 0.610, 0.514),
  ("text_gnn", "TQD"): (0.549, 0.620, 0.589),
  ("text_gnn", "TQ"): (0.578, 0.627, 0.611),
  ("text_gnn", "TD"): (0.535, 0.622, 0.610),
  ("text_gnn", "Q"): (0.516, 0.624, 0.539),
  ("text_gnn", "T"): (0.574, 0.619, 0.607),
  ("emb_gnn", "TQD"): (0.560, 0.620, 0.610),
  ("emb_gnn", "TQ"): (0.562, 0.630, 0.610),
  ("emb_gnn", "TD"): (0.535, 0.605, 0.612),
  ("emb_gnn", "Q"): (0.543, 0.609, 0.607),
  ("emb_gnn", "T"): (0.544, 0.603, 0.556),
}
# SPEC §4, Fig. 4 highlighted points (newllm): router -> (profile, hops, avg perf, cold start).
PAPER_FIG4 = {
  "sim": ("trainable", 3, 0.611, 0.45),
  "mlp": ("trainable", 1, 0.604, 0.21),
  "graph": ("trainable", 4, 0.612, 0.545),
}
FORM_LABEL = {"TQD": "T+Q+D", "TQ": "T+Q", "TD": "T+D", "Q": "Q", "T": "T"}


def _fmt(mean, lo=None, hi=None, paper=None) -> str:
  if mean is None or (isinstance(mean, float) and math.isnan(mean)):
    return "–" if paper is None else f"– ({paper:.3f})"
  s = f"{mean:.3f}"
  if lo is not None and hi is not None and np.isfinite(lo):
    s += f" ± {(hi - lo) / 2:.3f}"
  if paper is not None:
    s += f" ({paper:.3f})"
  return s


def _lookup(stats, setting, router, profile, graph, hops):
  m = stats[
    (stats["setting"] == setting)
    & (stats["router"] == router)
    & (stats["profile"] == profile)
    & (stats["graph"].astype(str) == str(graph))
    & (stats["hops"].astype(str) == str(hops))
  ]
  return None if m.empty else m.iloc[0]


def _table1(stats, setting, newllm=False, show_paper=True) -> list[str]:
  head = "| profile | hops | learn | " + " | ".join(ROUTER_LABEL[r] for r in ROUTER_COLS) + " |"
  if newllm:
    head = (
      "| profile | hops | learn | "
      + " | ".join(
        f"{ROUTER_LABEL[r]} perf | {ROUTER_LABEL[r]} new-model recall" for r in ROUTER_COLS
      )
      + " |"
    )
  lines = [head, "|" + "---|" * (head.count("|") - 1)]
  for (profile, hops, learn), (label, paper) in PAPER_TABLE1.items():
    graph = "" if profile == "index" else "TQD"
    cells, found = [], False
    for j, r in enumerate(ROUTER_COLS):
      row = _lookup(stats, setting, r, profile, graph, hops)
      found |= row is not None
      if newllm:
        cells.append(_fmt(*(row[["mean", "ci_lo", "ci_hi"]] if row is not None else (None,))))
        cells.append("–" if row is None else f"{row['recall']:.3f}")
      else:
        ref = paper[j] if show_paper else None
        args = (row["mean"], row["ci_lo"], row["ci_hi"]) if row is not None else (None,)
        cells.append(_fmt(*args, paper=ref) if row is not None else _fmt(None, paper=ref))
    if found:  # rows the config did not ask for are left out
      lines.append(f"| {label} | {hops} | {learn.upper()} | " + " | ".join(cells) + " |")
  return lines if len(lines) > 2 else []


def _table2(stats, setting, show_paper=True) -> list[str]:
  lines = ["| config | nodes | Sim | MLP | Graph |", "|---|---|---|---|---|"]
  for (profile, graph), paper in PAPER_TABLE2.items():
    hops = 0 if profile == "flat" else 2
    label = {"flat": "Flat", "text_gnn": "Text-2hop", "emb_gnn": "Emb-2hop"}[profile]
    cells, found = [], False
    for j, r in enumerate(ROUTER_COLS):
      row = _lookup(stats, setting, r, profile, graph, hops)
      found |= row is not None
      ref = paper[j] if show_paper else None
      cells.append(
        _fmt(row["mean"], row["ci_lo"], row["ci_hi"], ref)
        if row is not None
        else _fmt(None, paper=ref)
      )
    if found:
      lines.append(f"| {label} | {FORM_LABEL[graph]} | " + " | ".join(cells) + " |")
  return lines if len(lines) > 2 else []


def _other_cells(stats, setting) -> list[str]:
  """Cells outside the paper's tables (other norms, self-loop variants, other hops)."""
  known1 = {(p, "" if p == "index" else "TQD", h) for (p, h, _) in PAPER_TABLE1}
  known2 = {(p, g, 0 if p == "flat" else 2) for (p, g) in PAPER_TABLE2}
  s = stats[stats["setting"] == setting]
  rows = []
  for r in s.itertuples():
    key = (r.profile, str(r.graph), int(r.hops) if str(r.hops) not in ("", "nan") else 0)
    paper_cell = r.router in ROUTER_COLS and (key in known1 or key in known2)
    if paper_cell and (r.norm in ("", "sym") or r.profile != "emb_gnn"):
      continue
    rows.append(
      f"| {r.router} | {r.profile} | {r.graph} | {r.hops} | {r.norm} | "
      f"{_fmt(r.mean, r.ci_lo, r.ci_hi)} | {r.entropy:.2f} |"
    )
  if not rows:
    return []
  return [
    "| router | profile | graph | hops | norm | avg perf | entropy |",
    "|---|---|---|---|---|---|---|",
    *rows,
  ]


def _baseline_table(bstats: pd.DataFrame, setting: str) -> list[str]:
  b = bstats[bstats["setting"] == setting] if not bstats.empty else bstats
  if b.empty:
    return []
  lines = [
    "| baseline | kind | avg perf (95% CI) | hit rate | $ / query | selection entropy | rule |",
    "|---|---|---|---|---|---|---|",
  ]
  for r in b.itertuples():
    cost = "–" if not np.isfinite(r.cost_per_query) else f"{r.cost_per_query * 1e3:.3f}e-3"
    lines.append(
      f"| {r.name} | {r.kind} | {r.avg_performance:.4f} [{r.ci_lo:.3f}, {r.ci_hi:.3f}]"
      f" | {r.hit_rate:.3f} | {cost} | {r.selection_entropy:.2f} | {r.description} |"
    )
  return lines


def _quality(quality: pd.DataFrame | None, lomo: pd.DataFrame | None) -> list[str]:
  """The validation-selected router of each family (``quality.csv``) and the lomo folds."""
  if quality is None or quality.empty:
    return []
  lines = [
    "## Validation-selected routers",
    "",
    "Per setting, router family and inputs: the profile and hyperparameters with the best mean "
    "validation utility over seeds (validation queries carved from the training queries; the "
    "test rows chose nothing), then its test avg performance (mean over seeds, 95% paired "
    "bootstrap CI) and its paired difference with the per-task lookup (task_best_pairs); p = "
    "P(no improvement) over bootstrap resamples. A CI that covers the lookup's value is a tie. "
    "'best': the family with the best validation utility among those validated with the "
    "config's folds.",
    "",
    "| setting | router | inputs | choice | val utility | avg perf (95% CI) | vs lookup (p) "
    "| new-model recall |",
    "|---|---|---|---|---|---|---|---|",
  ]
  for r in quality.itertuples():
    recall = "–" if not np.isfinite(r.new_model_recall) else f"{r.new_model_recall:.3f}"
    lines.append(
      f"| {r.setting} | {r.router} | {r.inputs} | {r.choice} | {r.val_utility:.4f} | "
      f"{r.avg_performance:.4f} [{r.ci_low:.3f}, {r.ci_high:.3f}] | "
      f"{r.delta_vs_lookup:+.4f} ({r.p_vs_lookup:.2f}) | {recall} |"
    )
  lines.append("")
  if lomo is not None and not lomo.empty:
    lines += [
      "### Leave each candidate out (lomo)",
      "",
      "| router | inputs | held out | avg perf | new-model recall | precision | lookup without |",
      "|---|---|---|---|---|---|---|",
    ]
    fmt = lambda x: "–" if not np.isfinite(x) else f"{x:.3f}"
    for r in lomo.itertuples():
      lines.append(
        f"| {r.router} | {r.inputs} | {r.held_out} | {r.avg_performance:.4f} | "
        f"{fmt(r.new_model_recall)} | {fmt(r.new_model_precision)} | {r.lookup_without:.4f} |"
      )
    lines.append("")
  return lines


def _cost_quality(aiq: pd.DataFrame | None, quality: pd.DataFrame | None) -> list[str]:
  """The cost–quality table: the validation-selected cell of each router family, baselines."""
  if aiq is None or aiq.empty:
    return []
  chosen = _chosen(quality)
  fmt = lambda x, k=4: "–" if not np.isfinite(x) else f"{x:.{k}f}"
  usd = lambda x: "never" if not np.isfinite(x) else f"${x * 1e3:.3f}"
  lines = [
    "## Cost–quality",
    "",
    "Routing argmax p̂ − λ·cost over a λ grid (p̂: scores calibrated on validation queries; cost "
    "known before the call: prompt tokens and predicted completion tokens). AIQ: area under "
    "the non-decreasing convex hull of the (cost, quality) points, cost normalised to the "
    "constant routers' range (RouterBench). Quality at the best single model's cost and the "
    "cost to reach the lookup's quality are read off the hull; $ per 1k queries. Router rows: "
    "the validation-selected cell of each family (see above); APGR/CPT for the pair (best "
    "single model by training pairs, cheapest candidate). Brier: calibration on validation / "
    "test rows.",
    "",
    "| setting | name | kind | AIQ | quality @ best-single cost | cost to lookup quality | "
    "APGR | CPT(50%) | CPT(80%) | Brier val / test |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in aiq.itertuples():
    label = chosen.get((r.setting, r.name)) if r.kind == "router" else r.name
    if label is None:
      continue
    extra = ["–"] * 4
    if r.kind == "router":
      extra = [fmt(r.apgr, 3), fmt(r.cpt50, 3), fmt(r.cpt80, 3)]
      extra.append(f"{fmt(r.brier_val, 3)} / {fmt(r.brier_test, 3)}")
    lines.append(
      f"| {r.setting} | {label} | {r.kind} | {fmt(r.aiq)} | {fmt(r.quality_at_best_single_cost)} "
      f"| {usd(r.cost_to_lookup_quality)} | " + " | ".join(extra) + " |"
    )
  return [*lines, ""]


_CLAIM_TITLES = {
  1: "**Claim 1 — structured profiles beat flat ones.**",
  2: "**Claim 2 — query-level signals beat domain-level ones** (T+Q vs T+D).",
  3: "**Claim 3 — new-LLM generalisation benefits most from structured, trainable profiles** "
  "(cold start = new-model recall, SPEC §3).",
}


def _claims(evidence: list[Evidence]) -> list[str]:
  """The claims section: each claim's evidence lines (computed in ``results.claims``)."""
  out = []
  for claim, title in _CLAIM_TITLES.items():
    lines = []
    for e in (e for e in evidence if e.claim == claim):
      if e.p is None:
        lines.append(f"- {e.router}: {e.text}")
      else:
        lines.append(f"- {e.router}: {e.text}: {e.a:.3f} vs {e.b:.3f} (P(better) = {e.p:.2f})")
    if lines:
      out += [title, *lines, ""]
  if out:
    out.insert(0, "## The paper's claims, checked\n")
    out.append(
      "P(better) is the share of paired bootstrap resamples of the test rows on which the first "
      "cell's seed-averaged performance beats the second's; picking the best of several cells "
      "inflates it (no multiple-comparison correction)."
    )
  return out


class SummaryInputs(NamedTuple):
  """What ``summary.md`` formats.

  Attributes:
    config: the sweep config (names, settings, encoder, ...).
    results: setting -> ``results.SettingResult``.
    tables: ``results.tables`` (stats, bstats, evidence, quality, lomo, aiq, ...).
    timings: stage -> wall seconds.
  """

  config: Any
  results: dict
  tables: dict
  timings: dict[str, float]


def _chosen(quality: pd.DataFrame | None) -> dict[tuple[str, str], str]:
  """(setting, cell name) -> "router (inputs)" of the validation-selected cells in quality.csv."""
  if quality is None or quality.empty:
    return {}
  return {(r.setting, r.cell): f"{r.router} ({r.inputs})" for r in quality.itertuples() if r.cell}


def _data_text(config) -> str:
  """Where the data came from: the folder or table it was read from, or the generator."""
  d = config.data
  if d.source == "synthetic":
    return f"synthetic (embedded generator, seed {d.synthetic_seed}, scale {d.synthetic_scale})"
  if d.source == "generic":
    return f"generic ({d.table})"
  return f"{d.source} ({d.data_dir})"


def write_summary(workdir, inp: SummaryInputs) -> None:
  """Writes ``summary.md`` (atomically) from the sweep's results and statistics.

  The paper-layout tables show, per profile cell, the first router input mode's cell with the
  validation-selected hyperparameters (``results.cell_stats``'s ``selected``).
  """
  config, results, timings = inp.config, inp.results, inp.timings
  stats, bstats, evidence = (inp.tables[k] for k in ("stats", "bstats", "evidence"))
  quality, lomo, aiq = (inp.tables.get(k) for k in ("quality", "lomo", "aiq"))
  if not stats.empty:
    stats = stats[stats["selected"] & (stats["inputs"] == config.router_inputs[0])]
  # The paper's numbers belong beside results on the public RouteProfile data only.
  show_paper = config.data.source == "routeprofile"
  paper_note = (
    "the paper's value in parentheses (one run per cell)."
    if show_paper
    else f"no paper values: the data ({config.data.source}) is not the paper's."
  )
  lines = [
    f"# rp_jax sweep: {config.name}",
    "",
    f"Data: {_data_text(config)}; settings: "
    f"{', '.join(config.settings)}; encoder: {config.encoder}; summariser: {config.summarizer}; "
    f"seeds: {config.seeds}; routers: {', '.join(config.routers)}; queries: "
    f"{config.data.query_format}; router inputs: {', '.join(config.router_inputs)}; profiles "
    f"scaled: {config.profile_norm}; validation split: {config.val_split}.",
    "",
    f"Ran on {runtime.describe()}.",
    "",
    "Cells: ours = mean over seeds ± half-width of a 95% paired bootstrap interval over test rows "
    f"({config.bootstrap} resamples); {paper_note}",
    "",
  ]
  for setting, res in results.items():
    lines += [f"## Setting: {setting}", "", "```", res.history.summary(), "```", ""]
    if not stats.empty and setting == "standard":
      t1 = _table1(stats, setting, show_paper=show_paper)
      if t1:
        lines += ["### Table 1 (graph T+Q+D)", "", *t1, ""]
      t2 = _table2(stats, setting, show_paper=show_paper)
      if t2:
        lines += ["### Table 2 (2 hops; node types added to family + model)", "", *t2, ""]
    if not stats.empty and setting == "newllm":
      t1 = _table1(stats, setting, newllm=True, show_paper=show_paper)
      if t1:
        fig4 = (
          "Paper's highlighted points (avg perf, cold start): "
          + "; ".join(f"{r} + {p} {k} hops ≈ ({a}, {c})" for r, (p, k, a, c) in PAPER_FIG4.items())
          + ". "
          if show_paper
          else ""
        )
        lines += [
          "### New LLM (paper Fig. 4): avg performance and new-model recall",
          "",
          fig4 + "The paper does not define its cold-start score; ours is new-model recall.",
          "",
          *t1,
          "",
        ]
    if not stats.empty:
      other = _other_cells(stats, setting)
      if other:
        lines += ["### Other cells", "", *other, ""]
    bt = _baseline_table(bstats, setting)
    if bt:
      lines += ["### Baselines", "", *bt, ""]
  lines += _quality(quality, lomo)
  lines += _cost_quality(aiq, quality)
  if evidence:
    lines += _claims(evidence)
    lines.append("")
  lines += ["## Wall time per stage", "", *(f"- {k}: {v:.1f} s" for k, v in timings.items()), ""]
  io.write_text(pathlib.Path(workdir) / "summary.md", "\n".join(lines))


def write_all_figures(workdir, frame: pd.DataFrame, tables: dict) -> None:
  """Every figure of a sweep: hop curves, cold start, selections, cost–quality, reliability."""
  write_figures(workdir, frame)
  if not tables["cost_quality"].empty:
    write_cost_figures(workdir, tables["cost_quality"], tables["aiq"], tables["quality"])
  if not tables["calibration"].empty:
    write_reliability_figures(workdir, tables["calibration"], tables["quality"])


def write_figures(workdir, frame: pd.DataFrame) -> None:
  """Hop curves (Fig. 3), performance vs cold start (Fig. 4) and selection histograms."""
  # matplotlib is optional (the "plots" extra): imported only when figures are drawn.
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.ticker import MaxNLocator

  fig_dir = pathlib.Path(workdir) / "figures"
  fig_dir.mkdir(parents=True, exist_ok=True)
  cells = frame[frame["router"].isin(ROUTER_COLS)]
  for setting in frame["setting"].unique():
    s = frame[frame["setting"] == setting]
    # Selection histograms: one row per cell (seed-averaged), baselines included.
    share_cols = [c for c in s.columns if c.startswith("share/") and s[c].notna().any()]
    if share_cols:
      key = (
        s["router"]
        + " "
        + s["profile"].fillna("").astype(str)
        + " "
        + s["graph"].fillna("").astype(str)
        + " "
        + s["hops"].fillna("").astype(str)
        + " "
        + s["norm"].fillna("").astype(str)
      )
      h = s.assign(cell=key.str.strip()).groupby("cell", sort=False)[share_cols].mean()
      fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(share_cols), 0.5 + 0.28 * len(h)))
      ax.imshow(h.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
      ax.set_xticks(
        range(len(share_cols)), [c[6:] for c in share_cols], rotation=45, ha="right", fontsize=7
      )
      ax.set_yticks(range(len(h)), h.index, fontsize=6)
      ax.set_title(f"{setting}: share of test queries routed to each candidate")
      fig.tight_layout()
      _save(fig, fig_dir / f"selection_{setting}.png")
    c = cells[cells["setting"] == setting]
    if c.empty:
      continue
    # Hop curves per router (paper Fig. 3).
    fig, axes = plt.subplots(1, len(ROUTER_COLS), figsize=(13, 3.6), sharey=True)
    for ax, r in zip(axes, ROUTER_COLS, strict=True):
      cr = c[(c["router"] == r) & (c["graph"].isin(["TQD", ""]))]
      for prof, style in (("text_gnn", "o-"), ("emb_gnn", "s-"), ("trainable", "^-")):
        d = cr[cr["profile"] == prof]
        if prof == "emb_gnn":
          d = d[d["norm"].isin(["sym", ""])]
        if d.empty:
          continue
        g = d.groupby("hops")["avg_performance"].agg(["mean", "std"]).sort_index()
        ax.errorbar(
          g.index.astype(int), g["mean"], yerr=g["std"].fillna(0), fmt=style, label=prof, capsize=3
        )
      for prof, ls in (("flat", "--"), ("index", ":")):
        d = cr[cr["profile"] == prof]
        if not d.empty:
          ax.axhline(d["avg_performance"].mean(), ls=ls, color="gray", label=prof)
      ax.set_title(f"{r} router ({setting})")
      ax.set_xlabel("hops K")
      ax.xaxis.set_major_locator(MaxNLocator(integer=True))
      ax.grid(alpha=0.3)
    axes[0].set_ylabel("avg performance (mean ± sd over seeds)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, fig_dir / f"hops_{setting}.png")
    if setting == "newllm":
      fig, ax = plt.subplots(figsize=(6, 4.5))
      g = (
        c.groupby(["router", "profile", "hops", "graph", "norm"], dropna=False)[
          ["avg_performance", "new_model_recall"]
        ]
        .mean()
        .reset_index()
      )
      markers = {"sim": "o", "mlp": "s", "graph": "^"}
      colors = {
        "index": "gray",
        "flat": "tab:orange",
        "text_gnn": "tab:green",
        "emb_gnn": "tab:blue",
        "trainable": "tab:red",
      }
      for r in g.itertuples():
        ax.scatter(
          r.avg_performance,
          r.new_model_recall,
          marker=markers.get(r.router, "o"),
          color=colors.get(r.profile, "k"),
          alpha=0.75,
        )
      for p, col in colors.items():
        ax.scatter([], [], color=col, label=p)
      for rr, mk in markers.items():
        ax.scatter([], [], marker=mk, color="k", label=rr)
      ax.set_xlabel("avg performance (newllm test rows)")
      ax.set_ylabel("cold start: new-model recall")
      ax.set_title("New LLM: performance vs cold start (paper Fig. 4)")
      ax.legend(fontsize=7, ncol=2)
      ax.grid(alpha=0.3)
      fig.tight_layout()
      _save(fig, fig_dir / "coldstart_newllm.png")


def _save(fig, path: pathlib.Path) -> None:
  import matplotlib.pyplot as plt

  with io.atomic_write(path, "wb") as f:
    fig.savefig(f, format="png", dpi=110)
  plt.close(fig)


def write_cost_figures(workdir, front: pd.DataFrame, aiq: pd.DataFrame, quality) -> None:
  """``figures/cost_quality_<setting>.png``: the fronts of the validation-selected cell of each
  router family, the baselines' points, the zero router's hull and the oracles (RouterBench's
  layout: $ per 1k queries against avg performance). Baseline labels are placed inside the axes
  where they overlap neither each other nor the frame; the legend sits below the plot."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  chosen = _chosen(quality)
  fig_dir = pathlib.Path(workdir) / "figures"
  fig_dir.mkdir(parents=True, exist_ok=True)
  for setting in front["setting"].unique():
    f = front[front["setting"] == setting]
    fig, ax = plt.subplots(figsize=(7, 5.6), layout="constrained")
    for name, g in f[f["kind"] == "router"].groupby("name", sort=False):
      label = chosen.get((setting, name))
      if label is None:
        continue
      g = g.sort_values("cost_per_query")
      ax.plot(g["cost_per_query"] * 1e3, g["avg_performance"], ".-", label=label, alpha=0.85)
    zero = f[f["name"] == "zero_router"].sort_values("cost_per_query")
    ax.plot(
      zero["cost_per_query"] * 1e3, zero["avg_performance"], "--", color="gray", label="zero router"
    )
    labelled = []
    for r in f[(f["kind"] != "router") & (f["name"] != "zero_router")].itertuples():
      const = r.name.startswith("const/")
      xy = (r.cost_per_query * 1e3, r.avg_performance)
      ax.scatter(
        *xy,
        s=18 if const else 40,
        marker="x" if r.kind == "oracle" else ("o" if const else "s"),
        color="gray" if const else ("black" if r.kind == "oracle" else "tab:red"),
      )
      if not const and np.isfinite(xy).all():
        labelled.append((r.name, xy))
    ax.set_xscale("log")
    ax.margins(x=0.08, y=0.08)  # room for the labels of points at the edges
    ax.set_xlabel("$ per 1k queries (log)")
    ax.set_ylabel("avg performance")
    ax.set_title(f"{setting}: cost–quality fronts (validation-selected cells)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
      fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    _place_labels(fig, ax, labelled)
    _save(fig, fig_dir / f"cost_quality_{setting}.png")


# Label offsets (points) tried in turn: right, left, above, below, then further out.
_LABEL_OFFSETS = [(5, 3), (5, -9), (-5, 3), (-5, -9), (0, 9), (0, -15)]
_LABEL_OFFSETS += [(dx, dy * 2) for dx, dy in _LABEL_OFFSETS] + [
  (dx, dy * 3) for dx, dy in _LABEL_OFFSETS
]


def _place_labels(fig, ax, points: list[tuple[str, tuple[float, float]]]) -> None:
  """Annotates each (text, (x, y)) point at the first offset whose label stays inside the axes
  and overlaps no label placed before it (the least-overlapping inside offset otherwise)."""
  fig.canvas.draw()  # final limits and layout: labels are placed in display coordinates
  renderer = fig.canvas.get_renderer()
  frame = ax.get_window_extent(renderer)
  placed = []
  for text, xy in sorted(points, key=lambda p: (-p[1][1], p[1][0], p[0])):
    best = None
    for dx, dy in _LABEL_OFFSETS:
      ann = ax.annotate(
        text,
        xy,
        xytext=(dx, dy),
        textcoords="offset points",
        ha="left" if dx > 0 else ("right" if dx < 0 else "center"),
        fontsize=6,
        annotation_clip=True,
        clip_on=True,
      )
      box = ann.get_window_extent(renderer)
      inside = (
        box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1
      )
      overlap = sum(box.overlaps(b) for b in placed)
      score = (not inside, overlap)
      if best is None or score < best[0]:
        if best is not None:
          best[1].remove()
        best = (score, ann, box)
      else:
        ann.remove()
      if score == (False, 0):
        break
    placed.append(best[2])


def write_reliability_figures(workdir, calib: pd.DataFrame, quality) -> None:
  """``figures/reliability_<setting>.png``: reliability diagrams (mean p̂ against the mean
  outcome per bin, seeds pooled) of the validation-selected cell of each router family, on its
  validation queries and on the test rows."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  chosen = _chosen(quality)
  if not chosen:
    return
  fig_dir = pathlib.Path(workdir) / "figures"
  fig_dir.mkdir(parents=True, exist_ok=True)
  for setting in calib["setting"].unique():
    c = calib[(calib["setting"] == setting) & (calib["count"] > 0)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), sharey=True, layout="constrained")
    for ax, split in zip(axes, ("val", "test"), strict=True):
      ax.plot([0, 1], [0, 1], ":", color="gray")
      for name, g in c[c["split"] == split].groupby("name", sort=False):
        label = chosen.get((setting, name))
        if label is not None:
          ax.plot(g["mean_pred"], g["mean_obs"], ".-", label=label, alpha=0.85)
      ax.set_xlabel("mean p̂ in bin")
      ax.set_title(f"{setting}: {'validation queries' if split == 'val' else 'test rows'}")
      ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean outcome in bin")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # below the plots, where it hides no curve
      fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    _save(fig, fig_dir / f"reliability_{setting}.png")


# -- docs/results.md: every run's tables in one generated document --------------------------------

# Files of a run folder formatted as tables when present. Without summary.md the statistics'
# CSVs stand in for its sections; coldstart.csv and datasets.csv are not in summary.md.
_FALLBACK_CSVS = (
  ("quality.csv", "Validation-selected routers"),
  ("lomo.csv", "Leave each candidate out (lomo)"),
  ("aiq.csv", "Cost–quality scores"),
)
_EXTRA_CSVS = (("coldstart.csv", "Cold start"), ("datasets.csv", "Datasets"))


def results_markdown(run_dirs: Sequence[str | pathlib.Path], out: str = "docs/results.md") -> str:
  """One markdown document with the tables of several sweep runs (``docs/results.md``).

  Formatting only, deterministic: the same run folders give the same bytes (no dates, no wall
  times). Per run: a heading with the config's name, the command that reproduces it (the config
  file, the workdir and the overrides that differ from the file's defaults), the hardware it ran
  on (``config.json``'s ``runtime``), then ``summary.md`` without its title and wall-time section
  (headings one level down), or, without summary.md, ``quality.csv`` / ``lomo.csv`` /
  ``aiq.csv`` as tables; ``coldstart.csv`` and ``datasets.csv`` as tables when present. Missing
  files are skipped.

  Args:
    run_dirs: sweep workdirs, written as given (their order is the document's).
    out: where the document goes (only named in its regeneration note).

  Raises:
    ValueError: a folder without ``config.json`` (not a sweep run).
  """
  labels = [str(d) for d in run_dirs]
  for d in labels:
    if not (pathlib.Path(d) / "config.json").is_file():
      raise ValueError(f"{d}: not a sweep run folder (no config.json)")
  lines = [
    "# Results",
    "",
    "Generated from sweep outputs; do not edit by hand. Regenerate with",
    "",
    "```bash",
    f"python -m launch.report --runs={','.join(labels)} --out={out}",
    "```",
    "",
  ]
  for d in labels:
    lines += _run_markdown(pathlib.Path(d), d)
  return "\n".join(lines).rstrip("\n") + "\n"


def _run_markdown(path: pathlib.Path, label: str) -> list[str]:
  """One run's part of the results document."""
  prov = json.loads((path / "config.json").read_text(encoding="utf-8"))
  cfg = prov.get("config", {})
  versions = f"rp_jax {prov.get('rp_jax_version', '?')}, jax {prov.get('jax_version', '?')}"
  lines = [
    f"## {cfg.get('name', '?')}: `{label}`",
    "",
    "```bash",
    reproduce_command(cfg, label),
    "```",
    "",
    f"Hardware: {prov.get('runtime', 'not recorded')}. {versions}; code fingerprint "
    f"`{prov.get('code_fingerprint', '?')}`, data fingerprint `{prov.get('data_fingerprint', '?')}`.",
    "",
  ]
  summary = path / "summary.md"
  if summary.is_file():
    lines += _summary_sections(summary.read_text(encoding="utf-8"))
  else:
    lines += [x for name, title in _FALLBACK_CSVS for x in _csv_section(path / name, title)]
  lines += [x for name, title in _EXTRA_CSVS for x in _csv_section(path / name, title)]
  return lines


def reproduce_command(cfg: dict, workdir: str) -> str:
  """``python -m launch.sweep --config=configs/<name>.py --workdir=...`` plus an override per key
  whose value differs from the config file's default (``cfg``: config.json's ``config``).

  The public data's folder is given as ``RP_JAX_DATA``; keys the file does not know, and every
  override, are left out when ``configs/<name>.py`` cannot be imported (then a comment says so).
  """
  name = str(cfg.get("name", ""))
  data = cfg.get("data", {})
  env = (
    f"RP_JAX_DATA={_shell_arg(data['data_dir'])} " if data.get("source") == "routeprofile" else ""
  )
  parts = [
    f"{env}python -m launch.sweep --config=configs/{name}.py --workdir={_shell_arg(workdir)}"
  ]
  defaults = _config_defaults(name)
  if defaults is None:
    return parts[0] + f"  # configs/{name}.py not found: overrides unknown"
  for key, value in _flatten(cfg).items():
    skip = key == "data.data_dir" and data.get("source") != "routerbench"
    if key in defaults and defaults[key] != value and not skip:
      parts.append(_shell_arg(f"--config.{key}={_flag_value(value)}"))
  return " \\\n  ".join(parts)


def _config_defaults(name: str) -> dict | None:
  """configs/<name>.py's ``get_config()`` as flat JSON values, or None if it cannot be loaded."""
  if not re.fullmatch(r"[A-Za-z_]\w*", name):
    return None
  try:
    module = importlib.import_module(f"configs.{name}")
  except ImportError:
    return None
  return _flatten(json.loads(module.get_config().to_json()))


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _flag_value(v) -> str:
  """A JSON config value as ml_collections parses a ``--config.key=value`` override."""
  if isinstance(v, list):
    return repr(tuple(v))
  return str(v)


def _shell_arg(s: str) -> str:
  if re.fullmatch(r"[\w@%+=:,./-]+", s):
    return s
  if not re.search(r'["$`\\!]', s):
    return f'"{s}"'
  return "'" + s.replace("'", "'\"'\"'") + "'"


def _summary_sections(text: str) -> list[str]:
  """summary.md without its title and wall-time section, headings one level down."""
  lines, skipping, fenced = [], False, False
  for line in text.splitlines():
    if line.startswith("```"):
      fenced = not fenced
    heading = not fenced and line.startswith("#")
    if heading and line.startswith("# "):
      continue
    if heading and line.startswith("## "):
      skipping = line.startswith("## Wall time")
    if not skipping:
      lines.append("#" + line if heading else line)
  while lines and not lines[-1].strip():
    lines.pop()
  return [*lines, ""]


def _csv_section(path: pathlib.Path, title: str) -> list[str]:
  """``### title`` and the CSV as a markdown table ([] if the file is missing or empty)."""
  if not path.is_file():
    return []
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
  if len(rows) < 2:
    return []
  row = lambda cells: "| " + " | ".join(_cell_text(c) for c in cells) + " |"
  return [
    f"### {title} (`{path.name}`)",
    "",
    row(rows[0]),
    "|" + "---|" * len(rows[0]),
    *(row(r) for r in rows[1:]),
    "",
  ]


def _cell_text(s: str) -> str:
  """A CSV cell for a markdown table: floats to 4 decimals, NaN as –, pipes escaped."""
  try:
    x = float(s)
  except ValueError:
    return s.replace("|", "\\|")
  if math.isnan(x):
    return "–"
  if not re.search(r"[.eE]", s) or math.isinf(x):
    return s
  return f"{x:.4f}" if x == 0 or 1e-3 <= abs(x) < 1e5 else f"{x:.3e}"
