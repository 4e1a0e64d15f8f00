"""emb_gnn over the whole grid (5 forms x K 0..4 x 4 norms = 100 cells): one call vs a loop.

  RP_JAX_DATA=../shared/data/routeprofile python benchmarks/profiles.py [--setting standard]

Prints, from one run on the same inputs: compile and run time of ``emb_gnn_grid`` (one jitted
call for all 100 cells), of the same grid with a plain ``vmap`` of the single-configuration
function ``propagate.emb_gnn`` (no hop deduplication), and of a Python loop calling the jitted
single-configuration function 100 times; the ratios; and the largest difference between them.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp

from rp_jax import graphs, propagate
from rp_jax.data import load_routeprofile
from rp_jax.profiles import emb_gnn as emb_gnn_lib
from rp_jax.text import encode_cached, make_encoder


def timed(fn, *args, repeat=3):
  t0 = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  first = time.perf_counter() - t0
  runs = []
  for _ in range(repeat):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    runs.append(time.perf_counter() - t0)
  return out, first, min(runs)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument(
    "--data_dir", default=os.environ.get("RP_JAX_DATA", "../shared/data/routeprofile")
  )
  ap.add_argument("--setting", default="standard")
  args = ap.parse_args()
  history = load_routeprofile(args.data_dir, args.setting)
  graph, info = graphs.build_graph(history)
  x_NxD = encode_cached(make_encoder("hashing"), list(info.node_texts))
  blocks = graphs.relation_blocks(graph, info)
  cells = [(f, k, n, False) for f in graphs.FORMS for k in range(5) for n in graphs.NORMS]
  masks, hops, norms, loops = emb_gnn_lib.grid_arrays(cells)
  tc = info.type_counts
  print(
    f"{jax.devices()[0].platform}: {info.num_nodes} nodes, {len(graph.senders_E)} edges, "
    f"D={x_NxD.shape[1]}, {len(cells)} cells"
  )

  grid = lambda: emb_gnn_lib.emb_gnn_grid(blocks, x_NxD, masks, hops, norms, loops, type_counts=tc)
  p_grid, c_grid, r_grid = timed(grid)

  bj, xj = tuple(jnp.asarray(b) for b in blocks), jnp.asarray(x_NxD)
  vm = jax.jit(jax.vmap(lambda m, k, n, s: propagate.emb_gnn(bj, xj, m, k, n, s, type_counts=tc)))
  p_vm, c_vm, r_vm = timed(vm, masks, hops, norms, loops)

  one = jax.jit(lambda m, k, n, s: propagate.emb_gnn(bj, xj, m, k, n, s, type_counts=tc))
  loop = lambda: jnp.stack([one(masks[i], hops[i], norms[i], loops[i]) for i in range(len(cells))])
  p_loop, c_loop, r_loop = timed(loop)

  print(f"emb_gnn_grid (one call, hop dedup): compile+run {c_grid:.3f} s, run {r_grid:.4f} s")
  print(f"jit(vmap(emb_gnn)) (one call):      compile+run {c_vm:.3f} s, run {r_vm:.4f} s")
  print(f"Python loop of jitted emb_gnn:      compile+run {c_loop:.3f} s, run {r_loop:.4f} s")
  print(f"ratio loop / emb_gnn_grid: {r_loop / r_grid:.2f}x; loop / vmap: {r_loop / r_vm:.2f}x")
  # Relative to each cell's scale: the unnormalised ("none") cells reach 1e6 on this graph.
  scale = jnp.abs(p_loop).max(axis=(1, 2), keepdims=True)
  d = max(
    float((jnp.abs(p_grid - p_loop) / scale).max()), float((jnp.abs(p_vm - p_loop) / scale).max())
  )
  print(f"largest relative difference between the three: {d:.2e}")


if __name__ == "__main__":
  main()
