"""The union heterogeneous interaction graph of a History, and its organisational forms.

Node types (stacked in this order): family, model, task, domain, query. Query nodes are the
History's graph queries (training queries only, never test queries).

Relations, each in both directions (R = 10)::

  0 family->model   1 model->family
  2 model->task     3 task->model       (weighted by the model's benchmark score)
  4 task->domain    5 domain->task
  6 task->query     7 query->task
  8 model->query    9 query->model      (a query linked to every model with a score on its task)

An organisational form (SPEC §1) is a 0/1 mask over these relations; family<->model is always on:

  T    + model<->task
  Q    + model<->query          (no task nodes, so queries attach to models directly)
  TQ   + model<->task, task<->query
  TD   + model<->task, task<->domain
  TQD  + model<->task, task<->query, task<->domain

``model<->query`` only appears in form Q, as SPEC describes ("only in the query organisational
form"). Edges are sorted canonically by (relation, receiver, sender).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from rp_jax.types import History

NODE_TYPES = ("family", "model", "task", "domain", "query")
NUM_NODE_TYPES = len(NODE_TYPES)
FAMILY, MODEL, TASK, DOMAIN, QUERY = range(5)

RELATIONS = (
  ("family", "model"),
  ("model", "family"),
  ("model", "task"),
  ("task", "model"),
  ("task", "domain"),
  ("domain", "task"),
  ("task", "query"),
  ("query", "task"),
  ("model", "query"),
  ("query", "model"),
)
RELATION_NAMES = tuple(f"{s}->{d}" for s, d in RELATIONS)
REL_SRC = np.array([NODE_TYPES.index(s) for s, _ in RELATIONS], np.int32)
REL_DST = np.array([NODE_TYPES.index(d) for _, d in RELATIONS], np.int32)
REL_HAS_SCORE = np.array([s in ("model", "task") and d in ("model", "task") for s, d in RELATIONS])
NUM_RELATIONS = len(RELATIONS)

_FAMILY_MODEL = (0, 1)
_MODEL_TASK = (2, 3)
_TASK_DOMAIN = (4, 5)
_TASK_QUERY = (6, 7)
_MODEL_QUERY = (8, 9)
FORM_RELATIONS = {
  "T": _FAMILY_MODEL + _MODEL_TASK,
  "Q": _FAMILY_MODEL + _MODEL_QUERY,
  "TQ": _FAMILY_MODEL + _MODEL_TASK + _TASK_QUERY,
  "TD": _FAMILY_MODEL + _MODEL_TASK + _TASK_DOMAIN,
  "TQD": _FAMILY_MODEL + _MODEL_TASK + _TASK_QUERY + _TASK_DOMAIN,
}
FORMS = tuple(FORM_RELATIONS)
# The node types a form adds to family + model (for flat profiles and reports).
FORM_NODE_TYPES = {
  "T": ("task",),
  "Q": ("query",),
  "TQ": ("task", "query"),
  "TD": ("task", "domain"),
  "TQD": ("task", "query", "domain"),
}
NORMS = ("sym", "left", "right", "none")


def relation_mask(form: str) -> np.ndarray:
  """[R] float32 0/1 mask of the relations present in an organisational form."""
  if form not in FORM_RELATIONS:
    raise ValueError(f"unknown graph form {form!r}; expected one of {FORMS}")
  m = np.zeros(NUM_RELATIONS, np.float32)
  m[list(FORM_RELATIONS[form])] = 1.0
  return m


def form_masks(forms: tuple[str, ...] = FORMS) -> np.ndarray:
  """[len(forms), R] stacked relation masks."""
  return np.stack([relation_mask(f) for f in forms])


class Graph(NamedTuple):
  """Edge arrays of the union graph (a pytree of arrays; static sizes live in GraphInfo).

  Attributes:
    node_type_N: [N] int32 node type id.
    senders_E, receivers_E, relation_E: [E] int32.
    score_E: [E] float32 raw benchmark score on scored relations, NaN elsewhere.
    score_hat_E: [E] float32 min-max normalised score within its relation; 1 where unscored.
    norm_weight_4xE: [4, E] float32 degree normalisation (sym, left, right, none) x score_hat.
  """

  node_type_N: np.ndarray
  senders_E: np.ndarray
  receivers_E: np.ndarray
  relation_E: np.ndarray
  score_E: np.ndarray
  score_hat_E: np.ndarray
  norm_weight_4xE: np.ndarray


@dataclasses.dataclass(frozen=True)
class GraphInfo:
  """Host-side facts about a Graph: sizes, node names and texts, History index maps."""

  type_counts: tuple[int, int, int, int, int]
  node_names: tuple[str, ...]
  node_texts: tuple[str, ...]
  query_ids: np.ndarray  # [Qg] History query index of each query node
  setting: str

  @property
  def num_nodes(self) -> int:
    return int(sum(self.type_counts))

  @property
  def offsets(self) -> tuple[int, ...]:
    return tuple(int(x) for x in np.concatenate([[0], np.cumsum(self.type_counts)]))

  def type_slice(self, node_type: int | str) -> slice:
    t = NODE_TYPES.index(node_type) if isinstance(node_type, str) else node_type
    o = self.offsets
    return slice(o[t], o[t + 1])

  @property
  def model_slice(self) -> slice:
    return self.type_slice(MODEL)


def build_graph(history: History) -> tuple[Graph, GraphInfo]:
  """Builds the union graph of a History (host side, numpy).

  Returns:
    (Graph, GraphInfo). Node order: families, models, tasks, domains, graph queries (History
    order). Test queries are never nodes.
  """
  h = history
  qg = np.flatnonzero(h.query_in_graph).astype(np.int32)
  counts = (h.num_families, h.num_models, h.num_tasks, h.num_domains, len(qg))
  off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
  rel, snd, rcv, score = _edges(h, qg, off)
  N = int(off[-1])
  node_type = np.repeat(np.arange(5, dtype=np.int32), counts)
  score_hat = _score_hat(rel, score)
  norm_w = degree_weights(snd, rcv, rel, N) * score_hat[None]
  names, texts = _node_names_and_texts(h, qg)
  graph = Graph(
    node_type_N=node_type,
    senders_E=snd,
    receivers_E=rcv,
    relation_E=rel,
    score_E=score,
    score_hat_E=score_hat.astype(np.float32),
    norm_weight_4xE=norm_w.astype(np.float32),
  )
  info = GraphInfo(
    type_counts=tuple(int(c) for c in counts),
    node_names=names,
    node_texts=texts,
    query_ids=qg,
    setting=h.setting,
  )
  return graph, info


def _edges(
  h: History, qg: np.ndarray, off: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(relation, sender, receiver, raw score) of every edge, both directions, sorted by relation,
  then receiver, then sender. ``qg``: History index of each query node; ``off``: node offsets."""
  F0, M0, T0, C0, Q0 = off[:5]
  edges = []  # (relation forward, src ids, dst ids, score)

  def both(rel, src, dst, score=None):
    score = np.full(len(src), np.nan, np.float32) if score is None else score
    edges.append((rel, src, dst, score))
    edges.append((rel + 1, dst, src, score))

  m = np.arange(h.num_models)
  both(0, F0 + h.model_family, M0 + m)
  mi, ti = np.nonzero(np.isfinite(h.scores_MxT))
  both(2, M0 + mi, T0 + ti, h.scores_MxT[mi, ti].astype(np.float32))
  ti, ci = np.nonzero(h.task_domain_TxC)
  both(4, T0 + ti, C0 + ci)
  qn = np.arange(len(qg))
  both(6, T0 + h.query_task[qg], Q0 + qn)
  # Each query links to every model that has a score on the query's task.
  has = np.isfinite(h.scores_MxT[:, h.query_task[qg]])  # [M, Qg]
  mi, qi = np.nonzero(has)
  both(8, M0 + mi, Q0 + qi)

  rel = np.concatenate([np.full(len(s), r, np.int32) for r, s, _, _ in edges])
  snd = np.concatenate([s for _, s, _, _ in edges]).astype(np.int32)
  rcv = np.concatenate([d for _, _, d, _ in edges]).astype(np.int32)
  score = np.concatenate([x for *_, x in edges]).astype(np.float32)
  order = np.lexsort((snd, rcv, rel))
  return rel[order], snd[order], rcv[order], score[order]


