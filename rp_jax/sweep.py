"""The sweep: orchestrates data -> profiles -> routers -> metrics per setting, then the report.

``run(config, workdir)`` is what ``python -m launch.sweep`` calls (progress through absl logging,
or the ``log`` callback). Per setting it

1. loads the History (``rp_jax.data.load_history``) and evaluates the baselines;
2. encodes node and query texts (content-addressed cache) and builds every profile of the config
   into one ``profile_SxZxMxD`` (``rp_jax.stages.profiles``);
3. for each router input mode, trains each router on all S profiles x H hyperparameter settings
   x R seeds in one compiled call (``stages.router_grid``: the cell axis sharded over the visible
   devices, optionally chunked) and routes the test queries;
4. evaluates every (profile, router, seed) with ``rp_jax.metrics.evaluate`` (vmapped).

Then ``rp_jax.results`` turns the evaluations into rows and statistics (means over seeds, paired
bootstrap intervals, the claims' evidence) and ``rp_jax.report`` formats them. Calls go one way:
sweep -> stages -> results -> report.

Outputs in ``workdir``: ``config.json`` (resolved config, data and code fingerprints),
``results.csv``, ``rows.npz`` (per-row performance of every cell, for further tests),
``summary.md``, ``figures/*.png``, ``profiles/<setting>/*.npz`` + ``index.csv``,
``text_gnn/<setting>-<form>.json``. Every file is written atomically. Finished stages are stored
under ``stages/`` with a fingerprint of (config, data, code); a rerun skips them.

Several processes (hosts): each runs ``run`` with the same arguments after
``rp_jax.distributed.initialize``; the router grids' cells are sharded over every process's
devices, everything else is computed by every process, and process 0 alone writes the outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import time
from collections.abc import Callable

import jax
import numpy as np
import pandas as pd
from absl import logging

import rp_jax
from rp_jax import distributed, frontier, io, metrics, report, results, runtime, stages
from rp_jax.config import (
  hparam_grid,
  hparams_text,
  profile_specs,
  router_folds,
  router_settings,
  setting_routers,
  validate_config,
)
from rp_jax.data import leave_one_out, load_history
from rp_jax.profiles.build import ProfileSet
from rp_jax.routers import registry
from rp_jax.types import History

RESULT_COLUMNS = results.RESULT_COLUMNS


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
  """Finished-stage store: ``stages/<name>.npz`` holding arrays and a fingerprint.

  Across processes (``rp_jax.distributed``) a stage is skipped only when every process loaded it,
  and only process 0 saves.
  """

  def __init__(self, workdir: pathlib.Path, fingerprint: str, log):
    self.dir = workdir / "stages"
    self.fp = fingerprint
    self.log = log

  def load(self, name: str) -> dict[str, np.ndarray] | None:
    z = self._read(name)
    # The router grids are collective programs: all processes skip a stage or all compute it.
    if not distributed.all_agree(z is not None):
      if z is not None:
        self.log(f"stage {name}: missing in another process; recomputing")
      return None
    if z is not None:
      self.log(f"stage {name}: done in an earlier run (same config, data and code); skipped")
    return z

  def _read(self, name: str) -> dict[str, np.ndarray] | None:
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
    return z

  def save(self, name: str, arrays: dict[str, np.ndarray]) -> None:
    if not distributed.is_writer():
      return
    io.write_npz(self.dir / f"{name}.npz", {**arrays, "__fingerprint__": np.asarray(self.fp)})


# -- the run ----------------------------------------------------------------------------------------


def run(
  config, workdir: str | os.PathLike, log: Callable[[str], None] = logging.info
) -> pd.DataFrame:
  """Runs a sweep config into ``workdir``; returns the results table.

  Under ``jax.distributed`` every process runs this with the same arguments and returns the same
  table; only process 0 writes into ``workdir`` (see ``rp_jax.distributed``).
  """
  validate_config(config)
  workdir = pathlib.Path(workdir)
  writer = distributed.is_writer()
  if writer:
    workdir.mkdir(parents=True, exist_ok=True)
  t_start = time.perf_counter()
  timings: dict[str, float] = {}
  cfg_json = json.loads(config.to_json())
  fp_code, fp_data = code_fingerprint(), data_fingerprint(config)
  fingerprint = hashlib.sha256(
    json.dumps([cfg_json, fp_code, fp_data], sort_keys=True).encode()
  ).hexdigest()[:16]
  if writer:
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
  store = Stages(workdir, fingerprint, log)
  by_setting: dict[str, results.SettingResult] = {}
  histories = setting_histories(config, log)
  progress = Progress(
    sum(
      len(profile_specs(config, s)) * num_router_runs(config, setting_routers(config, s))
      for s in histories
    )
    * config.seeds
  )
  for setting, history in histories.items():
    by_setting[setting] = run_setting(config, history, workdir, store, timings, log, progress)

  frame = results.results_frame([r for s in by_setting.values() for r in s.rows])
  if not writer:  # the same frame as process 0's, which writes the outputs
    return frame
  io.write_csv(workdir / "results.csv", frame)
  io.write_npz(
    workdir / "rows.npz",
    {f"{s}|{k}": v for s, r in by_setting.items() for k, v in r.cell_rows.items()},
  )
  t0 = time.perf_counter()
  routers, nb, bseed = tuple(config.routers), int(config.bootstrap), int(config.bootstrap_seed)
  stats = results.cell_stats(frame, by_setting, routers, nb, bseed)
  bstats = results.baseline_stats(frame, by_setting, routers, nb, bseed)
  evidence = results.claims(stats, by_setting, routers, nb, bseed + 1)
  same_folds = tuple(r for r in routers if router_folds(config, r) == int(config.val_folds))
  quality = results.quality_table(stats, by_setting, nb, bseed + 2, eligible=same_folds)
  lomo = results.lomo_table(stats, frame, by_setting)
  if not quality.empty:
    io.write_csv(workdir / "quality.csv", quality)
  if not lomo.empty:
    io.write_csv(workdir / "lomo.csv", lomo)
  front, aiq, calib = results.cost_tables(by_setting)
  if not front.empty:
    io.write_csv(workdir / "cost_quality.csv", front)
    io.write_csv(workdir / "aiq.csv", aiq)
  if not calib.empty:
    io.write_csv(workdir / "calibration.csv", calib)
  report.write_summary(
    workdir,
    config,
    by_setting,
    stats,
    bstats,
    evidence,
    timings,
    quality=quality,
    lomo=lomo,
    aiq=aiq,
  )
  if config.figures:
    report.write_figures(workdir, frame)
    if not front.empty:
      report.write_cost_figures(workdir, front, aiq, quality)
    if not calib.empty:
      report.write_reliability_figures(workdir, calib, quality)
  timings["report"] = time.perf_counter() - t0
  timings["total"] = time.perf_counter() - t_start
  log("wall time per stage: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
  io.write_json(workdir / "timings.json", timings)
  return frame


def setting_histories(config, log) -> dict[str, History]:
  """The History of every setting the config runs; "lomo" expands into one fold per candidate.

  Query texts are what the routers read (``config.data.query_format``).
  """
  out = {}
  fmt = config.data.query_format
  for setting in config.settings:
    log(f"[{setting}] loading data ({config.data.source})")
    if setting == "lomo":
      base = stages.router_history(load_history(config.data, "standard"), fmt)
      for fold in leave_one_out(base):
        out[fold.setting] = fold
    else:
      out[setting] = stages.router_history(load_history(config.data, setting), fmt)
  return out


def num_router_runs(config, routers) -> int:
  """(router, inputs) pairs a setting trains: same-space families (sim) read the prompt only."""
  return sum(
    1
    for inputs in config.router_inputs
    for r in routers
    if not (registry.family(r).same_space and inputs != "prompt")
  )


def run_setting(config, history, workdir, store, timings, log, progress) -> results.SettingResult:
  """Baselines, profiles, router grids and their evaluation for one setting's History."""
  setting = history.setting
  t0 = time.perf_counter()
  test = metrics.TestSet.from_history(history)
  log(history.summary())
  timings[f"{setting}/data"] = time.perf_counter() - t0
  rows: list[dict] = []
  cost = results.CostRows()
  bl = stages.baseline_selections(history, test)
  ms, rows_BxQ = stages.evaluate_selections(np.stack([b.sel_QxA for b in bl.values()]), test)
  b_rows = dict(zip(bl, rows_BxQ, strict=True))
  if config.baselines:
    rows += results.metric_rows(setting, ms, test, [results.baseline_keys(n) for n in bl])
  cs = frontier.cost_setting(history, test, bl) if config.cost_quality else None
  if cs is not None:
    cost.add(*frontier.baseline_rows(setting, bl, test, cs))
  specs = profile_specs(config, setting)
  cell_rows: dict[str, np.ndarray] = {}
  if specs and config.routers:
    r_rows, cell_rows = _router_cells(
      config, history, test, specs, setting, workdir, store, timings, log, progress, cs, cost
    )
    rows += r_rows
  if not config.baselines:
    bl, b_rows = {}, {}
  return results.SettingResult(history, test, rows, cell_rows, bl, b_rows, specs, cost)


