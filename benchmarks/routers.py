"""Router training speed (vmapped grid vs a Python loop) and a real-data sanity check.

Part 1, speed (MLPRouter, SPEC §5): S profiles x R seeds trained on the public RouteProfile data
(standard setting, hashing query embeddings, S random index profiles) in one compiled
``train_grid`` call, and, in the same run, the same S x R trainings one by one through the jitted
single-cell function (``grid.train_cell``) in a Python loop. Prints compile and run wall times of
both, the ratio loop / vmapped, and seconds per MLP cell; then seconds per GraphRouter cell (one
cell, and the same grid of cells vmapped when ``--graph_grid``).

Part 2, real-data check (``--check``): sim, mlp and graph on (a) the index profile (one N(0, I)
vector per model, seed 0) and (b) a simple text profile (the hashing embedding of each model's
text), 5 seeds each, with the selection histograms, beside the paper's Table 1 rows
(SPEC §4: Flat Index 0.499 / 0.593 / 0.532, Flat Text 0.554 / 0.613 / 0.539).

Commands (from the repository root)::

  # the full benchmark (a GPU is the intended device; hours on the 2-core CPU machine)
  python benchmarks/routers.py --check --graph_grid
  # a CPU-sized run: 2 profiles x 2 seeds (~8 min)
  python benchmarks/routers.py --profiles 2 --seeds 2 --sequential

Data: ``--data_dir`` or $RP_JAX_DATA (default ../shared/data/routeprofile). ``--json`` writes the
numbers to a file.

Measured (jax 0.11.2 on one H200, full run with ``--check --graph_grid``, ~3.5 min):
  MLPRouter 16 x 5: vmapped 3.20 s run (17.0 s compile) = 0.040 s per cell; loop of 80 jitted
  calls 14.03 s (9.8 s compile) = 0.175 s per cell; loop / vmapped = 4.4x (the vmapped step is
  bound by HBM traffic of 80 cells' parameters and Adam moments); choices equal on 98% of
  (cell, query) (82% with TF32 matmuls, hence Precision.HIGHEST in the routers).
  GraphRouter: 0.64 s per cell (single call), 0.078 s per cell in a 16 x 5 grid, 1.58 s per
  cell with ``--full_graph`` steps.
  Check (avg performance over 5 seeds; paper in brackets): sim index 0.556 (0.499), sim text
  0.548 (0.554); mlp index 0.629 ± 0.010 (0.593), mlp text 0.622 ± 0.008 (0.613); graph index
  0.605 ± 0.014 (0.532), graph text 0.580 ± 0.031 (0.539). Constant routers 0.476 .. 0.6125.
Measured (jax 0.10.2, the shared 2-core CPU machine under a load of ~3, ``--profiles 2 --seeds 2
--sequential``): MLPRouter 12-18 s per cell in a loop of jitted calls, ~23 s per cell vmapped
(the memory-bound step does not gain from batching, and 4 cells' parameters and moments exceed
the cache), 11.5 s per cell with ``sequential=True``; GraphRouter 35-45 s per cell.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rp_jax import metrics  # noqa: E402
from rp_jax.data.routeprofile import load_routeprofile  # noqa: E402
from rp_jax.profiles.index import index_profiles  # noqa: E402
from rp_jax.routers import grid, registry  # noqa: E402
from rp_jax.routers.data import make_router_data  # noqa: E402
from rp_jax.text import make_encoder  # noqa: E402

PAPER = {"index": (0.499, 0.593, 0.532), "text": (0.554, 0.613, 0.539)}


def default_data_dir() -> str:
  return os.environ.get("RP_JAX_DATA") or str(REPO.parent / "shared" / "data" / "routeprofile")


def block(tree):
  return jax.tree.map(
    lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree
  )


def timed(fn, *args, **kwargs):
  t = time.perf_counter()
  out = block(fn(*args, **kwargs))
  return out, time.perf_counter() - t


def speed(data, history, args, out: dict) -> None:
  """Vmapped grid vs loop for MLPRouter; seconds per GraphRouter cell."""
  S = args.profiles
  keys = jax.random.split(jax.random.key(1), S)
  prof_SxMxD = np.asarray(jax.vmap(lambda k: index_profiles(k, history.num_models, 768))(keys))
  prof_SxAxD = prof_SxMxD[:, data.candidates_A]
  grid_kw = {
    "per_seed": False,
    "chunk_size": args.chunk_size,
    "return_state": False,
    "sequential": False,
  }
  if not args.skip_mlp:
    speed_mlp(data, prof_SxAxD, args, out)
  speed_graph(data, prof_SxAxD, args, out, grid_kw)


def speed_mlp(data, prof_SxAxD, args, out: dict) -> None:
  """MLPRouter: one vmapped S x R call vs the same cells one by one."""
  S, R = args.profiles, args.seeds
  cfg = grid.resolve_config("mlp", registry.make_config("mlp", epochs=args.epochs), data)
  hp = registry.hparams("mlp")
  print(
    f"MLPRouter: {S} profiles x {R} seeds, {cfg.epochs} epochs, {cfg.queries_per_batch} queries "
    f"per batch ({data.num_train} training queries, {len(data.pairs_Px3)} pairs)"
  )

  # Vmapped grid: compile (lower + compile) apart from the run.
  grid_args = ("mlp", cfg, data, prof_SxAxD, grid.seed_keys(range(R)), hp)
  grid_kw = {
    "per_seed": False,
    "chunk_size": args.chunk_size,
    "return_state": False,
    "sequential": False,
  }
  lowered, t_lower = timed(grid._trained_grid.lower, *grid_args, **grid_kw)
  compiled, t_comp = timed(lowered.compile)
  res, t_grid = timed(compiled, *grid_args[2:])
  res2, t_grid2 = timed(compiled, *grid_args[2:])
  del res2
  print(f"  vmapped: compile {t_lower + t_comp:.1f} s; run {t_grid:.2f} s, again {t_grid2:.2f} s")
  out["mlp_grid_compile_s"] = t_lower + t_comp
  out["mlp_grid_run_s"] = min(t_grid, t_grid2)

  # Loop: the jitted single-cell function, compiled once, called S x R times.
  cell_args = lambda s, r: ("mlp", cfg, data, prof_SxAxD[s], jax.random.key(r), hp)
  lowered, t_lower = timed(grid._cell.lower, *cell_args(0, 0), return_state=False)
  compiled1, t_comp = timed(lowered.compile)
  t0 = time.perf_counter()
  loop_choices = np.zeros((S, R, data.num_test), np.int32)
  for s in range(S):
    for r in range(R):
      o = block(compiled1(*cell_args(s, r)[2:]))
      loop_choices[s, r] = np.asarray(o["choices"])
  t_loop = time.perf_counter() - t0
  same = float((loop_choices == np.asarray(res["choices"])).mean())
  print(f"  loop:    compile {t_lower + t_comp:.1f} s; run {t_loop:.2f} s ({S * R} calls)")
  print(
    f"  loop / vmapped = {t_loop / out['mlp_grid_run_s']:.2f}x; per MLP cell: loop "
    f"{t_loop / (S * R):.3f} s, vmapped {out['mlp_grid_run_s'] / (S * R):.3f} s; "
    f"choices equal on {same:.1%} of (cell, query)"
  )
  out.update(
    mlp_loop_compile_s=t_lower + t_comp,
    mlp_loop_run_s=t_loop,
    mlp_ratio_loop_over_vmapped=t_loop / out["mlp_grid_run_s"],
    mlp_s_per_cell_loop=t_loop / (S * R),
    mlp_s_per_cell_vmapped=out["mlp_grid_run_s"] / (S * R),
    mlp_choices_equal=same,
  )
  if args.sequential:
    seq_kw = {**grid_kw, "sequential": True}
    lowered, t_lower = timed(grid._trained_grid.lower, *grid_args, **seq_kw)
    compiled, t_comp = timed(lowered.compile)
    res_seq, t_seq = timed(compiled, *grid_args[2:])
    same = float((np.asarray(res_seq["choices"]) == loop_choices).mean())
    print(
      f"  sequential (one call, no vmap): compile {t_lower + t_comp:.1f} s; run {t_seq:.2f} s "
      f"({t_seq / (S * R):.3f} s per cell; choices equal to the loop's on {same:.1%})"
    )
    out.update(mlp_sequential_run_s=t_seq, mlp_s_per_cell_sequential=t_seq / (S * R))


def speed_graph(data, prof_SxAxD, args, out: dict, grid_kw: dict) -> None:
  """GraphRouter: seconds per cell (one call), and optionally a vmapped S x R grid."""
  S, R = args.profiles, args.seeds
  gcfg = grid.resolve_config(
    "graph",
    registry.make_config("graph", epochs=args.graph_epochs, full_graph=args.full_graph),
    data,
  )
  ghp = registry.hparams("graph")
  cell_args = ("graph", gcfg, data, prof_SxAxD[0], jax.random.key(0), ghp)
  lowered, t_lower = timed(grid._cell.lower, *cell_args, return_state=False)
  compiled, t_comp = timed(lowered.compile)
  _, t_g1 = timed(compiled, *cell_args[2:])
  _, t_g2 = timed(compiled, *cell_args[2:])
  t_g = min(t_g1, t_g2)
  print(
    f"GraphRouter ({gcfg.epochs} epochs, {'full graph' if gcfg.full_graph else 'subgraph'} "
    f"steps): compile {t_lower + t_comp:.1f} s; {t_g:.2f} s per cell (single call)"
  )
  out.update(graph_cell_compile_s=t_lower + t_comp, graph_s_per_cell=t_g)
  if args.graph_grid:
    g_args = ("graph", gcfg, data, prof_SxAxD, grid.seed_keys(range(R)), ghp)
    lowered, t_lower = timed(grid._trained_grid.lower, *g_args, **grid_kw)
    compiled, t_comp = timed(lowered.compile)
    _, t_gg = timed(compiled, *g_args[2:])
    print(
      f"  graph grid {S} x {R}: compile {t_lower + t_comp:.1f} s; run {t_gg:.2f} s "
      f"({t_gg / (S * R):.3f} s per cell)"
    )
    out.update(graph_grid_run_s=t_gg, graph_s_per_cell_vmapped=t_gg / (S * R))


def check(data, history, args, out: dict) -> None:
  """Avg performance and selection histograms of sim / mlp / graph on two simple profiles."""
  enc = make_encoder("hashing")
  index_MxD = np.asarray(index_profiles(jax.random.key(0), history.num_models, 768))
  text_MxD = enc.encode(list(history.model_texts))
  prof = np.stack([index_MxD, text_MxD])  # [2, M, D] over the pool
  test = metrics.TestSet.from_history(history)
  seeds = list(range(args.check_seeds))
  perf_A = test.perf_QxA.mean(0)
  print(
    "constant routers: "
    + ", ".join(f"{n} {p:.4f}" for n, p in zip(test.candidate_names, perf_A, strict=True))
  )
  evaluate = jax.jit(jax.vmap(metrics.evaluate, (0, None)))
  for router in ("sim", "mlp", "graph"):
    epochs = {"mlp": args.epochs, "graph": args.graph_epochs}.get(router)
    cfg = None if router == "sim" else registry.make_config(router, epochs=epochs)
    t = time.perf_counter()
    res = grid.train_grid(router, cfg, data, prof, seeds)
    dt = time.perf_counter() - t
    S, R, Q = res.choices_SxZxQ.shape
    sel = metrics.one_hot(jnp.asarray(res.choices_SxZxQ.reshape(S * R, Q)), test.num_candidates)
    m = jax.tree.map(np.asarray, evaluate(sel, test))
    avg = m["avg_performance"].reshape(S, R)
    hist = m["histogram"].reshape(S, R, -1)
    print(f"{router}: {S} profiles x {R} seeds in {dt:.1f} s (compile included)")
    for s, name in enumerate(("index", "text")):
      paper = PAPER[name][("sim", "mlp", "graph").index(router)]
      print(
        f"  {name:5s} avg perf {avg[s].mean():.4f} ± {avg[s].std():.4f} "
        f"(seeds: {', '.join(f'{x:.4f}' for x in avg[s])}); paper {paper:.3f}"
      )
      share = hist[s].mean(0)
      print(
        "        selection: "
        + ", ".join(
          f"{n.split('-')[0]}:{v:.2f}" for n, v in zip(test.candidate_names, share, strict=True)
        )
      )
      if router != "sim":
        print(
          f"        best epochs {res.best_epoch_SxZ[s].tolist()}, final train loss "
          f"{res.train_loss_SxZxI[s, :, -1].mean():.4f}, best val "
          f"{np.nanmax(res.val_score_SxZxI[s], 1).round(3).tolist()}"
        )
      out[f"check_{router}_{name}"] = {
        "avg": avg[s].tolist(),
        "histogram": share.tolist(),
        "seconds": dt,
      }


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", default=default_data_dir())
  p.add_argument("--profiles", type=int, default=16)
  p.add_argument("--seeds", type=int, default=5)
  p.add_argument("--epochs", type=int, default=20, help="MLPRouter epochs (speed and check)")
  p.add_argument("--graph_epochs", type=int, default=100, help="GraphRouter epochs")
  p.add_argument("--full_graph", action="store_true", help="GraphRouter full-graph steps")
  p.add_argument("--graph_grid", action="store_true", help="also time the graph grid")
  p.add_argument("--chunk_size", type=int, default=0)
  p.add_argument("--sequential", action="store_true", help="also time sequential=True (MLP)")
  p.add_argument("--check", action="store_true", help="real-data check (sim, mlp, graph)")
  p.add_argument("--check_seeds", type=int, default=5)
  p.add_argument("--skip_speed", action="store_true")
  p.add_argument("--skip_mlp", action="store_true", help="speed: GraphRouter only")
  p.add_argument("--json", default="")
  args = p.parse_args(argv)

  print(f"jax {jax.__version__}, devices {jax.devices()}")
  t = time.perf_counter()
  history = load_routeprofile(args.data_dir, "standard")
  query_QxD = make_encoder("hashing").encode(list(history.query_texts))
  data = make_router_data(history, query_QxD)
  print(f"data + hashing query embeddings: {time.perf_counter() - t:.1f} s")
  out: dict = {"device": str(jax.devices()[0]), "jax": jax.__version__, "args": vars(args)}
  save = lambda: args.json and pathlib.Path(args.json).write_text(json.dumps(out, indent=1))
  if args.check:
    check(data, history, args, out)
    save()
  if not args.skip_speed:
    speed(data, history, args, out)
    save()


if __name__ == "__main__":
  main()
