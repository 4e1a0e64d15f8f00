"""The sweep: orchestrates data -> profiles -> routers -> metrics per setting, then the report.

``run(config, workdir)`` is what ``python -m launch.sweep`` calls (progress through absl logging,
or the ``log`` callback). The encoder is built once; per setting it

1. loads the History and builds its ``stages.SettingContext`` (test rows, baselines, costs);
2. builds every profile of the config into one ``profile_SxZxMxD`` (``stages.profiles``);
3. for each router input mode and router, trains the router on all S profiles x H
   hyperparameter settings x R seeds in one compiled call (``stages.router_grid``) and
   evaluates every cell (``stages.grid_rows``).

Then ``rp_jax.results`` turns the evaluations into statistics (means over seeds, paired
bootstrap intervals, validation-selected cells, the claims' evidence) and ``rp_jax.report``
formats them. Calls go one way: sweep -> stages -> results -> report.

Outputs in ``workdir``: ``config.json`` (resolved config, data and code fingerprints),
``results.csv``, ``rows.npz`` (per-row performance of every cell, keyed by ``CellKey.id()``),
``summary.md``, ``figures/*.png``, ``profiles/<setting>/*.npz`` + ``index.csv``,
``text_gnn/<setting>-<form>.json``. Every file is written atomically. Finished stages are stored
under ``stages/`` with per-stage fingerprints (``rp_jax.stage_cache``); a rerun skips them.

Several processes (hosts): each runs ``run`` with the same arguments after
``rp_jax.distributed.initialize``; the router grids' cells are sharded over every process's
devices, everything else is computed by every process, and process 0 alone writes the outputs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time
from collections.abc import Callable

import jax
import pandas as pd
from absl import logging

import rp_jax
from rp_jax import coldstart, datasets, distributed, io, report, results, runtime, stages
from rp_jax import progress as progress_lib
from rp_jax.config import profile_specs, router_folds, setting_routers, validate_config
from rp_jax.data import leave_one_out, load_history, resolve_dir
from rp_jax.profiles.build import ProfileSet
from rp_jax.routers import registry
from rp_jax.stage_cache import StageCache, code_fingerprint, data_fingerprint, stage_fingerprints
from rp_jax.types import DATASET_SEP, History

RESULT_COLUMNS = results.RESULT_COLUMNS
Log = Callable[[str], None]


@dataclasses.dataclass
class Run:
  """What the orchestration of one run carries from setting to setting.

  Attributes:
    config: the sweep config.
    workdir: the output folder.
    cache: finished stages.
    log: progress lines.
    progress: router cells done / total.
    timings: stage name -> wall seconds.
  """

  config: object
  workdir: pathlib.Path
  cache: StageCache
  log: Log
  progress: progress_lib.Tracker
  timings: dict[str, float] = dataclasses.field(default_factory=dict)

  def timed(self, name: str, t0: float) -> float:
    self.timings[name] = time.perf_counter() - t0
    return self.timings[name]


def run(config, workdir: str | os.PathLike, log: Log = logging.info) -> pd.DataFrame:
  """Runs a sweep config into ``workdir``; returns the results table.

  Under ``jax.distributed`` every process runs this with the same arguments and returns the same
  table; only process 0 writes into ``workdir`` (see ``rp_jax.distributed``).
  """
  validate_config(config)
  workdir = pathlib.Path(workdir)
  t_start, compiled_before = time.perf_counter(), runtime.compile_clock().snapshot()
  fingerprints = stage_fingerprints(config)
  if distributed.is_writer():
    workdir.mkdir(parents=True, exist_ok=True)
    io.write_json(workdir / "config.json", _provenance(config, fingerprints))
  _, embed = stages.make_embed(config)  # once: MiniLM loads its weights here
  histories = expand_quizzes(config, setting_histories(config, log), embed)
  total = sum(
    len(profile_specs(config, s)) * num_router_runs(config, setting_routers(config, s))
    for s in histories
  )
  tracker = progress_lib.Tracker("sweep", total * config.seeds, lambda s: None, every_s=0.0)
  rn = Run(config, workdir, StageCache(workdir, fingerprints, log), log, tracker)
  by_setting = {}
  for setting, history in histories.items():
    by_setting[setting] = run_setting(rn, stages.make_context(config, history, embed))
  frame = results.results_frame([r for s in by_setting.values() for r in s.rows])
  if distributed.is_writer():  # other processes hold the same frame; process 0 writes
    write_outputs(rn, frame, by_setting)
    rn.timings["total"] = time.perf_counter() - t_start
    log("wall time per stage: " + ", ".join(f"{k} {v:.1f}s" for k, v in rn.timings.items()))
    io.write_json(workdir / "timings.json", rn.timings)
    _write_compile_times(rn, runtime.compile_clock().since(compiled_before))
  return frame


def _write_compile_times(rn: Run, compiled: dict[str, float]) -> None:
  """``compile.json``: seconds spent tracing, lowering and compiling inside the run's wall time."""
  compiled["wall_s"] = rn.timings["total"]
  compiled["share"] = compiled["total_s"] / max(rn.timings["total"], 1e-9)
  rn.log(
    f"compilation: {compiled['total_s']:.1f} s of {compiled['wall_s']:.1f} s "
    f"({100 * compiled['share']:.0f}%; {compiled['programs']} programs, "
    f"{compiled['cache_hits']} from the persistent cache; trace {compiled['trace_s']:.1f} s, "
    f"lower {compiled['lower_s']:.1f} s, XLA {compiled['backend_s']:.1f} s)"
  )
  io.write_json(rn.workdir / "compile.json", compiled)