def _setting_profiles(config, history, specs, setting, workdir, store, embed, log) -> ProfileSet:
  st = store.load(f"{setting}-profiles")
  if st is None:
    log(f"[{setting}] profiles: {len(specs)} configurations x {config.seeds} seeds")
    pset = stages.profiles(config, history, specs, embed, log)
    store.save(
      f"{setting}-profiles",
      {"profile_SxZxMxD": pset.profile_SxZxMxD, "per_seed": pset.per_seed},
    )
  else:
    pset = ProfileSet(specs, st["profile_SxZxMxD"], st["per_seed"], {}, {}, {})
  if distributed.is_writer():
    stages.write_profiles(pathlib.Path(workdir) / "profiles" / setting, history, pset, config)
  return pset


def _router_cells(
  config, history, test, specs, setting, workdir, store, timings, log, progress, cs, cost
):
  """Result rows and per-row performance of every (inputs, router, profile, hparams, seed) cell."""
  seeds = list(range(int(config.seeds)))
  _, embed = stages.make_embed(config)
  t0 = time.perf_counter()
  pset = _setting_profiles(config, history, specs, setting, workdir, store, embed, log)
  timings[f"{setting}/profiles"] = time.perf_counter() - t0
  t0 = time.perf_counter()
  query_emb_QxD = np.asarray(embed(history.query_texts), np.float32)
  timings[f"{setting}/encode_queries"] = time.perf_counter() - t0
  prof = stages.normalize_profiles(pset.profile_SxZxMxD, config.profile_norm)
  prof_SxZxAxD = prof[:, :, history.candidates]
  rows, cell_rows = [], {}
  for inputs in config.router_inputs:
    feats_QxD = stages.query_features(history, query_emb_QxD, inputs)
    for router in setting_routers(config, setting):
      if registry.family(router).same_space and inputs != "prompt":
        log(f"[{setting}] router {router}: compares queries with profiles; no {inputs} inputs")
        continue
      r_rows, r_cells = _router_stage(
        config,
        history,
        test,
        specs,
        setting,
        inputs,
        router,
        feats_QxD,
        prof_SxZxAxD,
        store,
        timings,
        log,
        cs,
        cost,
      )
      rows += r_rows
      cell_rows.update(r_cells)
      done = progress.add(len(specs) * len(seeds)) if progress is not None else ""
      log(
        f"[{setting}] router {router} ({inputs}): done in "
        f"{timings[f'{setting}/{inputs}/{router}']:.1f} s; "
        f"best cell {max(r['avg_performance'] for r in r_rows):.4f}; {done}"
      )
  return rows, cell_rows


