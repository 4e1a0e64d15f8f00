"""Flax modules of the HAN profiles: typed projections, the HAN layer, encoder, SSL heads.

Encoder (``HANEncoder``)::

  h^0   = per-node-type linear projection of x                       [N, hidden]
  h^l+1 = HAN_l(h^l if l == 0 else ELU(h^l))   for l < depth
  z     = L2-normalise(Dense(h^depth))                               [N, D], D = x's feature dim

The ``max_depth`` layers' parameters are stacked on a leading axis and the layers run in
``nn.scan`` (one layer compiled, not max_depth). The depth is either a Python int (static: the
scan runs over the first ``depth`` layers only, so a network costs what its depth costs) or a
traced int (every layer runs and those >= depth pass their input through: vmappable over depth,
but every cell pays for ``max_depth`` layers). Both give bitwise the same numbers; to keep them
so, a static depth 1 runs a second layer and discards it (XLA would inline a one-layer loop and
round differently).

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
weight and the relation no semantic weight (its semantic score is set to ``ops.NEG`` before the
softmax), so its edges change nothing. A node type with no active incoming relation keeps its
projected features (the layer's per-type projection, no ReLU); such a type is absent from the
form's graph, so it also takes no part in the loss and nothing downstream reads it.

Two implementations of the attention share the same parameters (``config.attention``):

- ``"dense"`` (default): the grouped dense relation blocks of ``structure.relation_groups``; the
  per-(relation, destination) softmax is a masked row softmax. No gathers or scatters (slow on
  CPU, slower under vmap: the edge version gathers and scatters 64k edges x 256 features per
  layer on the real data), and a handful of batched ops per group instead of per relation (a
  smaller program compiles faster).
- ``"edges"``: the readable reference, ``segment_softmax`` over segment id
  ``relation * N + receiver`` (``num_segments = R * N``, static), then ``segment_sum``. The tests
  check the two agree; the edge version would count duplicate edges twice.

The attention dropout draws its bits from a counter hash (``ops.counter_hash``) instead of
threefry, and its rate is rounded to a multiple of 1/65536.
"""

from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rp_jax import ops
from rp_jax.graphs import (
  MODEL,
  NUM_NODE_TYPES,
  NUM_RELATIONS,
  REL_DST,
  REL_HAS_SCORE,
  REL_SRC,
  TASK,
)
from rp_jax.profiles.han.config import TrainableConfig
from rp_jax.profiles.han.structure import Structure, offsets, pair_block, relation_groups

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
INIT_STD = {
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
    off = offsets(self.type_counts)
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


def _dropout(alpha, keep, p_keep, train):
  """Inverted dropout of attention weights where ``train`` > 0."""
  return jnp.where(train > 0, jnp.where(keep, alpha / p_keep, 0.0), alpha)


def _dense_attention(p_NxHxD, att_Rx4xHxD, score_w_Rx2xH, struct, obs_MxT, rel_mask_R, drop, *, tc):
  """Per-relation attention and messages on the grouped dense blocks.

  Args:
    p_NxHxD: [N, H, C] projected node states.
    att_Rx4xHxD, score_w_Rx2xH: the layer's attention and score-feature parameters.
    struct: the graph's Structure (dense blocks).
    obs_MxT: [M, T] 1 where a model-task score is visible.
    rel_mask_R: [R] 0/1 relation mask.
    drop: None (no dropout) or (drop_seed, rate, train).
    tc: static type counts.

  Returns:
    [R] list of [n_T, H * C] ReLU'd aggregated messages into each relation's destination type.
  """
  _, H, C = p_NxHxD.shape
  R = NUM_RELATIONS
  off = offsets(tc)
  sl = lambda t: slice(off[t], off[t + 1])
  a_src, a_dst, c_RxHxD, d_RxHxD = (att_Rx4xHxD[:, i] for i in range(4))
  w_RxH, u_RxH = score_w_Rx2xH[:, 0], score_w_Rx2xH[:, 1]
  groups = relation_groups(tc)
  sizes = [len(g.rels) * H * g.n_dst * g.n_src for g in groups]
  if drop is not None:
    drop_seed, rate, train = drop
    keep_all, p_keep = ops.hash_dropout_keep(drop_seed, sum(sizes), rate)
  # Attention terms of every node under every relation at once (N x R x H, small).
  el_s_RxHxN = jnp.einsum("nhc,rhc->rhn", p_NxHxD, a_src)
  el_d_RxHxN = jnp.einsum("nhc,rhc->rhn", p_NxHxD, a_dst)
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
          _pad_to(pair_block(r, obs_MxT), shape) if REL_HAS_SCORE[r] else jnp.ones(shape)
          for r in g.rels
        ]
      )
      o = struct.scored_G[gi] * obs  # the edge's score is visible
      s = struct.score_hat_G[gi] * o
      logit = logit + s[:, None] * w_RxH[rels][:, :, None, None]
      logit = logit + o[:, None] * u_RxH[rels][:, :, None, None]
    edge = (struct.adj_G[gi] * rel_mask_R[rels][:, None, None]) > 0
    alpha = ops.masked_softmax(logit, edge[:, None], axis=-1)
    if drop is not None:
      keep = keep_all[start : start + sizes[gi]].reshape(alpha.shape)
      alpha = _dropout(alpha, keep, p_keep, train)
    start += sizes[gi]
    if g.shared_src:
      ps = _pad_to(p_NxHxD[sl(src[0])], (g.n_src, H, C))
      out = jnp.einsum("ghts,shc->gthc", alpha, ps)
    else:
      ps = jnp.stack([_pad_to(p_NxHxD[sl(t)], (g.n_src, H, C)) for t in src])
      out = jnp.einsum("ghts,gshc->gthc", alpha, ps)
    if g.scored:
      out = out + jnp.einsum("ghts,gts->gth", alpha, s)[..., None] * c_RxHxD[rels][:, None]
      out = out + jnp.einsum("ghts,gts->gth", alpha, o)[..., None] * d_RxHxD[rels][:, None]
    out = nn.relu(out).reshape(len(g.rels), g.n_dst, H * C)
    for i, r in enumerate(g.rels):
      outs[r] = out[i, : tc[int(REL_DST[r])]]
  return outs


