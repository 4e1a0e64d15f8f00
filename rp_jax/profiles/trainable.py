"""Trainable profiles (SPEC §2 "trainable"): a HAN-style heterogeneous attention GNN, trained
self-supervised on the union graph; the entry points (training, embedding, grids).

The pieces live in ``rp_jax.profiles.han``: ``config`` (``TrainableConfig``), ``structure`` (the
graph as dense relation blocks), ``modules`` (the HAN layer, encoder and self-supervised heads),
``ssl`` (masks, loss, initialisation). This module trains them with the shared optimisation core
of ``rp_jax.train`` and re-exports the public names, so ``trainable.X`` works for all of them.

Training: AdamW (lr 1e-4, weight decay 1e-4, cosine decay to 5%), global-norm clip 1.0, 100
full-batch steps in ``lax.scan`` (``train.adamw_cosine`` and ``train.gradient_step``, in flat
mode: the update runs on one parameter vector), all randomness (init, masks, dropout) from one
key. Profile = the model rows of the encoder output (dropout off, nothing masked, every score
visible), L2-normalised; it is computed by one extra, update-free iteration of the same scan,
so the compiled program holds the encoder once.

Differences from the reference (stated, not hidden): the depth is a number of 256-wide HAN
layers between a per-type input projection and a linear output projection to D (the
reference's first / last HAN layers change width instead, which would make the parameters of a
depth-d network differ from the first d layers of a deeper one); the semantic-attention width
defaults to 128, the HAN paper's value (PyG uses the layer width); the edge score is an input
of the encoder; parameters start from a unit-variance uniform draw scaled like LeCun normal; the
attention dropout draws its bits from a counter hash (``ops.counter_hash``) instead of threefry,
and its rate is rounded to a multiple of 1/65536.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from rp_jax import progress
from rp_jax import train as train_lib
from rp_jax.graphs import MODEL, NODE_TYPES, NUM_NODE_TYPES, NUM_RELATIONS, Graph
from rp_jax.ops import l2_normalize, masked_softmax, segment_softmax
from rp_jax.profiles.han.config import ATTENTIONS, TrainableConfig
from rp_jax.profiles.han.modules import HANEncoder, HANLayer, SSLModel, TypedDense
from rp_jax.profiles.han.ssl import Draw, draw_masks, init_params, ssl_loss
from rp_jax.profiles.han.structure import (
  RelationGroup,
  Structure,
  as_structure,
  graph_structure,
  relation_groups,
  types_present,
)

__all__ = [
  "ATTENTIONS",
  "NUM_NODE_TYPES",
  "Draw",
  "HANEncoder",
  "HANLayer",
  "RelationGroup",
  "SSLModel",
  "Structure",
  "TrainLog",
  "TrainableConfig",
  "TypedDense",
  "draw_masks",
  "embed_models",
  "graph_structure",
  "grid_function",
  "init_params",
  "l2_normalize",
  "make_optimizer",
  "masked_softmax",
  "relation_groups",
  "segment_softmax",
  "ssl_loss",
  "train_ssl",
  "trainable_cells",
  "trainable_grid",
  "trainable_profiles",
  "types_present",
]

DEFAULT_CONFIG = TrainableConfig()  # the paper's settings (SPEC §2)
TRACE_COUNT = 0  # incremented each time ``trainable_grid`` traces (tests assert one compile)


# -- training --------------------------------------------------------------------------------


def _check_inputs(graph: Graph | Structure, x_NxD, rel_mask_R, type_counts) -> None:
  if len(type_counts) != NUM_NODE_TYPES:
    raise ValueError(
      f"type_counts must have {NUM_NODE_TYPES} entries {NODE_TYPES}, got {type_counts}"
    )
  n = int(sum(type_counts))
  if x_NxD.ndim != 2 or x_NxD.shape[0] != n:
    raise ValueError(f"x_NxD must be [N={n}, D] (GraphInfo node order), got {x_NxD.shape}")
  if isinstance(graph, Graph) and graph.node_type_N.shape != (n,):
    raise ValueError(
      f"graph has {graph.node_type_N.shape[0]} nodes but type_counts {type_counts} sum to {n}"
    )
  if rel_mask_R.shape != (NUM_RELATIONS,):
    raise ValueError(f"rel_mask_R must be [{NUM_RELATIONS}], got {rel_mask_R.shape}")


def make_optimizer(config: TrainableConfig, lr=None, weight_decay=None):
  """The shared ``train.adamw_cosine`` with the HAN's settings (lr, weight_decay traceable).

  Args:
    config: static hyperparameters (steps, clip, final fraction of the rate, defaults).
    lr, weight_decay: optional (traced) overrides of ``config.lr`` / ``config.weight_decay``.
  """
  return train_lib.adamw_cosine(
    total_steps=config.steps,
    learning_rate=config.lr if lr is None else lr,
    weight_decay=config.weight_decay if weight_decay is None else weight_decay,
    clip_norm=config.grad_clip,
    cosine_alpha=config.lr_final_frac,
  )


class TrainLog(NamedTuple):
  """Per-step training curves, each [K] (K = config.steps; leading axes under vmap).

  Attributes:
    loss_I: total self-supervised loss.
    feat_loss_I, score_loss_I: its two terms (feature reconstruction, hidden-score MSE).
    grad_norm_I: global gradient norm before clipping.
  """

  loss_I: jax.Array
  feat_loss_I: jax.Array
  score_loss_I: jax.Array
  grad_norm_I: jax.Array


def train_ssl(
  graph: Graph | Structure,
  x_NxD: jax.Array,
  rel_mask_R: jax.Array,
  depth: jax.Array | int,
  key: jax.Array,
  *,
  config: TrainableConfig = DEFAULT_CONFIG,
  type_counts: tuple[int, ...],
  lr: jax.Array | float | None = None,
  weight_decay: jax.Array | float | None = None,
):
  """Self-supervised training of the encoder; arguments as for ``trainable_profiles``.

  The scan runs ``steps + 1`` iterations: the last is the evaluation pass (``train`` = 0: no
  masking, no dropout, no update) whose model embeddings are the profiles. Reusing the
  training step for it keeps one copy of the encoder in the compiled program instead of two.

  Returns:
    (params, profile_MxD, TrainLog): trained parameters (a Flax variable dict), the
    L2-normalised model embeddings and the curves.
  """
  type_counts = tuple(int(c) for c in type_counts)
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  rel_mask_R = jnp.asarray(rel_mask_R, jnp.float32)
  _check_inputs(graph, x_NxD, rel_mask_R, type_counts)
  struct = as_structure(graph, type_counts, config)
  k_init, k_train = jax.random.split(key)
  params = init_params(k_init, struct, x_NxD, config=config, type_counts=type_counts)
  # The update runs on one flat vector (``gradient_step``'s flat mode): the same AdamW update
  # (elementwise; the clip uses the global norm) in a few fused kernels, not a few per parameter.
  flat0, unravel = ravel_pytree(params)
  tx = make_optimizer(config, lr, weight_decay)
  loss_fn = functools.partial(ssl_loss, config=config, type_counts=type_counts)

  def step(carry, xs):
    flat, opt_state, _ = carry
    k, train = xs
    (flat, opt_state), (loss, (fl, sl, z_M), g) = train_lib.gradient_step(
      lambda p: loss_fn(p, struct, x_NxD, rel_mask_R, depth, k, train=train),
      tx,
      flat,
      opt_state,
      update_scale=train,  # the evaluation pass leaves the parameters untouched
      unravel=unravel,
    )
    if config.report_progress:  # one unit per cell and step: a value batched like the loss
      jax.debug.callback(progress.on_epoch, jnp.where(jnp.isnan(loss), train, train), ordered=False)
    return (flat, opt_state, z_M), (loss, fl, sl, optax.tree.norm(g))

  n_m = type_counts[MODEL]
  train_I1 = jnp.concatenate([jnp.ones(config.steps), jnp.zeros(1)])
  carry0 = (flat0, tx.init(flat0), jnp.zeros((n_m, x_NxD.shape[-1]), jnp.float32))
  (flat, _, profile_MxD), curves = jax.lax.scan(
    step, carry0, (jax.random.split(k_train, config.steps + 1), train_I1)
  )
  log = TrainLog(*(c[: config.steps] for c in curves))
  return unravel(flat), profile_MxD, log


def embed_models(
  params,
  graph: Graph | Structure,
  x_NxD: jax.Array,
  rel_mask_R: jax.Array,
  depth: jax.Array | int,
  *,
  config: TrainableConfig = DEFAULT_CONFIG,
  type_counts: tuple[int, ...],
) -> jax.Array:
  """[M, D] L2-normalised model embeddings of ``params`` (the evaluation pass of training)."""
  type_counts = tuple(int(c) for c in type_counts)
  struct = as_structure(graph, type_counts, config)
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  rel_mask_R = jnp.asarray(rel_mask_R, jnp.float32)
  _, (_, _, z_M) = ssl_loss(
    params,
    struct,
    x_NxD,
    rel_mask_R,
    depth,
    jax.random.key(0),  # draws are unused when train = 0
    config=config,
    type_counts=type_counts,
    train=0.0,
  )
  return z_M


def trainable_profiles(
  graph: Graph | Structure,
  x_NxD: jax.Array,
  rel_mask_R: jax.Array,
  depth: jax.Array | int,
  key: jax.Array,
  *,
  config: TrainableConfig = DEFAULT_CONFIG,
  type_counts: tuple[int, ...],
  lr: jax.Array | float | None = None,
  weight_decay: jax.Array | float | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Trains the HAN self-supervised on one graph form and returns the model profiles.

  Pure and vmappable over key (seed), rel_mask_R, lr and weight_decay, and over depth when it
  is traced.

  Args:
    graph: the union graph (``graphs.build_graph``), or its ``graph_structure`` (computed once
      on the host, as ``trainable_grid`` does, instead of inside every traced call).
    x_NxD: [N, D] node features (encoded node texts, GraphInfo node order); D is free.
    rel_mask_R: [R] 0/1 organisational form (``graphs.relation_mask``).
    depth: HAN layers in 0..config.max_depth (0 = no message passing): a Python int is static
      and only that many layers are computed (one program per depth); a traced int computes
      all max_depth layers, those beyond the depth as the identity. Same numbers either way.
    key: a ``jax.random`` key (the seed: init, masks, dropout).
    config: static hyperparameters.
    type_counts: static ``GraphInfo.type_counts``.
    lr, weight_decay: optional traced overrides of ``config.lr`` / ``config.weight_decay``.

  Returns:
    (profile_MxD, loss_I): L2-normalised model embeddings and the training loss of each step
    (K = config.steps).
  """
  _, profile_MxD, log = train_ssl(
    graph,
    x_NxD,
    rel_mask_R,
    depth,
    key,
    config=config,
    type_counts=type_counts,
    lr=lr,
    weight_decay=weight_decay,
  )
  return profile_MxD, log.loss_I