def _router_stage(
  config,
  history,
  test,
  specs,
  setting,
  inputs,
  router,
  feats_QxD,
  prof,
  store,
  timings,
  log,
  cs,
  cost,
):
  """One router's grid for one input mode (stage-cached), evaluated into rows and cell rows."""
  seeds = list(range(int(config.seeds)))
  combos = hparam_grid(router_settings(config, router)[1])
  t0 = time.perf_counter()
  name = f"{setting}-router-{router}" + ("" if inputs == "prompt" else f"-{inputs}")
  st = store.load(name)
  if st is None:
    log(
      f"[{setting}] router {router} ({inputs}): training {len(specs)} profiles x "
      f"{len(combos)} hyperparameter settings x {len(seeds)} seeds in one call"
    )
    st = stages.router_grid(
      router, config, history, feats_QxD, prof, seeds, log, return_scores=cs is not None
    )
    store.save(name, st)
  timings[f"{setting}/{inputs}/{router}"] = time.perf_counter() - t0
  choices = st["choices_SxZxQ"]
  ms, perf_SxZxQ = stages.evaluate_choices(choices, test)
  keys, cells = [], {}
  for s, spec in enumerate(specs):
    for h, hp in enumerate(combos):
      i = s * len(combos) + h
      cell = {**results.spec_keys(spec), "router": router, "inputs": inputs}
      cell["hparams"] = hparams_text(hp)
      cells[results.row_cell_id(cell)] = perf_SxZxQ[i]
      for r in range(len(seeds)):
        val = float(st["val_utility_SxZ"][i, r])
        keys.append({**cell, "seed": seeds[r], "val_utility": val})
  if cs is not None and "val_labels_SxZxVxA" in st:
    cost.add(
      *frontier.cell_rows(
        setting,
        list(cells),
        st["test_scores_SxZxQxA"],
        st["val_scores_SxZxVxA"],
        st["val_labels_SxZxVxA"],
        cs,
      )
    )
  return results.metric_rows(setting, ms, test, keys), cells


def run_profiles(config, workdir, log=logging.info) -> dict[str, ProfileSet]:
  """Builds the config's profile grid for each setting into ``workdir/profiles/<setting>/``."""
  validate_config(config)
  _, embed = stages.make_embed(config)
  out = {}
  for setting in config.settings:
    t0 = time.perf_counter()
    history = load_history(config.data, setting)
    specs = profile_specs(config, setting)
    pset = stages.profiles(config, history, specs, embed, log)
    folder = pathlib.Path(workdir) / "profiles" / setting
    stages.write_profiles(folder, history, pset, config)
    log(
      f"[{setting}] {len(specs)} profiles -> {folder} in {time.perf_counter() - t0:.1f} s "
      f"({', '.join(f'{k} {v:.2f}s' for k, v in pset.seconds.items())})"
    )
    out[setting] = pset
  return out