def _score_hat(rel: np.ndarray, score: np.ndarray) -> np.ndarray:
  """Scores min-max normalised within each scored relation; 1 elsewhere (and for a constant)."""
  score_hat = np.ones_like(score)
  for r in np.flatnonzero(REL_HAS_SCORE):
    sel = rel == r
    if sel.any():
      s = score[sel]
      lo, hi = float(s.min()), float(s.max())
      score_hat[sel] = (s - lo) / (hi - lo) if hi > lo else 1.0
  return score_hat


def _node_names_and_texts(h: History, qg: np.ndarray) -> tuple[tuple[str, ...], tuple[str, ...]]:
  """Names and texts of the nodes in graph order (query nodes: "query:<task>:<index>")."""
  names = (
    tuple(h.family_names)
    + tuple(h.model_names)
    + tuple(h.task_names)
    + tuple(h.domain_names)
    + tuple(f"query:{h.task_names[h.query_task[q]]}:{q}" for q in qg)
  )
  texts = (
    tuple(h.family_texts)
    + tuple(h.model_texts)
    + tuple(h.task_texts)
    + tuple(h.domain_texts)
    + tuple(h.query_texts[q] for q in qg)
  )
  return names, texts


def relation_blocks(graph: Graph, info: GraphInfo) -> tuple[np.ndarray, ...]:
  """Dense per-relation weight blocks: for relation r = (S -> T), [4, n_T, n_S] float32.

  Entry [k, j, i] is the weight of edge i -> j under normalisation k (sym, left, right, none)
  times its score weight; 0 where there is no edge. All node types but queries are small, so the
  blocks stay small (the query blocks are n_query x n_task and n_query x n_model).
  """
  off = info.offsets
  blocks = []
  for r in range(NUM_RELATIONS):
    s_t, d_t = int(REL_SRC[r]), int(REL_DST[r])
    sel = graph.relation_E == r
    b = np.zeros((4, info.type_counts[d_t], info.type_counts[s_t]), np.float32)
    np.add.at(
      b,
      (slice(None), graph.receivers_E[sel] - off[d_t], graph.senders_E[sel] - off[s_t]),
      graph.norm_weight_4xE[:, sel],
    )
    blocks.append(b)
  return tuple(blocks)


