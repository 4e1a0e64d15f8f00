"""SimRouter: route each query to the candidate whose profile is most cosine-similar (SPEC §2).

Training-free. It only makes sense when the query embeddings and the profiles come from the same
encoder (the same embedding space): a hashing-encoded query against hashing-encoded model texts,
say. Random ``index`` profiles give an arbitrary but fixed choice.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rp_jax import ops
from rp_jax.routers.base import Family, RouterFns


@dataclasses.dataclass(frozen=True)
class SimConfig:
  """SimRouter has no settings."""


def check_dims(query_dim: int, profile_dim: int) -> None:
  """Raises ValueError unless queries and profiles have the same embedding dimension."""
  if int(query_dim) != int(profile_dim):
    raise ValueError(
      "SimRouter compares queries with profiles by cosine similarity, so the query encoder and "
      "the profile must share an embedding space; got query embeddings of dim "
      f"{int(query_dim)} and profiles of dim {int(profile_dim)}"
    )


def cosine_scores(query_QxD: jax.Array, profile_AxD: jax.Array) -> jax.Array:
  """[Q, A] cosine similarity (a zero vector scores 0 against everything)."""
  check_dims(query_QxD.shape[-1], profile_AxD.shape[-1])
  eps = 1e-12
  q = query_QxD / jnp.maximum(jnp.linalg.norm(query_QxD, axis=-1, keepdims=True), eps)
  p = profile_AxD / jnp.maximum(jnp.linalg.norm(profile_AxD, axis=-1, keepdims=True), eps)
  return jnp.matmul(q, p.T, precision=ops.PRECISION)


def make(config: SimConfig, data) -> RouterFns:
  """The (training-free) pure functions of the SimRouter: no pieces, an empty state."""
  del config, data
  return RouterFns(pieces=None, loop=None, state=lambda params, profile_AxD, split, hparams: {})


def score(config: SimConfig, state, profile_AxD, query_QxD, hparams) -> jax.Array:
  """[Q, A] cosine scores."""
  del config, state, hparams
  return cosine_scores(query_QxD, profile_AxD)


FAMILY = Family("sim", SimConfig, {}, make, score, trainable=False, seed_free=True, same_space=True)
