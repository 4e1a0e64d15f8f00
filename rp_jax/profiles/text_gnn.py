"""text_gnn profiles: node texts rewritten hop by hop from their neighbours' texts (SPEC §2).

Hop 0 is the original texts. Each hop h = 1..K rewrites, synchronously from the snapshot of hop
h-1, the texts of task, domain, family and model nodes (query texts never change): per node and
neighbour type, the 1-hop neighbours under the form's relation mask are deduplicated by text and,
when there are more than five, the five most cosine-similar to the node (embeddings of the
*current* texts — queries included, which the reference forgot to embed) are kept; a summariser
turns these facts into the new text. The profile at hop K is the L2-normalised embedding of the
model texts of hop K.

This is host-side work (an LLM or a template is called per node), done once per graph form for
all hops at once; the resulting [K+1, M, D] profiles then join the vmapped sweep like any other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rp_jax.graphs import (
  DOMAIN,
  FAMILY,
  MODEL,
  NODE_TYPES,
  QUERY,
  REL_HAS_SCORE,
  TASK,
  Graph,
  GraphInfo,
)
from rp_jax.text.summarize import NodeFacts

UPDATED_TYPES = ("family", "model", "task", "domain")
TOP_K = 5


def text_gnn_texts(
  graph: Graph,
  info: GraphInfo,
  rel_mask_R: np.ndarray,
  embed: Callable[[list[str]], np.ndarray],
  summarize: Callable[[list[NodeFacts]], list[str]],
  *,
  max_hops: int,
  domain_names_of_task: dict[str, tuple[str, ...]] | None = None,
) -> list[list[str]]:
  """Runs the text GNN; returns the node texts of every hop (``texts[h][n]``, h = 0..max_hops).

  Args:
    graph, info: the union graph.
    rel_mask_R: [R] 0/1 organisational form.
    embed: texts -> [n, D] embeddings (used for the top-5 neighbour choice).
    summarize: NodeFacts list -> new texts (``rp_jax.text.summarize.make_summarizer``).
    domain_names_of_task: task name -> its domains, for grouping scores (defaults to the graph's
      task->domain edges, which exist only in forms with domains).
  """
  node_type = np.asarray(graph.node_type_N)
  snd, rcv, rel = (np.asarray(a) for a in (graph.senders_E, graph.receivers_E, graph.relation_E))
  score = np.asarray(graph.score_E)
  active = np.asarray(rel_mask_R)[rel] > 0
  snd, rcv, rel, score = snd[active], rcv[active], rel[active], score[active]
  names = info.node_names
  # Group edges by receiver (stable, so the canonical edge order survives within a group).
  order = np.argsort(rcv, kind="stable")
  snd, rcv, rel, score = snd[order], rcv[order], rel[order], score[order]
  starts = np.searchsorted(rcv, np.arange(len(names) + 1))
  updated = np.flatnonzero(np.isin(node_type, [NODE_TYPES.index(t) for t in UPDATED_TYPES]))
  if domain_names_of_task is None:
    sel = rel == 4  # task -> domain, active in this form only
    domain_names_of_task = {}
    for s_, r_ in zip(snd[sel].tolist(), rcv[sel].tolist(), strict=True):
      domain_names_of_task[names[s_]] = (*domain_names_of_task.get(names[s_], ()), names[r_])

  texts = [list(info.node_texts)]
  # Query texts never change: embed them once.
  query_ids = np.flatnonzero(node_type == QUERY)
  query_emb = _unit_rows(embed([texts[0][i] for i in query_ids])) if len(query_ids) else None
  for _ in range(max_hops):
    cur = texts[-1]
    upd_emb = _unit_rows(embed([cur[i] for i in updated]))
    emb = np.zeros((len(cur), upd_emb.shape[1]), np.float32)
    emb[updated] = upd_emb
    if query_emb is not None:
      emb[query_ids] = query_emb
    facts = [
      _facts(j, cur, emb, names, node_type, snd, rel, score, starts, domain_names_of_task)
      for j in updated
    ]
    new = summarize(facts)
    if len(new) != len(facts):
      raise RuntimeError(f"summariser returned {len(new)} texts for {len(facts)} nodes")
    nxt = list(cur)
    for j, t in zip(updated, new, strict=True):
      nxt[j] = t
    texts.append(nxt)
  return texts


def _unit_rows(e) -> np.ndarray:
  """Rows scaled to unit length, so that dot products are cosine similarities."""
  e = np.asarray(e, np.float32)
  return e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)


def _facts(j, cur, emb, names, node_type, snd, rel, score, starts, task_domains) -> NodeFacts:
  lo, hi = starts[j], starts[j + 1]
  nbrs, rels, scs = snd[lo:hi], rel[lo:hi], score[lo:hi]
  by_type: dict[str, tuple[tuple[str, str], ...]] = {}
  for t in np.unique(node_type[nbrs]):
    ids = nbrs[node_type[nbrs] == t]
    # Dedupe by text, keeping the first node of each text (edges are in canonical order).
    seen, uniq = set(), []
    for i in ids.tolist():
      if cur[i] not in seen:
        seen.add(cur[i])
        uniq.append(i)
    uniq = np.asarray(uniq)
    if len(uniq) > TOP_K:
      sims = emb[uniq] @ emb[j]
      uniq = uniq[np.argsort(-sims, kind="stable")[:TOP_K]]
    by_type[NODE_TYPES[int(t)]] = tuple((names[i], cur[i]) for i in uniq.tolist())
  scored = REL_HAS_SCORE[rels] & np.isfinite(scs)
  score_rows = tuple(
    (names[i], float(s), task_domains.get(names[i] if node_type[j] == MODEL else names[j], ()))
    for i, s in zip(nbrs[scored].tolist(), scs[scored].tolist(), strict=True)
  )
  return NodeFacts(
    node_type=NODE_TYPES[int(node_type[j])],
    name=names[j],
    text=cur[j],
    neighbours=by_type,
    scores=score_rows,
  )


def text_gnn_profiles(
  texts_by_hop: list[list[str]], info: GraphInfo, embed: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
  """[K+1, M, D] L2-normalised embeddings of the model texts of every hop."""
  ms = info.model_slice
  flat = [t for hop in texts_by_hop for t in hop[ms]]
  return _unit_rows(embed(flat)).reshape(len(texts_by_hop), ms.stop - ms.start, -1)


def hop_texts_record(texts_by_hop: list[list[str]], info: GraphInfo) -> dict:
  """JSON-ready {hop: {node name: text}} of the updated nodes, for people to read."""
  nt = np.repeat(np.arange(5), info.type_counts)
  keep = np.flatnonzero(np.isin(nt, (FAMILY, MODEL, TASK, DOMAIN))).tolist()
  return {str(h): {info.node_names[i]: hop[i] for i in keep} for h, hop in enumerate(texts_by_hop)}
