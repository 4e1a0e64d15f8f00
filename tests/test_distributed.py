"""Sweeps over several processes: two launchers on 127.0.0.1 (gloo) against one process."""

import os
import pathlib
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from configs import test as test_config
from rp_jax import distributed, sweep

# Two processes under jax.distributed: .ci/run's slow tier.
pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]

# A small grid that still covers what the processes share: 3 profiles (padded to the 4 global
# devices), a training-free router (sim) and a trained one (mlp), 2 seeds, baselines.
OVERRIDES = {
  "settings": ("standard",),
  "figures": False,
  "routers": ("sim", "mlp"),
  "profiles": ("index", "flat:TQD", "emb_gnn:TQD:1"),
}
TIMEOUT_S = 240  # per launch of the two processes; a normal run takes well under a minute


def _flags(values: dict) -> list[str]:
  return [f"--config.{k}={v!r}" for k, v in values.items()]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(devices_per_process: int) -> dict[str, str]:
  """The parent's environment with its XLA flags (so the compiled programs match the in-process
  reference) but ``devices_per_process`` fake CPU devices, and no cluster variables."""
  flags = [
    f
    for f in os.environ.get("XLA_FLAGS", "").split()
    if not f.startswith("--xla_force_host_platform_device_count")
  ]
  flags.append(f"--xla_force_host_platform_device_count={devices_per_process}")
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COORDINATOR")}
  env.update(XLA_FLAGS=" ".join(flags), JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  return env


def _launch_two(workdirs: list[pathlib.Path], logdir: pathlib.Path) -> list[str]:
  """Runs ``launch.sweep`` as processes 0 and 1 of one job; returns their logs (both exit 0)."""
  address = f"127.0.0.1:{_free_port()}"
  procs, logs = [], []
  try:
    for i, workdir in enumerate(workdirs):
      cmd = [
        sys.executable,
        "-m",
        "launch.sweep",
        "--config=configs/test.py",
        f"--workdir={workdir}",
        *_flags(OVERRIDES),
        f"--coordinator_address={address}",
        "--num_processes=2",
        f"--process_id={i}",
      ]
      log = open(logdir / f"process{i}.log", "w+b")  # noqa: SIM115 (closed in finally)
      logs.append(log)
      procs.append(subprocess.Popen(cmd, cwd=REPO, env=_env(2), stdout=log, stderr=log))
    deadline = time.time() + TIMEOUT_S
    while any(p.poll() is None for p in procs) and time.time() < deadline:
      time.sleep(0.2)
    texts = []
    for log in logs:
      log.seek(0)
      texts.append(log.read().decode(errors="replace"))
    for i, p in enumerate(procs):
      assert p.returncode is not None, f"process {i} still running after {TIMEOUT_S} s"
      assert p.returncode == 0, f"process {i} exited {p.returncode}:\n{texts[i][-4000:]}"
    return texts
  finally:
    for p in procs:  # a failed or hung process must not outlive the test
      if p.poll() is None:
        p.kill()
        p.wait()
    for log in logs:
      log.close()


def test_two_processes_equal_one_and_only_process_0_writes(tmp_path):
  assert len(jax.devices()) == 4  # tests/conftest.py: the reference sees 4 fake devices too
  # Separate workdirs make any write by process 1 visible (as on hosts without a shared disk).
  w0, w1 = tmp_path / "process0", tmp_path / "process1"
  t0 = time.perf_counter()
  logs = _launch_two([w0, w1], tmp_path)
  seconds = time.perf_counter() - t0
  assert not w1.exists(), sorted(str(p) for p in w1.rglob("*"))
  for name in ("config.json", "results.csv", "rows.npz", "summary.md", "timings.json"):
    assert (w0 / name).is_file(), name
  assert '"cpu: 4 x cpu in 2 processes' in (w0 / "config.json").read_text()
  assert all("router mlp (prompt): done" in log for log in logs)

  # One process over the same 4 devices (2 x 2 above) with the same XLA flags: every cell runs
  # the same per-device program on the same inputs, and CPU kernels are deterministic, so the
  # results are byte-identical, not merely close.
  config = test_config.get_config()
  for k, v in OVERRIDES.items():
    config[k] = v
  sweep.run(config, tmp_path / "reference", log=lambda s: None)
  ref = tmp_path / "reference"
  assert (w0 / "results.csv").read_bytes() == (ref / "results.csv").read_bytes()
  a, b = np.load(w0 / "rows.npz"), np.load(ref / "rows.npz")
  assert sorted(a.files) == sorted(b.files)
  for k in a.files:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)

  # A rerun on a shared workdir: every process finds every stage, so all skip them together.
  before = (w0 / "results.csv").read_bytes()
  logs = _launch_two([w0, w0], tmp_path)
  for log in logs:
    skipped = [line for line in log.splitlines() if "done in an earlier run" in line]
    assert len(skipped) == 3, log[-3000:]  # profiles, sim, mlp
  assert (w0 / "results.csv").read_bytes() == before
  print(f"two processes: {seconds:.0f} s")


def test_single_process_helpers_are_the_identity(monkeypatch):
  monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
  assert distributed.initialize() is False  # nothing asked: nothing initialised
  assert distributed.initialize(num_processes=1) is False
  assert distributed.is_writer()
  assert distributed.all_agree(True) and not distributed.all_agree(False)
  x_SxD = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
  sharding = NamedSharding(Mesh(np.asarray(jax.devices()), ("sweep",)), P("sweep"))
  g = distributed.global_array(x_SxD, sharding)
  assert g.sharding == sharding and len(g.addressable_shards) == len(jax.devices())
  np.testing.assert_array_equal(distributed.to_numpy(g * 2), x_SxD * 2)
