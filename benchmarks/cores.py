"""One XLA host device per core vs XLA's intra-op threads, for the router stages on a CPU.

Runs the same sweep in fresh subprocesses, once per device count N (``--devices 1,2``): with
N = 1 the cells run one after another in one compiled call (``grid="auto"`` on a single CPU
device) and XLA spreads each cell's ops over its intra-op threads; with N > 1 the launch exposes
N host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``) and the sweep vmaps the
cells and shards them over the devices (``config.shard``, on by default). It prints each run's
wall time per stage (``timings.json``), the ratio to the one-device run, the CPU time / wall of the
whole process, and whether ``results.csv`` is byte-identical (and, if not, the largest difference
of ``avg_performance``).

  python benchmarks/cores.py [--config configs/table1.py:router=mlp] [--devices 1,2]
                             [--override=--config.seeds=2 ...]

Data: $RP_JAX_DATA (default ../shared/data/routeprofile). Each run gets its own empty stage and
compile caches, so both pay compilation.

Measured (2026-12-03, this repository's 2-core CPU, idle; MLP router, index + flat profiles x 5
seeds = 10 cells, paper protocol):

  python benchmarks/cores.py "--override=--config.profiles=('index','flat:TQD')"
  1 device:  wall 53.7 s, MLP stage 45.0 s, CPU time / wall 1.82
  2 devices: wall 126.4 s (0.42x), MLP stage 118.0 s, CPU time / wall 1.88
  results.csv not byte-identical (vmapped vs sequential cells: max |Δ avg| 0.0036)

One device per core does not pay here: XLA's intra-op threads already keep both cores busy
(CPU time / wall 1.8), and the vmapped, sharded cells move 2 x the memory of one cell per step
(Adam on ~1M parameters is memory-bound). The launchers keep one host device on CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def run(config: str, devices: int, overrides: list[str], root: pathlib.Path) -> dict:
  """One sweep in a subprocess with ``devices`` host devices: wall, CPU time, timings, rows."""
  work, cache = root / f"dev{devices}", root / f"cache{devices}"
  env = dict(os.environ)
  env.setdefault("RP_JAX_DATA", str(REPO.parent / "shared" / "data" / "routeprofile"))
  flags = [f for f in env.get("XLA_FLAGS", "").split() if "host_platform_device_count" not in f]
  env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={devices}"])
  env["RP_JAX_CACHE"] = str(cache)
  env["JAX_COMPILATION_CACHE_DIR"] = str(cache / "xla")
  cmd = [
    sys.executable,
    "-m",
    "launch.sweep",
    f"--config={config}",
    f"--workdir={work}",
    "--config.figures=False",
    *overrides,
  ]
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  t0 = time.perf_counter()
  proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - t0
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if proc.returncode != 0:
    sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  timings = json.loads((work / "timings.json").read_text())
  rows = list(csv.DictReader((work / "results.csv").open()))
  return {
    "wall": wall,
    "cpu": cpu,
    "timings": timings,
    "rows": rows,
    "bytes": (work / "results.csv").read_bytes(),
  }


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--config", default="configs/table1.py:router=mlp")
  ap.add_argument("--devices", default="1,2")
  ap.add_argument("--override", action="append", default=[], help="extra launcher flag")
  args = ap.parse_args()
  counts = [int(x) for x in args.devices.split(",")]
  with tempfile.TemporaryDirectory() as tmp:
    res = {n: run(args.config, n, args.override, pathlib.Path(tmp)) for n in counts}
  base = res[counts[0]]
  stages = [k for k in base["timings"] if k != "total"]
  print(f"config {args.config} {' '.join(args.override)}")
  for n in counts:
    r = res[n]
    parts = ", ".join(f"{k} {r['timings'][k]:.1f}s" for k in stages if k in r["timings"])
    print(
      f"{n} device(s): wall {r['wall']:.1f} s ({base['wall'] / r['wall']:.2f}x the first), "
      f"CPU time / wall {r['cpu'] / r['wall']:.2f}; {parts}"
    )
    if n != counts[0]:
      same = r["bytes"] == base["bytes"]
      diff = max(
        (
          abs(float(a["avg_performance"]) - float(b["avg_performance"]))
          for a, b in zip(base["rows"], r["rows"], strict=True)
        ),
        default=0.0,
      )
      print(
        f"  results.csv byte-identical to {counts[0]} device(s): {same}; max |Δ avg| {diff:.4g}"
      )


if __name__ == "__main__":
  main()