def _provenance(config, fingerprints: dict[str, str]) -> dict:
  """``config.json``: the resolved config, fingerprints and the machine it ran on."""
  return {
    "config": json.loads(config.to_json()),
    "code_fingerprint": code_fingerprint(),
    "data_fingerprint": data_fingerprint(config),
    "stage_fingerprints": fingerprints,
    "rp_jax_version": rp_jax.__version__,
    "jax_version": jax.__version__,
    "devices": [str(d) for d in jax.devices()],
    "runtime": runtime.describe(),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
  }


def write_outputs(rn: Run, frame: pd.DataFrame, by_setting: dict) -> None:
  """results.csv, rows.npz, the statistics' tables, summary.md and figures (process 0)."""
  t0 = time.perf_counter()
  config, workdir = rn.config, rn.workdir
  io.write_csv(workdir / "results.csv", frame)
  io.write_npz(
    workdir / "rows.npz",
    {k.id(): v for r in by_setting.values() for k, v in r.cell_rows.items()},
  )
  opts = _statistics_options(config)
  tables = results.tables(frame, by_setting, opts)
  tables["coldstart"] = coldstart.coldstart_table(
    tables["stats"], by_setting, opts.num_resamples, opts.seed + 3
  )
  tables["datasets"] = datasets.datasets_table(tables["quality"], tables["aiq"], by_setting, 0)
  tables["profile_families"] = datasets.profiles_table(
    tables["stats"], by_setting, opts.num_resamples, opts.seed + 4
  )
  names = ("quality", "lomo", "coldstart", "datasets", "profile_families")
  for name in (*names, "cost_quality", "aiq", "calibration", "apgr"):
    if not tables[name].empty:
      io.write_csv(workdir / f"{name}.csv", tables[name])
  rn.timings["report"] = 0.0  # listed in summary.md; filled in below
  report.write_summary(workdir, report.SummaryInputs(config, by_setting, tables, rn.timings))
  if config.figures:
    report.write_all_figures(workdir, frame, tables)
  rn.timed("report", t0)


def _statistics_options(config) -> results.StatsOptions:
  routers = tuple(config.routers)
  same_folds = tuple(r for r in routers if router_folds(config, r) == int(config.val_folds))
  return results.StatsOptions(
    routers=routers,
    num_resamples=int(config.bootstrap),
    seed=int(config.bootstrap_seed),
    eligible=same_folds,
  )


