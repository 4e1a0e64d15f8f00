"""The CPU floor of a router training: one AdamW + clip update over the routers' parameter count.

A faithful MLPRouter cell is ~2,300 steps and a GraphRouter cell ~2,900, each over ~1.05M
parameters; this times the optimiser update alone (no model), 1,000 steps in one ``lax.scan``,
and prints the implied minimum seconds per router cell and for the paper grid's ~400 router
trainings. It is the arithmetic behind docs/speed.md, "The paper grid".

  python benchmarks/optimizer_floor.py [--params 1050000] [--steps 1000]

Measured on the shared 2-core CPU machine (jax 0.10.2): 1.30 ms per step idle, 1.34 ms beside a
niced sweep.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--params", type=int, default=1_050_000)
  ap.add_argument("--steps", type=int, default=1000)
  args = ap.parse_args()
  params = {"w": jnp.ones((args.params,), jnp.float32)}
  opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-4, weight_decay=1e-4))

  def step(carry, _):
    p, s = carry
    g = jax.tree.map(lambda x: x * 1e-3 + 0.1, p)  # a cheap stand-in gradient
    u, s = opt.update(g, s, p)
    return (optax.apply_updates(p, u), s), None

  run = jax.jit(lambda p, s: jax.lax.scan(step, (p, s), None, length=args.steps)[0])
  state = opt.init(params)
  jax.block_until_ready(run(params, state))  # compile
  t0 = time.perf_counter()
  jax.block_until_ready(run(params, state))
  ms = (time.perf_counter() - t0) / args.steps * 1e3
  print(f"{jax.devices()[0].platform}: {ms:.3f} ms per optimiser step over {args.params:,} params")
  print(
    f"floor per cell: MLP (2,280 steps) {2280 * ms / 1e3:.1f} s, Graph (2,900 steps) "
    f"{2900 * ms / 1e3:.1f} s; 400 router trainings >= {400 * 2600 * ms / 6e4:.0f} min"
  )


if __name__ == "__main__":
  main()
