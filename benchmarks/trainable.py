"""Benchmark: trainable (HAN) profiles, one program per depth vs the traced-depth program.

On the real standard graph (form TQD, 768-d hash768-v1 node features, the default
``TrainableConfig``: hidden 256, 4 heads, max_depth 4, 100 steps), for each depth 1..max_depth
and R seeds (one vmapped call of R trainings each), times in the same process

1. static depth (what ``trainable_grid`` runs): one compiled program per depth that computes
   only that depth's layers;
2. traced depth (the previous ``trainable_grid``): one compiled program for every depth, in
   which every training runs all max_depth layers (those beyond its depth as the identity),

and prints compile time, seconds per training, the traced / static ratio per depth, and
whether the two give bitwise the same profiles and loss curves.

Usage (from the repository root)::

  RP_JAX_DATA=../shared/data/routeprofile python benchmarks/trainable.py            # full
  RP_JAX_DATA=../shared/data/routeprofile python benchmarks/trainable.py --steps 5  # quick

A machine without the data files can run it from prepared inputs (the graph's arrays and the
encoded node features, no raw data)::

  python benchmarks/trainable.py --save-inputs /tmp/trainable_inputs.npz    # where data is
  python benchmarks/trainable.py --inputs /tmp/trainable_inputs.npz         # anywhere

Measured (2026-12-01, this repository's 2-core CPU shared with other jobs, load average 3.3-4.1
during the run, jax 0.10.2; full settings, 2 seeds per call), seconds per training:

  depth   static (compile)   traced   traced / static   bitwise equal
  1       16.7 (11.4 s)      30.1     1.80x             yes
  2       17.6 (17.0 s)      25.1     1.43x             yes
  3       23.1 (24.0 s)      29.3     1.27x             yes
  4       30.8 (22.0 s)      32.1     1.04x             yes

traced: one compile, 14.3 s. Depth 1 as a plain one-layer network: 9.7 s per training (it
differs from the traced numbers at float32 rounding, see ``HANEncoder``). Under this load the
numbers move by ~20% between runs; the traced program costs the same at every depth.

An earlier version of this script compared the vmapped grid with a Python loop over the cells
(one H200, 20 cells, 100 steps: 2.00 s vs 5.67 s run; git history).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax.graphs import Graph, build_graph, relation_mask
from rp_jax.profiles import trainable as T

REPO = pathlib.Path(__file__).resolve().parents[1]


def prepare(data_dir: str) -> tuple[Graph, tuple[int, ...], np.ndarray, str]:
  """(graph, type_counts, x_NxD, feature name) of the real standard setting."""
  from rp_jax.data import load_routeprofile

  graph, info = build_graph(load_routeprofile(data_dir, "standard"))
  try:
    from rp_jax.text import make_encoder

    enc = make_encoder("hashing")
    x, name = enc.encode(list(info.node_texts)), enc.name
  except ImportError:  # no text encoder yet: random features of a fixed seed
    x = np.random.default_rng(0).normal(size=(info.num_nodes, 768)).astype(np.float32)
    x, name = x / np.linalg.norm(x, axis=1, keepdims=True), "random-normal-768"
  return graph, info.type_counts, np.asarray(x, np.float32), name


def save_inputs(path: str, graph: Graph, type_counts, x, name) -> None:
  arrays = {f"graph_{k}": np.asarray(v) for k, v in graph._asdict().items()}
  np.savez_compressed(path, x=x, type_counts=np.asarray(type_counts), name=name, **arrays)


def load_inputs(path: str) -> tuple[Graph, tuple[int, ...], np.ndarray, str]:
  with np.load(path) as z:
    graph = Graph(**{k: z[f"graph_{k}"] for k in Graph._fields})
    return graph, tuple(int(c) for c in z["type_counts"]), z["x"], str(z["name"])


def timed(fn, *args, **kwargs):
  t = time.perf_counter()
  out = jax.block_until_ready(fn(*args, **kwargs))
  return out, time.perf_counter() - t


def load() -> str:
  return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument(
    "--data", default=os.environ.get("RP_JAX_DATA", str(REPO.parent / "shared/data/routeprofile"))
  )
  p.add_argument("--inputs", help="prepared inputs (.npz from --save-inputs) instead of --data")
  p.add_argument("--save-inputs", help="write prepared inputs to this .npz and exit")
  p.add_argument("--steps", type=int, default=T.TrainableConfig().steps)
  p.add_argument("--seeds", type=int, default=2, help="trainings per call (R)")
  p.add_argument("--max-depth", type=int, default=4)
  p.add_argument("--form", default="TQD")
  p.add_argument("--attention", default="dense", choices=T.ATTENTIONS)
  a = p.parse_args()

  if a.inputs:
    graph, tc, x, feat = load_inputs(a.inputs)
  else:
    graph, tc, x, feat = prepare(a.data)
  if a.save_inputs:
    save_inputs(a.save_inputs, graph, tc, x, feat)
    print(f"wrote {a.save_inputs}")
    return

  config = dataclasses.replace(
    T.TrainableConfig(), steps=a.steps, max_depth=a.max_depth, attention=a.attention
  )
  depths = range(1, a.max_depth + 1)
  R = a.seeds
  seeds = jnp.arange(R, dtype=jnp.uint32)
  mask = jnp.asarray(relation_mask(a.form))
  struct = T.graph_structure(graph, tc, edges=a.attention == "edges")
  xj = jnp.asarray(x)
  fn = T.grid_function()
  kw = dict(config=config, type_counts=tc)
  print(
    f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}; "
    f"{os.cpu_count()} CPUs, {load()}\n"
    f"graph: {sum(tc)} nodes {tc}, {len(graph.senders_E)} edges; features {feat} {x.shape}; "
    f"form {a.form}\nconfig: {config}\n"
    f"each call: {R} trainings (seeds) x {a.steps} steps, vmapped"
  )

  depth_R = lambda d: jnp.full((R,), d, jnp.int32)
  t = time.perf_counter()
  traced = fn.lower(struct, xj, mask, seeds, depth_R(1), **kw).compile()
  compile_traced = time.perf_counter() - t
  print(f"traced depth: one program for every depth, compile {compile_traced:.1f} s")
  head = "depth  static compile  static s/training  traced s/training  traced/static  identical"
  print(head)
  rows = []
  for d in depths:
    t = time.perf_counter()
    static = fn.lower(struct, xj, mask, seeds, depth=d, **kw).compile()
    c_s = time.perf_counter() - t
    out_t, r_t = timed(traced, struct, xj, mask, seeds, depth_R(d))
    out_s, r_s = timed(static, struct, xj, mask, seeds)
    same = all(
      np.array_equal(u, v)
      for u, v in zip(jax.tree.leaves(out_t), jax.tree.leaves(out_s), strict=True)
    )
    diff = float(np.abs(np.asarray(out_t[0]) - np.asarray(out_s[0])).max())
    rows.append((c_s, r_s, r_t))
    print(
      f"{d:5d}  {c_s:12.1f} s  {r_s / R:15.2f} s  {r_t / R:15.2f} s  {r_t / r_s:12.2f}x  "
      f"{'yes' if same else f'no (max |profile diff| {diff:.1e})'}",
      flush=True,
    )
  # The price of bitwise equality at depth 1 (see HANEncoder): a max_depth=1 network has no
  # second layer to run (different parameters: timing only).
  one = dataclasses.replace(config, max_depth=1)
  t = time.perf_counter()
  inline = fn.lower(struct, xj, mask, seeds, depth=1, config=one, type_counts=tc).compile()
  c_1 = time.perf_counter() - t
  _, r_1 = timed(inline, struct, xj, mask, seeds)
  print(
    f"depth 1 as a one-layer network (max_depth=1, inlined loop): compile {c_1:.1f} s, "
    f"{r_1 / R:.2f} s per training (the depth-1 row takes {rows[0][1] / r_1:.2f}x as long)"
  )
  c_s, r_s, r_t = (sum(col) for col in zip(*rows, strict=True))
  print(
    f"all depths: static {len(rows)} compiles {c_s:.1f} s + run {r_s:.1f} s; traced 1 compile "
    f"{compile_traced:.1f} s + run {r_t:.1f} s; run time traced / static {r_t / r_s:.2f}x, "
    f"total {(compile_traced + r_t) / (c_s + r_s):.2f}x\n{load()}"
  )


if __name__ == "__main__":
  main()