def setting_histories(config, log: Log) -> dict[str, tuple[History, History | None]]:
  """name -> (History, its full-information History or None) of every setting the config runs.

  "lomo" expands into one fold per candidate. A cold-start setting (newllm, a lomo fold) comes
  with the History that still holds its held-out models' training data (the standard setting),
  from which a quiz reveals answers (``stages.quiz_settings``). Query texts are what the routers
  read (``config.data.query_format``). With ``config.datasets`` every dataset present runs every
  setting, named ``<dataset>@<setting>`` (``dataset_configs``).
  """
  out = {}
  for prefix, data in dataset_configs(config, log):
    for name, pair in _dataset_histories(config, data, log).items():
      out[prefix + name] = pair
  return out


def dataset_configs(config, log: Log) -> list[tuple[str, object]]:
  """(setting-name prefix, data config) of each dataset a run reads: ``config.data`` alone, or
  every dataset of ``config.datasets`` / ``config.data.tables`` whose files are present."""
  if not config.datasets and not config.data.tables:
    return [("", config.data)]
  out = []
  for name in (*config.datasets, *config.data.tables):
    data = config.data.copy_and_resolve_references()
    with data.unlocked():
      if name in ("routeprofile", "routerbench", "synthetic"):
        data.source = name
      else:
        data.source, data.table = "generic", str(name)
    present = dataset_present(data)
    if not present:
      log(f"dataset {name}: not present here (no data folder / file); skipped")
      continue
    out.append((f"{pathlib.Path(str(name)).name.split('.')[0]}{DATASET_SEP}", data))
  return out


def dataset_present(data) -> bool:
  """Whether a data config's files are here (routerbench: RP_JAX_ROUTERBENCH / data_dir)."""
  if data.source == "synthetic":
    return True
  if data.source == "routeprofile":
    return bool(data.data_dir) and pathlib.Path(data.data_dir).is_dir()
  if data.source == "routerbench":
    folder = resolve_dir(data.data_dir)
    return bool(folder) and pathlib.Path(folder).is_dir()
  return pathlib.Path(data.table).is_file()


def _dataset_histories(config, data, log: Log) -> dict[str, tuple[History, History | None]]:
  out = {}
  fmt = config.data.query_format
  load = lambda s: stages.router_history(load_history(data, s), fmt)
  full = None
  for setting in config.settings:
    log(f"[{setting}] loading data ({data.source})")
    if setting == "lomo":
      full = full or load("standard")
      for fold in leave_one_out(full):
        out[fold.setting] = (fold, full)
    elif setting == "newllm":
      out[setting] = (load(setting), None)
      if config.quiz.methods:
        full = full or load("standard")
        out[setting] = (out[setting][0], full)
    else:
      out[setting] = (load(setting), None)
      full = out[setting][0] if setting == "standard" else full
  return out


def expand_quizzes(config, histories: dict, embed) -> dict[str, History]:
  """Every setting's History; with ``config.quiz.methods`` a cold-start setting is replaced by
  its quiz settings (``stages.quiz_settings``)."""
  out = {}
  for name, (history, full) in histories.items():
    history = history if history.setting == name else history.replace(setting=name)
    if config.quiz.methods and full is not None and len(history.held_out):
      out.update({h.setting: h for h in stages.quiz_settings(config, history, full, embed)})
    else:
      out[name] = history
  return out


def num_router_runs(config, routers) -> int:
  """(router, inputs) pairs a setting trains: same-space families (sim) read the prompt only."""
  return sum(1 for inputs in config.router_inputs for r in routers if _takes(r, inputs))


def _takes(router: str, inputs: str) -> bool:
  return not (registry.family(router).same_space and inputs != "prompt")


