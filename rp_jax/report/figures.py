"""The figures of a sweep (matplotlib, an optional dependency imported when figures are drawn).

Formatting only: every number plotted comes from the sweep's tables.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from rp_jax import io
from rp_jax.report.summary import ROUTER_COLS, chosen_cells


def write_all_figures(workdir, frame: pd.DataFrame, tables: dict) -> None:
  """Every figure of a sweep: hop curves, cold start, selections, cost–quality, reliability."""
  write_figures(workdir, frame)
  if not tables["cost_quality"].empty:
    write_cost_figures(workdir, tables["cost_quality"], tables["aiq"], tables["quality"])
  if not tables["calibration"].empty:
    write_reliability_figures(workdir, tables["calibration"], tables["quality"])
  if tables.get("coldstart") is not None and not tables["coldstart"].empty:
    write_coldstart_figures(workdir, tables["coldstart"])


def write_figures(workdir, frame: pd.DataFrame) -> None:
  """Hop curves (Fig. 3), performance vs cold start (Fig. 4) and selection histograms."""
  fig_dir = pathlib.Path(workdir) / "figures"
  fig_dir.mkdir(parents=True, exist_ok=True)
  cells = frame[frame["router"].isin(ROUTER_COLS)]
  for setting in frame["setting"].unique():
    _selection_figure(frame[frame["setting"] == setting], setting, fig_dir)
    c = cells[cells["setting"] == setting]
    if c.empty:
      continue
    _hops_figure(c, setting, fig_dir)
    if setting == "newllm":
      _coldstart_scatter(c, fig_dir)


def _pyplot():
  """matplotlib's pyplot on the Agg backend (matplotlib is optional: the "plots" extra)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def _selection_figure(s: pd.DataFrame, setting: str, fig_dir: pathlib.Path) -> None:
  """Selection histograms: one row per cell (seed-averaged), baselines included."""
  share_cols = [c for c in s.columns if c.startswith("share/") and s[c].notna().any()]
  if not share_cols:
    return
  plt = _pyplot()
  parts = [s["router"]] + [
    s[k].fillna("").astype(str) for k in ("profile", "graph", "hops", "norm")
  ]
  key = parts[0].str.cat(parts[1:], sep=" ")
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


def _hops_figure(c: pd.DataFrame, setting: str, fig_dir: pathlib.Path) -> None:
  """Hop curves per router (paper Fig. 3)."""
  plt = _pyplot()
  from matplotlib.ticker import MaxNLocator

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


_MARKERS = {"sim": "o", "mlp": "s", "graph": "^"}
_COLORS = {
  "index": "gray",
  "flat": "tab:orange",
  "text_gnn": "tab:green",
  "emb_gnn": "tab:blue",
  "trainable": "tab:red",
}


def _coldstart_scatter(c: pd.DataFrame, fig_dir: pathlib.Path) -> None:
  """Performance vs new-model recall of every newllm cell (paper Fig. 4)."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4.5))
  keys = ["router", "profile", "hops", "graph", "norm"]
  g = c.groupby(keys, dropna=False)[["avg_performance", "new_model_recall"]].mean().reset_index()
  for r in g.itertuples():
    marker, color = _MARKERS.get(r.router, "o"), _COLORS.get(r.profile, "k")
    ax.scatter(r.avg_performance, r.new_model_recall, marker=marker, color=color, alpha=0.75)
  for p, col in _COLORS.items():
    ax.scatter([], [], color=col, label=p)
  for rr, mk in _MARKERS.items():
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

  chosen = chosen_cells(quality)
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

  chosen = chosen_cells(quality)
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


def write_coldstart_figures(workdir, cs: pd.DataFrame) -> None:
  """``figures/coldstart_curves.png``: avg performance against the quiz size k, one panel per
  cold-start setting (lomo folds pooled; single folds left out), one curve per router family and
  quiz method, with each family's a_zero (dotted) and a_full (dashed) levels."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  shown = cs[~cs["setting"].str.contains("lomo:", regex=False)]
  settings = list(dict.fromkeys(shown["setting"]))
  if not settings:
    return
  fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings), 4.2), squeeze=False)
  for ax, setting in zip(axes[0], settings, strict=True):
    s = shown[shown["setting"] == setting]
    methods = s[s["quiz"] != "none"].groupby(["router", "inputs", "quiz"], sort=False)
    for i, ((router, inputs, quiz), _) in enumerate(methods):
      g = s[(s["router"] == router) & (s["inputs"] == inputs) & s["quiz"].isin([quiz, "none"])]
      g = g.sort_values("k")
      color = f"C{i}"
      ax.errorbar(
        g["k"],
        g["avg_performance"],
        yerr=[g["avg_performance"] - g["ci_low"], g["ci_high"] - g["avg_performance"]],
        fmt="o-",
        color=color,
        capsize=3,
        label=f"{router} ({inputs}), {quiz}",
      )
      ax.axhline(g["a_zero"].mean(), ls=":", color=color, lw=1)
      ax.axhline(g["a_full"].mean(), ls="--", color=color, lw=1)
    ax.set_xlabel("quiz size k (the new model's answers)")
    ax.set_title(f"{setting}: held out {s['held_out'].iloc[0]}", fontsize=9)
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel("avg performance")
  fig.text(0.01, 0.01, "dotted: the new model ignored; dashed: all its data", fontsize=7)
  handles, labels = axes[0, 0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
  fig.tight_layout(rect=(0, 0.1, 1, 1))
  _save(fig, pathlib.Path(workdir) / "figures" / "coldstart_curves.png")
