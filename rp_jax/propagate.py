"""Training-free message passing over the union graph (SPEC §2, emb_gnn).

One hop, for every relation r = (S -> T) with edges i -> j::

  w_ij   = norm(r)_ij * s_hat_ij          norm in {sym, left, right, none}, per-relation degrees
  M_r[j] = sum_i w_ij X_S[i]
  X'_T   = (sum_{r into T} M_r) / (number of relation types into T)

A node type with no incoming relation (under the form's mask) keeps its features. No self-loops
and no residual, as in the reference; ``self_loop=1`` adds the node's own features as one more
"relation" into every type, which fixes the reference's defect that a model's own text vanishes
from its profile at odd hop counts.

Everything here is traced: the relation mask (organisational form), the normalisation and the
self-loop switch are arrays, so ``jax.vmap`` runs a whole grid of forms x norms in one call. The
hop count of ``emb_gnn`` is traced too (every hop up to a static ``max_hops`` is computed by
``lax.scan`` and the requested one is selected).

Propagation is linear in X, and a profile only needs the model rows. ``readout_operator_hops``
therefore runs the same message passing on the transposed graph, carrying one column per model
instead of D features: hop k gives the [M, N] operator R_k with ``R_k @ X = X^k[models]``. That
costs E x M per hop instead of E x D (24 vs 768 columns on the real data), and the profile is one
[M, N] x [N, D] matmul; ``propagate_hops`` (forward, every node) is the readable reference that the
tests compare it with.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rp_jax.graphs import MODEL, NUM_RELATIONS, REL_DST, REL_SRC, Graph

NUM_NODE_TYPES = 5


def edge_weights(graph: Graph, rel_mask_R: jax.Array, norm_4: jax.Array) -> jax.Array:
  """[E] per-edge weights: selected normalisation x score weight x relation mask.

  Args:
    rel_mask_R: [R] 0/1 relation mask (organisational form).
    norm_4: [4] one-hot (or any mixture) over (sym, left, right, none).
  """
  w_E = jnp.einsum("k,ke->e", norm_4, graph.norm_weight_4xE)
  return w_E * rel_mask_R[graph.relation_E]


def relations_into_type(rel_mask_R: jax.Array) -> jax.Array:
  """[5] number of active relation types into each node type."""
  return jax.ops.segment_sum(rel_mask_R, jnp.asarray(REL_DST), num_segments=NUM_NODE_TYPES)


def propagate_hops(
  graph: Graph,
  x_NxD: jax.Array,
  rel_mask_R: jax.Array,
  norm_4: jax.Array,
  self_loop: jax.Array | float = 0.0,
  *,
  max_hops: int,
) -> jax.Array:
  """All hops 0..max_hops of training-free propagation.

  Args:
    graph: the union graph (arrays).
    x_NxD: [N, D] node features (hop 0).
    rel_mask_R: [R] 0/1 relation mask.
    norm_4: [4] one-hot normalisation selector (sym, left, right, none).
    self_loop: 0 (reference) or 1 (keep own features as an extra relation).
    max_hops: static number of hops.

  Returns:
    h_KxNxD with K = max_hops + 1 (index k = features after k hops).
  """
  assert rel_mask_R.shape == (NUM_RELATIONS,), rel_mask_R.shape
  n = x_NxD.shape[0]
  w_E, c_N, d_N = _hop_coefficients(graph, rel_mask_R, norm_4, self_loop, x_NxD.dtype)
  snd, rcv = graph.senders_E, graph.receivers_E

  def hop(x, _):
    agg_NxD = jax.ops.segment_sum(w_E[:, None] * x[snd], rcv, num_segments=n)
    new = c_N[:, None] * agg_NxD + d_N[:, None] * x
    return new, new

  _, hs = jax.lax.scan(hop, x_NxD, None, length=max_hops)
  return jnp.concatenate([x_NxD[None], hs], axis=0)


def _hop_coefficients(graph: Graph, rel_mask_R, norm_4, self_loop, dtype):
  """Per-edge weights, per-node incoming scale c and self weight d of one linear hop.

  One hop is ``x'[j] = c[j] * sum_{e: i->j} w_e x[i] + d[j] * x[j]`` with
  ``c = has_in / n_in`` and ``d = has_in * self_loop / n_in + (1 - has_in)``.
  """
  w_E = edge_weights(graph, rel_mask_R, norm_4).astype(dtype)
  self_loop = jnp.asarray(self_loop, dtype)
  n_in_N = (relations_into_type(rel_mask_R) + self_loop)[graph.node_type_N]
  has_in_N = (n_in_N > 0).astype(dtype)
  c_N = has_in_N / jnp.maximum(n_in_N, 1.0)
  d_N = c_N * self_loop + (1.0 - has_in_N)
  return w_E, c_N, d_N


def readout_operator_hops(
  graph: Graph,
  rows: jax.Array,
  rel_mask_R: jax.Array,
  norm_4: jax.Array,
  self_loop: jax.Array | float = 0.0,
  *,
  num_nodes: int,
  max_hops: int,
) -> jax.Array:
  """Linear operators mapping hop-0 features to the features of ``rows`` after k hops.

  Args:
    rows: [M] int node ids to read out (e.g. the model nodes).
    num_nodes: static N.

  Returns:
    op_KxMxN with ``op[k] @ x_NxD == propagate_hops(...)[k][rows]`` for k = 0..max_hops.
  """
  w_E, c_N, d_N = _hop_coefficients(graph, rel_mask_R, norm_4, self_loop, jnp.float32)
  snd, rcv = graph.senders_E, graph.receivers_E
  r0_NxM = jax.nn.one_hot(rows, num_nodes, dtype=jnp.float32).T

  # Adjoint of one hop: R' = R P, computed as segment sums on the transposed edges.
  def hop(r_NxM, _):
    scaled = (c_N[:, None] * r_NxM)[rcv] * w_E[:, None]
    new = jax.ops.segment_sum(scaled, snd, num_segments=num_nodes) + d_N[:, None] * r_NxM
    return new, new

  _, rs = jax.lax.scan(hop, r0_NxM, None, length=max_hops)
  return jnp.swapaxes(jnp.concatenate([r0_NxM[None], rs], axis=0), 1, 2)


def readout_hops_blocks(
  blocks: tuple[jax.Array, ...],
  rel_mask_R: jax.Array,
  norm_4: jax.Array,
  self_loop: jax.Array | float = 0.0,
  *,
  type_counts: tuple[int, ...],
  read_type: int = MODEL,
  max_hops: int,
) -> jax.Array:
  """``readout_operator_hops`` for all nodes of one type, on dense per-relation blocks.

  Same linear map, but each hop is a handful of small dense matmuls (one per relation, see
  ``graphs.relation_blocks``) instead of a scatter over the edges, which is what makes a vmapped
  grid of forms x norms fast on CPU and accelerators alike.

  Returns:
    op_KxMxN (M = type_counts[read_type]) with ``op[k] @ x_NxD`` = that type's hop-k features.
  """
  assert len(blocks) == NUM_RELATIONS
  self_loop = jnp.asarray(self_loop, jnp.float32)
  n_in_5 = relations_into_type(rel_mask_R) + self_loop
  has_in_5 = (n_in_5 > 0).astype(jnp.float32)
  c_5 = has_in_5 / jnp.maximum(n_in_5, 1.0)
  d_5 = c_5 * self_loop + (1.0 - has_in_5)
  adj = [jnp.einsum("k,kji->ji", norm_4, b) for b in blocks]
  m = type_counts[read_type]
  r0 = tuple(
    jnp.eye(m, dtype=jnp.float32) if t == read_type else jnp.zeros((m, n), jnp.float32)
    for t, n in enumerate(type_counts)
  )

  # R'_S = d_S R_S + sum_{r: S->T} mask_r c_T R_T A_r   (the adjoint of one forward hop).
  def hop(r, _):
    new = [d_5[t] * r[t] for t in range(NUM_NODE_TYPES)]
    for k in range(NUM_RELATIONS):
      src, dst = int(REL_SRC[k]), int(REL_DST[k])
      new[src] = new[src] + rel_mask_R[k] * c_5[dst] * (r[dst] @ adj[k])
    new = tuple(new)
    return new, jnp.concatenate(new, axis=1)

  _, rs = jax.lax.scan(hop, r0, None, length=max_hops)
  return jnp.concatenate([jnp.concatenate(r0, axis=1)[None], rs], axis=0)


def emb_gnn(
  blocks: tuple[jax.Array, ...],
  x_NxD: jax.Array,
  rel_mask_R: jax.Array,
  hops: jax.Array | int,
  norm_4: jax.Array,
  self_loop: jax.Array | float = 0.0,
  *,
  type_counts: tuple[int, ...],
  max_hops: int = 4,
  l2_normalize: bool = False,
) -> jax.Array:
  """emb_gnn profile: model-node features after ``hops`` hops.

  Args:
    blocks: ``graphs.relation_blocks(graph, info)`` (static structure of the union graph).
    x_NxD: [N, D] hop-0 node features (encoded node texts, GraphInfo node order).
    rel_mask_R: [R] organisational form (``graphs.relation_mask``).
    hops: traced int in 0..max_hops.
    norm_4: [4] one-hot (sym, left, right, none).
    self_loop: 0 = reference behaviour (default), 1 = keep own features (fixes odd-K defect).
    type_counts: static ``GraphInfo.type_counts``.

  Returns:
    profile_MxD (raw; L2-normalised rows when ``l2_normalize``).
  """
  op_KxMxN = readout_hops_blocks(
    blocks, rel_mask_R, norm_4, self_loop, type_counts=type_counts, max_hops=max_hops
  )
  op_MxN = jnp.take(op_KxMxN, jnp.clip(hops, 0, max_hops), axis=0)
  prof_MxD = jnp.dot(op_MxN, x_NxD, precision=jax.lax.Precision.HIGHEST)
  return l2_normalize_rows(prof_MxD) if l2_normalize else prof_MxD


def l2_normalize_rows(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Rows scaled to unit L2 norm; zero rows stay zero."""
  n = jnp.linalg.norm(x, axis=-1, keepdims=True)
  return x / jnp.maximum(n, eps)
