"""Static-shape views of the union graph for the HAN layers (dense relation blocks, edge lists).

Every relation is a dense [n_T, n_S] block (built once, on the host, from the edge list), and
blocks of similar shape are stacked into three groups (``relation_groups``). All node types but
queries are small, so the blocks hold ~0.37M entries per head on the real data (the groups
[6, 44, 44], [2, 2042, 44], [2, 44, 2042]). The dense attention assumes at most one edge per
(relation, receiver, sender), as ``graphs.build_graph`` guarantees.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax.graphs import (
  MODEL,
  NUM_NODE_TYPES,
  NUM_RELATIONS,
  QUERY,
  REL_DST,
  REL_HAS_SCORE,
  REL_SRC,
  TASK,
  Graph,
)
from rp_jax.profiles.han.config import TrainableConfig

# The score features and the model-task pair grid assume the scored relations are model<->task.
assert all(
  {int(REL_SRC[r]), int(REL_DST[r])} == {MODEL, TASK} for r in np.flatnonzero(REL_HAS_SCORE)
), "scored relations must join model and task nodes"


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


def offsets(type_counts: tuple[int, ...]) -> tuple[int, ...]:
  """[6] first node id of each node type, then N (node types are contiguous)."""
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
  off = offsets(type_counts)
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


def as_structure(graph: Graph | Structure, type_counts, config: TrainableConfig) -> Structure:
  """The Structure of ``graph``: built from a Graph, or checked when one is given.

  The edge arrays are kept only when ``config.attention`` needs them ("edges").
  """
  edges = config.attention == "edges"
  if not isinstance(graph, Structure):
    return graph_structure(graph, type_counts, edges=edges)
  if edges and graph.senders_E is None:
    raise ValueError('attention="edges" needs a Structure built with graph_structure(edges=True)')
  return graph


def pair_block(r: int, grid_MxT: jax.Array) -> jax.Array:
  """A [M, T] model-task grid laid out as relation r's [n_T, n_S] block."""
  return grid_MxT.T if int(REL_SRC[r]) == MODEL else grid_MxT


def types_present(rel_mask_R: jax.Array) -> jax.Array:
  """[5] 1 for node types in the form (touched by an active relation; models always)."""
  into = jax.ops.segment_max(rel_mask_R, jnp.asarray(REL_DST), num_segments=NUM_NODE_TYPES)
  out = jax.ops.segment_max(rel_mask_R, jnp.asarray(REL_SRC), num_segments=NUM_NODE_TYPES)
  present = jnp.maximum(jnp.maximum(into, out), 0.0)
  return present.at[MODEL].set(1.0)
