"""The sweep: data -> profiles -> routers (jit∘vmap over profiles x seeds) -> metrics -> outputs.

``run(config, workdir)`` is what ``python -m launch.sweep`` calls. Per setting it

1. loads the History (``rp_jax.data.load_history``) and evaluates the baselines;
2. encodes node and query texts (content-addressed cache) and builds every profile of the config
   into one ``profile_SxRxMxD`` (``rp_jax.profiles.build``);
3. trains each router on all S profiles x R seeds in one compiled call (the profile axis sharded
   over the visible devices, optionally chunked), and routes the test queries;
4. evaluates every (profile, router, seed) with ``rp_jax.metrics.evaluate`` (vmapped) and a paired
   bootstrap over test rows.

Outputs in ``workdir``: ``config.json`` (resolved config, data and code fingerprints),
``results.csv``, ``rows.npz`` (per-row performance of every cell, for further tests),
``summary.md``, ``figures/*.png``, ``profiles/<setting>/*.npz`` + ``index.csv``,
``text_gnn/<setting>-<form>.json``. Every file is written atomically. Finished stages are stored
under ``stages/`` with a fingerprint of (config, data, code); a rerun skips them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import rp_jax
from rp_jax import io, metrics, runtime
from rp_jax.config import ProfileSpec, profile_specs, validate_config
from rp_jax.data import load_history
from rp_jax.routers.baselines import baselines as make_baselines
from rp_jax.types import History

RESULT_COLUMNS = (
  "setting",
  "profile",
  "graph",
  "hops",
  "learn",
  "norm",
  "router",
  "seed",
  "avg_performance",
  "hit_rate",
  "cost_per_query",
  "selection_entropy",
  "new_model_selection_rate",
  "new_model_recall",
)


# -- fingerprints and stages -----------------------------------------------------------------------


def code_fingerprint() -> str:
  """sha256 over the package's Python sources (a code change invalidates finished stages).

  ``report.py`` is left out: the report is rebuilt from the stages on every run, so a change to
  tables or figures need not retrain anything.
  """
  h = hashlib.sha256()
  root = pathlib.Path(rp_jax.__file__).parent
  for p in sorted(root.rglob("*.py")):
    if p.relative_to(root).as_posix() == "report.py":
      continue
    h.update(str(p.relative_to(root)).encode())
    h.update(p.read_bytes())
  return h.hexdigest()[:16]


def data_fingerprint(config) -> str:
  d = config.data
  h = hashlib.sha256(d.source.encode())
  if d.source == "synthetic":
    h.update(f"{d.synthetic_seed}:{d.synthetic_scale}".encode())
    return h.hexdigest()[:16]
  paths = (
    sorted(pathlib.Path(d.data_dir).rglob("*.json*"))
    if d.source == "routeprofile"
    else [pathlib.Path(p) for p in (d.table, d.model_cards, d.families, d.tasks, d.domains) if p]
  )
  for p in paths:
    h.update(str(p.name).encode())
    h.update(io.sha256_file(p).encode())
  return h.hexdigest()[:16]


class Progress:
  """Cells done / total, elapsed and a rough time estimate, for progress lines."""

  def __init__(self, total_cells: int):
    self.total = max(1, total_cells)
    self.done = 0
    self.t0 = time.perf_counter()

  def add(self, cells: int) -> str:
    self.done += cells
    el = time.perf_counter() - self.t0
    left = el / self.done * (self.total - self.done) if self.done else float("nan")
    return f"{self.done}/{self.total} cells, {el:.0f} s elapsed, ~{left:.0f} s left"


class Stages:
  """Finished-stage store: ``stages/<name>.npz`` holding arrays and a fingerprint."""

  def __init__(self, workdir: pathlib.Path, fingerprint: str, log):
    self.dir = workdir / "stages"
    self.fp = fingerprint
    self.log = log

  def load(self, name: str) -> dict[str, np.ndarray] | None:
    p = self.dir / f"{name}.npz"
    if not p.exists():
      return None
    try:
      z = io.read_npz(p)
    except Exception as e:  # a damaged stage file is recomputed, never trusted
      self.log(f"stage {name}: unreadable ({type(e).__name__}); recomputing")
      return None
    if str(z.pop("__fingerprint__", "")) != self.fp:
      return None
    self.log(f"stage {name}: done in an earlier run (same config, data and code); skipped")
    return z

  def save(self, name: str, arrays: dict[str, np.ndarray]) -> None:
    io.write_npz(self.dir / f"{name}.npz", {**arrays, "__fingerprint__": np.asarray(self.fp)})


# -- the run ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class SettingResult:
  history: History
  test: metrics.TestSet
  rows: list[dict]
  cell_rows: dict[str, np.ndarray]  # "router|profile id" -> [R, Q] per-row performance
  specs: list[ProfileSpec]


def run(config, workdir: str | os.PathLike, log: Callable[[str], None] = print) -> pd.DataFrame:
  """Runs a sweep config into ``workdir``; returns the results table."""
  validate_config(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  t_start = time.perf_counter()
  timings: dict[str, float] = {}
  cfg_json = json.loads(config.to_json())
  fp_code, fp_data = code_fingerprint(), data_fingerprint(config)
  fingerprint = hashlib.sha256(
    json.dumps([cfg_json, fp_code, fp_data], sort_keys=True).encode()
  ).hexdigest()[:16]
  io.write_json(
    workdir / "config.json",
    {
      "config": cfg_json,
      "code_fingerprint": fp_code,
      "data_fingerprint": fp_data,
      "run_fingerprint": fingerprint,
      "rp_jax_version": rp_jax.__version__,
      "jax_version": jax.__version__,
      "devices": [str(d) for d in jax.devices()],
      "runtime": runtime.describe(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
    },
  )
  stages = Stages(workdir, fingerprint, log)
  results: dict[str, SettingResult] = {}
  progress = Progress(
    sum(len(profile_specs(config, s)) for s in config.settings) * config.seeds * len(config.routers)
  )
  for setting in config.settings:
    log(f"[{setting}] loading data ({config.data.source})")
    t0 = time.perf_counter()
    history = load_history(config.data, setting)
    test = metrics.TestSet.from_history(history)
    log(history.summary())
    timings[f"{setting}/data"] = time.perf_counter() - t0
    rows = _baseline_rows(history, test, setting) if config.baselines else []
    cell_rows: dict[str, np.ndarray] = {}
    specs = profile_specs(config, setting)
    if specs and config.routers:
      from rp_jax import pipeline

      rows_r, cell_rows = pipeline.run_setting(
        config, history, test, specs, setting, workdir, stages, timings, log, progress
      )
      rows += rows_r
    results[setting] = SettingResult(history, test, rows, cell_rows, specs)

  frame = _results_frame([r for s in results.values() for r in s.rows], results)
  io.write_csv(workdir / "results.csv", frame)
  io.write_npz(
    workdir / "rows.npz",
    {f"{s}|{k}": v for s, r in results.items() for k, v in r.cell_rows.items()},
  )
  t0 = time.perf_counter()
  from rp_jax import report

  report.write_summary(workdir, config, frame, results, timings)
  if config.figures:
    report.write_figures(workdir, frame, results)
  timings["report"] = time.perf_counter() - t0
  timings["total"] = time.perf_counter() - t_start
  log("wall time per stage: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
  io.write_json(workdir / "timings.json", timings)
  return frame


def _metric_row(setting, m: dict, task_names, candidate_names, **keys) -> dict:
  row = {"setting": setting, **keys}
  for k in RESULT_COLUMNS[8:]:
    row[k] = float(m[k])
  row["regret"] = float(m["regret"])
  for t, v in zip(task_names, np.asarray(m["per_task"]).tolist(), strict=True):
    row[f"perf/{t}"] = v
  for c, v in zip(candidate_names, np.asarray(m["histogram"]).tolist(), strict=True):
    row[f"share/{c}"] = v
  return row


def _baseline_rows(history: History, test: metrics.TestSet, setting: str) -> list[dict]:
  bl = make_baselines(history, test)
  sel = jnp.asarray(np.stack([b.sel_QxA for b in bl.values()]))
  ms = jax.jit(jax.vmap(metrics.evaluate, (0, None)))(sel, test)
  ms = jax.tree.map(np.asarray, ms)
  out = []
  for i, (name, _) in enumerate(bl.items()):
    m = {k: v[i] for k, v in ms.items()}
    out.append(
      _metric_row(
        setting,
        m,
        test.task_names,
        test.candidate_names,
        profile="",
        graph="",
        hops="",
        learn="",
        norm="",
        router=name,
        seed=0,
      )
    )
  return out


def _results_frame(rows: list[dict], results) -> pd.DataFrame:
  frame = pd.DataFrame(rows)
  if frame.empty:
    return pd.DataFrame(columns=list(RESULT_COLUMNS))
  task_cols = sorted({c for c in frame.columns if c.startswith("perf/")})
  share_cols = sorted({c for c in frame.columns if c.startswith("share/")})
  cols = [*RESULT_COLUMNS, *task_cols, "regret", *share_cols]
  return frame.reindex(columns=cols)
