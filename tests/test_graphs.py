"""The union heterogeneous graph: nodes, edges, scores, normalisations, canonical order, forms."""

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rp_jax import graphs as gr
from rp_jax.data import make_history
from rp_jax.data.synthetic import TINY_SIZES
from rp_jax.types import TEST, TRAIN, History

NAN = np.nan
TINY = TINY_SIZES


def hand_history() -> History:
  """2 families, 3 models, 3 tasks (t2 unscored), 2 domains, 4 train (3 in graph) + 2 test queries.

  scores: m0: t0 10, t1 50; m1: t0 30; m2: t1 90. Query q3 (task t2) is a training query that is
  not a graph node.
  """
  return History(
    model_names=("m0", "m1", "m2"),
    model_texts=("model zero", "model one", "model two"),
    model_family=[0, 0, 1],
    prices_Mx2=np.ones((3, 2)),
    family_names=("f0", "f1"),
    family_texts=("family zero", "family one"),
    task_names=("t0", "t1", "t2"),
    task_texts=("task zero", "task one", "task two"),
    task_metric=("", "", ""),
    task_binary=[True, True, True],
    domain_names=("d0", "d1"),
    domain_texts=("domain zero", "domain one"),
    task_domain_TxC=[[1, 0], [1, 1], [0, 1]],
    scores_MxT=[[10, 50, NAN], [30, NAN, NAN], [NAN, 90, NAN]],
    query_texts=("q0", "q1", "q2", "q3", "q4", "q5"),
    query_task=[0, 0, 1, 2, 0, 1],
    query_split=[TRAIN, TRAIN, TRAIN, TRAIN, TEST, TEST],
    query_in_graph=[True, True, True, False, False, False],
    outcomes_QxM=np.array([[NAN] * 3] * 4 + [[1, 0, NAN], [0, 1, NAN]]),
    tokens_QxMx2=np.full((6, 3, 2), NAN),
    cost_QxM=np.full((6, 3), NAN),
    pairs_Px3=np.zeros((0, 3)),
    candidates=[0, 1],
    held_out=[],
  )


@pytest.fixture(scope="module")
def hand():
  h = hand_history()
  return (h, *gr.build_graph(h))


@pytest.fixture(scope="module")
def tiny():
  h = make_history(seed=0, **TINY)
  return (h, *gr.build_graph(h))


def edges_of(graph, info, rel):
  """Set of (sender name, receiver name) of one relation."""
  sel = np.asarray(graph.relation_E) == rel
  n = info.node_names
  return {
    (n[s], n[r])
    for s, r in zip(graph.senders_E[sel].tolist(), graph.receivers_E[sel].tolist(), strict=True)
  }


def test_node_counts_and_order(hand):
  h, g, info = hand
  assert info.type_counts == (2, 3, 3, 2, 3)  # q3 is not a graph query, q4/q5 are test queries
  assert info.num_nodes == 13
  assert info.offsets == (0, 2, 5, 8, 10, 13)
  np.testing.assert_array_equal(g.node_type_N, np.repeat(np.arange(5), [2, 3, 3, 2, 3]))
  assert info.node_names[:10] == ("f0", "f1", "m0", "m1", "m2", "t0", "t1", "t2", "d0", "d1")
  assert info.node_texts[info.model_slice] == h.model_texts
  assert info.node_texts[info.type_slice("query")] == ("q0", "q1", "q2")
  np.testing.assert_array_equal(info.query_ids, [0, 1, 2])


def test_query_nodes_are_graph_queries_only(tiny):
  h, g, info = tiny
  assert info.type_counts == (
    h.num_families,
    h.num_models,
    h.num_tasks,
    h.num_domains,
    int(h.query_in_graph.sum()),
  )
  np.testing.assert_array_equal(info.query_ids, np.flatnonzero(h.query_in_graph))
  assert not np.isin(info.query_ids, h.test_queries).any()
  qs = info.type_slice("query")
  assert info.node_texts[qs] == tuple(h.query_texts[q] for q in info.query_ids)


