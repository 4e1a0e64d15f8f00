"""Compiled entry points: train and score S profiles x R seeds of a router family in one call.

  data = make_router_data(history, query_emb_QxD)
  res = train_grid("mlp", MLPConfig(), data, profile_SxMxD, seeds_R=[0, 1, 2, 3, 4])
  res.choices_SxRxQ  # candidate positions chosen for data.test_q_QxD

``train_grid`` runs ``jax.jit(jax.vmap(jax.vmap(cell, (None, 0, None)), (0, None, None)))``: the
profile axis outside, the seed axis inside, hyperparameters shared and traced (a new learning
rate does not recompile). A cell trains with ``rp_jax.train.make_train`` and the family's pieces,
builds the family's state and routes the test queries with the family's ``score`` — the same
function ``scores`` / ``route`` (and so ``rp_jax.deploy``) apply to new queries.

``chunk_size`` maps over the profile axis in chunks (``jax.lax.map(..., batch_size=chunk)``) to
bound memory; ``sequential`` trains the cells one by one inside the compiled call (the fastest on
a CPU, where the memory-bound step does not gain from batching); ``shard`` splits the profile axis
over all visible devices. Profiles may be given over the whole pool (``[S, M, D]``; the candidate
rows are sliced here, once, outside the compiled function), over the candidates (``[S, A, D]``),
or per seed (``[S, R, A, D]``, e.g. trainable profiles; then the seed axis is vmapped jointly).
Training-free families (sim) are applied once per profile and broadcast over seeds.

``rp_jax.tracing.TRACES["router_grid"]`` (and ``"router_cell"``, ``"router_scores"``) count
compilations (tests assert one compile per grid).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rp_jax import tracing
from rp_jax import train as tr
from rp_jax.routers import registry
from rp_jax.routers.data import RouterData


class GridResult(NamedTuple):
  """Outputs of ``train_grid`` (numpy).

  Attributes:
    choices_SxRxQ: [S, R, Q_test] int32 chosen candidate per test query.
    train_loss_SxRxE: [S, R, E] mean training loss per epoch (E = 0 for training-free routers).
    val_score_SxRxE: [S, R, E] validation score per epoch (pair accuracy for mlp, mean label of
      the pick for graph); NaN without validation queries.
    best_epoch_SxR: [S, R] epoch whose parameters were kept.
    state: the family's state (parameters, ...) with leading [S, R] axes, or None unless
      requested.
  """

  choices_SxRxQ: np.ndarray
  train_loss_SxRxE: np.ndarray
  val_score_SxRxE: np.ndarray
  best_epoch_SxR: np.ndarray
  state: Any = None


def resolve_config(router: str, config, data: RouterData):
  """The config with data-dependent static settings fixed on the host (see ``Family.resolve``)."""
  return registry.family(router).resolve(registry.check_config(router, config), data)


def make_cell(router: str, config, data: RouterData, return_state: bool):
  """``(profile_AxD, key, hparams) -> dict``: train one cell, keep its state, route the test rows.

  The dict holds ``choices`` [Q_test], ``train_loss`` [E], ``val_score`` [E], ``best_epoch`` and,
  with ``return_state``, ``state``.
  """
  fam = registry.family(router)
  fns = fam.make(config, data)
  train = tr.make_train(fns.pieces, fns.loop)

  def cell(profile_AxD, key, hparams):
    params, metrics = train(profile_AxD, key, hparams)
    split = fns.pieces.split(tr.run_keys(key, fns.loop).split)
    state = fns.state(params, profile_AxD, split, hparams)
    scores_QxA = fam.score(config, state, profile_AxD, jnp.asarray(data.test_q_QxD), hparams)
    out = {
      "choices": jnp.argmax(scores_QxA, axis=-1).astype(jnp.int32),
      "train_loss": metrics["train_loss"],
      "val_score": metrics["val_score"],
      "best_epoch": metrics["best_epoch"],
    }
    if return_state:
      out["state"] = state
    return out

  return cell


@functools.partial(
  jax.jit,
  static_argnames=("router", "config", "per_seed", "chunk_size", "sequential", "return_state"),
)
def _trained_grid(
  router, config, data, profile, keys_R, hparams, *, per_seed, chunk_size, return_state, sequential
):
  tracing.count("router_grid")
  cell = make_cell(router, config, data, return_state)
  if sequential:
    # One cell at a time inside the compiled call (lax.map over profiles, then seeds): the
    # per-cell program of train_cell, without Python dispatch between cells.
    def seeds_of(profile_xAxD):
      if per_seed:
        return jax.lax.map(lambda pk: cell(pk[0], pk[1], hparams), (profile_xAxD, keys_R))
      return jax.lax.map(lambda k: cell(profile_xAxD, k, hparams), keys_R)

    return jax.lax.map(seeds_of, profile)
  over_seeds = jax.vmap(cell, (0 if per_seed else None, 0, None))

  def one_profile(profile_xAxD):
    return over_seeds(profile_xAxD, keys_R, hparams)

  if chunk_size:
    return jax.lax.map(one_profile, profile, batch_size=chunk_size)
  return jax.vmap(one_profile)(profile)


@functools.partial(jax.jit, static_argnames=("router", "config", "per_seed", "num_seeds"))
def _free_grid(router, config, data, profile, hparams, *, per_seed, num_seeds):
  """Choices of a training-free family: once per profile, broadcast over the seeds."""
  tracing.count("router_grid")
  fam = registry.family(router)
  state = fam.make(config, data).state(None, None, None, hparams)
  test_q = jnp.asarray(data.test_q_QxD)

  def route_one(p):
    scores_QxA = fam.score(config, state, p, test_q, hparams)
    return jnp.argmax(scores_QxA, axis=-1).astype(jnp.int32)

  if per_seed:
    return jax.vmap(jax.vmap(route_one))(profile)
  choices_SxQ = jax.vmap(route_one)(profile)
  return jnp.broadcast_to(choices_SxQ[:, None], (profile.shape[0], num_seeds, data.num_test))


def candidate_profiles(profile: np.ndarray, data: RouterData, model_axis: int) -> np.ndarray:
  """The candidate rows of profiles given over the pool (or unchanged if already [.., A, D])."""
  n = profile.shape[model_axis]
  if n == data.num_candidates:
    return profile
  if n > int(np.max(data.candidates_A)):
    return np.take(profile, data.candidates_A, axis=model_axis)
  raise ValueError(
    f"profiles have {n} model rows; expected the {data.num_candidates} candidates or the whole "
    f"pool (> {int(np.max(data.candidates_A))} rows)"
  )


def seed_keys(seeds_R: Sequence[int]) -> jax.Array:
  """[R] PRNG keys ``jax.random.key(seed)``."""
  return jax.vmap(jax.random.key)(jnp.asarray(np.asarray(seeds_R, np.uint32)))


def shard_profiles(profile: np.ndarray) -> jax.Array:
  """The profile axis padded to a multiple of the device count and sharded over the devices.

  Padding repeats the last profile; callers cut the outputs back to the original S.
  """
  devices = jax.devices()
  pad = (-profile.shape[0]) % len(devices)
  if pad:
    profile = np.concatenate([profile, np.repeat(profile[-1:], pad, axis=0)])
  mesh = Mesh(np.asarray(devices), ("sweep",))
  return jax.device_put(profile, NamedSharding(mesh, P("sweep")))


def _check_space(router: str, data: RouterData, profile_dim: int) -> None:
  if registry.family(router).same_space and int(data.dim) != int(profile_dim):
    raise ValueError(
      f"router {router!r} compares queries with profiles directly (cosine similarity), so the "
      "query encoder and the profile must share an embedding space; got query embeddings of "
      f"dim {int(data.dim)} and profiles of dim {int(profile_dim)}"
    )


def train_grid(
  router: str,
  config,
  data: RouterData,
  profile: np.ndarray,
  seeds_R: Sequence[int],
  hparams: Mapping[str, float] | None = None,
  *,
  chunk_size: int = 0,
  sequential: bool = False,
  shard: bool = False,
  return_state: bool = False,
) -> GridResult:
  """Trains (or, for training-free families, applies) a router on S profiles x R seeds at once.

  Args:
    router: a registry name ("sim", "mlp", "graph").
    config: the family's static config (None: defaults).
    data: RouterData of the setting.
    profile: [S, M, D] over the pool, [S, A, D] over the candidates, or [S, R, A, D] per seed.
    seeds_R: R integer seeds (initialisation, validation split, shuffling, dropout).
    hparams: traced hyperparameters (defaults from the registry).
    chunk_size: > 0 maps over the profile axis in chunks of this size (bounds memory).
    sequential: train the cells one after another inside the compiled call (no vmap). On a CPU
      this is the fastest per cell: the training step is memory-bound, and vmapping multiplies
      the working set (parameters and Adam moments, ~21 MB per MLPRouter cell) beyond the cache.
    shard: split the profile axis over all visible devices (ignored with chunking or
      ``sequential``).
    return_state: also return the kept state (leading [S, R] axes).

  Returns:
    GridResult (numpy).
  """
  fam = registry.family(router)
  config = resolve_config(router, config, data)
  hp = registry.hparams(router, hparams)
  profile = np.asarray(profile, np.float32)
  if profile.ndim not in (3, 4):
    raise ValueError(f"profile: expected [S, M|A, D] or [S, R, A, D]; got shape {profile.shape}")
  per_seed = profile.ndim == 4
  num_seeds = len(seeds_R)
  if num_seeds < 1:
    raise ValueError("seeds_R: expected at least one seed")
  if per_seed and profile.shape[1] != num_seeds:
    raise ValueError(f"per-seed profiles have {profile.shape[1]} seeds; got {num_seeds} seeds_R")
  _check_space(router, data, profile.shape[-1])
  profile = candidate_profiles(profile, data, profile.ndim - 2)
  num_profiles = profile.shape[0]
  prof = profile
  if shard and not chunk_size and not sequential and len(jax.devices()) > 1:
    prof = shard_profiles(profile)
  if not fam.trainable:
    choices = _free_grid(router, config, data, prof, hp, per_seed=per_seed, num_seeds=num_seeds)
    empty = np.zeros((num_profiles, num_seeds, 0), np.float32)
    return GridResult(
      np.asarray(choices)[:num_profiles],
      empty,
      empty,
      np.zeros((num_profiles, num_seeds), np.int32),
      {} if return_state else None,
    )
  out = _trained_grid(
    router,
    config,
    data,
    prof,
    seed_keys(seeds_R),
    hp,
    per_seed=per_seed,
    chunk_size=int(chunk_size),
    sequential=bool(sequential),
    return_state=return_state,
  )
  out = jax.tree.map(lambda x: np.asarray(x)[:num_profiles], out)
  return GridResult(
    choices_SxRxQ=out["choices"],
    train_loss_SxRxE=out["train_loss"],
    val_score_SxRxE=out["val_score"],
    best_epoch_SxR=out["best_epoch"],
    state=out.get("state"),
  )


@functools.partial(jax.jit, static_argnames=("router", "config", "return_state"))
def _cell(router, config, data, profile_AxD, key, hparams, *, return_state):
  tracing.count("router_cell")
  return make_cell(router, config, data, return_state)(profile_AxD, key, hparams)


def train_cell(
  router: str,
  config,
  data: RouterData,
  profile_AxD: np.ndarray,
  seed: int,
  hparams: Mapping[str, float] | None = None,
  *,
  return_state: bool = True,
) -> dict[str, Any]:
  """One (profile, seed) cell of ``train_grid`` as its own jitted call (same computation).

  Returns:
    dict with ``choices`` [Q_test], and for trained families ``train_loss`` [E], ``val_score``
    [E], ``best_epoch``; ``state`` if requested (jax arrays; block on them to time the call).
  """
  fam = registry.family(router)
  config = resolve_config(router, config, data)
  hp = registry.hparams(router, hparams)
  profile_AxD = candidate_profiles(np.asarray(profile_AxD, np.float32), data, 0)
  _check_space(router, data, profile_AxD.shape[-1])
  if not fam.trainable:
    state = fam.make(config, data).state(None, None, None, hp)
    out = {"choices": route(router, config, state, profile_AxD, data.test_q_QxD, hp)}
    return {**out, "state": state} if return_state else out
  return _cell(
    router, config, data, profile_AxD, jax.random.key(seed), hp, return_state=return_state
  )


@functools.partial(jax.jit, static_argnames=("router", "config"))
def _scores(router, config, state, profile_AxD, query_QxD, hparams):
  tracing.count("router_scores")
  return registry.family(router).score(config, state, profile_AxD, query_QxD, hparams)


def scores(
  router: str,
  config,
  state,
  profile_AxD: np.ndarray,
  query_QxD: np.ndarray,
  hparams: Mapping[str, float] | None = None,
) -> jax.Array:
  """[Q, A] scores of a trained router (its ``state``) for new queries (jitted).

  The same family ``score`` function the grid evaluates test rows with, so a deployed router
  scores exactly like the evaluated one.
  """
  config = registry.check_config(router, config)
  profile_AxD = jnp.asarray(profile_AxD, jnp.float32)
  query_QxD = jnp.asarray(query_QxD, jnp.float32)
  if registry.family(router).same_space and query_QxD.shape[-1] != profile_AxD.shape[-1]:
    raise ValueError(
      f"router {router!r} compares queries with profiles directly, so they must share an "
      f"embedding space; got query embeddings of dim {query_QxD.shape[-1]} and profiles of dim "
      f"{profile_AxD.shape[-1]}"
    )
  hp = registry.hparams(router, hparams)
  return _scores(router, config, state, profile_AxD, query_QxD, hp)


def route(router, config, state, profile_AxD, query_QxD, hparams=None) -> jax.Array:
  """[Q] int32 chosen candidate (argmax of ``scores``; ties -> the lowest candidate index)."""
  s = scores(router, config, state, profile_AxD, query_QxD, hparams)
  return jnp.argmax(s, axis=-1).astype(jnp.int32)
