"""End-to-end sweep on configs/test.py: outputs, determinism, resume, sharding, the launcher."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pandas as pd
import pytest

from configs import test as test_config
from rp_jax import results, sweep
from rp_jax.data import load_history
from rp_jax.graphs import FORMS

REPO = pathlib.Path(__file__).resolve().parents[1]

NUM_PROFILES = 6
NUM_SEEDS = 2


def _config(**overrides):
  c = test_config.get_config()
  for k, v in overrides.items():
    obj = c
    *path, last = k.split(".")
    for p in path:
      obj = obj[p]
    obj[last] = v
  return c


def test_quick_end_to_end_run(tmp_path):
  """The fast tier's end-to-end run: configs/test.py cut to one setting and two routers; every
  output written, and each cell's avg performance the mean of its rows in rows.npz."""
  kw = {"settings": ("standard",), "routers": ("knn", "mlp"), "profiles": ("index", "flat:TQD")}
  frame = sweep.run(_config(**kw), tmp_path, log=lambda s: None)
  for name in ("config.json", "results.csv", "rows.npz", "summary.md", "quality.csv"):
    assert (tmp_path / name).is_file(), name
  assert (tmp_path / "figures" / "cost_quality_standard.png").stat().st_size > 1000
  cells = frame[frame["router"].isin(["knn", "mlp"])]
  assert len(cells) == 2 * 2 * NUM_SEEDS
  rows = np.load(tmp_path / "rows.npz")
  for r in cells.itertuples():
    key = results.CellKey.of(r._asdict()).id()
    assert r.avg_performance == pytest.approx(rows[key][r.seed].mean(), abs=1e-6)
  compiled = json.loads((tmp_path / "compile.json").read_text())
  assert compiled["programs"] > 0 and 0 < compiled["total_s"] <= compiled["wall_s"]
  assert compiled["total_s"] == pytest.approx(
    compiled["trace_s"] + compiled["lower_s"] + compiled["backend_s"]
  )


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sweep_a")
  logs = []
  frame = sweep.run(_config(), workdir, log=logs.append)
  return workdir, frame, logs


@pytest.mark.slow
def test_outputs_columns_and_rows(first_run):
  workdir, frame, _ = first_run
  for name in ("config.json", "results.csv", "rows.npz", "summary.md", "timings.json"):
    assert (workdir / name).is_file(), name
  calib = pd.read_csv(workdir / "calibration.csv")
  assert list(calib.columns) == [
    "setting",
    "name",
    "split",
    "bin",
    "count",
    "mean_pred",
    "mean_obs",
  ]
  assert set(calib["split"]) == {"val", "test"} and (calib["count"] >= 0).all()
  for fig in (
    "hops_standard.png",
    "coldstart_newllm.png",
    "selection_standard.png",
    "cost_quality_standard.png",
    "reliability_standard.png",
  ):
    assert (workdir / "figures" / fig).stat().st_size > 1000, fig
  index = pd.read_csv(workdir / "profiles" / "standard" / "index.csv")
  assert len(index) == NUM_PROFILES - 1 + NUM_SEEDS  # trainable is saved once per seed
  csv = pd.read_csv(workdir / "results.csv", keep_default_na=False)
  assert list(csv.columns[: len(results.RESULT_COLUMNS)]) == list(results.RESULT_COLUMNS)
  assert any(c.startswith("perf/") for c in csv.columns)
  cells = csv[csv["router"].isin(["sim", "mlp", "graph"])]
  assert len(cells) == 2 * NUM_PROFILES * 3 * NUM_SEEDS  # settings x profiles x routers x seeds
  assert set(cells["setting"]) == {"standard", "newllm"}
  assert set(cells["profile"]) == {"index", "flat", "emb_gnn", "text_gnn", "trainable"}
  assert set(cells["graph"]) <= set(FORMS) | {""}
  assert set(cells["learn"]) == {"tf", "tr"}
  assert set(cells.loc[cells["profile"] == "emb_gnn", "norm"]) == {"sym"}
  assert set(cells.loc[cells["profile"].isin(["index", "flat"]), "hops"].astype(str)) == {"0"}
  baselines = csv[~csv["router"].isin(["sim", "mlp", "graph"])]
  assert {"random", "best_single", "oracle_query", "oracle_task"} <= set(baselines["router"])
  # Every cell's avg performance is the mean of its seed's per-row performance in rows.npz, and
  # those rows are outcomes of the test set (each row equals one candidate's outcome).
  rows = np.load(workdir / "rows.npz")
  for setting in ("standard", "newllm"):
    history = load_history(_config().data, setting)
    perf_QxA = history.outcomes_QxM[np.ix_(history.test_queries, history.candidates)]
    c = cells[cells["setting"] == setting]
    for r in c.itertuples():
      key = results.CellKey.of(r._asdict() | {"setting": setting}).id()
      per_row = rows[key][r.seed]
      assert per_row.shape == (len(perf_QxA),)
      assert (per_row[:, None] == perf_QxA).any(1).all(), key
      assert r.avg_performance == pytest.approx(per_row.mean(), abs=1e-6), key
    # A constant baseline's row is the mean outcome of its candidate on the test rows.
    b = baselines[baselines["setting"] == setting].set_index("router")["avg_performance"]
    for a, name in enumerate(history.candidate_names):
      assert b[f"const/{name}"] == pytest.approx(float(perf_QxA[:, a].mean()), abs=1e-6)
  summary = (workdir / "summary.md").read_text()
  assert "Table 1" in summary and "Baselines" in summary and "claims" in summary
  # Synthetic data is not the paper's: no paper values beside our cells.
  assert "no paper values" in summary
  table1 = summary.split("### Table 1")[1].split("###")[0]
  assert "(0." not in table1, table1