def _cells(struct, x_NxD, rel_mask, seeds_S, depth_S=None, *, depth=None, config, type_counts):
  """S trainings in one vmap; see ``grid_function``."""
  global TRACE_COUNT
  TRACE_COUNT += 1
  if (depth is None) == (depth_S is None):
    raise ValueError("give exactly one of depth (static) and depth_S (traced)")

  def one(mask_R, seed, d):
    _, profile, log = train_ssl(
      struct,
      x_NxD,
      mask_R,
      depth if depth_S is None else d,
      jax.random.key(seed),
      config=config,
      type_counts=type_counts,
    )
    return profile, log

  in_axes = (0 if rel_mask.ndim == 2 else None, 0, None if depth_S is None else 0)
  return jax.vmap(one, in_axes=in_axes)(rel_mask, seeds_S, depth_S)


@functools.lru_cache(maxsize=8)
def grid_function(compiler_options: tuple[tuple[str, object], ...] = ()):
  """The jitted function behind ``trainable_cells`` and ``trainable_grid``.

  Call signature: ``(struct, x_NxD, rel_mask, seeds_S, depth_S=None, *, depth=None, config,
  type_counts) -> (profile_SxMxD, TrainLog of [S, K] curves)``: S trainings in one vmap, cell s
  with seed ``seeds_S[s]`` and the form ``rel_mask`` ([R], shared by the cells, or [S, Z]).
  The depth is either ``depth``, a static int shared by the cells (one compiled program per
  depth, each computing only its layers), or ``depth_S``, [S] traced depths (one program for
  every depth, but every cell computes all ``max_depth`` layers: the slower reference that
  ``benchmarks/trainable.py`` compares with). ``struct = graph_structure(...)``;
  ``.lower(...).compile()`` separates compile and run time. ``compiler_options`` are XLA
  options for ``jax.jit`` as (name, value) pairs.
  """
  return jax.jit(
    _cells,
    static_argnames=("depth", "config", "type_counts"),
    compiler_options=dict(compiler_options) or None,
  )


