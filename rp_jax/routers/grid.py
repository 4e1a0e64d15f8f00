"""Compiled entry points: train and score S profiles x R seeds of a router family in one call.

  data = make_router_data(history, query_emb_QxD)
  res = train_grid("mlp", MLPConfig(), data, profile_SxMxD, seeds_Z=[0, 1, 2, 3, 4])
  res.choices_SxZxQ  # candidate positions chosen for data.test_q_QxD

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
or per seed (``[S, Z, A, D]``, e.g. trainable profiles; then the seed axis is vmapped jointly).
Training-free families (sim) are applied once per profile and broadcast over seeds.

``rp_jax.tracing.TRACES["router_grid"]`` (and ``"router_cell"``, ``"router_scores"``) count
compilations (tests assert one compile per grid).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rp_jax import distributed, tracing
from rp_jax import train as tr
from rp_jax.routers import registry, validation
from rp_jax.routers.data import RouterData


class GridResult(NamedTuple):
  """Outputs of ``train_grid`` (numpy).

  Attributes:
    choices_SxZxQ: [S, Z, Q_test] int32 chosen candidate per test query.
    train_loss_SxZxI: [S, Z, I] mean training loss per epoch (I = 0 for training-free routers).
    val_score_SxZxI: [S, Z, I] the family's validation score per epoch (epoch selection); NaN
      without validation queries.
    best_epoch_SxZ: [S, Z] epoch whose parameters were kept.
    val_utility_SxZ: [S, Z] routing utility of the kept state on the validation queries
      (``validation.val_utility``; model selection across cells); NaN without validation queries.
    state: the family's state (parameters, ...) with leading [S, Z] axes, or None unless
      requested.
    scores: with ``return_scores``: ``test`` [S, Z, Q_test, A] and ``val`` [S, Z, V, A] scores
      of the kept state (e.g. for calibration) and ``val_idx`` [S, Z, V] (the validation
      queries, indices into the RouterData training queries), else None.
  """

  choices_SxZxQ: np.ndarray
  train_loss_SxZxI: np.ndarray
  val_score_SxZxI: np.ndarray
  best_epoch_SxZ: np.ndarray
  val_utility_SxZ: np.ndarray
  state: Any = None
  scores: Any = None


def resolve_config(router: str, config, data: RouterData):
  """The config with data-dependent static settings fixed on the host (see ``Family.resolve``)."""
  return registry.family(router).resolve(registry.check_config(router, config), data)


def make_cell(
  router: str,
  config,
  data: RouterData,
  *,
  return_state=False,
  return_scores=False,
  report_progress=False,
  num_folds=1,
):
  """``(profile_AxD, key, hparams, split) -> dict``: train one cell, route the test rows.

  ``split`` None draws the family's default split from the key (trained families only). The dict
  holds ``choices`` [Q_test], ``train_loss`` [E], ``val_score`` [E], ``best_epoch``,
  ``val_utility`` and, if asked, ``state`` and ``scores`` (``test`` [Q_test, A], ``val`` [V, A]).

  With ``num_folds`` K > 1 the split holds K folds ([K, V] / [K, F] indices): the cell trains K
  models (keys ``fold_in(key, k)``), its validation utility is their mean over the K held-out
  folds (cross-validation), and it routes with the mean of their scores (a K-model ensemble, so
  every training query is used); the state gains a leading [K] axis and the validation scores
  are the K folds' out-of-fold scores [K * V, A].
  """
  if num_folds > 1:
    return _cv_cell(
      make_cell(
        router,
        config,
        data,
        return_state=return_state,
        return_scores=True,
        report_progress=report_progress,
      ),
      num_folds,
      return_state,
      return_scores,
    )
  fam = registry.family(router)
  fns = fam.make(config, data)
  train = None
  if fns.pieces is not None:
    loop = dataclasses.replace(fns.loop, report_progress=report_progress)
    train = tr.make_train(fns.pieces, loop)

  def cell(profile_AxD, key, hparams, split=None):
    if split is None:
      split = fns.pieces.split(tr.run_keys(key, fns.loop).split)
    if train is not None:
      params, metrics = train(profile_AxD, key, hparams, split)
    else:
      params, metrics = None, {"train_loss": jnp.zeros(0), "val_score": jnp.zeros(0)}
      metrics["best_epoch"] = jnp.int32(0)
    state = fns.state(params, profile_AxD, split, hparams)
    score = lambda q: fam.score(config, state, profile_AxD, q, hparams)
    test_QxA = score(jnp.asarray(data.test_q_QxD))
    val_VxA = score(jnp.asarray(data.train_q_QxD)[split.val_idx])
    out = {
      "choices": jnp.argmax(test_QxA, axis=-1).astype(jnp.int32),
      "train_loss": metrics["train_loss"],
      "val_score": metrics["val_score"],
      "best_epoch": metrics["best_epoch"],
      "val_utility": validation.val_utility(val_VxA, data, split),
    }
    if return_state:
      out["state"] = state
    if return_scores:
      out["scores"] = {"test": test_QxA, "val": val_VxA, "val_idx": split.val_idx}
    return out

  return cell


def _cv_cell(cell, num_folds: int, return_state: bool, return_scores: bool):
  """The K-fold cell of ``make_cell`` (see there) around a single-split cell."""

  def cv_cell(profile_AxD, key, hparams, split):
    keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(num_folds))
    outs = jax.vmap(cell, (None, 0, None, 0))(profile_AxD, keys, hparams, split)
    test_QxA = outs["scores"]["test"].mean(0)
    out = {
      "choices": jnp.argmax(test_QxA, axis=-1).astype(jnp.int32),
      "train_loss": outs["train_loss"].mean(0),
      "val_score": outs["val_score"].mean(0),
      "best_epoch": jnp.round(outs["best_epoch"].mean()).astype(jnp.int32),
      "val_utility": outs["val_utility"].mean(),
    }
    if return_state:
      out["state"] = outs["state"]
    if return_scores:
      val = outs["scores"]["val"]
      out["scores"] = {
        "test": test_QxA,
        "val": val.reshape(-1, val.shape[-1]),
        "val_idx": outs["scores"]["val_idx"].reshape(-1),
      }
    return out

  return cv_cell


@functools.partial(
  jax.jit,
  static_argnames=(
    "router",
    "config",
    "per_seed",
    "chunk_size",
    "sequential",
    "return_state",
    "return_scores",
    "report_progress",
    "num_folds",
  ),
)
def _trained_grid(
  router,
  config,
  data,
  profile,
  keys_Z,
  hparams_S,
  splits_Z,
  *,
  per_seed,
  chunk_size,
  return_state,
  sequential,
  return_scores=False,
  report_progress=False,
  num_folds=1,
):
  """Cells [S, Z]: profiles (and hyperparameters) along S, seeds (keys, splits) along Z.

  ``splits_Z`` None: each cell draws its family's default split from its key.
  """
  tracing.count("router_grid")
  cell = make_cell(
    router,
    config,
    data,
    return_state=return_state,
    return_scores=return_scores,
    report_progress=report_progress,
    num_folds=num_folds,
  )
  if sequential:
    # One cell at a time inside the compiled call (lax.map over profiles, then seeds): the
    # per-cell program of train_cell, without Python dispatch between cells.
    def seeds_of(xs):
      profile_xAxD, hp = xs
      per = (profile_xAxD if per_seed else None, keys_Z, splits_Z)
      return jax.lax.map(lambda z: cell(z[0] if per_seed else profile_xAxD, z[1], hp, z[2]), per)

    return jax.lax.map(seeds_of, (profile, hparams_S))
  over_seeds = jax.vmap(cell, (0 if per_seed else None, 0, None, 0))

  def one_profile(xs):
    return over_seeds(xs[0], keys_Z, xs[1], splits_Z)

  if chunk_size:
    return jax.lax.map(one_profile, (profile, hparams_S), batch_size=chunk_size)
  return jax.vmap(one_profile)((profile, hparams_S))


@functools.partial(
  jax.jit, static_argnames=("router", "config", "per_seed", "num_seeds", "return_scores")
)
def _free_grid(
  router, config, data, profile, hparams_S, splits_Z, *, per_seed, num_seeds, return_scores=False
):
  """A seed-free family (sim): scored once per profile, broadcast over seeds; validation utility
  per seed's split (NaN without splits)."""
  tracing.count("router_grid")
  fam = registry.family(router)
  state = fam.make(config, data).state(None, None, None, None)
  test_q = jnp.asarray(data.test_q_QxD)

  def one(p, hp):
    test_QxA = fam.score(config, state, p, test_q, hp)
    out = {"choices": jnp.argmax(test_QxA, axis=-1).astype(jnp.int32)}
    if splits_Z is None:
      out["val_utility"] = jnp.full((), jnp.nan, jnp.float32)
      return out, test_QxA, None

    def per_split(val_idx, train_idx):
      if val_idx.ndim == 2:  # K folds: mean utility, the out-of-fold scores
        u, v = jax.vmap(per_split)(val_idx, train_idx)
        return u.mean(), v.reshape(-1, v.shape[-1])
      sp = tr.QuerySplit(val_idx, train_idx)
      val_VxA = fam.score(config, state, p, jnp.asarray(data.train_q_QxD)[val_idx], hp)
      return validation.val_utility(val_VxA, data, sp), val_VxA

    out["val_utility"], val = jax.vmap(per_split)(*splits_Z)
    return out, test_QxA, val

  def cells(p, hp):  # -> [R] outputs
    if per_seed:
      outs = [one(p[r], hp) for r in range(num_seeds)]
      out = jax.tree.map(lambda *x: jnp.stack(x), *[o[0] for o in outs])
      if splits_Z is not None:
        out["val_utility"] = jnp.stack([o[0]["val_utility"][r] for r, o in enumerate(outs)])
      tests = jnp.stack([o[1] for o in outs])
      vals = None if splits_Z is None else jnp.stack([o[2][r] for r, o in enumerate(outs)])
    else:
      out, test, val = one(p, hp)
      out = {
        "choices": jnp.broadcast_to(out["choices"], (num_seeds, *out["choices"].shape)),
        "val_utility": jnp.broadcast_to(out["val_utility"], (num_seeds,)),
      }
      tests = jnp.broadcast_to(test, (num_seeds, *test.shape))
      vals = val
    if return_scores:
      out["scores"] = {"test": tests, "val": vals}
      if splits_Z is not None:
        out["scores"]["val_idx"] = splits_Z.val_idx.reshape(num_seeds, -1)
    return out

  return jax.vmap(cells)(profile, hparams_S)


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


