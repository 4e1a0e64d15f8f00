"""index profiles: one random vector per model, the no-information baseline (SPEC §2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def index_profiles(key: jax.Array, num_models: int, dim: int) -> jax.Array:
  """[M, D] float32 N(0, I) vectors from a fixed key (not normalised, as in the reference)."""
  return jax.random.normal(key, (num_models, dim), jnp.float32)
