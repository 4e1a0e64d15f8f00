"""How much of a sweep is compilation, cold and with the persistent compilation cache warm.

Runs one sweep config twice in fresh subprocesses, each into a fresh workdir, sharing one fresh
JAX persistent compilation cache (``RP_JAX_CACHE``): the first run compiles every program, the
second reads them back. For each run it prints the wall time and the ``compile.json`` the sweep
writes (seconds tracing, lowering, and in XLA's compile or its cache read; programs compiled;
programs read from the persistent cache), the compile share of the wall time, and whether both
runs wrote the same ``results.csv``.

  python benchmarks/compile_share.py [--config configs/quickstart.py] [--override=--config.x=y]

Data: the config's own (the synthetic default needs none; real-data configs read $RP_JAX_DATA).
The embedding cache is per run (fresh), so both runs encode their texts.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_once(config: str, overrides: list[str], xla_cache: pathlib.Path, root: pathlib.Path):
  """(wall seconds, compile.json, results.csv bytes) of one sweep in a fresh subprocess."""
  workdir = root / f"run{len(list(root.glob('run*')))}"
  env = dict(os.environ, RP_JAX_CACHE=str(xla_cache))
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  cmd = [sys.executable, "-m", "launch.sweep", f"--config={config}", f"--workdir={workdir}"]
  t = time.perf_counter()
  proc = subprocess.run([*cmd, *overrides], cwd=REPO, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - t
  if proc.returncode:
    sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
  compiled = json.loads((workdir / "compile.json").read_text())
  return wall, compiled, (workdir / "results.csv").read_bytes()


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--config", default="configs/quickstart.py")
  ap.add_argument("--override", action="append", default=[], help="a --config.x=y flag")
  args = ap.parse_args()
  with tempfile.TemporaryDirectory(prefix="rp_jax_compile_") as tmp:
    root = pathlib.Path(tmp)
    xla_cache = root / "cache"  # fresh: the first run compiles everything
    runs = [run_once(args.config, args.override, xla_cache, root) for _ in range(2)]
  print(f"config: {args.config} {' '.join(args.override)}")
  for name, (wall, c, _) in zip(("cold cache", "warm cache"), runs, strict=True):
    print(
      f"{name}: process wall {wall:.1f} s; sweep {c['wall_s']:.1f} s, of which compilation "
      f"{c['total_s']:.1f} s ({100 * c['share']:.0f}%: trace {c['trace_s']:.1f} s, lower "
      f"{c['lower_s']:.1f} s, XLA compile or cache read {c['backend_s']:.1f} s); "
      f"{c['programs']} programs, {c['cache_hits']} read from the persistent cache"
    )
  same = runs[0][2] == runs[1][2]
  print(
    f"results.csv identical: {same}; warm / cold sweep wall: "
    f"{runs[1][1]['wall_s'] / runs[0][1]['wall_s']:.2f}"
  )


if __name__ == "__main__":
  main()