def _edge_attention(p_NxHxD, att_Rx4xHxD, score_w_Rx2xH, struct, obs_MxT, rel_mask_R, drop, *, tc):
  """The edge-list reference of ``_dense_attention`` (same arguments and result)."""
  n, H, C = p_NxHxD.shape
  R = NUM_RELATIONS
  off = offsets(tc)
  a_src, a_dst, c_RxHxD, d_RxHxD = (att_Rx4xHxD[:, i] for i in range(4))
  w_RxH, u_RxH = score_w_Rx2xH[:, 0], score_w_Rx2xH[:, 1]
  snd, rcv, rel = struct.senders_E, struct.receivers_E, struct.relation_E
  el_s_RxNxH = jnp.einsum("nhc,rhc->rnh", p_NxHxD, a_src)
  el_d_RxNxH = jnp.einsum("nhc,rhc->rnh", p_NxHxD, a_dst)
  logit_ExH = nn.leaky_relu(el_d_RxNxH[rel, rcv] + el_s_RxNxH[rel, snd], 0.2)
  if obs_MxT.size:
    o_E = struct.scored_E * obs_MxT.reshape(-1)[struct.pair_E]
  else:
    o_E = jnp.zeros_like(struct.scored_E)
  s_E = struct.score_hat_E * o_E
  logit_ExH = logit_ExH + s_E[:, None] * w_RxH[rel] + o_E[:, None] * u_RxH[rel]
  seg_E = rel * n + rcv
  alpha_ExH = ops.segment_softmax(logit_ExH, seg_E, R * n, mask_E=rel_mask_R[rel] > 0)
  if drop is not None:
    drop_seed, rate, train = drop
    keep, p_keep = ops.hash_dropout_keep(drop_seed, alpha_ExH.size, rate)
    alpha_ExH = _dropout(alpha_ExH, keep.reshape(alpha_ExH.shape), p_keep, train)
  msg_ExHxD = p_NxHxD[snd] + s_E[:, None, None] * c_RxHxD[rel] + o_E[:, None, None] * d_RxHxD[rel]
  agg = jax.ops.segment_sum(alpha_ExH[:, :, None] * msg_ExHxD, seg_E, num_segments=R * n)
  agg_RxNxD = nn.relu(agg).reshape(R, n, H * C)
  return [agg_RxNxD[r, off[int(REL_DST[r])] : off[int(REL_DST[r]) + 1]] for r in range(R)]


