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

One engine for every family: a training-free family (sim, kNN) is a zero-epoch cell of the same
``make_cell``; a seed-free one (sim) does not depend on its key, so vmapping over seeds computes
its test scores once. ``train_cell`` is ``train_grid`` with one profile and one seed. Validation
splits carry an explicit fold axis ([Z, Y, V]; ``with_fold_axis``).

``rp_jax.tracing.TRACES["router_grid"]`` (and ``"router_scores"``) count compilations (tests
assert one compile per grid).
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


@dataclasses.dataclass(frozen=True)
class GridOptions:
  """How ``train_grid`` runs its cells (none of it changes what a cell computes).

  Attributes:
    chunk_size: > 0 maps over the profile axis in chunks of this size (bounds memory).
    sequential: train the cells one after another inside the compiled call (no vmap). On a CPU
      this is the fastest per cell: the training step is memory-bound, and vmapping multiplies
      the working set (parameters and Adam moments, ~21 MB per MLPRouter cell) beyond the cache.
      Seed-free families (sim) always vmap (their cells are a few matmuls).
    shard: split the profile axis over all visible devices (ignored with chunking or
      ``sequential``).
    return_state: also return the kept state (leading [S, Z] axes).
    return_scores: also return the test and validation scores of the kept state.
    report_progress: call ``rp_jax.progress.on_epoch`` after every epoch of every cell (see
      ``rp_jax.progress.tracking``).
  """

  chunk_size: int = 0
  sequential: bool = False
  shard: bool = False
  return_state: bool = False
  return_scores: bool = False
  report_progress: bool = False


def resolve_config(router, config, data: RouterData):
  """The config with data-dependent static settings fixed on the host (see ``Family.resolve``)."""
  fam = registry.as_family(router)
  return fam.resolve(registry.check_config(fam.name, config), data)


def with_fold_axis(splits: tr.QuerySplit | None, num_seeds: int) -> tr.QuerySplit | None:
  """Per-seed splits with an explicit fold axis: [Z, V] -> [Z, 1, V]; [Z, Y, V] unchanged.

  The one place that reads the fold count from array ranks; None (each cell draws its own split)
  stays None.
  """
  if splits is None:
    return None
  splits = tr.QuerySplit(*(jnp.asarray(x, jnp.int32) for x in splits))
  if splits.val_idx.ndim == 2:
    splits = tr.QuerySplit(*(x[:, None] for x in splits))
  if splits.val_idx.ndim != 3 or splits.val_idx.shape[0] != num_seeds:
    raise ValueError(
      f"splits: expected one split ([Z, V]) or Y folds ([Z, Y, V]) per seed ({num_seeds}); "
      f"got validation indices of shape {tuple(splits.val_idx.shape)}"
    )
  return splits


def make_cell(fam, config, data: RouterData, options: GridOptions = GridOptions()):
  """``(profile_AxD, key, hparams, split) -> dict``: train one cell, route the test rows.

  ``split`` holds Y folds ([Y, V] / [Y, F] indices), or is None: the cell draws its family's
  default split from the key (trained families; training-free ones then have no validation). The
  dict holds ``choices`` [Q_test], ``train_loss`` [E], ``val_score`` [E], ``best_epoch``,
  ``val_utility`` and, if asked, ``state`` and ``scores`` (``test`` [Q_test, A], ``val`` [V, A],
  ``val_idx`` [V]).

  With Y > 1 folds the cell trains Y models (keys ``fold_in(key, y)``), its validation utility is
  their mean over the Y held-out folds (cross-validation), and it routes with the mean of their
  scores (a Y-model ensemble, so every training query is used); the state gains a leading [Y] axis
  and the validation scores are the folds' out-of-fold scores [Y * V, A]. Training-free families
  are zero-epoch cells of the same function.
  """
  fns = fam.make(config, data)
  train = None
  if fns.pieces is not None:
    train = tr.make_train(
      fns.pieces, dataclasses.replace(fns.loop, report_progress=options.report_progress)
    )
  test_q = jnp.asarray(data.test_q_QxD)

  def single(profile_AxD, key, hparams, split):
    if split is None and fns.pieces is not None:
      split = fns.pieces.split(tr.run_keys(key, fns.loop).split)
    if train is not None:
      params, metrics = train(profile_AxD, key, hparams, split)
    else:
      params, metrics = None, {"train_loss": jnp.zeros(0), "val_score": jnp.zeros(0)}
      metrics["best_epoch"] = jnp.int32(0)
    state = fns.state(params, profile_AxD, split, hparams)
    score = lambda q: fam.score(config, state, profile_AxD, q, hparams)
    test_QxA = score(test_q)
    out = {
      "choices": jnp.argmax(test_QxA, axis=-1).astype(jnp.int32),
      "train_loss": metrics["train_loss"],
      "val_score": metrics["val_score"],
      "best_epoch": metrics["best_epoch"],
      "state": state,
      "scores": {"test": test_QxA},
    }
    if split is None:  # a training-free family without validation queries
      out["val_utility"] = jnp.full((), jnp.nan, jnp.float32)
      out["scores"]["val"] = jnp.zeros((0, test_QxA.shape[-1]), test_QxA.dtype)
      out["scores"]["val_idx"] = jnp.zeros(0, jnp.int32)
      return out
    val_VxA = score(jnp.asarray(data.train_q_QxD)[split.val_idx])
    out["val_utility"] = validation.val_utility(val_VxA, data, split)
    out["scores"].update(val=val_VxA, val_idx=split.val_idx)
    return out

  def cell(profile_AxD, key, hparams, split):
    if split is None:
      out = single(profile_AxD, key, hparams, None)
    elif split.val_idx.shape[0] == 1:
      out = single(profile_AxD, key, hparams, tr.QuerySplit(*(x[0] for x in split)))
    else:
      out = _ensemble(single, profile_AxD, key, hparams, split)
    if not options.return_state:
      del out["state"]
    if not options.return_scores:
      del out["scores"]
    return out

  return cell


