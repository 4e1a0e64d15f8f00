"""Benchmark: trainable (HAN) profiles for depth 1..4 x 5 seeds in one vmapped call vs a loop.

On the real standard graph (form TQD, 768-d hash768-v1 node features, the default
``TrainableConfig``: hidden 256, 4 heads, 100 steps), times

1. ``trainable_grid``: all depth x seed cells in one ``jit(vmap(...))`` call (compile, run);
2. a Python loop over the same cells calling one jitted single-configuration function
   (compile once, run every cell),

in the same process, and checks that both give the same profiles.

Usage (from the repository root)::

  RP_JAX_DATA=../shared/data/routeprofile python benchmarks/trainable.py            # full
  RP_JAX_DATA=../shared/data/routeprofile python benchmarks/trainable.py --steps 5  # quick

A machine without the data files can run it from prepared inputs (the graph's arrays and the
encoded node features, no raw data)::

  python benchmarks/trainable.py --save-inputs /tmp/trainable_inputs.npz    # where data is
  python benchmarks/trainable.py --inputs /tmp/trainable_inputs.npz         # anywhere

Measured (2026-11-27, 20 cells = depth 1..4 x 5 seeds, form TQD, 2121 nodes, 64242 edges):

- one NVIDIA H200, jax 0.11.2, 100 steps (full): vmapped compile 23.6 s, run 2.00 s
  (1.0 ms per cell-step); loop compile 18.6 s, run 5.67 s (2.8 ms per cell-step): the vmapped
  call runs 2.8x faster. Profiles agree to 2.2e-3 (TF32 matmuls); with
  ``JAX_DEFAULT_MATMUL_PRECISION=highest`` to 6.8e-5 (run 2.57 s vs 6.66 s, 2.6x).
- this 2-core CPU (shared, load 1-3.6), jax 0.10.2, ``--steps 10``: vmapped compile 25.8 s,
  run 156.7 s (0.78 s per cell-step); loop compile 34.3 s, run 157.8 s (1.01x); profiles agree
  to 1.4e-6. The full 100-step grid takes ~13-26 min here (0.4-0.8 s per cell-step).
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


def timed(fn, *args):
  t = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  return out, time.perf_counter() - t


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument(
    "--data", default=os.environ.get("RP_JAX_DATA", str(REPO.parent / "shared/data/routeprofile"))
  )
  p.add_argument("--inputs", help="prepared inputs (.npz from --save-inputs) instead of --data")
  p.add_argument("--save-inputs", help="write prepared inputs to this .npz and exit")
  p.add_argument("--steps", type=int, default=T.TrainableConfig().steps)
  p.add_argument("--seeds", type=int, default=5)
  p.add_argument("--max-depth", type=int, default=4)
  p.add_argument("--form", default="TQD")
  p.add_argument("--attention", default="dense", choices=T.ATTENTIONS)
  p.add_argument("--no-loop", action="store_true", help="skip the Python-loop comparison")
  p.add_argument("--repeat", type=int, default=1, help="timed runs of the vmapped call")
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
  depths = np.arange(1, a.max_depth + 1, dtype=np.int32)
  seeds = np.arange(a.seeds, dtype=np.uint32)
  cells = len(depths) * len(seeds)
  mask = jnp.asarray(relation_mask(a.form))
  struct = T.graph_structure(graph, tc, edges=a.attention == "edges")
  xj = jnp.asarray(x)
  print(
    f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}\n"
    f"graph: {sum(tc)} nodes {tc}, {len(graph.senders_E)} edges; features {feat} {x.shape}; "
    f"form {a.form}\nconfig: {config}\ngrid: depths {depths.tolist()} x {len(seeds)} seeds "
    f"= {cells} cells x {a.steps} steps"
  )

  # 1. One vmapped call.
  t = time.perf_counter()
  grid = (
    T.grid_function()
    .lower(struct, xj, mask, jnp.asarray(depths), jnp.asarray(seeds), config=config, type_counts=tc)
    .compile()
  )
  t_compile_v = time.perf_counter() - t
  runs = []
  for _ in range(a.repeat):
    (prof_v, log_v), dt = timed(grid, struct, xj, mask, jnp.asarray(depths), jnp.asarray(seeds))
    runs.append(dt)
  t_run_v = min(runs)
  loss = np.asarray(log_v.loss_K)
  print(
    f"vmapped : compile {t_compile_v:7.1f} s   run {t_run_v:8.2f} s "
    f"({1e3 * t_run_v / (cells * a.steps):7.2f} ms per cell-step; runs {[round(r, 2) for r in runs]})"
  )
  print(
    f"          loss first {loss[..., 0].mean():.4f} -> last {loss[..., -1].mean():.4f} "
    f"(mean over cells); finite: {bool(np.isfinite(prof_v).all())}"
  )
  if a.no_loop:
    return

  # 2. A Python loop over the same cells, one compiled single-configuration function.
  single = jax.jit(
    lambda s, x, m, d, k: T.trainable_profiles(s, x, m, d, k, config=config, type_counts=tc)
  )
  t = time.perf_counter()
  single_c = single.lower(struct, xj, mask, 1, jax.random.key(0)).compile()
  t_compile_l = time.perf_counter() - t
  t_run_l, diff, ldiff = 0.0, 0.0, 0.0
  for i, d in enumerate(depths):
    for j, s in enumerate(seeds):
      (prof, lc), dt = timed(single_c, struct, xj, mask, int(d), jax.random.key(int(s)))
      t_run_l += dt
      diff = max(diff, float(np.abs(np.asarray(prof) - np.asarray(prof_v[i, j])).max()))
      ldiff = max(ldiff, float(np.abs(np.asarray(lc) - loss[i, j]).max()))
  print(
    f"loop    : compile {t_compile_l:7.1f} s   run {t_run_l:8.2f} s "
    f"({1e3 * t_run_l / (cells * a.steps):7.2f} ms per cell-step)"
  )
  print(
    f"loop / vmapped run time: {t_run_l / t_run_v:.2f}x; total incl. compile: "
    f"{(t_compile_l + t_run_l) / (t_compile_v + t_run_v):.2f}x; max |profile diff| {diff:.2e}, "
    f"max |loss diff| {ldiff:.2e}"
  )


if __name__ == "__main__":
  main()