def test_hand_edges(hand):
  _, g, info = hand
  assert edges_of(g, info, 0) == {("f0", "m0"), ("f0", "m1"), ("f1", "m2")}
  assert edges_of(g, info, 2) == {("m0", "t0"), ("m0", "t1"), ("m1", "t0"), ("m2", "t1")}
  assert edges_of(g, info, 4) == {("t0", "d0"), ("t1", "d0"), ("t1", "d1"), ("t2", "d1")}
  q = lambda i: f"query:{'t0' if i < 2 else 't1'}:{i}"
  assert edges_of(g, info, 6) == {("t0", q(0)), ("t0", q(1)), ("t1", q(2))}
  # Each query to every model with a score on its task: t0 -> m0, m1; t1 -> m0, m2.
  assert edges_of(g, info, 8) == {
    ("m0", q(0)),
    ("m1", q(0)),
    ("m0", q(1)),
    ("m1", q(1)),
    ("m0", q(2)),
    ("m2", q(2)),
  }


def test_every_relation_in_both_directions(tiny):
  _, g, info = tiny
  for r in range(0, gr.NUM_RELATIONS, 2):
    assert gr.RELATIONS[r] == gr.RELATIONS[r + 1][::-1]
    fwd = edges_of(g, info, r)
    bwd = edges_of(g, info, r + 1)
    assert fwd, gr.RELATION_NAMES[r]
    assert bwd == {(b, a) for a, b in fwd}
    # Same scores on the reversed edges.
    sel_f, sel_b = g.relation_E == r, g.relation_E == r + 1
    sf = dict(
      zip(zip(g.senders_E[sel_f], g.receivers_E[sel_f], strict=True), g.score_E[sel_f], strict=True)
    )
    sb = dict(
      zip(zip(g.receivers_E[sel_b], g.senders_E[sel_b], strict=True), g.score_E[sel_b], strict=True)
    )
    np.testing.assert_array_equal([sf[k] for k in sorted(sf)], [sb[k] for k in sorted(sf)])
  # Sender and receiver types match the relation table.
  nt = np.asarray(g.node_type_N)
  np.testing.assert_array_equal(nt[g.senders_E], gr.REL_SRC[g.relation_E])
  np.testing.assert_array_equal(nt[g.receivers_E], gr.REL_DST[g.relation_E])


def test_model_task_edges_carry_raw_scores(tiny):
  h, g, info = tiny
  m0, t0 = info.offsets[1], info.offsets[2]
  want = {
    (int(m), int(t)): float(h.scores_MxT[m, t])
    for m, t in zip(*np.nonzero(np.isfinite(h.scores_MxT)), strict=True)
  }
  sel = g.relation_E == 2
  got = {
    (s - m0, r - t0): float(x)
    for s, r, x in zip(
      g.senders_E[sel].tolist(), g.receivers_E[sel].tolist(), g.score_E[sel], strict=True
    )
  }
  assert got == pytest.approx(want)
  assert np.isnan(h.scores_MxT).any()  # the tiny history does miss some scores
  # Unscored relations carry NaN.
  assert np.isnan(g.score_E[~gr.REL_HAS_SCORE[g.relation_E]]).all()
  assert np.isfinite(g.score_E[gr.REL_HAS_SCORE[g.relation_E]]).all()


def test_score_hat_min_max_per_relation(hand):
  _, g, info = hand
  for r in (2, 3):
    sel = g.relation_E == r
    raw = g.score_E[sel]
    np.testing.assert_allclose(g.score_hat_E[sel], (raw - 10.0) / 80.0, rtol=1e-6)
  assert set(np.round(g.score_hat_E[g.relation_E == 2], 6).tolist()) == {0.0, 0.25, 0.5, 1.0}
  np.testing.assert_array_equal(g.score_hat_E[~gr.REL_HAS_SCORE[g.relation_E]], 1.0)


def test_score_hat_is_one_when_all_scores_equal():
  h = hand_history()
  h = h.replace(scores_MxT=np.where(np.isfinite(h.scores_MxT), 42.0, NAN))
  g, _ = gr.build_graph(h)
  np.testing.assert_array_equal(g.score_hat_E, 1.0)