def seed_keys(seeds_Z: Sequence[int]) -> jax.Array:
  """[R] PRNG keys ``jax.random.key(seed)``."""
  return jax.vmap(jax.random.key)(jnp.asarray(np.asarray(seeds_Z, np.uint32)))


def shard_profiles(profile: np.ndarray, hparams_S: dict) -> tuple[jax.Array, dict]:
  """The profile axis (and the per-cell hyperparameters) padded to a multiple of the device count
  and sharded over the devices (of every process, under ``jax.distributed``).

  Padding repeats the last row; callers cut the outputs back to the original S.
  """
  devices = jax.devices()
  pad = (-profile.shape[0]) % len(devices)
  rep = lambda x: np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]) if pad else x
  sharding = NamedSharding(Mesh(np.asarray(devices), ("sweep",)), P("sweep"))
  put = lambda x: distributed.global_array(rep(np.asarray(x)), sharding)
  return put(profile), {k: put(v) for k, v in hparams_S.items()}


def _check_space(router: str, data: RouterData, profile_dim: int) -> None:
  if registry.family(router).same_space and int(data.dim) != int(profile_dim):
    raise ValueError(
      f"router {router!r} compares queries with profiles directly (cosine similarity), so the "
      "query encoder and the profile must share an embedding space; got query embeddings of "
      f"dim {int(data.dim)} and profiles of dim {int(profile_dim)}"
    )