def _ensemble(single, profile_AxD, key, hparams, split):
  """The Y-fold cell of ``make_cell`` (see there) from its single-split cell."""
  num_folds = split.val_idx.shape[0]
  keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(num_folds))
  outs = jax.vmap(single, (None, 0, None, 0))(profile_AxD, keys, hparams, split)
  test_QxA = outs["scores"]["test"].mean(0)
  val = outs["scores"]["val"]
  return {
    "choices": jnp.argmax(test_QxA, axis=-1).astype(jnp.int32),
    "train_loss": outs["train_loss"].mean(0),
    "val_score": outs["val_score"].mean(0),
    "best_epoch": jnp.round(outs["best_epoch"].mean()).astype(jnp.int32),
    "val_utility": outs["val_utility"].mean(),
    "state": outs["state"],
    "scores": {
      "test": test_QxA,
      "val": val.reshape(-1, val.shape[-1]),
      "val_idx": outs["scores"]["val_idx"].reshape(-1),
    },
  }


@functools.partial(jax.jit, static_argnames=("fam", "config", "per_seed", "options"))
def _grid(fam, config, data, cells, keys_Z, splits_Z, *, per_seed, options):
  """Cells [S, Z]: ``cells`` = (profiles, hyperparameters) along S; seeds (keys, splits) along Z.

  ``splits_Z`` None: each cell draws its family's default split from its key.
  """
  tracing.count("router_grid")
  cell = make_cell(fam, config, data, options)
  if options.sequential and not fam.seed_free:
    # One cell at a time inside the compiled call (lax.map over profiles, then seeds), without
    # Python dispatch between cells.
    def seeds_of(xs):
      profile, hp = xs
      per = (profile if per_seed else None, keys_Z, splits_Z)
      return jax.lax.map(lambda z: cell(z[0] if per_seed else profile, z[1], hp, z[2]), per)

    return jax.lax.map(seeds_of, cells)
  seed_axes = (0 if per_seed else None, 0, None, None if splits_Z is None else 0)
  over_seeds = jax.vmap(cell, seed_axes)
  one_profile = lambda xs: over_seeds(xs[0], keys_Z, xs[1], splits_Z)
  if options.chunk_size:
    return jax.lax.map(one_profile, cells, batch_size=options.chunk_size)
  return jax.vmap(one_profile)(cells)


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


def _check_space(fam, query_dim: int, profile_dim: int) -> None:
  if fam.same_space and int(query_dim) != int(profile_dim):
    raise ValueError(
      f"router {fam.name!r} compares queries with profiles directly (cosine similarity), so the "
      "query encoder and the profile must share an embedding space; got query embeddings of "
      f"dim {int(query_dim)} and profiles of dim {int(profile_dim)}"
    )


def cell_hparams(router, hparams: Mapping | None, num_cells: int) -> dict[str, jax.Array]:
  """[S] float32 per-cell hyperparameters: scalars broadcast, [S] arrays kept (checked)."""
  name = registry.as_family(router).name
  hp = registry.hparams(name, hparams)
  out = {}
  for k, v in hp.items():
    if v.ndim == 0:
      v = jnp.broadcast_to(v, (num_cells,))
    if v.shape != (num_cells,):
      raise ValueError(
        f"hyperparameter {k!r} of router {name!r}: expected a scalar or one value per profile "
        f"row ({num_cells}); got shape {tuple(v.shape)}"
      )
    out[k] = v
  return out


def default_splits(router, config, data: RouterData, seeds_Z) -> tr.QuerySplit | None:
  """The validation splits a family needs when the caller gives none: None for trained families
  (each cell draws its own from its key) and seed-free ones (no validation), stratified splits
  for split-dependent training-free families (kNN's memory is the training fold)."""
  fam = registry.as_family(router)
  if fam.trainable or fam.seed_free:
    return None
  return validation.stratified_splits(data, config.val_fraction, seeds_Z)


