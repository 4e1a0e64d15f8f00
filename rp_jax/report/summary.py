"""summary.md: the paper's tables (ours beside the paper's numbers), baselines, the
validation-selected routers, cold start, datasets, cost–quality and the claims' evidence.

Formatting only: the numbers come from ``rp_jax.results`` / ``coldstart`` / ``datasets``.
"""

from __future__ import annotations

import math
import pathlib
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
  chosen = chosen_cells(quality)
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


def chosen_cells(quality: pd.DataFrame | None) -> dict[tuple[str, str], str]:
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
  config, tables = inp.config, inp.tables
  stats = tables["stats"]
  if not stats.empty:
    stats = stats[stats["selected"] & (stats["inputs"] == config.router_inputs[0])]
  # The paper's numbers belong beside results on the public RouteProfile data only.
  show_paper = config.data.source == "routeprofile"
  lines = _header(config, show_paper)
  for setting, res in inp.results.items():
    lines += _setting_section(setting, res, stats, tables["bstats"], show_paper)
  lines += _quality(tables.get("quality"), tables.get("lomo"))
  lines += _coldstart(tables.get("coldstart"))
  lines += _datasets(tables.get("datasets"))
  lines += _cost_quality(tables.get("aiq"), tables.get("quality"))
  if tables["evidence"]:
    lines += [*_claims(tables["evidence"]), ""]
  times = (f"- {k}: {v:.1f} s" for k, v in inp.timings.items())
  lines += ["## Wall time per stage", "", *times, ""]
  io.write_text(pathlib.Path(workdir) / "summary.md", "\n".join(lines))


def _header(config, show_paper: bool) -> list[str]:
  paper_note = (
    "the paper's value in parentheses (one run per cell)."
    if show_paper
    else f"no paper values: the data ({config.data.source}) is not the paper's."
  )
  return [
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


def _setting_section(setting: str, res, stats, bstats, show_paper: bool) -> list[str]:
  lines = [f"## Setting: {setting}", "", "```", res.history.summary(), "```", ""]
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
      points = "; ".join(
        f"{r} + {p} {k} hops ≈ ({a}, {c})" for r, (p, k, a, c) in PAPER_FIG4.items()
      )
      fig4 = f"Paper's highlighted points (avg perf, cold start): {points}. " if show_paper else ""
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
  return lines


def _num(x, k: int = 3) -> str:
  return "–" if x is None or not np.isfinite(x) else f"{x:.{k}f}"


def _coldstart(cs: pd.DataFrame | None) -> list[str]:
  """The cold-start curves (``coldstart.csv``): per cold setting, router and quiz size k."""
  if cs is None or cs.empty:
    return []
  lines = [
    "## Cold start by quiz",
    "",
    "Per cold-start setting (lomo: the folds pooled), router family and quiz (method, size k): "
    "the validation-selected cell's avg performance [95% CI], new-model recall, a_zero (the same "
    "cell ignoring the new model), a_full (the family's selected cell in the standard setting, "
    "trained with all of the model's data) and the gap recovered (A_k − a_zero) / (a_full − "
    "a_zero) [95% paired bootstrap CI]. A CI of the gap that covers 0 means the quiz bought "
    "nothing measurable; a gap near 0 makes the ratio noise.",
    "",
    "| setting | held out | router | quiz | k | avg perf [95% CI] | recall | a_zero | a_full "
    "| gap recovered [95% CI] |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in cs.itertuples():
    lines.append(
      f"| {r.setting} | {r.held_out} | {r.router} ({r.inputs}) | {r.quiz} | {r.k} | "
      f"{r.avg_performance:.4f} [{r.ci_low:.3f}, {r.ci_high:.3f}] | {_num(r.new_model_recall)} | "
      f"{_num(r.a_zero, 4)} | {_num(r.a_full, 4)} | {_num(r.gap_recovered, 2)} "
      f"[{_num(r.gap_ci_low, 2)}, {_num(r.gap_ci_high, 2)}] |"
    )
  return [*lines, ""]


def _datasets(ds: pd.DataFrame | None) -> list[str]:
  """The cross-dataset table (``datasets.csv``)."""
  if ds is None or ds.empty:
    return []
  usd = lambda x: "never" if not np.isfinite(x) else f"${x * 1e3:.3f}"
  lines = [
    "## Across datasets",
    "",
    "Per dataset, router family (best: validation-selected family) and inputs: the "
    "validation-selected cell's avg performance [95% CI], paired differences with the per-task "
    "lookup and the best single model (chosen on training rows), AIQ vs the zero router, quality "
    "at the best single model's cost, and the cost at which the router's hull reaches the best "
    "single model's quality ($ per 1k queries).",
    "",
    "| dataset | router | inputs | choice | avg perf [95% CI] | vs lookup | vs best single | AIQ "
    "(zero router) | quality @ best-single cost | cost to best-single quality (its cost) |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in ds.itertuples():
    lines.append(
      f"| {r.dataset} | {r.router} | {r.inputs} | {r.choice} | {r.avg_performance:.4f} "
      f"[{r.ci_low:.3f}, {r.ci_high:.3f}] | {r.delta_vs_lookup:+.4f} | "
      f"{r.delta_vs_best_single:+.4f} | {_num(r.aiq, 4)} ({_num(r.aiq_zero_router, 4)}) | "
      f"{_num(r.quality_at_best_single_cost, 4)} | {usd(r.cost_to_best_single_quality)} "
      f"({usd(r.best_single_cost)}) |"
    )
  return [*lines, ""]