@pytest.mark.slow
def test_rerun_skips_every_stage_and_gives_identical_results(first_run):
  workdir, _, _ = first_run
  before = (workdir / "results.csv").read_bytes()
  logs = []
  sweep.run(_config(), workdir, log=logs.append)
  skipped = [line for line in logs if "skipped" in line]
  # Per setting: the profiles stage and one stage per router.
  assert len(skipped) == 2 * (1 + len(_config().routers)), logs
  assert (workdir / "results.csv").read_bytes() == before


@pytest.mark.slow
def test_same_seeds_same_results_in_a_fresh_workdir(first_run, tmp_path):
  workdir, _, _ = first_run
  sweep.run(_config(), tmp_path, log=lambda s: None)
  assert (tmp_path / "results.csv").read_bytes() == (workdir / "results.csv").read_bytes()
  a, b = np.load(workdir / "rows.npz"), np.load(tmp_path / "rows.npz")
  assert sorted(a.files) == sorted(b.files)
  for k in a.files:
    np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.slow
def test_sharded_equals_unsharded(tmp_path):
  assert len(jax.devices()) == 4  # tests/conftest.py asks XLA for 4 fake CPU devices
  kw = {"settings": ("standard",), "figures": False}
  a = sweep.run(_config(shard=True, **kw), tmp_path / "sharded", log=lambda s: None)
  b = sweep.run(_config(shard=False, **kw), tmp_path / "single", log=lambda s: None)
  pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_launcher_killed_midway_then_resumed(first_run, tmp_path):
  workdir = tmp_path / "run"
  cmd = [
    sys.executable,
    "-m",
    "launch.sweep",
    "--config=configs/test.py",
    f"--workdir={workdir}",
    "--config.settings=('standard',)",
    "--config.figures=False",
  ]
  env = {**os.environ, "PYTHONUNBUFFERED": "1"}
  proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  marker = workdir / "stages" / "standard-router-sim.npz"
  deadline = time.time() + 240
  while not marker.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.2)
  assert marker.exists(), (
    proc.stdout.read().decode()[-3000:] if proc.poll() is not None else "timeout"
  )
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (workdir / "results.csv").exists()  # killed before the end: no partial outputs
  leftovers = [p for p in workdir.rglob("*.tmp")]
  for p in leftovers:  # a temp file may survive a SIGKILL; it is never read
    p.unlink()
  done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  log = done.stdout + done.stderr
  assert "stage standard-profiles: done in an earlier run" in log
  assert "stage standard-router-sim: done in an earlier run" in log
  # The launcher asked XLA for deterministic GPU ops before JAX started (a no-op on CPU).
  record = json.loads((workdir / "config.json").read_text())
  assert "--xla_gpu_deterministic_ops=true" in record["xla_flags"]
  assert record["runtime"].startswith("cpu: ")
  assert f"Ran on {record['runtime']}." in (workdir / "summary.md").read_text()
  # Same numbers as the in-process run of both settings, restricted to the standard setting.
  ref = pd.read_csv(first_run[0] / "results.csv", keep_default_na=False)
  got = pd.read_csv(workdir / "results.csv", keep_default_na=False)
  ref = ref[ref["setting"] == "standard"].reset_index(drop=True)
  pd.testing.assert_frame_equal(got, ref[got.columns.tolist()])
