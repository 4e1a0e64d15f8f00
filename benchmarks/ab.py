"""A/B timing on a noisy machine: two versions of a command, interleaved, with a bootstrap ratio.

This machine's speed swings by up to 2x between hours, so two versions are only compared when
their runs alternate (A, B, A, B, ...) in one session. Each side is a git commit (checked out
into a temporary worktree) or the working tree, optionally with its own extra arguments; every
run gets fresh caches (its own ``RP_JAX_CACHE`` and an empty workdir, no persistent XLA cache).
It prints each side's wall times, the ratio of the medians B/A with a 95% bootstrap interval
(resampling each side's runs), and whether the two sides' outputs are byte-identical.

  # the MLP stage of the paper's Table 1 grid, old commit vs the working tree, 3 runs each:
  python benchmarks/ab.py --a=b854980 --b=WORKTREE --runs=3 -- \
      python -m launch.sweep --config=configs/table1.py:router=mlp --workdir={workdir}
  # two configs of one version:
  python benchmarks/ab.py --b_args="--config.grid=vmap" --runs=2 -- \
      python -m launch.sweep --config=configs/test.py --workdir={workdir}

``{workdir}`` in the command is replaced by a fresh folder per run; files named by ``--compare``
(default results.csv) are compared between the sides' first runs. ``--stage=KEY`` also reports a
stage's time from each run's ``timings.json`` (e.g. ``standard/prompt/mlp``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
WORKTREE = "WORKTREE"


def checkout(rev: str, root: pathlib.Path) -> pathlib.Path:
  """The folder to run a side in: the repository itself, or a temporary worktree of ``rev``."""
  if rev == WORKTREE:
    return REPO
  path = root / f"tree-{rev[:12]}"
  subprocess.run(
    ["git", "worktree", "add", "--detach", str(path), rev],
    cwd=REPO,
    check=True,
    capture_output=True,
  )
  return path


def run_once(tree: pathlib.Path, command: list[str], root: pathlib.Path, tag: str) -> dict:
  """One run in ``tree`` with fresh caches; its wall seconds and its workdir."""
  workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=root))
  cache = pathlib.Path(tempfile.mkdtemp(prefix=f"cache-{tag}-", dir=root))
  cmd = [c.replace("{workdir}", str(workdir)) for c in command]
  env = {**os.environ, "RP_JAX_CACHE": str(cache), "PYTHONPATH": str(tree)}
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  t0 = time.perf_counter()
  done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
  seconds = time.perf_counter() - t0
  if done.returncode != 0:
    sys.exit(f"{tag}: the command failed ({done.returncode}):\n{done.stderr[-3000:]}")
  shutil.rmtree(cache, ignore_errors=True)
  return {"seconds": seconds, "workdir": workdir}


def bootstrap_ratio(a: np.ndarray, b: np.ndarray, num: int = 10000, seed: int = 0):
  """(median(b) / median(a), 2.5% and 97.5% percentiles over resamples of each side)."""
  rng = np.random.default_rng(seed)
  ra = np.median(rng.choice(a, (num, len(a))), axis=1)
  rb = np.median(rng.choice(b, (num, len(b))), axis=1)
  lo, hi = np.percentile(rb / ra, [2.5, 97.5])
  return float(np.median(b) / np.median(a)), float(lo), float(hi)


def stage_seconds(workdir: pathlib.Path, key: str) -> float:
  """A stage's seconds from a run's timings.json (NaN when absent)."""
  p = workdir / "timings.json"
  return float(json.loads(p.read_text()).get(key, np.nan)) if p.is_file() else float("nan")


def same_outputs(a: pathlib.Path, b: pathlib.Path, names: list[str]) -> dict[str, bool | None]:
  """File name -> byte-identical in both workdirs (None when missing on a side)."""
  out = {}
  for n in names:
    pa, pb = a / n, b / n
    out[n] = pa.read_bytes() == pb.read_bytes() if pa.is_file() and pb.is_file() else None
  return out


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--a", default=WORKTREE, help="side A: a git revision or WORKTREE")
  ap.add_argument("--b", default=WORKTREE, help="side B: a git revision or WORKTREE")
  ap.add_argument("--a_args", default="", help="extra arguments appended to side A's command")
  ap.add_argument("--b_args", default="", help="extra arguments appended to side B's command")
  ap.add_argument("--runs", type=int, default=3, help="runs per side, interleaved A, B, A, B")
  ap.add_argument("--compare", default="results.csv", help="comma-separated output files")
  ap.add_argument("--stage", default="", help="a timings.json key to report too")
  ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command ({workdir})")
  args = ap.parse_args(argv)
  command = [c for c in args.command if c != "--"]
  if not command:
    ap.error("give the command after --")
  root = pathlib.Path(tempfile.mkdtemp(prefix="rp_jax_ab-"))
  sides = {
    "A": (checkout(args.a, root), command + shlex.split(args.a_args)),
    "B": (checkout(args.b, root), command + shlex.split(args.b_args)),
  }
  runs = {"A": [], "B": []}
  for i in range(args.runs):
    for side, (tree, cmd) in sides.items():
      r = run_once(tree, cmd, root, f"{side}{i}")
      runs[side].append(r)
      stage = (
        f", {args.stage} {stage_seconds(r['workdir'], args.stage):.1f} s" if args.stage else ""
      )
      print(f"run {i + 1} {side}: {r['seconds']:.1f} s{stage}", flush=True)
  a = np.asarray([r["seconds"] for r in runs["A"]])
  b = np.asarray([r["seconds"] for r in runs["B"]])
  print(f"A ({args.a} {args.a_args}): " + " ".join(f"{x:.1f}" for x in a) + " s")
  print(f"B ({args.b} {args.b_args}): " + " ".join(f"{x:.1f}" for x in b) + " s")
  ratio, lo, hi = bootstrap_ratio(a, b)
  print(f"B / A (medians): {ratio:.3f} [95% bootstrap {lo:.3f}, {hi:.3f}]")
  if args.stage:
    sa = np.asarray([stage_seconds(r["workdir"], args.stage) for r in runs["A"]])
    sb = np.asarray([stage_seconds(r["workdir"], args.stage) for r in runs["B"]])
    if np.isfinite(sa).all() and np.isfinite(sb).all():
      r2, lo2, hi2 = bootstrap_ratio(sa, sb)
      print(
        f"{args.stage}: A {np.median(sa):.1f} s, B {np.median(sb):.1f} s, "
        f"B / A {r2:.3f} [{lo2:.3f}, {hi2:.3f}]"
      )
  same = same_outputs(runs["A"][0]["workdir"], runs["B"][0]["workdir"], args.compare.split(","))
  for name, eq in same.items():
    print(f"{name}: " + {True: "identical", False: "DIFFERENT", None: "missing on a side"}[eq])
  for side, rev in (("A", args.a), ("B", args.b)):
    if rev != WORKTREE:
      subprocess.run(["git", "worktree", "remove", "--force", str(sides[side][0])], cwd=REPO)
  shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  main()
