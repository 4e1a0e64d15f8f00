"""Grid entry points: train and route S profiles x R seeds of a router in one compiled call.

  data = make_router_data(history, query_emb_QxD)
  res = train_grid("mlp", MLPConfig(), data, profile_SxMxD, seeds_R=[0, 1, 2, 3, 4])
  res.choices_SxRxQ  # candidate positions chosen for data.test_q_QxD

``train_grid`` runs ``jax.jit(jax.vmap(jax.vmap(train_and_route, (None, 0, None)), (0, None,
None)))``: the profile axis outside, the seed axis inside, hyperparameters shared and traced (a new
learning rate does not recompile). ``chunk_size`` maps over the profile axis in chunks
(``jax.lax.map(..., batch_size=chunk)``) to bound memory; ``sequential`` trains the cells one by
one inside the compiled call (the fastest on a CPU, where the memory-bound step does not gain from
batching); ``shard`` splits the profile axis over all visible devices. Profiles may be given over
the whole pool (``[S, M, D]``; the candidate rows are sliced here, once, outside the compiled
function), over the candidates (``[S, A, D]``), or per seed (``[S, R, A, D]``, e.g. trainable
profiles; then the seed axis is vmapped jointly).

``train_cell`` is the same computation for one (profile, seed) (the loop baseline of the
benchmark); ``route`` applies trained parameters to new queries. ``TRACE_COUNT`` counts traces of
the compiled functions (tests assert one compile per grid).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rp_jax import train as tr
from rp_jax.routers import graph as graph_router
from rp_jax.routers import mlp as mlp_router
from rp_jax.routers import sim as sim_router
from rp_jax.routers.data import RouterData, make_router_data
from rp_jax.routers.graph import GraphConfig
from rp_jax.routers.mlp import MLPConfig
from rp_jax.routers.sim import SimConfig

ROUTERS = ("sim", "mlp", "graph")
RouterConfig = SimConfig | MLPConfig | GraphConfig

# Incremented each time a grid / cell / route function is traced (i.e. compiled anew).
TRACE_COUNT = 0


class GridResult(NamedTuple):
  """Outputs of ``train_grid`` (numpy).

  Attributes:
    choices_SxRxQ: [S, R, Q_test] int32 chosen candidate per test query.
    train_loss_SxRxE: [S, R, E] mean training loss per epoch (E = 0 for sim).
    val_score_SxRxE: [S, R, E] validation score per epoch (pair accuracy for mlp, mean label of
      the pick for graph); NaN without validation queries.
    best_epoch_SxR: [S, R] epoch whose parameters were kept.
    params: the kept parameters with leading [S, R] axes, or None unless requested.
  """

  choices_SxRxQ: np.ndarray
  train_loss_SxRxE: np.ndarray
  val_score_SxRxE: np.ndarray
  best_epoch_SxR: np.ndarray
  params: Any = None


def make_config(router: str, **overrides) -> RouterConfig:
  """The default static config of a router, with field overrides."""
  if router == "sim":
    if overrides:
      raise ValueError(f"SimRouter takes no settings; got {sorted(overrides)}")
    return SimConfig()
  if router == "mlp":
    return MLPConfig(**overrides)
  if router == "graph":
    return GraphConfig(**overrides)
  raise ValueError(f"unknown router {router!r}; expected one of {ROUTERS}")


def default_hparams(router: str) -> dict[str, float]:
  """The swept hyperparameters of a router with SPEC §2 defaults (empty for sim)."""
  if router == "sim":
    return {}
  if router == "mlp":
    return dict(mlp_router.DEFAULT_HPARAMS)
  if router == "graph":
    return dict(graph_router.DEFAULT_HPARAMS)
  raise ValueError(f"unknown router {router!r}; expected one of {ROUTERS}")


def _check_config(router: str, config: RouterConfig | None) -> RouterConfig:
  if config is None:
    return make_config(router)
  if router not in ROUTERS:
    raise ValueError(f"unknown router {router!r}; expected one of {ROUTERS}")
  if getattr(config, "name", None) != router:
    raise ValueError(f"router {router!r} needs a {router} config; got {type(config).__name__}")
  return config


def _hparams(router: str, hparams: dict | None) -> dict[str, jax.Array]:
  base = default_hparams(router)
  for k in hparams or {}:
    if k not in base:
      raise ValueError(
        f"unknown hyperparameter {k!r} for router {router!r}; expected {sorted(base)}"
      )
  base.update(hparams or {})
  return {k: jnp.asarray(v, jnp.float32) for k, v in base.items()}


def resolve_config(config: RouterConfig, data: RouterData) -> RouterConfig:
  """Fixes data-dependent static settings on the host (MLP queries per batch; whether batches
  can be empty)."""
  if isinstance(config, MLPConfig):
    return mlp_router.resolve(config, data)
  if isinstance(config, GraphConfig):
    return graph_router.resolve(config, data)
  return config


def make_pieces(config: RouterConfig, data: RouterData) -> tuple[tr.Pieces, tr.TrainConfig]:
  """The training pieces of a trainable router (dispatch on the config type)."""
  if isinstance(config, MLPConfig):
    return mlp_router.make_pieces(config, data)
  if isinstance(config, GraphConfig):
    return graph_router.make_pieces(config, data)
  raise ValueError(
    f"no training pieces for {type(config).__name__}; expected an mlp or graph config"
  )


def make_train_and_route(config: RouterConfig, data: RouterData, return_params: bool) -> Callable:
  """``(profile_AxD, key, hparams) -> dict`` training one cell and routing the test queries."""
  pieces, loop = make_pieces(config, data)
  train = tr.make_train(pieces, loop)

  def train_and_route(profile_AxD, key, hparams):
    params, metrics = train(profile_AxD, key, hparams)
    split = pieces.split(tr.run_keys(key, loop).split)
    out = {
      "choices": pieces.route(params, profile_AxD, split),
      "train_loss": metrics["train_loss"],
      "val_score": metrics["val_score"],
      "best_epoch": metrics["best_epoch"],
    }
    if return_params:
      out["params"] = params
    return out

  return train_and_route


@functools.partial(
  jax.jit, static_argnames=("config", "per_seed", "chunk_size", "sequential", "return_params")
)
def _trained_grid(
  config, data, profile, keys_R, hparams, *, per_seed, chunk_size, return_params, sequential=False
):
  global TRACE_COUNT
  TRACE_COUNT += 1
  cell = make_train_and_route(config, data, return_params)
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


@functools.partial(jax.jit, static_argnames=("per_seed", "num_seeds"))
def _sim_grid(data, profile, *, per_seed, num_seeds):
  global TRACE_COUNT
  TRACE_COUNT += 1
  route_one = lambda p: sim_router.sim_route(data.test_q_QxD, p)
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


def _keys(seeds_R: Sequence[int]) -> jax.Array:
  return jax.vmap(jax.random.key)(jnp.asarray(np.asarray(seeds_R, np.uint32)))


def _shard_profiles(profile: np.ndarray) -> jax.Array:
  """The profile axis padded to a multiple of the device count and sharded over the devices.

  Padding repeats the last profile; callers cut the outputs back to the original S.
  """
  devices = jax.devices()
  pad = (-profile.shape[0]) % len(devices)
  if pad:
    profile = np.concatenate([profile, np.repeat(profile[-1:], pad, axis=0)])
  mesh = Mesh(np.asarray(devices), ("sweep",))
  return jax.device_put(profile, NamedSharding(mesh, P("sweep")))


def train_grid(
  router: str,
  config: RouterConfig | None,
  data: RouterData,
  profile: np.ndarray,
  seeds_R: Sequence[int],
  hparams: dict | None = None,
  *,
  chunk_size: int = 0,
  sequential: bool = False,
  shard: bool = False,
  return_params: bool = False,
) -> GridResult:
  """Trains (or, for sim, applies) a router on S profiles x R seeds in one compiled call.

  Args:
    router: "sim", "mlp" or "graph".
    config: the router's static config (None: defaults); "sim" takes ``SimConfig()`` or None.
    data: RouterData of the setting.
    profile: [S, M, D] over the pool, [S, A, D] over the candidates, or [S, R, A, D] per seed.
    seeds_R: R integer seeds (initialisation, validation split, shuffling, dropout).
    hparams: swept hyperparameters (traced; defaults from ``default_hparams``).
    chunk_size: > 0 maps over the profile axis in chunks of this size (bounds memory).
    sequential: train the cells one after another inside the compiled call (no vmap). On a CPU
      this is the fastest per cell: the training step is memory-bound, and vmapping multiplies
      the working set (parameters and Adam moments, ~21 MB per MLPRouter cell) beyond the cache.
    shard: split the profile axis over all visible devices (ignored with chunking or
      ``sequential``).
    return_params: also return the kept parameters (leading [S, R] axes).

  Returns:
    GridResult (numpy).
  """
  config = _check_config(router, config)
  profile = np.asarray(profile, np.float32)
  if profile.ndim not in (3, 4):
    raise ValueError(f"profile: expected [S, M|A, D] or [S, R, A, D]; got shape {profile.shape}")
  per_seed = profile.ndim == 4
  num_seeds = len(seeds_R)
  if per_seed and profile.shape[1] != num_seeds:
    raise ValueError(f"per-seed profiles have {profile.shape[1]} seeds; got {num_seeds} seeds_R")
  if num_seeds < 1:
    raise ValueError("seeds_R: expected at least one seed")
  profile = candidate_profiles(profile, data, profile.ndim - 2)
  num_profiles = profile.shape[0]
  prof = profile
  if shard and not chunk_size and not sequential and len(jax.devices()) > 1:
    prof = _shard_profiles(profile)
  if router == "sim":
    sim_router.check_dims(data.dim, profile.shape[-1])
    choices = _sim_grid(data, prof, per_seed=per_seed, num_seeds=num_seeds)
    empty = np.zeros((num_profiles, num_seeds, 0), np.float32)
    return GridResult(
      np.asarray(choices)[:num_profiles],
      empty,
      empty,
      np.zeros((num_profiles, num_seeds), np.int32),
    )
  config = resolve_config(config, data)
  out = _trained_grid(
    config,
    data,
    prof,
    _keys(seeds_R),
    _hparams(router, hparams),
    per_seed=per_seed,
    chunk_size=int(chunk_size),
    sequential=bool(sequential),
    return_params=return_params,
  )
  out = jax.tree.map(lambda x: np.asarray(x)[:num_profiles], out)
  return GridResult(
    choices_SxRxQ=out["choices"],
    train_loss_SxRxE=out["train_loss"],
    val_score_SxRxE=out["val_score"],
    best_epoch_SxR=out["best_epoch"],
    params=out.get("params"),
  )


@functools.partial(jax.jit, static_argnames=("config", "return_params"))
def _cell(config, data, profile_AxD, key, hparams, *, return_params):
  global TRACE_COUNT
  TRACE_COUNT += 1
  return make_train_and_route(config, data, return_params)(profile_AxD, key, hparams)


def train_cell(
  router: str,
  config: RouterConfig | None,
  data: RouterData,
  profile_AxD: np.ndarray,
  seed: int,
  hparams: dict | None = None,
  *,
  return_params: bool = True,
) -> dict[str, Any]:
  """One (profile, seed) cell of ``train_grid`` as its own jitted call (same computation).

  Returns:
    dict with ``choices`` [Q_test], ``train_loss`` [E], ``val_score`` [E], ``best_epoch`` and,
    if requested, ``params`` (jax arrays; block on them to time the call).
  """
  config = _check_config(router, config)
  profile_AxD = candidate_profiles(np.asarray(profile_AxD, np.float32), data, 0)
  if router == "sim":
    sim_router.check_dims(data.dim, profile_AxD.shape[-1])
    return {"choices": route(config, None, profile_AxD, data.test_q_QxD)}
  config = resolve_config(config, data)
  return _cell(
    config,
    data,
    profile_AxD,
    jax.random.key(seed),
    _hparams(router, hparams),
    return_params=return_params,
  )


@functools.partial(jax.jit, static_argnames=("config",))
def _route(config, params, profile_AxD, query_QxD, graph_q_NxD):
  global TRACE_COUNT
  TRACE_COUNT += 1
  if isinstance(config, SimConfig):
    scores_QxA = sim_router.cosine_scores(query_QxD, profile_AxD)
  elif isinstance(config, MLPConfig):
    module = mlp_router.MLPRouter(config.hidden, config.out)
    scores_QxA = module.apply({"params": params}, query_QxD, profile_AxD)
  else:
    module = graph_router.GraphRouter(config.hidden, config.heads, config.layers)
    queries = jnp.concatenate([graph_q_NxD, query_QxD])
    node_mask = jnp.arange(queries.shape[0]) < graph_q_NxD.shape[0]
    all_A = jnp.ones(profile_AxD.shape[0], bool)
    scores_QxA = module.apply({"params": params}, queries, node_mask, profile_AxD, all_A)
    scores_QxA = scores_QxA[graph_q_NxD.shape[0] :]
  return jnp.argmax(scores_QxA, axis=-1).astype(jnp.int32)


def route(
  router: RouterConfig | str,
  params: Any,
  profile_AxD: np.ndarray,
  query_QxD: np.ndarray,
  *,
  graph_q_NxD: np.ndarray | None = None,
) -> jax.Array:
  """[Q] int32 chosen candidate of each query (jitted).

  Args:
    router: a router config (or name, for the default config) matching ``params``.
    params: trained parameters of one cell (None for sim).
    profile_AxD: candidate profiles.
    query_QxD: query embeddings.
    graph_q_NxD: graph router only: the query nodes the models attend over (e.g. the training
      queries ``RouterData.train_q_QxD``; inside ``train_grid`` the non-validation ones).
  """
  config = make_config(router) if isinstance(router, str) else router
  if not isinstance(config, SimConfig | MLPConfig | GraphConfig):
    raise ValueError(f"unknown router {router!r}; expected a name in {ROUTERS} or a router config")
  profile_AxD = jnp.asarray(profile_AxD, jnp.float32)
  query_QxD = jnp.asarray(query_QxD, jnp.float32)
  if isinstance(config, SimConfig):
    sim_router.check_dims(query_QxD.shape[-1], profile_AxD.shape[-1])
  if isinstance(config, GraphConfig):
    if graph_q_NxD is None:
      raise ValueError("routing with a GraphRouter needs graph_q_NxD (the graph's query nodes)")
    graph_q_NxD = jnp.asarray(graph_q_NxD, jnp.float32)
  return _route(config, params, profile_AxD, query_QxD, graph_q_NxD)


# -- the sweep's entry point ---------------------------------------------------------------------


def configs_from_sweep(router: str, config) -> tuple[RouterConfig, dict[str, float]]:
  """(static router config, hyperparameters) from a sweep ConfigDict (``rp_jax.config``)."""
  if router == "sim":
    return SimConfig(), {}
  if router == "mlp":
    m = config.mlp
    static = MLPConfig(
      epochs=int(m.epochs),
      batch_size=int(m.batch_size),
      hidden=int(m.hidden),
      out=int(m.out),
      dropout=float(m.dropout),
      batching=str(m.batching),
      val_fraction=float(config.val_fraction),
    )
    hp = {"learning_rate": m.lr, "weight_decay": m.weight_decay, "margin": m.margin}
    return static, {k: float(v) for k, v in hp.items()}
  if router == "graph":
    g = config.graph_router
    static = GraphConfig(
      epochs=int(g.epochs),
      batch_size=int(g.batch_size),
      hidden=int(g.hidden),
      heads=int(g.heads),
      dropout=float(g.dropout),
      transductive=bool(g.transductive),
      val_fraction=float(config.val_fraction),
    )
    return static, {"learning_rate": float(g.lr), "weight_decay": 0.0}
  raise ValueError(f"unknown router {router!r}; expected one of {ROUTERS}")


def sweep_router(
  router: str,
  config,
  history,
  query_emb_QxD: np.ndarray,
  profile_SxRxAxD: np.ndarray,
  seeds: Sequence[int],
  log: Callable[[str], None] = print,
) -> np.ndarray:
  """[S, R, Q_test] choices of one router over a sweep's profiles x seeds (one compiled call).

  Args:
    router: "sim", "mlp" or "graph".
    config: the sweep ConfigDict (router sections, ``val_fraction``, ``chunk_size``, ``shard``).
    history: the setting's History.
    query_emb_QxD: embeddings of all History queries.
    profile_SxRxAxD: candidate profiles per profile spec and seed.
    seeds: the R seeds.
    log: progress messages.
  """
  static, hp = configs_from_sweep(router, config)
  data = make_router_data(history, query_emb_QxD)
  static = resolve_config(static, data)
  if isinstance(static, MLPConfig):
    log(
      f"  mlp: {data.num_train} training queries, {len(data.pairs_Px3)} pairs, "
      f"{static.batching} batches ({static.queries_per_batch or static.batch_size} per batch)"
    )
  res = train_grid(
    router,
    static,
    data,
    profile_SxRxAxD,
    list(seeds),
    hp,
    chunk_size=int(config.get("chunk_size", 0) or 0),
    shard=bool(config.get("shard", False)),
    sequential=_sequential(str(config.get("grid", "vmap"))),
  )
  return res.choices_SxRxQ


def _sequential(mode: str) -> bool:
  if mode == "auto":
    return jax.default_backend() == "cpu" and len(jax.devices()) == 1
  return mode == "sequential"


__all__ = [
  "ROUTERS",
  "TRACE_COUNT",
  "GraphConfig",
  "GridResult",
  "MLPConfig",
  "RouterData",
  "SimConfig",
  "default_hparams",
  "make_config",
  "make_router_data",
  "route",
  "sweep_router",
  "train_cell",
  "train_grid",
]