def cell_hparams(router: str, hparams: Mapping | None, num_cells: int) -> dict[str, jax.Array]:
  """[S] float32 per-cell hyperparameters: scalars broadcast, [S] arrays kept (checked)."""
  hp = registry.hparams(router, hparams)
  out = {}
  for k, v in hp.items():
    if v.ndim == 0:
      v = jnp.broadcast_to(v, (num_cells,))
    if v.shape != (num_cells,):
      raise ValueError(
        f"hyperparameter {k!r} of router {router!r}: expected a scalar or one value per profile "
        f"row ({num_cells}); got shape {tuple(v.shape)}"
      )
    out[k] = v
  return out


def default_splits(router: str, config, data: RouterData, seeds_Z) -> tr.QuerySplit | None:
  """The validation splits a family needs when the caller gives none: None for trained families
  (each cell draws its own from its key), stratified splits for split-dependent training-free
  families (kNN's memory is the training fold)."""
  fam = registry.family(router)
  if fam.trainable or fam.seed_free:
    return None
  return validation.stratified_splits(data, config.val_fraction, seeds_Z)


def train_grid(
  router: str,
  config,
  data: RouterData,
  profile: np.ndarray,
  seeds_Z: Sequence[int],
  hparams: Mapping | None = None,
  *,
  splits: tr.QuerySplit | None = None,
  chunk_size: int = 0,
  sequential: bool = False,
  shard: bool = False,
  return_state: bool = False,
  return_scores: bool = False,
  report_progress: bool = False,
) -> GridResult:
  """Trains (or, for training-free families, applies) a router on S profiles x R seeds at once.

  Args:
    router: a registry name ("sim", "mlp", "graph", ...).
    config: the family's static config (None: defaults).
    data: RouterData of the setting.
    profile: [S, M, D] over the pool, [S, A, D] over the candidates, or [S, Z, A, D] per seed.
    seeds_Z: R integer seeds (initialisation, shuffling, dropout, the default split).
    hparams: traced hyperparameters (defaults from the registry): scalars, or [S] arrays giving
      each profile row its own values (a hyperparameter grid is profiles x values along S).
    splits: per-seed validation splits (``QuerySplit`` of [Z, V] and [Z, F] index arrays, e.g.
      ``validation.stratified_splits``), or K folds per seed ([Z, Y, V], [Z, Y, F]:
      cross-validated cells, see ``make_cell``); None: each cell draws its family's default split.
    chunk_size: > 0 maps over the profile axis in chunks of this size (bounds memory).
    sequential: train the cells one after another inside the compiled call (no vmap). On a CPU
      this is the fastest per cell: the training step is memory-bound, and vmapping multiplies
      the working set (parameters and Adam moments, ~21 MB per MLPRouter cell) beyond the cache.
    shard: split the profile axis over all visible devices (ignored with chunking or
      ``sequential``).
    return_state: also return the kept state (leading [S, Z] axes).
    return_scores: also return the test and validation scores of the kept state.
    report_progress: call ``rp_jax.progress.on_epoch`` after every epoch of every cell (see
      ``rp_jax.progress.tracking``).

  Returns:
    GridResult (numpy).
  """
  fam = registry.family(router)
  config = resolve_config(router, config, data)
  profile = np.asarray(profile, np.float32)
  if profile.ndim not in (3, 4):
    raise ValueError(f"profile: expected [S, M|A, D] or [S, Z, A, D]; got shape {profile.shape}")
  per_seed = profile.ndim == 4
  num_seeds = len(seeds_Z)
  if num_seeds < 1:
    raise ValueError("seeds_Z: expected at least one seed")
  if per_seed and profile.shape[1] != num_seeds:
    raise ValueError(f"per-seed profiles have {profile.shape[1]} seeds; got {num_seeds} seeds_Z")
  _check_space(router, data, profile.shape[-1])
  profile = candidate_profiles(profile, data, profile.ndim - 2)
  num_profiles = profile.shape[0]
  hp = cell_hparams(router, hparams, num_profiles)
  if splits is None:
    splits = default_splits(router, config, data, seeds_Z)
  num_folds = 1
  if splits is not None:
    splits = tr.QuerySplit(*(jnp.asarray(x, jnp.int32) for x in splits))
    if splits.val_idx.shape[0] != num_seeds:
      raise ValueError(f"splits: expected one per seed ({num_seeds}); got {splits.val_idx.shape}")
    num_folds = splits.val_idx.shape[1] if splits.val_idx.ndim == 3 else 1
  prof = profile
  if shard and not chunk_size and not sequential and len(jax.devices()) > 1:
    prof, hp = shard_profiles(profile, hp)
  if fam.seed_free:
    out = _free_grid(
      router,
      config,
      data,
      prof,
      hp,
      splits,
      per_seed=per_seed,
      num_seeds=num_seeds,
      return_scores=return_scores,
    )
    out = jax.tree.map(lambda x: distributed.to_numpy(x)[:num_profiles], out)
    empty = np.zeros((num_profiles, num_seeds, 0), np.float32)
    return GridResult(
      out["choices"],
      empty,
      empty,
      np.zeros((num_profiles, num_seeds), np.int32),
      out["val_utility"],
      {} if return_state else None,
      out.get("scores"),
    )
  out = _trained_grid(
    router,
    config,
    data,
    prof,
    seed_keys(seeds_Z),
    hp,
    splits,
    per_seed=per_seed,
    chunk_size=int(chunk_size),
    sequential=bool(sequential),
    return_state=return_state,
    return_scores=return_scores,
    report_progress=report_progress,
    num_folds=num_folds,
  )
  out = jax.tree.map(lambda x: distributed.to_numpy(x)[:num_profiles], out)
  return GridResult(
    choices_SxZxQ=out["choices"],
    train_loss_SxZxI=out["train_loss"],
    val_score_SxZxI=out["val_score"],
    best_epoch_SxZ=out["best_epoch"],
    val_utility_SxZ=out["val_utility"],
    state=out.get("state"),
    scores=out.get("scores"),
  )