def _host_graph(graph: Graph | Structure, type_counts: tuple[int, ...]) -> Graph | Structure:
  """The graph as numpy arrays (its structure is then built once, on the host), checked."""
  if len(type_counts) != NUM_NODE_TYPES:
    raise ValueError(
      f"type_counts must have {NUM_NODE_TYPES} entries {NODE_TYPES}, got {type_counts}"
    )
  if isinstance(graph, Structure):
    return graph
  graph = Graph(*(np.asarray(a) for a in graph))
  node_type = np.asarray(graph.node_type_N)
  expect = np.repeat(np.arange(NUM_NODE_TYPES), type_counts)
  if node_type.shape != expect.shape or not (node_type == expect).all():
    raise ValueError(
      "graph.node_type_N must list the node types contiguously in the order "
      f"{NODE_TYPES} with counts {type_counts} (GraphInfo.type_counts)"
    )
  return graph


def trainable_cells(
  graph: Graph | Structure,
  x_NxD,
  rel_mask,
  depths_S,
  seeds_S,
  config: TrainableConfig = DEFAULT_CONFIG,
  type_counts: tuple[int, ...] = (),
  compiler_options: dict | None = None,
  return_log: bool = False,
) -> tuple[jax.Array, jax.Array | TrainLog]:
  """Trainable profiles of S cells (form, depth, seed), one compiled program per depth.

  The cells are grouped by depth; each distinct depth runs one ``jit(vmap(...))`` call over
  its cells (seeds and forms) that computes only that many layers, so a cell costs what a
  network of its depth costs (depth 1 runs a second, discarded layer: see ``HANEncoder``).
  Identical cells are trained once. Calls are dispatched without
  waiting, so the next depth compiles while the previous one runs.

  Args:
    graph: the union graph, or its ``graph_structure``.
    x_NxD: [N, D] node features.
    rel_mask: [R] form of every cell, or [S, Z] one per cell.
    depths_S: [S] int depths in 0..config.max_depth.
    seeds_S: [S] int seeds (seed ``s`` uses ``jax.random.key(s)``).
    config, type_counts, compiler_options, return_log: as for ``trainable_grid``.

  Returns:
    (profile_SxMxD, loss_SxI), or (profile_SxMxD, TrainLog of [S, K] curves) with
    ``return_log``. Cell s equals ``trainable_profiles(..., depths_S[s], key(seeds_S[s]))``
    on its form.
  """
  type_counts = tuple(int(c) for c in type_counts)
  graph = _host_graph(graph, type_counts)
  depths_S = np.asarray(depths_S, np.int32).reshape(-1)
  seeds_S = np.asarray(seeds_S, np.uint32).reshape(-1)
  if ((depths_S < 0) | (depths_S > config.max_depth)).any():
    raise ValueError(f"depths must lie in 0..max_depth={config.max_depth}, got {depths_S.tolist()}")
  if seeds_S.shape != depths_S.shape:
    raise ValueError(f"{len(depths_S)} depths but {len(seeds_S)} seeds")
  rel_mask = np.asarray(rel_mask, np.float32)
  if rel_mask.shape not in ((NUM_RELATIONS,), (len(depths_S), NUM_RELATIONS)):
    raise ValueError(
      f"rel_mask must be [{NUM_RELATIONS}] or [S, {NUM_RELATIONS}], got {rel_mask.shape}"
    )
  mask_SxR = np.broadcast_to(rel_mask, (len(depths_S), NUM_RELATIONS))
  cells = zip(depths_S.tolist(), seeds_S.tolist(), mask_SxR, strict=True)
  keys = [(d, s, m.tobytes()) for d, s, m in cells]
  first: dict[tuple, int] = {}
  for s, k in enumerate(keys):
    first.setdefault(k, s)
  rep_U = np.array(list(first.values()))  # the first cell of each distinct (depth, seed, form)
  fn = grid_function(tuple(sorted((compiler_options or {}).items())))
  struct = as_structure(graph, type_counts, config)
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  ran, outs = [], []
  for d in sorted(set(depths_S.tolist())):
    sel = rep_U[depths_S[rep_U] == d]
    masks = mask_SxR[sel]
    # One form for all cells: the mask is an unbatched argument (no per-cell copies of it).
    shared = jnp.asarray(masks[0] if (masks == masks[0]).all() else masks)
    kw = dict(depth=int(d), config=config, type_counts=type_counts)
    # Dispatched asynchronously: the next depth's program compiles while this one runs.
    outs.append(fn(struct, x_NxD, shared, jnp.asarray(seeds_S[sel]), **kw))
    ran.extend(sel.tolist())
  pos = {keys[s]: i for i, s in enumerate(ran)}
  where = np.array([pos[k] for k in keys])
  profile_SxMxD, log = jax.tree.map(lambda *v: jnp.concatenate(v)[where], *outs)
  return profile_SxMxD, (log if return_log else log.loss_I)