def test_model_query_edges_where_model_scored_on_task(tiny):
  h, g, info = tiny
  M0, Q0 = info.offsets[1], info.offsets[4]
  sel = g.relation_E == 8
  got = set(zip((g.senders_E[sel] - M0).tolist(), (g.receivers_E[sel] - Q0).tolist(), strict=True))
  want = {
    (m, qn)
    for qn, q in enumerate(info.query_ids.tolist())
    for m in range(h.num_models)
    if np.isfinite(h.scores_MxT[m, h.query_task[q]])
  }
  assert got == want
  assert len(want) < h.num_models * len(info.query_ids)  # some models lack scores


def test_canonical_edge_order(tiny):
  _, g, _ = tiny
  key = np.stack([g.relation_E, g.receivers_E, g.senders_E], 1).astype(np.int64)
  # Strictly increasing lexicographically: sorted, no duplicate edges.
  diff = np.diff(key, axis=0)
  first_nonzero = np.take_along_axis(diff, np.argmax(diff != 0, axis=1)[:, None], 1)[:, 0]
  assert (first_nonzero > 0).all()
  for a in g:
    assert isinstance(a, np.ndarray)
  assert g.senders_E.dtype == g.receivers_E.dtype == g.relation_E.dtype == np.int32
  assert g.norm_weight_4xE.shape == (4, len(g.senders_E))


_HASH_SCRIPT = textwrap.dedent(
  """
  import hashlib
  import numpy as np
  from rp_jax import graphs
  from rp_jax.data import make_history
  h = make_history(seed=3, **{tiny!r})
  g, info = graphs.build_graph(h)
  d = hashlib.sha256()
  for a in g:
    d.update(np.ascontiguousarray(a).tobytes())
  d.update(repr((info.type_counts, info.node_names, info.node_texts)).encode())
  d.update(info.query_ids.tobytes())
  print(d.hexdigest())
  """
)


def test_deterministic_across_hash_seeds():
  script = _HASH_SCRIPT.format(tiny=TINY)
  procs = [
    subprocess.Popen(
      [sys.executable, "-c", script],
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      env={**_env(), "PYTHONHASHSEED": seed},
    )
    for seed in ("0", "4242")
  ]
  outs = []
  for p in procs:
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    outs.append(out.strip())
  assert len(outs[0]) == 64 and outs[0] == outs[1]
  # And the same as in this process.
  h = make_history(seed=3, **TINY)
  g, info = gr.build_graph(h)
  d = hashlib.sha256()
  for a in g:
    d.update(np.ascontiguousarray(a).tobytes())
  d.update(repr((info.type_counts, info.node_names, info.node_texts)).encode())
  d.update(info.query_ids.tobytes())
  assert d.hexdigest() == outs[0]


def _env():
  import os

  return {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}


def test_form_masks():
  want = {
    "T": {"family", "model", "task"},
    "Q": {"family", "model", "query"},
    "TQ": {"family", "model", "task", "query"},
    "TD": {"family", "model", "task", "domain"},
    "TQD": {"family", "model", "task", "query", "domain"},
  }
  masks = gr.form_masks()
  assert masks.shape == (5, gr.NUM_RELATIONS) and masks.dtype == np.float32
  for form, m in zip(gr.FORMS, masks, strict=True):
    np.testing.assert_array_equal(m, gr.relation_mask(form))
    on = np.flatnonzero(m)
    assert m[0] == m[1] == 1  # family <-> model always
    # Both directions together, and exactly the relations among the form's node types.
    assert set(on.tolist()) == {r ^ 1 for r in on.tolist()}
    types = {gr.RELATIONS[r][0] for r in on} | {gr.RELATIONS[r][1] for r in on}
    assert types == want[form], form
    assert set(gr.FORM_NODE_TYPES[form]) == want[form] - {"family", "model"}
  # model <-> query only in form Q (where there are no task nodes).
  assert [f for f in gr.FORMS if gr.relation_mask(f)[8]] == ["Q"]
  with pytest.raises(ValueError, match="unknown graph form 'X'"):
    gr.relation_mask("X")