@functools.partial(
  jax.jit, static_argnames=("router", "config", "return_state", "return_scores", "num_folds")
)
def _cell(
  router, config, data, profile_AxD, key, hparams, split, *, return_state, return_scores, num_folds
):
  tracing.count("router_cell")
  cell = make_cell(
    router,
    config,
    data,
    return_state=return_state,
    return_scores=return_scores,
    num_folds=num_folds,
  )
  return cell(profile_AxD, key, hparams, split)


def train_cell(
  router: str,
  config,
  data: RouterData,
  profile_AxD: np.ndarray,
  seed: int,
  hparams: Mapping[str, float] | None = None,
  *,
  split: tr.QuerySplit | None = None,
  return_state: bool = True,
  return_scores: bool = False,
) -> dict[str, Any]:
  """One (profile, seed) cell of ``train_grid`` as its own jitted call (same computation).

  Returns:
    dict with ``choices`` [Q_test], ``val_utility``, and for trained families ``train_loss``
    [E], ``val_score`` [E], ``best_epoch``; ``state`` if requested (jax arrays).
  """
  fam = registry.family(router)
  config = resolve_config(router, config, data)
  hp = registry.hparams(router, hparams)
  profile_AxD = candidate_profiles(np.asarray(profile_AxD, np.float32), data, 0)
  _check_space(router, data, profile_AxD.shape[-1])
  if fam.seed_free:
    state = fam.make(config, data).state(None, None, None, hp)
    out = {"choices": route(router, config, state, profile_AxD, data.test_q_QxD, hp)}
    return {**out, "state": state} if return_state else out
  if split is None:
    default = default_splits(router, config, data, [seed])
    split = None if default is None else tr.QuerySplit(*(x[0] for x in default))
  num_folds = 1
  if split is not None:
    split = tr.QuerySplit(*(jnp.asarray(x, jnp.int32) for x in split))
    num_folds = split.val_idx.shape[0] if split.val_idx.ndim == 2 else 1
  return _cell(
    router,
    config,
    data,
    profile_AxD,
    jax.random.key(seed),
    hp,
    split,
    return_state=return_state,
    return_scores=return_scores,
    num_folds=num_folds,
  )