class HANLayer(nn.Module):
  """One heterogeneous attention layer (node- and semantic-level attention); see module doc."""

  config: TrainableConfig
  type_counts: tuple[int, ...]

  @nn.compact
  def __call__(
    self,
    h_NxD: jax.Array,
    struct: Structure,
    obs_MxT: jax.Array,
    rel_mask_R: jax.Array,
    drop_seed: jax.Array | int = 0,
    train: jax.Array | float = 0.0,
  ) -> jax.Array:
    """Applies the layer.

    Args:
      h_NxD: [N, hidden] node states.
      struct: the graph's Structure.
      obs_MxT: [M, T] 1 where a model-task score is visible.
      rel_mask_R: [R] 0/1 relation mask.
      drop_seed: uint32 seed of this layer's attention dropout.
      train: traced 0/1: dropout applies only where 1.

    Returns:
      [N, hidden] new node states.
    """
    cfg, tc = self.config, self.type_counts
    H, C, R = cfg.heads, cfg.channels, NUM_RELATIONS
    off = offsets(tc)
    p_NxHxD = TypedDense(H * C, tc, name="proj")(h_NxD).reshape(off[-1], H, C)
    # Per relation: attention vectors (source, destination) and the score features' message
    # embeddings (score value, score visible); logit weights of the score features.
    att_Rx4xHxD = self.param("att", _per_channel, (R, 4, H, C))
    score_w_Rx2xH = self.param("score_w", nn.initializers.normal(0.1), (R, 2, H))
    drop = (drop_seed, cfg.attn_dropout, train) if cfg.attn_dropout > 0.0 else None
    attend = _dense_attention if cfg.attention == "dense" else _edge_attention
    outs = attend(p_NxHxD, att_Rx4xHxD, score_w_Rx2xH, struct, obs_MxT, rel_mask_R, drop, tc=tc)
    k_lin = nn.Dense(cfg.semantic_dim, kernel_init=_fan_in, name="semantic_k")
    q = self.param("semantic_q", _per_channel, (cfg.semantic_dim,))
    return _semantic_attention(outs, p_NxHxD, k_lin, q, rel_mask_R, tc=tc)


def _semantic_attention(outs, p_NxHxD, k_lin, q_S, rel_mask_R, *, tc):
  """Mixes the relations into each node type: score_r = q . mean_j tanh(W out_r[j] + b).

  ``k_lin`` and ``q_S`` are shared by the node types; all relations go through one matmul. A
  type without an active incoming relation keeps its projection ``p_NxHxD``.
  """
  _, H, C = p_NxHxD.shape
  off = offsets(tc)
  n_dst = [tc[int(REL_DST[r])] for r in range(NUM_RELATIONS)]
  mean_RxB = np.zeros((NUM_RELATIONS, sum(n_dst)), np.float32)
  for r, (a, b) in enumerate(itertools.pairwise(np.cumsum([0, *n_dst]))):
    mean_RxB[r, a:b] = 1.0 / max(b - a, 1)
  k_RxS = mean_RxB @ jnp.tanh(k_lin(jnp.concatenate(outs, axis=0)))
  into_5xR = np.arange(NUM_NODE_TYPES)[:, None] == REL_DST[None, :]
  on_5xR = jnp.asarray(into_5xR) & (rel_mask_R > 0)[None, :]
  logits_5xR = jnp.where(on_5xR, (k_RxS @ q_S)[None, :], ops.NEG)
  beta_5xR = jnp.where(on_5xR, jax.nn.softmax(logits_5xR, axis=-1), 0.0)
  new = []
  for t in range(NUM_NODE_TYPES):
    proj_t = p_NxHxD[off[t] : off[t + 1]].reshape(tc[t], H * C)
    rels = np.flatnonzero(into_5xR[t])
    if len(rels) == 0 or tc[t] == 0:
      new.append(proj_t)
      continue
    mixed = sum(beta_5xR[t, r] * outs[r] for r in rels)
    # No active relation into the type: it is not in the form; keep its projection.
    new.append(jnp.where(jnp.any(on_5xR[t]), mixed, proj_t))
  return jnp.concatenate(new, axis=0)


