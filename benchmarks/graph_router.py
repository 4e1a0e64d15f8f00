"""Where a GraphRouter cell's time goes: its pieces timed alone, on the public data.

One GraphRouter cell (standard setting, hashing query embeddings of the raw queries, a random
index profile, the paper's settings: batch 32, hidden 256, 4 heads, 2 layers) is taken apart and
each piece is compiled and timed on its own, in the same run:

  - one epoch of optimiser steps (forward + backward + AdamW/clip, ``lax.scan`` over the epoch's
    batches), and the same scan with the update removed (forward + backward only) and with the
    model removed (the update alone on a gradient of the parameters' shape: the optimiser floor);
  - one validation (the full graph: every non-validation training query attends over the models);
  - whole cells through ``grid.train_cell`` with validation after every epoch (the paper's
    selection) and after every ``--val_every``-th epoch.

It prints seconds per step and per epoch, the share of a cell spent validating, the cell's time
against the sum of its pieces (the loop's own overhead), and the speed-up of the validation
schedule.

  python benchmarks/graph_router.py [--epochs 10] [--val_every 10] [--data_dir DIR]

Data: ``--data_dir`` or $RP_JAX_DATA (default ../shared/data/routeprofile).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rp_jax import train as tr  # noqa: E402
from rp_jax.data.routeprofile import load_routeprofile  # noqa: E402
from rp_jax.profiles.index import index_profiles  # noqa: E402
from rp_jax.routers import grid, registry  # noqa: E402
from rp_jax.routers.data import make_router_data  # noqa: E402
from rp_jax.text import make_encoder  # noqa: E402


def block(tree):
  return jax.tree.map(
    lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree
  )


def best_of(fn, *args, repeats=3):
  """(output, best wall seconds) of ``repeats`` calls after one warm-up (compile) call."""
  out = block(fn(*args))
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    out = block(fn(*args))
    best = min(best, time.perf_counter() - t)
  return out, best


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--data_dir", default=None)
  ap.add_argument("--epochs", type=int, default=10)
  ap.add_argument("--val_every", type=int, default=10)
  args = ap.parse_args()
  data_dir = (
    args.data_dir
    or os.environ.get("RP_JAX_DATA")
    or str(REPO.parent / "shared" / "data" / "routeprofile")
  )
  history = load_routeprofile(data_dir, "standard")
  query_QxD = make_encoder("hashing").encode(list(history.query_texts))
  data = make_router_data(history, np.asarray(query_QxD, np.float32))
  prof_AxD = np.asarray(index_profiles(jax.random.key(0), history.num_models, data.dim))
  prof_AxD = jnp.asarray(prof_AxD[np.asarray(data.candidates_A)])
  cfg = grid.resolve_config("graph", registry.make_config("graph", epochs=args.epochs), data)
  hp = {k: jnp.float32(v) for k, v in registry.hparams("graph").items()}
  fns = registry.family("graph").make(cfg, data)
  pieces, loop = fns.pieces, fns.loop
  keys = tr.run_keys(jax.random.key(0), loop)
  split = pieces.split(keys.split)
  params = pieces.init(keys.init, prof_AxD)
  n_params = sum(x.size for x in jax.tree.leaves(params))
  tx = tr.make_optimizer(loop, hp)
  opt_state = tx.init(params)
  batches = pieces.batches(keys.batches_I[0], split)
  drop_keys = keys.dropout_IxB[0]
  print(
    f"GraphRouter cell: {n_params:,} parameters, {loop.num_batches} steps per epoch "
    f"(batch {cfg.batch_size}), {int(split.val_idx.shape[0])} validation queries, "
    f"{int(split.train_idx.shape[0])} graph query nodes; jax {jax.__version__} on "
    f"{jax.devices()[0].platform}"
  )

  @jax.jit
  def epoch_full(params, opt_state):
    def step(carry, xs):
      batch, k = xs
      carry, (loss, _, _) = tr.gradient_step(pieces.loss, tx, *carry, prof_AxD, batch, k, hp, split)
      return carry, loss

    return jax.lax.scan(step, (params, opt_state), (batches, drop_keys))

  @jax.jit
  def epoch_grad_only(params):
    def step(acc, xs):
      batch, k = xs
      (loss, _), g = jax.value_and_grad(pieces.loss, has_aux=True)(
        params, prof_AxD, batch, k, hp, split
      )
      return jax.tree.map(jnp.add, acc, g), loss

    zeros = jax.tree.map(jnp.zeros_like, params)
    return jax.lax.scan(step, zeros, (batches, drop_keys))

  @jax.jit
  def epoch_update_only(params, opt_state):
    def step(carry, g_scale):
      p, s = carry
      g = jax.tree.map(lambda x: x * g_scale, p)
      u, s = tx.update(g, s, p)
      return (jax.tree.map(jnp.add, p, u), s), None

    scales = jnp.linspace(1e-3, 2e-3, loop.num_batches)
    return jax.lax.scan(step, (params, opt_state), scales)

  validate = jax.jit(lambda p: pieces.validate(p, prof_AxD, split, hp))

  _, t_full = best_of(epoch_full, params, opt_state)
  _, t_grad = best_of(epoch_grad_only, params)
  _, t_upd = best_of(epoch_update_only, params, opt_state)
  _, t_val = best_of(validate, params)
  nb = loop.num_batches
  print(f"  one epoch of steps:      {t_full:.3f} s ({1e3 * t_full / nb:.2f} ms per step)")
  print(f"    forward + backward:    {t_grad:.3f} s ({1e3 * t_grad / nb:.2f} ms per step)")
  print(f"    update alone (floor):  {t_upd:.3f} s ({1e3 * t_upd / nb:.2f} ms per step)")
  print(f"  one validation:          {t_val:.3f} s ({t_val / t_full:.0%} of an epoch's steps)")

  cells = {}
  for every in (1, args.val_every):
    c = grid.resolve_config(
      "graph", registry.make_config("graph", epochs=args.epochs, val_every=every), data
    )
    f = lambda c=c: grid.train_cell("graph", c, data, np.asarray(prof_AxD), 0, return_state=False)
    _, cells[every] = best_of(f, repeats=2)
  pieces_sum = args.epochs * (t_full + t_val)
  print(
    f"  cell, {args.epochs} epochs, validation every epoch: {cells[1]:.2f} s "
    f"(pieces: {pieces_sum:.2f} s; loop overhead {cells[1] / pieces_sum - 1:+.0%}); "
    f"validation is {args.epochs * t_val / cells[1]:.0%} of the cell"
  )
  e = args.val_every
  print(
    f"  cell, validation every {e} epochs: {cells[e]:.2f} s "
    f"({cells[1] / cells[e]:.2f}x faster than every epoch)"
  )
  print(
    f"  floor (update alone x steps): {args.epochs * t_upd:.2f} s; cell / floor: "
    f"{cells[e] / (args.epochs * t_upd):.1f}x; cell / (steps with their model compute): "
    f"{cells[e] / (args.epochs * t_full):.2f}x"
  )


if __name__ == "__main__":
  main()
