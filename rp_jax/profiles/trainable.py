"""Trainable profiles (SPEC §2 "trainable"): a HAN-style heterogeneous attention GNN, trained
self-supervised on the union graph, with the depth as a traced argument.

Encoder (``HANEncoder``)::

  h^0   = per-node-type linear projection of x                       [N, hidden]
  h^l+1 = HAN_l(h^l if l == 0 else ELU(h^l))   for l < depth, else h^l     (layers >= depth are
                                                                      the identity, so depth is
                                                                      traced and vmappable)
  z     = L2-normalise(Dense(h^max_depth))                           [N, D], D = x's feature dim

One HAN layer (``HANLayer``), hidden = heads x channels:

- a per-node-type linear projection to ``heads`` heads;
- per relation r = (S -> T) and head, edge attention over the incoming edges of each destination
  *within that relation*: ``LeakyReLU_0.2(a_src_r . p_i + a_dst_r . p_j) + w_r s_e + u_r o_e``,
  softmax over those edges, attention dropout, message ``p_i + s_e c_r + o_e d_r``, sum, ReLU.
  On the scored relations (model <-> task) the edge's benchmark score reaches the encoder:
  ``s_e`` is its min-max normalised score and ``o_e`` = 1 where the score is visible (0 where the
  self-supervised task hides it; the reference forgot to feed the score to the encoder);
- semantic attention over the relations into each node type:
  ``beta_r = softmax_r(q . mean_j tanh(W out_r[j] + b))``, ``out_T = sum_r beta_r out_r``.

Organisational form = a traced [R] 0/1 relation mask: a masked relation's edges get no attention
weight and the relation no semantic weight (its semantic score is set to -1e30 before the
softmax), so its edges change nothing. A node type with no active incoming relation keeps its
projected features (the layer's per-type projection, no ReLU); such a type is absent from the
form's graph, so it also takes no part in the loss (below) and nothing downstream reads it.

Two implementations of the attention share the same parameters (``config.attention``):

- ``"dense"`` (default): every relation as a dense [n_T, n_S] block (built once, on the host,
  from the edge list), blocks of similar shape stacked into three groups (``relation_groups``);
  the per-(relation, destination) softmax is a masked row softmax. All node types but queries
  are small, so the blocks hold ~0.37M entries per head on the real data (the groups [6, 44, 44],
  [2, 2042, 44], [2, 44, 2042]), against 64k edges x 256 features gathered and scattered per
  layer by the edge version: no gathers or scatters (slow on CPU, slower under vmap), and a
  handful of batched ops per group instead of per relation (a smaller program compiles faster).
- ``"edges"``: the readable reference, ``segment_softmax`` over segment id
  ``relation * N + receiver`` (``num_segments = R * N``, static), then ``segment_sum``. The tests
  check the two agree. The dense version assumes at most one edge per (relation, receiver,
  sender), as ``graphs.build_graph`` guarantees; the edge version would count duplicates twice.

Self-supervised objective (``ssl_loss``), both terms weight 1:

- features: in each node type, ``round(0.3 n_type)`` nodes (drawn afresh each step) get a learned
  mask token (zeros at init) in place of their features; a linear decoder reconstructs the
  original features from the encoder output; MSE over the masked nodes of the types present in
  the form;
- scores: each model-task pair is hidden with probability 0.3 (both edge directions, else the
  score would leak through the reverse edge); a small MLP on the two endpoint embeddings predicts
  its normalised score; MSE over the hidden pairs (0 in forms without model<->task edges).

Only the rows the loss reads (masked nodes, models, tasks) go through the output projection, and
the decoder only sees the masked nodes: the D x D decoder on all N nodes would otherwise be the
largest cost of a step.

Training: AdamW (lr 1e-4, weight decay 1e-4, cosine decay to 5%), global-norm clip 1.0, 100
full-batch steps in ``lax.scan``, all randomness (init, masks, dropout) from one key. Profile =
the model rows of the encoder output (dropout off, nothing masked, every score visible),
L2-normalised; it is computed by one extra, update-free iteration of the same scan, so the
compiled program holds the encoder once.

Differences from the reference (stated, not hidden): the depth is a traced number of 256-wide
HAN layers between a per-type input projection and a linear output projection to D (the
reference's first / last HAN layers change width instead, which a traced depth cannot do); the
semantic-attention width defaults to 128, the HAN paper's value (PyG uses the layer width);
the edge score is an input of the encoder; parameters start from a unit-variance uniform draw
scaled like LeCun normal; the attention dropout draws its bits from a counter hash
(``counter_hash``) instead of threefry, and its rate is rounded to a multiple of 1/65536.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from rp_jax.graphs import (
  MODEL,
  NODE_TYPES,
  NUM_RELATIONS,
  QUERY,
  REL_DST,
  REL_HAS_SCORE,
  REL_SRC,
  TASK,
  Graph,
)

NUM_NODE_TYPES = len(NODE_TYPES)
ATTENTIONS = ("dense", "edges")
_NEG = -1e30  # "minus infinity" that keeps exp() and its gradient finite
TRACE_COUNT = 0  # incremented each time ``trainable_grid`` traces (tests assert one compile)

# The score features and the model-task pair grid assume the scored relations are model<->task.
assert all(
  {int(REL_SRC[r]), int(REL_DST[r])} == {MODEL, TASK} for r in np.flatnonzero(REL_HAS_SCORE)
), "scored relations must join model and task nodes"


@dataclasses.dataclass(frozen=True)
class TrainableConfig:
  """Static hyperparameters of the trainable profiles (hashable: a jit static argument).

  Attributes:
    hidden: width of the HAN layers (all heads together).
    heads: attention heads; ``hidden // heads`` channels per head.
    max_depth: number of HAN layers built; a traced depth in 0..max_depth uses the first ones.
    semantic_dim: width of the semantic-attention projection.
    attn_dropout: dropout on the attention weights during training.
    feat_mask_rate: fraction of the nodes of each type whose features are masked per step.
    score_mask_rate: probability that a model-task pair's score is hidden per step.
    feat_weight, score_weight: weights of the two loss terms.
    score_hidden: hidden width of the score-prediction MLP.
    lr, weight_decay: AdamW defaults (``trainable_profiles`` can override both, traced).
    lr_final_frac: the cosine schedule ends at ``lr * lr_final_frac``.
    grad_clip: global gradient-norm clip.
    steps: full-batch training steps.
    attention: "dense" (grouped relation blocks, fast) or "edges" (segment softmax, reference).
  """

  hidden: int = 256
  heads: int = 4
  max_depth: int = 4
  semantic_dim: int = 128
  attn_dropout: float = 0.1
  feat_mask_rate: float = 0.3
  score_mask_rate: float = 0.3
  feat_weight: float = 1.0
  score_weight: float = 1.0
  score_hidden: int = 64
  lr: float = 1e-4
  weight_decay: float = 1e-4
  lr_final_frac: float = 0.05
  grad_clip: float = 1.0
  steps: int = 100
  attention: str = "dense"

  def __post_init__(self):
    if self.attention not in ATTENTIONS:
      raise ValueError(f"unknown attention {self.attention!r}; expected one of {ATTENTIONS}")
    for name in ("hidden", "heads", "max_depth", "semantic_dim", "score_hidden", "steps"):
      v = getattr(self, name)
      if not isinstance(v, int) or v < 1:
        raise ValueError(f"TrainableConfig.{name} must be a positive integer, got {v!r}")
    if self.hidden % self.heads:
      raise ValueError(
        f"TrainableConfig.hidden ({self.hidden}) must be a multiple of heads ({self.heads})"
      )
    for name in ("attn_dropout", "feat_mask_rate", "score_mask_rate", "lr_final_frac"):
      v = getattr(self, name)
      if not 0.0 <= v <= 1.0:
        raise ValueError(f"TrainableConfig.{name} must lie in [0, 1], got {v!r}")

  @property
  def channels(self) -> int:
    return self.hidden // self.heads


# -- graph structure -------------------------------------------------------------------------


class RelationGroup(NamedTuple):
  """Relations whose dense blocks are stacked into one [G, n_dst, n_src] tensor (static).

  Attributes:
    rels: relation ids of the group.
    n_dst, n_src: padded block shape (the largest over the group's relations).
    scored: some relation of the group carries benchmark scores.
    shared_src: every relation of the group has the same source type (its source features
      are then used once instead of stacked G times).
  """

  rels: tuple[int, ...]
  n_dst: int
  n_src: int
  scored: bool
  shared_src: bool


@functools.lru_cache(maxsize=64)
def relation_groups(type_counts: tuple[int, ...]) -> tuple[RelationGroup, ...]:
  """The static grouping of relations for the dense attention.

  Relations are grouped by whether their destination / source is the query type: queries are
  the only type that grows with the data (2042 of 2121 nodes on the public data), so mixing
  them with the small types in one padded block would waste most of it, while within a group
  the padding is small (``[6, 44, 44]``, ``[2, 2042, 44]``, ``[2, 44, 2042]`` on the public data).
  One group costs a handful of batched ops instead of a handful per relation: that keeps the
  compiled program (and its compile time) small.
  """
  keys: dict[tuple[bool, bool], list[int]] = {}
  for r in range(NUM_RELATIONS):
    keys.setdefault((int(REL_DST[r]) == QUERY, int(REL_SRC[r]) == QUERY), []).append(r)
  groups = []
  for rels in keys.values():
    groups.append(
      RelationGroup(
        rels=tuple(rels),
        n_dst=max(type_counts[int(REL_DST[r])] for r in rels),
        n_src=max(type_counts[int(REL_SRC[r])] for r in rels),
        scored=bool(REL_HAS_SCORE[rels].any()),
        shared_src=len({int(REL_SRC[r]) for r in rels}) == 1,
      )
    )
  return tuple(groups)


class Structure(NamedTuple):
  """Static-shape views of a Graph used by the HAN layers (see ``graph_structure``).

  Attributes:
    adj_G: per relation group, [G, n_dst, n_src] float32 edge indicator (dense attention;
      entry [i, j, k] = edge from source k to destination j of the group's i-th relation).
    scored_G: per group, [G, n_dst, n_src] 1 where the edge carries a benchmark score.
    score_hat_G: per group, [G, n_dst, n_src] normalised score (0 where none).
    scored_MxT, score_hat_MxT: [M, T] the same for the model-task pairs (loss targets).
    senders_E, receivers_E, relation_E: [E] edge list (edge attention; None without edges).
    scored_E, score_hat_E: [E] as above, per edge (or None).
    pair_E: [E] int32 index into the flattened [M, T] model-task grid (0 off scored relations;
      or None).
  """

  adj_G: tuple[jax.Array, ...]
  scored_G: tuple[jax.Array, ...]
  score_hat_G: tuple[jax.Array, ...]
  scored_MxT: jax.Array
  score_hat_MxT: jax.Array
  senders_E: jax.Array
  receivers_E: jax.Array
  relation_E: jax.Array
  scored_E: jax.Array
  score_hat_E: jax.Array
  pair_E: jax.Array


def _offsets(type_counts: tuple[int, ...]) -> tuple[int, ...]:
  return tuple(int(x) for x in np.concatenate([[0], np.cumsum(type_counts)]))


def graph_structure(graph: Graph, type_counts: tuple[int, ...], *, edges: bool = True) -> Structure:
  """Dense relation blocks and per-edge score facts of a Graph (static shapes).

  Runs in numpy when the graph's arrays are numpy (so a jitted caller gets array arguments or
  constants, not scatters to compile), and in jax.numpy when they are traced.

  Args:
    graph: the union graph (node order: types contiguous, as ``graphs.build_graph`` makes it).
    type_counts: static ``GraphInfo.type_counts``.
    edges: keep the edge arrays (needed by ``attention="edges"`` only). Without them the
      Structure's shapes depend on the node counts alone, so graphs that differ only in their
      edges share one compiled program.
  """
  type_counts = tuple(int(c) for c in type_counts)
  arrays = (graph.senders_E, graph.receivers_E, graph.relation_E, graph.score_E, graph.score_hat_E)
  xp = np if all(isinstance(a, np.ndarray) for a in arrays) else jnp
  off = _offsets(type_counts)
  snd, rcv, rel = (xp.asarray(a).astype(np.int32) for a in arrays[:3])
  score_E = xp.asarray(graph.score_E).astype(np.float32)
  has_score_E = xp.asarray(REL_HAS_SCORE)[rel] & xp.isfinite(score_E)
  scored_E = has_score_E.astype(np.float32)
  shat_E = xp.where(has_score_E, xp.asarray(graph.score_hat_E).astype(np.float32), 0.0)

  def block(r, v_E):
    s_t, d_t = int(REL_SRC[r]), int(REL_DST[r])
    n_s, n_t = type_counts[s_t], type_counts[d_t]
    flat = (rcv - off[d_t]) * n_s + (snd - off[s_t])
    if xp is np:
      sel = rel == r
      b = np.bincount(flat[sel], weights=v_E[sel], minlength=n_t * n_s).astype(np.float32)
    else:  # other relations' edges land out of range and are dropped
      idx = jnp.where(rel == r, flat, n_t * n_s)
      b = jnp.zeros(n_t * n_s, jnp.float32).at[idx].add(v_E, mode="drop")
    return b.reshape(n_t, n_s)

  def stacked(group, v_E):
    pad = lambda b: xp.pad(b, ((0, group.n_dst - b.shape[0]), (0, group.n_src - b.shape[1])))
    return xp.stack([pad(block(r, v_E)) for r in group.rels])

  groups = relation_groups(type_counts)
  r_mt = int(np.flatnonzero(REL_HAS_SCORE & (REL_SRC == MODEL))[0])  # model -> task
  n_m, n_task = type_counts[MODEL], type_counts[TASK]
  src_is_model = xp.asarray(REL_SRC == MODEL)[rel]
  m_end = xp.where(src_is_model, snd, rcv) - off[MODEL]
  t_end = xp.where(src_is_model, rcv, snd) - off[TASK]
  pair_E = xp.where(has_score_E, m_end * n_task + t_end, 0)
  pair_E = xp.clip(pair_E, 0, max(n_m * n_task - 1, 0)).astype(np.int32)
  edge_arrays = (snd, rcv, rel, scored_E, shat_E, pair_E) if edges else (None,) * 6
  return Structure(
    tuple(stacked(g, xp.ones_like(scored_E)) for g in groups),
    tuple(stacked(g, scored_E) for g in groups),
    tuple(stacked(g, shat_E) for g in groups),
    block(r_mt, scored_E).T,
    block(r_mt, shat_E).T,
    *edge_arrays,
  )


def _as_structure(graph: Graph | Structure, type_counts, config: TrainableConfig) -> Structure:
  edges = config.attention == "edges"
  if not isinstance(graph, Structure):
    return graph_structure(graph, type_counts, edges=edges)
  if edges and graph.senders_E is None:
    raise ValueError('attention="edges" needs a Structure built with graph_structure(edges=True)')
  return graph


def _pair_block(r: int, grid_MxT: jax.Array) -> jax.Array:
  """A [M, T] model-task grid laid out as relation r's [n_T, n_S] block."""
  return grid_MxT.T if int(REL_SRC[r]) == MODEL else grid_MxT


def types_present(rel_mask_R: jax.Array) -> jax.Array:
  """[5] 1 for node types in the form (touched by an active relation; models always)."""
  into = jax.ops.segment_max(rel_mask_R, jnp.asarray(REL_DST), num_segments=NUM_NODE_TYPES)
  out = jax.ops.segment_max(rel_mask_R, jnp.asarray(REL_SRC), num_segments=NUM_NODE_TYPES)
  present = jnp.maximum(jnp.maximum(into, out), 0.0)
  return present.at[MODEL].set(1.0)


# -- attention primitives --------------------------------------------------------------------


def segment_softmax(
  logits_ExH: jax.Array,
  segment_ids_E: jax.Array,
  num_segments: int,
  mask_E: jax.Array | None = None,
) -> jax.Array:
  """Softmax of edge logits over the edges of each segment (e.g. a (relation, receiver) pair).

  Args:
    logits_ExH: [E, H] logits (H heads; any trailing shape works).
    segment_ids_E: [E] int segment of each edge.
    num_segments: static number of segments.
    mask_E: optional [E] bool; masked edges get weight 0 and do not count in the softmax.

  Returns:
    [E, H] weights summing to 1 over each segment's unmasked edges; 0 on masked edges. Segments
    without edges simply have none: no NaN anywhere, gradients included.
  """
  expand = lambda v: v.reshape(v.shape + (1,) * (logits_ExH.ndim - 1))
  if mask_E is None:
    mask_E = jnp.ones(segment_ids_E.shape, bool)
  keep = expand(mask_E)
  x = jnp.where(keep, logits_ExH, _NEG)
  mx = jax.ops.segment_max(x, segment_ids_E, num_segments=num_segments)
  mx = jax.lax.stop_gradient(jnp.where(jnp.isfinite(mx), mx, 0.0))
  e = jnp.where(keep, jnp.exp(x - mx[segment_ids_E]), 0.0)
  den = jax.ops.segment_sum(e, segment_ids_E, num_segments=num_segments)[segment_ids_E]
  # A safe denominator, not a tiny clamp: the clamp's square underflows to 0 in the gradient.
  return e / jnp.where(den > 0, den, 1.0)


def masked_softmax(logits: jax.Array, mask: jax.Array, axis: int) -> jax.Array:
  """Softmax along ``axis`` over the entries where ``mask``; 0 elsewhere and on empty rows."""
  x = jnp.where(mask, logits, _NEG)
  mx = jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
  e = jnp.where(mask, jnp.exp(x - mx), 0.0)
  den = jnp.sum(e, axis=axis, keepdims=True)
  return e / jnp.where(den > 0, den, 1.0)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Rows scaled to unit L2 norm; zero rows stay zero, with a finite gradient there too."""
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps * eps))


# -- Flax modules ----------------------------------------------------------------------------

# Parameter initialisation. ``init_params`` draws every parameter from ONE uniform draw scaled
# by these standard deviations (one RNG kernel instead of two per parameter keeps compile times
# short); the Flax initializers below have the same scales, for anyone calling ``Module.init``.
_fan_in = nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=-2, out_axis=-1)
_fan_in_typed = nn.initializers.variance_scaling(
  1.0, "fan_in", "normal", in_axis=-2, out_axis=-1, batch_axis=(0,)
)
_per_channel = lambda key, shape, dtype=jnp.float32: (
  jax.random.normal(key, shape, dtype) / np.sqrt(shape[-1])
)
_INIT_STD = {
  "kernel": lambda shape: 1.0 / np.sqrt(shape[-2]),
  "bias": lambda shape: 0.0,
  "mask_token": lambda shape: 0.0,
  "att": lambda shape: 1.0 / np.sqrt(shape[-1]),
  "score_w": lambda shape: 0.1,
  "semantic_q": lambda shape: 1.0 / np.sqrt(shape[-1]),
}


class TypedDense(nn.Module):
  """One linear map per node type (stacked [5, in, out]), applied to that type's rows."""

  features: int
  type_counts: tuple[int, ...]

  @nn.compact
  def __call__(self, x_NxF: jax.Array) -> jax.Array:
    off = _offsets(self.type_counts)
    shape = (NUM_NODE_TYPES, x_NxF.shape[-1], self.features)
    w = self.param("kernel", _fan_in_typed, shape)
    b = self.param("bias", nn.initializers.zeros, (NUM_NODE_TYPES, self.features))
    outs = [
      x_NxF[off[t] : off[t + 1]] @ w[t] + b[t][None, :]
      for t in range(NUM_NODE_TYPES)
      if off[t + 1] > off[t]
    ]
    return jnp.concatenate(outs, axis=0)


def _pad_to(v: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """``v`` zero-padded at the end of each axis to ``shape``."""
  return jnp.pad(v, [(0, n - m) for m, n in zip(v.shape, shape, strict=True)])


def counter_hash(seed: jax.Array, n: int) -> jax.Array:
  """[n] uint32 pseudo-random words: the lowbias32 integer hash of (index + mixed seed).

  A counter-based hash costs a few integer ops per word and fuses into its consumer, where
  ``jax.random.bits`` (threefry, ~20 rounds) took a sizeable share of a training step on CPU
  for the millions of dropout decisions a dense layer needs. Plenty for dropout.
  """

  def lowbias32(x):
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)

  return lowbias32(jnp.arange(n, dtype=jnp.uint32) + lowbias32(jnp.asarray(seed, jnp.uint32)))


def dropout_keep(seed: jax.Array, n: int, rate: float) -> tuple[jax.Array, float]:
  """[n] keep-mask with P(keep) ~ 1 - rate (16-bit uniforms, two per hashed word), and P(keep).

  The drop rate is rounded to a multiple of 1/65536.
  """
  threshold = int(round(rate * 65536))
  u16 = jax.lax.bitcast_convert_type(counter_hash(seed, (n + 1) // 2), jnp.uint16)
  return u16.reshape(-1)[:n] >= threshold, 1.0 - threshold / 65536


class HANLayer(nn.Module):
  """One heterogeneous attention layer (node- and semantic-level attention); see module doc."""

  config: TrainableConfig
  type_counts: tuple[int, ...]

  @nn.compact
  def __call__(
    self,
    h_NxF: jax.Array,
    struct: Structure,
    obs_MxT: jax.Array,
    rel_mask_R: jax.Array,
    drop_seed: jax.Array | int = 0,
    train: jax.Array | float = 0.0,
  ) -> jax.Array:
    """Applies the layer.

    Args:
      h_NxF: [N, hidden] node states.
      obs_MxT: [M, T] 1 where a model-task score is visible.
      rel_mask_R: [R] 0/1 relation mask.
      drop_seed: uint32 seed of this layer's attention dropout.
      train: traced 0/1: dropout applies only where 1.
    """
    cfg, tc = self.config, self.type_counts
    H, C, R = cfg.heads, cfg.channels, NUM_RELATIONS
    off = _offsets(tc)
    n = off[-1]
    p_NxHxC = TypedDense(H * C, tc, name="proj")(h_NxF).reshape(n, H, C)
    # Per relation: attention vectors (source, destination) and the score features' message
    # embeddings (score value, score visible); logit weights of the score features.
    att_Rx4xHxC = self.param("att", _per_channel, (R, 4, H, C))
    a_src, a_dst, c_RxHxC, d_RxHxC = (att_Rx4xHxC[:, i] for i in range(4))
    score_w_Rx2xH = self.param("score_w", nn.initializers.normal(0.1), (R, 2, H))
    w_RxH, u_RxH = score_w_Rx2xH[:, 0], score_w_Rx2xH[:, 1]
    dropping = cfg.attn_dropout > 0.0
    sl = lambda t: slice(off[t], off[t + 1])
    n_dst = [tc[int(REL_DST[r])] for r in range(R)]

    def dropout(alpha, keep, p_keep):
      return jnp.where(train > 0, jnp.where(keep, alpha / p_keep, 0.0), alpha)

    if cfg.attention == "dense":
      groups = relation_groups(tc)
      sizes = [len(g.rels) * H * g.n_dst * g.n_src for g in groups]
      if dropping:
        keep_all, p_keep = dropout_keep(drop_seed, sum(sizes), cfg.attn_dropout)
      # Attention terms of every node under every relation at once (N x R x H, small).
      el_s_RxHxN = jnp.einsum("nhc,rhc->rhn", p_NxHxC, a_src)
      el_d_RxHxN = jnp.einsum("nhc,rhc->rhn", p_NxHxC, a_dst)
      outs: list[jax.Array] = [None] * R
      start = 0
      for gi, g in enumerate(groups):
        rels = np.asarray(g.rels)
        src = [int(REL_SRC[r]) for r in g.rels]
        dst = [int(REL_DST[r]) for r in g.rels]
        pairs = list(zip(g.rels, src, dst, strict=True))
        el_s = jnp.stack([_pad_to(el_s_RxHxN[r, :, sl(s)], (H, g.n_src)) for r, s, _ in pairs])
        el_d = jnp.stack([_pad_to(el_d_RxHxN[r, :, sl(d)], (H, g.n_dst)) for r, _, d in pairs])
        logit = nn.leaky_relu(el_d[:, :, :, None] + el_s[:, :, None, :], 0.2)  # [G,H,dst,src]
        if g.scored:
          shape = (g.n_dst, g.n_src)
          obs = jnp.stack(
            [
              _pad_to(_pair_block(r, obs_MxT), shape) if REL_HAS_SCORE[r] else jnp.ones(shape)
              for r in g.rels
            ]
          )
          o = struct.scored_G[gi] * obs  # the edge's score is visible
          s = struct.score_hat_G[gi] * o
          logit = logit + s[:, None] * w_RxH[rels][:, :, None, None]
          logit = logit + o[:, None] * u_RxH[rels][:, :, None, None]
        edge = (struct.adj_G[gi] * rel_mask_R[rels][:, None, None]) > 0
        alpha = masked_softmax(logit, edge[:, None], axis=-1)
        if dropping:
          keep = keep_all[start : start + sizes[gi]].reshape(alpha.shape)
          alpha = dropout(alpha, keep, p_keep)
        start += sizes[gi]
        if g.shared_src:
          ps = _pad_to(p_NxHxC[sl(src[0])], (g.n_src, H, C))
          out = jnp.einsum("ghts,shc->gthc", alpha, ps)
        else:
          ps = jnp.stack([_pad_to(p_NxHxC[sl(t)], (g.n_src, H, C)) for t in src])
          out = jnp.einsum("ghts,gshc->gthc", alpha, ps)
        if g.scored:
          out = out + jnp.einsum("ghts,gts->gth", alpha, s)[..., None] * c_RxHxC[rels][:, None]
          out = out + jnp.einsum("ghts,gts->gth", alpha, o)[..., None] * d_RxHxC[rels][:, None]
        out = nn.relu(out).reshape(len(g.rels), g.n_dst, H * C)
        for i, r in enumerate(g.rels):
          outs[r] = out[i, : n_dst[r]]
    else:
      snd, rcv, rel = struct.senders_E, struct.receivers_E, struct.relation_E
      el_s_RxNxH = jnp.einsum("nhc,rhc->rnh", p_NxHxC, a_src)
      el_d_RxNxH = jnp.einsum("nhc,rhc->rnh", p_NxHxC, a_dst)
      logit_ExH = nn.leaky_relu(el_d_RxNxH[rel, rcv] + el_s_RxNxH[rel, snd], 0.2)
      if obs_MxT.size:
        o_E = struct.scored_E * obs_MxT.reshape(-1)[struct.pair_E]
      else:
        o_E = jnp.zeros_like(struct.scored_E)
      s_E = struct.score_hat_E * o_E
      logit_ExH = logit_ExH + s_E[:, None] * w_RxH[rel] + o_E[:, None] * u_RxH[rel]
      seg_E = rel * n + rcv
      alpha_ExH = segment_softmax(logit_ExH, seg_E, R * n, mask_E=rel_mask_R[rel] > 0)
      if dropping:
        keep, p_keep = dropout_keep(drop_seed, alpha_ExH.size, cfg.attn_dropout)
        alpha_ExH = dropout(alpha_ExH, keep.reshape(alpha_ExH.shape), p_keep)
      msg_ExHxC = (
        p_NxHxC[snd] + s_E[:, None, None] * c_RxHxC[rel] + o_E[:, None, None] * d_RxHxC[rel]
      )
      agg = jax.ops.segment_sum(alpha_ExH[:, :, None] * msg_ExHxC, seg_E, num_segments=R * n)
      agg_RxNxF = nn.relu(agg).reshape(R, n, H * C)
      outs = [agg_RxNxF[r, sl(int(REL_DST[r]))] for r in range(R)]

    # Semantic attention over the relations into each node type (k_lin and q shared by types):
    # score_r = q . mean_j tanh(W out_r[j] + b), all relations in one matmul.
    k_lin = nn.Dense(cfg.semantic_dim, kernel_init=_fan_in, name="semantic_k")
    q = self.param("semantic_q", _per_channel, (cfg.semantic_dim,))
    mean_RxB = np.zeros((R, sum(n_dst)), np.float32)
    for r, (a, b) in enumerate(itertools.pairwise(np.cumsum([0, *n_dst]))):
      mean_RxB[r, a:b] = 1.0 / max(b - a, 1)
    k_RxS = mean_RxB @ jnp.tanh(k_lin(jnp.concatenate(outs, axis=0)))
    into_5xR = np.arange(NUM_NODE_TYPES)[:, None] == REL_DST[None, :]
    on_5xR = jnp.asarray(into_5xR) & (rel_mask_R > 0)[None, :]
    logits_5xR = jnp.where(on_5xR, (k_RxS @ q)[None, :], _NEG)
    beta_5xR = jnp.where(on_5xR, jax.nn.softmax(logits_5xR, axis=-1), 0.0)
    new = []
    for t in range(NUM_NODE_TYPES):
      proj_t = p_NxHxC[sl(t)].reshape(tc[t], H * C)
      rels = np.flatnonzero(into_5xR[t])
      if len(rels) == 0 or tc[t] == 0:
        new.append(proj_t)
        continue
      mixed = sum(beta_5xR[t, r] * outs[r] for r in rels)
      # No active relation into the type: it is not in the form; keep its projection.
      new.append(jnp.where(jnp.any(on_5xR[t]), mixed, proj_t))
    return jnp.concatenate(new, axis=0)


class _HANStep(nn.Module):
  """Layer ``layer`` of the encoder as a scan step; the identity when layer >= depth."""

  config: TrainableConfig
  type_counts: tuple[int, ...]

  @nn.compact
  def __call__(self, h, layer, drop_seed, struct, obs_MxT, rel_mask_R, depth, train):
    u = jnp.where(layer == 0, h, nn.elu(h))  # ELU between layers, not before the first
    new = HANLayer(self.config, self.type_counts, name="layer")(
      u, struct, obs_MxT, rel_mask_R, drop_seed, train
    )
    return jnp.where(layer < depth, new, h), None


class HANEncoder(nn.Module):
  """Input projection, ``max_depth`` HAN layers (those >= depth are identity), output to D.

  The layers run in ``nn.scan`` (parameters stacked on a leading [max_depth] axis), so one
  layer is compiled, not max_depth of them.
  """

  config: TrainableConfig
  type_counts: tuple[int, ...]
  out_dim: int

  @nn.compact
  def __call__(
    self,
    x_NxD: jax.Array,
    struct: Structure,
    obs_MxT: jax.Array,
    rel_mask_R: jax.Array,
    depth: jax.Array,
    rows: jax.Array | None = None,
    drop_seed_L: jax.Array | None = None,
    train: jax.Array | float = 0.0,
  ) -> jax.Array:
    """Encodes the graph.

    Args:
      x_NxD: [N, D] node features.
      obs_MxT: [M, T] 1 where a model-task score is visible to the encoder.
      depth: traced int, number of HAN layers applied (0..max_depth).
      rows: optional [B] node ids; only those rows go through the output projection.
      drop_seed_L: [max_depth] uint32 attention-dropout seeds (None: zeros).
      train: traced 0/1; dropout applies only where 1.

    Returns:
      [N or B, out_dim] L2-normalised embeddings.
    """
    cfg = self.config
    if drop_seed_L is None:
      drop_seed_L = jnp.zeros((cfg.max_depth,), jnp.uint32)
    h = TypedDense(cfg.hidden, self.type_counts, name="input")(x_NxD)
    layers = nn.scan(
      _HANStep,
      variable_axes={"params": 0},
      split_rngs={"params": True},
      in_axes=(0, 0) + (nn.broadcast,) * 5,
      length=cfg.max_depth,
    )(cfg, self.type_counts, name="han")
    h, _ = layers(
      h, jnp.arange(cfg.max_depth), drop_seed_L, struct, obs_MxT, rel_mask_R, depth, train
    )
    if rows is not None:
      h = h[rows]
    return l2_normalize(nn.Dense(self.out_dim, kernel_init=_fan_in, name="output")(h))


class SSLModel(nn.Module):
  """The encoder plus the self-supervised heads (mask token, feature decoder, score MLP)."""

  config: TrainableConfig
  type_counts: tuple[int, ...]
  feat_dim: int

  def setup(self):
    cfg = self.config
    self.encoder = HANEncoder(cfg, self.type_counts, self.feat_dim)
    self.mask_token = self.param("mask_token", nn.initializers.zeros, (self.feat_dim,))
    self.decoder = nn.Dense(self.feat_dim, kernel_init=_fan_in)
    self.score_model = nn.Dense(cfg.score_hidden, kernel_init=_fan_in)
    self.score_task = nn.Dense(cfg.score_hidden, kernel_init=_fan_in, use_bias=False)
    self.score_out = nn.Dense(1, kernel_init=_fan_in)

  def __call__(
    self,
    x_NxD: jax.Array,
    struct: Structure,
    rel_mask_R: jax.Array,
    depth: jax.Array,
    feat_idx_B: jax.Array,
    feat_w_B: jax.Array,
    hidden_MxT: jax.Array,
    drop_seed_L: jax.Array,
    train: jax.Array | float,
  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One pass: (feature loss, score loss, model embeddings z_MxD); see ``ssl_loss``.

    With ``train`` = 0 nothing is masked, every score is visible and there is no dropout: the
    model embeddings are the profiles (the losses are then only diagnostics).
    """
    x_NxD = jnp.asarray(x_NxD)
    off = _offsets(self.type_counts)
    masked_N = jnp.zeros(x_NxD.shape[0], bool).at[feat_idx_B].set(True)
    x_in = jnp.where(masked_N[:, None] & (train > 0), self.mask_token[None, :], x_NxD)
    scored_MxT, target_MxT = struct.scored_MxT, struct.score_hat_MxT
    rows = jnp.concatenate(
      [
        feat_idx_B,
        jnp.arange(off[MODEL], off[MODEL + 1], dtype=jnp.int32),
        jnp.arange(off[TASK], off[TASK + 1], dtype=jnp.int32),
      ]
    )
    obs_MxT = 1.0 - hidden_MxT * train
    z = self.encoder(x_in, struct, obs_MxT, rel_mask_R, depth, rows, drop_seed_L, train)
    b, n_m = feat_idx_B.shape[0], self.type_counts[MODEL]
    z_B, z_M, z_T = z[:b], z[b : b + n_m], z[b + n_m :]

    err_B = jnp.mean(jnp.square(self.decoder(z_B) - x_NxD[feat_idx_B]), axis=-1)
    feat_loss = jnp.sum(feat_w_B * err_B) / jnp.maximum(jnp.sum(feat_w_B), 1.0)

    hid = nn.relu(self.score_model(z_M)[:, None, :] + self.score_task(z_T)[None, :, :])
    pred_MxT = self.score_out(hid)[..., 0]
    # Form without model<->task edges: nothing to predict.
    on = jnp.max(rel_mask_R[np.flatnonzero(REL_HAS_SCORE)]) > 0
    sel_MxT = scored_MxT * hidden_MxT * on
    score_sse = jnp.sum(sel_MxT * jnp.square(pred_MxT - target_MxT))
    return feat_loss, score_sse / jnp.maximum(jnp.sum(sel_MxT), 1.0), z_M


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


class Draw(NamedTuple):
  """One step's randomness (see ``draw_masks``)."""

  feat_idx_B: jax.Array
  feat_w_B: jax.Array
  hidden_MxT: jax.Array
  drop_seed_L: jax.Array


def draw_masks(
  key: jax.Array,
  config: TrainableConfig,
  type_counts: tuple[int, ...],
  rel_mask_R: jax.Array,
) -> Draw:
  """One step's masking and dropout draw.

  Returns:
    Draw: the masked nodes (``round(rate * n_type)`` of each type, a static count), their loss
    weights (1 if the node's type is in the form), the 0/1 grid of hidden model-task scores and
    the attention-dropout seed of every layer.
  """
  off = _offsets(type_counts)
  k_feat, k_pair, k_drop = jax.random.split(key, 3)
  counts = [int(round(config.feat_mask_rate * c)) for c in type_counts]
  # One sort for all types: node types are contiguous, so sorting type + U[0, 1) shuffles
  # within each type's block and keeps the blocks in place.
  node_type_N = np.repeat(np.arange(NUM_NODE_TYPES), type_counts).astype(np.float32)
  order = jnp.argsort(node_type_N + jax.random.uniform(k_feat, (off[-1],))).astype(jnp.int32)
  feat_idx = jnp.concatenate([order[off[t] : off[t] + k] for t, k in enumerate(counts)])
  feat_w = types_present(rel_mask_R)[np.repeat(np.arange(NUM_NODE_TYPES), counts)]
  shape = (type_counts[MODEL], type_counts[TASK])
  hidden = jax.random.bernoulli(k_pair, config.score_mask_rate, shape).astype(jnp.float32)
  drop_seed_L = jax.random.bits(k_drop, (config.max_depth,), jnp.uint32)
  return Draw(feat_idx, feat_w, hidden, drop_seed_L)


def ssl_loss(
  params,
  struct: Structure,
  x_NxD: jax.Array,
  rel_mask_R: jax.Array,
  depth: jax.Array,
  key: jax.Array,
  *,
  config: TrainableConfig,
  type_counts: tuple[int, ...],
  train: jax.Array | float = 1.0,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
  """Self-supervised loss of one step, masks and dropout drawn from ``key``.

  Args:
    train: traced 0/1; 0 = evaluation pass (nothing masked, no dropout).

  Returns:
    (total, (feature MSE, score MSE, z_MxD)), total = feat_weight * feature + score_weight *
    score; z_MxD are the model rows of the encoder output.
  """
  model = SSLModel(config, tuple(type_counts), x_NxD.shape[-1])
  draw = draw_masks(key, config, type_counts, rel_mask_R)
  fl, sl, z_M = model.apply(params, x_NxD, struct, rel_mask_R, depth, *draw, train)
  return config.feat_weight * fl + config.score_weight * sl, (fl, sl, z_M)


def init_params(
  key: jax.Array,
  struct: Structure,
  x_NxD: jax.Array,
  *,
  config: TrainableConfig,
  type_counts: tuple[int, ...],
):
  """Initial parameters of the encoder and the self-supervised heads.

  Every parameter comes from one unit-variance uniform draw, scaled by ``_INIT_STD``: kernels
  std 1/sqrt(fan_in) (LeCun; uniform like PyTorch's Linear default, not normal), biases and
  the mask token 0, attention vectors 1/sqrt(channels), score-feature logit weights 0.1.
  """
  model = SSLModel(config, tuple(type_counts), x_NxD.shape[-1])
  mask = jnp.ones((NUM_RELATIONS,), jnp.float32)
  shapes = jax.eval_shape(
    lambda: model.init(
      jax.random.key(0),
      x_NxD,
      struct,
      mask,
      1,
      *draw_masks(jax.random.key(0), config, type_counts, mask),
      0.0,
    )
  )
  leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
  sizes = [int(np.prod(leaf.shape)) for _, leaf in leaves]
  # Uniform with unit variance: a normal sampler (erfinv) would be copied by XLA into every
  # leaf's slice, a dozen large kernels to compile for a one-off draw.
  z = jax.random.uniform(key, (sum(sizes),), jnp.float32, -np.sqrt(3.0), np.sqrt(3.0))
  out, start = [], 0
  for (path, leaf), size in zip(leaves, sizes, strict=True):
    name = getattr(path[-1], "key", str(path[-1]))
    if name not in _INIT_STD:
      raise ValueError(f"no init rule for parameter {jax.tree_util.keystr(path)}")
    std = float(_INIT_STD[name](leaf.shape))
    out.append(z[start : start + size].reshape(leaf.shape) * std)
    start += size
  return jax.tree_util.tree_unflatten(treedef, out)


def make_optimizer(config: TrainableConfig, lr=None, weight_decay=None):
  """AdamW with cosine decay to ``lr_final_frac`` and global-norm clipping (lr, wd traceable)."""
  lr = config.lr if lr is None else lr
  wd = config.weight_decay if weight_decay is None else weight_decay
  cosine = optax.cosine_decay_schedule(1.0, config.steps, alpha=config.lr_final_frac)
  return optax.chain(
    optax.clip_by_global_norm(config.grad_clip),
    optax.adamw(learning_rate=lambda count: lr * cosine(count), weight_decay=wd),
  )


class TrainLog(NamedTuple):
  """Per-step training curves, each [K] (K = config.steps; leading axes under vmap).

  Attributes:
    loss_K: total self-supervised loss.
    feat_loss_K, score_loss_K: its two terms (feature reconstruction, hidden-score MSE).
    grad_norm_K: global gradient norm before clipping.
  """

  loss_K: jax.Array
  feat_loss_K: jax.Array
  score_loss_K: jax.Array
  grad_norm_K: jax.Array


def train_ssl(
  graph: Graph | Structure,
  x_NxD: jax.Array,
  rel_mask_R: jax.Array,
  depth: jax.Array | int,
  key: jax.Array,
  *,
  config: TrainableConfig = TrainableConfig(),
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
  struct = _as_structure(graph, type_counts, config)
  k_init, k_train = jax.random.split(key)
  params = init_params(k_init, struct, x_NxD, config=config, type_counts=type_counts)
  # The optimizer sees one flat vector: the same AdamW update (it is elementwise, and the clip
  # uses the global norm) in a few fused kernels instead of a few per parameter; the barrier
  # stops XLA from splitting it back into per-parameter pieces.
  flat0, unravel = ravel_pytree(params)
  tx = make_optimizer(config, lr, weight_decay)
  grad_fn = jax.value_and_grad(
    functools.partial(ssl_loss, config=config, type_counts=type_counts), has_aux=True
  )

  def step(carry, xs):
    flat, opt_state, _ = carry
    k, train = xs
    (loss, (fl, sl, z_M)), grads = grad_fn(
      unravel(flat), struct, x_NxD, rel_mask_R, depth, k, train=train
    )
    g = jax.lax.optimization_barrier(ravel_pytree(grads)[0])
    updates, opt_state = tx.update(g, opt_state, flat)
    return (flat + train * updates, opt_state, z_M), (loss, fl, sl, optax.tree.norm(g))

  n_m = type_counts[MODEL]
  train_K1 = jnp.concatenate([jnp.ones(config.steps), jnp.zeros(1)])
  carry0 = (flat0, tx.init(flat0), jnp.zeros((n_m, x_NxD.shape[-1]), jnp.float32))
  (flat, _, profile_MxD), curves = jax.lax.scan(
    step, carry0, (jax.random.split(k_train, config.steps + 1), train_K1)
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
  config: TrainableConfig = TrainableConfig(),
  type_counts: tuple[int, ...],
) -> jax.Array:
  """[M, D] L2-normalised model embeddings of ``params`` (the evaluation pass of training)."""
  type_counts = tuple(int(c) for c in type_counts)
  struct = _as_structure(graph, type_counts, config)
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
  config: TrainableConfig = TrainableConfig(),
  type_counts: tuple[int, ...],
  lr: jax.Array | float | None = None,
  weight_decay: jax.Array | float | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Trains the HAN self-supervised on one graph form and returns the model profiles.

  Pure and vmappable over depth, key (seed), rel_mask_R, lr and weight_decay.

  Args:
    graph: the union graph (``graphs.build_graph``), or its ``graph_structure`` (computed once
      on the host, as ``trainable_grid`` does, instead of inside every traced call).
    x_NxD: [N, D] node features (encoded node texts, GraphInfo node order); D is free.
    rel_mask_R: [R] 0/1 organisational form (``graphs.relation_mask``).
    depth: traced int in 1..config.max_depth (0 = no message passing).
    key: a ``jax.random`` key (the seed: init, masks, dropout).
    config: static hyperparameters.
    type_counts: static ``GraphInfo.type_counts``.
    lr, weight_decay: optional traced overrides of ``config.lr`` / ``config.weight_decay``.

  Returns:
    (profile_MxD, loss_K): L2-normalised model embeddings and the training loss of each step
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
  return profile_MxD, log.loss_K


def _grid(struct, x_NxD, rel_mask_R, depths_S, seeds_R, *, config, type_counts):
  global TRACE_COUNT
  TRACE_COUNT += 1

  def one(depth, seed):
    _, profile, log = train_ssl(
      struct,
      x_NxD,
      rel_mask_R,
      depth,
      jax.random.key(seed),
      config=config,
      type_counts=type_counts,
    )
    return profile, log

  # One vmap over the S x R cells: it compiles twice as fast as vmap(vmap(...)) on CPU.
  S, R = depths_S.shape[0], seeds_R.shape[0]
  profile_CxMxD, log_C = jax.vmap(one)(jnp.repeat(depths_S, R), jnp.tile(seeds_R, S))
  return jax.tree.map(lambda v: v.reshape((S, R) + v.shape[1:]), (profile_CxMxD, log_C))


@functools.lru_cache(maxsize=8)
def grid_function(compiler_options: tuple[tuple[str, object], ...] = ()):
  """The jitted grid function behind ``trainable_grid`` (static: config, type_counts).

  Call signature: ``(struct, x_NxD, rel_mask_R, depths_S, seeds_R, *, config, type_counts)``
  with ``struct = graph_structure(...)``; ``.lower(...).compile()`` separates compile and run
  time (benchmarks). ``compiler_options`` are XLA options for ``jax.jit`` as (name, value)
  pairs.
  """
  return jax.jit(
    _grid,
    static_argnames=("config", "type_counts"),
    compiler_options=dict(compiler_options) or None,
  )


def trainable_grid(
  graph: Graph,
  x_NxD,
  rel_mask_R,
  depths_S,
  seeds_R,
  config: TrainableConfig = TrainableConfig(),
  type_counts: tuple[int, ...] = (),
  compiler_options: dict | None = None,
  return_log: bool = False,
) -> tuple[jax.Array, jax.Array | TrainLog]:
  """Trainable profiles for every depth x seed in one compiled call (``jit(vmap(...))``).

  Args:
    graph, x_NxD, rel_mask_R: as for ``trainable_profiles``.
    depths_S: [S] int depths in 0..config.max_depth.
    seeds_R: [R] int seeds (seed ``s`` uses ``jax.random.key(s)``).
    config: static hyperparameters.
    type_counts: ``GraphInfo.type_counts``.
    compiler_options: optional XLA options for the compile, e.g.
      ``{"xla_backend_optimization_level": 0}`` halves the CPU compile time (~12 s instead of
      ~24 s on 2 cores) for slower kernels: worth it for short runs and tests.
    return_log: return every training curve (a TrainLog) instead of the loss alone (the same
      compiled program either way).

  Returns:
    (profile_SxRxMxD, loss_SxRxK), or (profile_SxRxMxD, TrainLog of [S, R, K] curves) with
    ``return_log``. Cell [s, r] equals ``trainable_profiles(..., depths_S[s], key(seeds_R[r]))``.
  """
  type_counts = tuple(int(c) for c in type_counts)
  if len(type_counts) != NUM_NODE_TYPES:
    raise ValueError(
      f"type_counts must have {NUM_NODE_TYPES} entries {NODE_TYPES}, got {type_counts}"
    )
  if isinstance(graph, Graph):  # host arrays: the structure is built with numpy, once
    graph = Graph(*(np.asarray(a) for a in graph))
  node_type = np.asarray(graph.node_type_N)
  expect = np.repeat(np.arange(NUM_NODE_TYPES), type_counts)
  if node_type.shape != expect.shape or not (node_type == expect).all():
    raise ValueError(
      "graph.node_type_N must list the node types contiguously in the order "
      f"{NODE_TYPES} with counts {type_counts} (GraphInfo.type_counts)"
    )
  depths_S = np.asarray(depths_S, np.int32).reshape(-1)
  if ((depths_S < 0) | (depths_S > config.max_depth)).any():
    raise ValueError(f"depths must lie in 0..max_depth={config.max_depth}, got {depths_S.tolist()}")
  seeds_R = np.asarray(seeds_R, np.uint32).reshape(-1)
  options = tuple(sorted((compiler_options or {}).items()))
  profile_SxRxMxD, log = grid_function(options)(
    _as_structure(graph, type_counts, config),
    jnp.asarray(x_NxD, jnp.float32),
    jnp.asarray(rel_mask_R, jnp.float32),
    jnp.asarray(depths_S),
    jnp.asarray(seeds_R),
    config=config,
    type_counts=type_counts,
  )
  return profile_SxRxMxD, (log if return_log else log.loss_K)