def _grid_profiles(fam, data: RouterData, profile, num_seeds: int) -> tuple[np.ndarray, bool]:
  """(candidate profiles [S, A, D] or [S, Z, A, D], per-seed?) after the shape checks."""
  profile = np.asarray(profile, np.float32)
  if profile.ndim not in (3, 4):
    raise ValueError(f"profile: expected [S, M|A, D] or [S, Z, A, D]; got shape {profile.shape}")
  per_seed = profile.ndim == 4
  if num_seeds < 1:
    raise ValueError("seeds_Z: expected at least one seed")
  if per_seed and profile.shape[1] != num_seeds:
    raise ValueError(f"per-seed profiles have {profile.shape[1]} seeds; got {num_seeds} seeds_Z")
  _check_space(fam, data.dim, profile.shape[-1])
  return candidate_profiles(profile, data, profile.ndim - 2), per_seed


def train_grid(
  router,
  config,
  data: RouterData,
  profile: np.ndarray,
  seeds_Z: Sequence[int],
  hparams: Mapping | None = None,
  *,
  splits: tr.QuerySplit | None = None,
  **options,
) -> GridResult:
  """Trains (or, for training-free families, applies) a router on S profiles x R seeds at once.

  Args:
    router: a registry Family, or its name ("sim", "mlp", "graph", ...).
    config: the family's static config (None: defaults).
    data: RouterData of the setting.
    profile: [S, M, D] over the pool, [S, A, D] over the candidates, or [S, Z, A, D] per seed.
    seeds_Z: R integer seeds (initialisation, shuffling, dropout, the default split).
    hparams: traced hyperparameters (defaults from the registry): scalars, or [S] arrays giving
      each profile row its own values (a hyperparameter grid is profiles x values along S).
    splits: per-seed validation splits (``QuerySplit`` of [Z, V] and [Z, F] index arrays, e.g.
      ``validation.stratified_splits``), or Y folds per seed ([Z, Y, V], [Z, Y, F]:
      cross-validated cells, see ``make_cell``); None: each cell draws its family's default split.
    **options: ``GridOptions`` fields (chunking, sequential cells, sharding, what to return).

  Returns:
    GridResult (numpy).
  """
  fam = registry.as_family(router)
  opts = GridOptions(**options)
  config = resolve_config(fam, config, data)
  profile, per_seed = _grid_profiles(fam, data, profile, len(seeds_Z))
  num_profiles = profile.shape[0]
  hp = cell_hparams(fam, hparams, num_profiles)
  if splits is None:
    splits = default_splits(fam, config, data, seeds_Z)
  splits = with_fold_axis(splits, len(seeds_Z))
  if opts.shard and not opts.chunk_size and not opts.sequential and len(jax.devices()) > 1:
    profile, hp = shard_profiles(profile, hp)
  out = _grid(
    fam, config, data, (profile, hp), seed_keys(seeds_Z), splits, per_seed=per_seed, options=opts
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


def train_cell(
  router,
  config,
  data: RouterData,
  profile_AxD: np.ndarray,
  seed: int,
  hparams: Mapping[str, float] | None = None,
  *,
  split: tr.QuerySplit | None = None,
  **options,
) -> dict[str, Any]:
  """One (profile, seed) cell: ``train_grid`` with one profile and one seed (same computation).

  ``split``: one split ([V], [F]) or Y folds ([Y, V], [Y, F]); None as in ``train_grid``.
  ``options`` as in ``train_grid``; ``return_state`` defaults to True here.

  Returns:
    dict (numpy) with ``choices`` [Q_test], ``val_utility``, ``train_loss`` [E], ``val_score``
    [E], ``best_epoch``, and ``state`` / ``scores`` if requested.
  """
  options.setdefault("return_state", True)
  splits = None if split is None else tr.QuerySplit(*(np.asarray(x)[None] for x in split))
  profile = np.asarray(profile_AxD, np.float32)[None]
  res = train_grid(router, config, data, profile, [seed], hparams, splits=splits, **options)
  names = ("choices", "train_loss", "val_score", "best_epoch", "val_utility", "state", "scores")
  return {
    k: jax.tree.map(lambda x: x[0, 0], v) for k, v in zip(names, res, strict=True) if v is not None
  }


@functools.partial(jax.jit, static_argnames=("fam", "config", "ensemble"))
def _scores(fam, config, state, profile_AxD, query_QxD, hparams, ensemble):
  tracing.count("router_scores")
  score = lambda st: fam.score(config, st, profile_AxD, query_QxD, hparams)
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
  fam = registry.as_family(router)
  config = registry.check_config(fam.name, config)
  profile_AxD = jnp.asarray(profile_AxD, jnp.float32)
  query_QxD = jnp.asarray(query_QxD, jnp.float32)
  _check_space(fam, query_QxD.shape[-1], profile_AxD.shape[-1])
  hp = registry.hparams(fam.name, hparams)
  return _scores(fam, config, state, profile_AxD, query_QxD, hp, bool(ensemble))


def route(
  router, config, state, profile_AxD, query_QxD, hparams=None, ensemble: bool = False
) -> jax.Array:
  """[Q] int32 chosen candidate (argmax of ``scores``; ties -> the lowest candidate index)."""
  s = scores(router, config, state, profile_AxD, query_QxD, hparams, ensemble)
  return jnp.argmax(s, axis=-1).astype(jnp.int32)