def test_newllm_graph_hides_held_out_scores():
  h = make_history(seed=0, setting="newllm", **TINY)
  g, info = gr.build_graph(h)
  (held,) = h.held_out.tolist()
  held_node = info.offsets[1] + held
  routing_nodes = info.offsets[2] + h.routing_tasks
  for r in (2, 3):
    sel = g.relation_E == r
    ends = g.senders_E[sel] if r == 2 else g.receivers_E[sel]
    other = g.receivers_E[sel] if r == 2 else g.senders_E[sel]
    assert not np.isin(other[ends == held_node], routing_nodes).any()
  # The standard graph of the same world does link it.
  hs = make_history(seed=0, **TINY)
  gs, _ = gr.build_graph(hs)
  sel = gs.relation_E == 2
  assert np.isin(gs.receivers_E[sel][gs.senders_E[sel] == held_node], routing_nodes).any()


def test_relation_blocks_reproduce_edge_weights(tiny):
  _, g, info = tiny
  blocks = gr.relation_blocks(g, info)
  assert len(blocks) == gr.NUM_RELATIONS
  off = info.offsets
  for r, b in enumerate(blocks):
    s_t, d_t = gr.REL_SRC[r], gr.REL_DST[r]
    assert b.shape == (4, info.type_counts[d_t], info.type_counts[s_t])
    sel = g.relation_E == r
    j = g.receivers_E[sel] - off[d_t]
    i = g.senders_E[sel] - off[s_t]
    np.testing.assert_array_equal(b[:, j, i], g.norm_weight_4xE[:, sel])
    # Nothing else in the block.
    mask = np.zeros(b.shape[1:], bool)
    mask[j, i] = True
    assert not b[:, ~mask].any()


def test_norm_weights_are_degree_weights_times_score_hat(hand):
  _, g, _ = hand
  dw = gr.degree_weights(g.senders_E, g.receivers_E, g.relation_E, len(g.node_type_N))
  np.testing.assert_allclose(g.norm_weight_4xE, dw * g.score_hat_E[None], rtol=1e-6)
  # m0 -> t0 (score 10, the minimum) weighs 0 under every norm.
  np.testing.assert_array_equal(g.norm_weight_4xE[:, (g.relation_E == 2) & (g.score_E == 10)], 0)


def test_degree_weights_hand_example():
  # Relation 0: 0->2, 1->2, 0->3; relation 1: 2->3. Degrees count per relation only.
  snd = np.array([0, 1, 0, 2])
  rcv = np.array([2, 2, 3, 3])
  rel = np.array([0, 0, 0, 1])
  w = gr.degree_weights(snd, rcv, rel, 4)
  s2 = 2**-0.5
  want = np.array(
    [
      [0.5, s2, s2, 1.0],  # sym = deg_in(j)^-1/2 deg_out(i)^-1/2
      [0.5, 0.5, 1.0, 1.0],  # left = 1 / deg_in(j)
      [0.5, 1.0, 0.5, 1.0],  # right = 1 / deg_out(i)
      [1.0, 1.0, 1.0, 1.0],  # none
    ]
  )
  np.testing.assert_allclose(w, want, rtol=1e-12)


def test_drop_node_type(tiny):
  _, g, info = tiny
  for t in ("task", "domain", "query"):
    g2, info2 = gr.drop_node_type(g, info, t)
    ti = gr.NODE_TYPES.index(t)
    assert info2.type_counts[ti] == 0
    assert info2.num_nodes == info.num_nodes - info.type_counts[ti]
    assert not (np.asarray(g2.node_type_N) == ti).any()
    src_r, dst_r = gr.REL_SRC, gr.REL_DST
    assert not np.isin(g2.relation_E, np.flatnonzero((src_r == ti) | (dst_r == ti))).any()
    assert g2.senders_E.max() < info2.num_nodes
    assert info2.node_names[info2.model_slice] == info.node_names[info.model_slice]