@functools.partial(jax.jit, static_argnames=("router", "config", "ensemble"))
def _scores(router, config, state, profile_AxD, query_QxD, hparams, ensemble):
  tracing.count("router_scores")
  score = lambda st: registry.family(router).score(config, st, profile_AxD, query_QxD, hparams)
  if ensemble:  # a cross-validated cell: the mean of its K fold models' scores
    return jax.vmap(score)(state).mean(0)
  return score(state)


def scores(
  router: str,
  config,
  state,
  profile_AxD: np.ndarray,
  query_QxD: np.ndarray,
  hparams: Mapping[str, float] | None = None,
  ensemble: bool = False,
) -> jax.Array:
  """[Q, A] scores of a trained router (its ``state``) for new queries (jitted).

  The same family ``score`` function the grid evaluates test rows with, so a deployed router
  scores exactly like the evaluated one. ``ensemble``: the state has a leading fold axis (a
  cross-validated cell); the scores are the mean of its fold models'.
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
  return _scores(router, config, state, profile_AxD, query_QxD, hp, bool(ensemble))


def route(
  router, config, state, profile_AxD, query_QxD, hparams=None, ensemble: bool = False
) -> jax.Array:
  """[Q] int32 chosen candidate (argmax of ``scores``; ties -> the lowest candidate index)."""
  s = scores(router, config, state, profile_AxD, query_QxD, hparams, ensemble)
  return jnp.argmax(s, axis=-1).astype(jnp.int32)