def degree_weights(snd: np.ndarray, rcv: np.ndarray, rel: np.ndarray, num_nodes: int) -> np.ndarray:
  """[4, E] per-edge normalisation with per-relation degrees clamped at 1.

  Rows: sym = deg_in(j)^-1/2 deg_out(i)^-1/2, left = 1/deg_in(j), right = 1/deg_out(i), none = 1.
  """
  R = NUM_RELATIONS
  deg_in = np.bincount(rel * num_nodes + rcv, minlength=R * num_nodes).astype(np.float64)
  deg_out = np.bincount(rel * num_nodes + snd, minlength=R * num_nodes).astype(np.float64)
  din = np.maximum(deg_in[rel * num_nodes + rcv], 1.0)
  dout = np.maximum(deg_out[rel * num_nodes + snd], 1.0)
  return np.stack([din**-0.5 * dout**-0.5, 1.0 / din, 1.0 / dout, np.ones_like(din)])


def drop_node_type(graph: Graph, info: GraphInfo, node_type: str) -> tuple[Graph, GraphInfo]:
  """The graph without one node type (its nodes and every edge touching them); for tests.

  Degrees are recomputed, as if the type had never been built. Score weights are kept: they are
  normalised within a relation, and dropping a type removes whole relations.
  """
  t = NODE_TYPES.index(node_type)
  keep_node = np.asarray(graph.node_type_N) != t
  new_id = np.cumsum(keep_node) - 1
  keep = keep_node[graph.senders_E] & keep_node[graph.receivers_E]
  snd = new_id[graph.senders_E[keep]].astype(np.int32)
  rcv = new_id[graph.receivers_E[keep]].astype(np.int32)
  rel = graph.relation_E[keep]
  n = int(keep_node.sum())
  counts = tuple(0 if i == t else c for i, c in enumerate(info.type_counts))
  g = Graph(
    node_type_N=graph.node_type_N[keep_node],
    senders_E=snd,
    receivers_E=rcv,
    relation_E=rel,
    score_E=graph.score_E[keep],
    score_hat_E=graph.score_hat_E[keep],
    norm_weight_4xE=(degree_weights(snd, rcv, rel, n) * graph.score_hat_E[keep][None]).astype(
      np.float32
    ),
  )
  names = tuple(x for x, k in zip(info.node_names, keep_node, strict=True) if k)
  texts = tuple(x for x, k in zip(info.node_texts, keep_node, strict=True) if k)
  qids = info.query_ids if t != QUERY else info.query_ids[:0]
  return g, dataclasses.replace(
    info, type_counts=counts, node_names=names, node_texts=texts, query_ids=qids
  )