class _HANStep(nn.Module):
  """Layer ``layer`` of the encoder as a scan step; with ``gate``, the identity where
  layer >= depth (a select: the layer is computed either way)."""

  config: TrainableConfig
  type_counts: tuple[int, ...]
  gate: bool = True

  @nn.compact
  def __call__(self, h, layer, drop_seed, struct, obs_MxT, rel_mask_R, depth, train):
    u = jnp.where(layer == 0, h, nn.elu(h))  # ELU between layers, not before the first
    new = HANLayer(self.config, self.type_counts, name="layer")(
      u, struct, obs_MxT, rel_mask_R, drop_seed, train
    )
    return (jnp.where(layer < depth, new, h) if self.gate else new), None


def is_static_depth(depth) -> bool:
  """A Python (or numpy) integer depth is static: only that many layers are built."""
  return isinstance(depth, int | np.integer)


class HANEncoder(nn.Module):
  """Input projection, HAN layers up to ``depth``, output projection to D (see module doc).

  The ``max_depth`` layers' parameters are stacked on a leading axis ("han"); the layers run in
  ``nn.scan``, so one layer is compiled, not max_depth of them.
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
    depth: jax.Array | int,
    rows: jax.Array | None = None,
    drop_seed_L: jax.Array | None = None,
    train: jax.Array | float = 0.0,
  ) -> jax.Array:
    """Encodes the graph.

    Args:
      x_NxD: [N, D] node features.
      struct: the graph's Structure.
      obs_MxT: [M, T] 1 where a model-task score is visible to the encoder.
      rel_mask_R: [R] 0/1 relation mask.
      depth: number of HAN layers applied, 0..max_depth: a Python int runs exactly that many
        (static; initialise with a traced depth, which builds all max_depth layers); a traced
        int runs all max_depth layers, those >= depth as the identity.
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
    static = is_static_depth(depth)
    if static and not 0 <= depth <= cfg.max_depth:
      raise ValueError(f"depth must lie in 0..max_depth={cfg.max_depth}, got {depth}")
    n_layers, gate = (int(depth), False) if static else (cfg.max_depth, True)
    if static and n_layers == 1 and cfg.max_depth > 1:
      # A one-iteration scan is inlined by XLA, and the fusions it then forms across the loop's
      # boundary round differently (float32, ~1e-8) from the same layer inside a loop. Two
      # iterations, the second passed through, keep the loop and so every static depth gives
      # bitwise the numbers of the traced one, for the price of that second layer.
      n_layers, gate = 2, True
    if n_layers > 0:
      scan = nn.scan(
        _HANStep,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=(0, 0) + (nn.broadcast,) * 5,
        length=n_layers,
      )
      if n_layers < cfg.max_depth:  # static depth: the first n_layers of the stacked layers
        first = lambda tree: jax.tree.map(lambda v: v[:n_layers], tree)
        scan = nn.map_variables(scan, "params", trans_in_fn=first)
      layers = scan(cfg, self.type_counts, gate, name="han")
      h, _ = layers(
        h,
        jnp.arange(n_layers),
        drop_seed_L[:n_layers],
        struct,
        obs_MxT,
        rel_mask_R,
        depth if gate else None,
        train,
      )
    if rows is not None:
      h = h[rows]
    return ops.l2_normalize(nn.Dense(self.out_dim, kernel_init=_fan_in, name="output")(h))


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
    depth: jax.Array | int,
    feat_idx_B: jax.Array,
    feat_w_B: jax.Array,
    hidden_MxT: jax.Array,
    drop_seed_L: jax.Array,
    train: jax.Array | float,
  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One pass: (feature loss, score loss, model embeddings z_MxD); see ``ssl.ssl_loss``.

    With ``train`` = 0 nothing is masked, every score is visible and there is no dropout: the
    model embeddings are the profiles (the losses are then only diagnostics).
    """
    x_NxD = jnp.asarray(x_NxD)
    off = offsets(self.type_counts)
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