def trainable_grid(
  graph: Graph | Structure,
  x_NxD,
  rel_mask_R,
  depths_S,
  seeds_Z,
  config: TrainableConfig = DEFAULT_CONFIG,
  type_counts: tuple[int, ...] = (),
  compiler_options: dict | None = None,
  return_log: bool = False,
) -> tuple[jax.Array, jax.Array | TrainLog]:
  """Trainable profiles for every depth x seed of one form: one compiled program per depth.

  Each distinct depth is one ``jit(vmap(...))`` call over the seeds (``trainable_cells``).

  Args:
    graph, x_NxD, rel_mask_R: as for ``trainable_profiles``.
    depths_S: [S] int depths in 0..config.max_depth.
    seeds_Z: [R] int seeds (seed ``s`` uses ``jax.random.key(s)``).
    config: static hyperparameters.
    type_counts: ``GraphInfo.type_counts``.
    compiler_options: optional XLA options for the compile, e.g.
      ``{"xla_backend_optimization_level": 0}`` halves the CPU compile time (~12 s instead of
      ~24 s on 2 cores) for slower kernels: worth it for short runs and tests.
    return_log: return every training curve (a TrainLog) instead of the loss alone (the same
      compiled programs either way).

  Returns:
    (profile_SxZxMxD, loss_SxZxI), or (profile_SxZxMxD, TrainLog of [S, Z, I] curves) with
    ``return_log``. Cell [s, r] equals ``trainable_profiles(..., depths_S[s], key(seeds_Z[r]))``.
  """
  depths_S = np.asarray(depths_S, np.int32).reshape(-1)
  seeds_Z = np.asarray(seeds_Z, np.uint32).reshape(-1)
  S, R = len(depths_S), len(seeds_Z)
  profile, log = trainable_cells(
    graph,
    x_NxD,
    np.asarray(rel_mask_R, np.float32).reshape(NUM_RELATIONS),
    np.repeat(depths_S, R),
    np.tile(seeds_Z, S),
    config,
    type_counts,
    compiler_options,
    return_log=True,
  )
  profile, log = jax.tree.map(lambda v: v.reshape((S, R) + v.shape[1:]), (profile, log))
  return profile, (log if return_log else log.loss_I)