def run_setting(rn: Run, ctx: stages.SettingContext) -> results.SettingResult:
  """Baselines, profiles, router grids and their evaluation for one setting."""
  t0 = time.perf_counter()
  rn.log(ctx.history.summary())
  b_rows, b_perf = stages.baseline_rows(ctx)
  rn.timed(f"{ctx.name}/data", t0)
  res = results.SettingResult(ctx.history, ctx.test, [], {}, {}, {}, list(ctx.specs))
  if ctx.config.baselines:
    res.rows += b_rows
    res.baselines, res.baseline_rows = dict(ctx.baselines), b_perf
  if ctx.cost is not None:
    res.cost.add(*stages.baseline_cost_rows(ctx))
  if ctx.specs and ctx.config.routers:
    pset = setting_profiles(rn, ctx)
    for inputs in ctx.config.router_inputs:
      rin = stages.router_inputs(ctx, pset, inputs)
      for router in setting_routers(ctx.config, ctx.name):
        if not _takes(router, inputs):
          rn.log(f"[{ctx.name}] router {router}: compares queries with profiles; no {inputs}")
          continue
        res.add(router_stage(rn, ctx, rin, router))
  return res


def setting_profiles(rn: Run, ctx: stages.SettingContext) -> ProfileSet:
  """The setting's profiles (stage-cached), also written to ``profiles/<setting>/``."""
  t0 = time.perf_counter()
  name = f"{ctx.name}-profiles"
  st = rn.cache.load(name, "profiles")
  if st is None:
    rn.log(f"[{ctx.name}] profiles: {len(ctx.specs)} configurations x {len(ctx.seeds)} seeds")
    pset = stages.profiles(ctx, rn.log)
    arrays = {"profile_SxZxMxD": pset.profile_SxZxMxD, "per_seed": pset.per_seed}
    rn.cache.save(name, "profiles", arrays)
  else:
    pset = ProfileSet(list(ctx.specs), st["profile_SxZxMxD"], st["per_seed"], {}, {}, {})
  if distributed.is_writer():
    stages.write_profiles(rn.workdir / "profiles" / ctx.name, ctx, pset)
  rn.timed(f"{ctx.name}/profiles", t0)
  return pset


def router_stage(
  rn: Run, ctx: stages.SettingContext, rin: stages.RouterInputs, router: str
) -> results.GridRows:
  """One router's grid for one input mode (stage-cached), evaluated."""
  t0 = time.perf_counter()
  name = f"{ctx.name}-router-{router}" + ("" if rin.inputs == "prompt" else f"-{rin.inputs}")
  st = rn.cache.load(name, f"router:{router}")
  if st is None:
    rn.log(
      f"[{ctx.name}] router {router} ({rin.inputs}): training {len(ctx.specs)} profiles x "
      f"{len(stages.cell_grid(ctx, router, rin.inputs)) // len(ctx.specs)} hyperparameter "
      f"settings x {len(ctx.seeds)} seeds in one call"
    )
    st = stages.router_grid(ctx, router, rin, rn.log)
    rn.cache.save(name, f"router:{router}", st)
  seconds = rn.timed(f"{ctx.name}/{rin.inputs}/{router}", t0)
  out = stages.grid_rows(ctx, rin, router, st)
  rn.progress.add(len(ctx.specs) * len(ctx.seeds))
  rn.log(
    f"[{ctx.name}] router {router} ({rin.inputs}): done in {seconds:.1f} s; best cell "
    f"{max(r['avg_performance'] for r in out.rows):.4f}; {rn.progress.status()}"
  )
  return out


def run_profiles(config, workdir, log: Log = logging.info) -> dict[str, ProfileSet]:
  """Builds the config's profile grid for each setting into ``workdir/profiles/<setting>/``."""
  validate_config(config)
  _, embed = stages.make_embed(config)
  out = {}
  for setting in config.settings:
    t0 = time.perf_counter()
    ctx = stages.make_context(config, load_history(config.data, setting), embed)
    pset = stages.profiles(ctx, log)
    folder = pathlib.Path(workdir) / "profiles" / setting
    stages.write_profiles(folder, ctx, pset)
    log(
      f"[{setting}] {len(ctx.specs)} profiles -> {folder} in {time.perf_counter() - t0:.1f} s "
      f"({', '.join(f'{k} {v:.2f}s' for k, v in pset.seconds.items())})"
    )
    out[setting] = pset
  return out
