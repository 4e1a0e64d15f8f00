"""Training-free propagation against a dense numpy reference of SPEC §2 (emb_gnn)."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rp_jax import graphs as gr
from rp_jax import propagate as pg
from rp_jax.data import make_history
from rp_jax.profiles import emb_gnn as eg

SMALL = dict(
  num_models=5,
  num_families=2,
  num_candidates=3,
  num_tasks=4,
  num_unscored_tasks=1,
  num_domains=2,
  train_per_task=2,
  test_per_task=1,
  score_missing=0.3,
)
MAX_HOPS = 4
DIM = 6
NORM_ONEHOT = {n: np.eye(4, dtype=np.float32)[i] for i, n in enumerate(gr.NORMS)}
CONFIGS = list(itertools.product(gr.FORMS, gr.NORMS, (0.0, 1.0)))


# -- the dense reference, built from the History (not from the Graph) ----------------------------


def dense_relations(h):
  """Per relation (in graphs.RELATIONS order): (binary adjacency [n_dst, n_src], scores or None).

  Built straight from the History fields, independently of graphs.build_graph.
  """
  F, T = h.num_families, h.num_tasks
  qg = np.flatnonzero(h.query_in_graph)
  fam_MxF = np.arange(F)[None, :] == h.model_family[:, None]
  scored_MxT = np.isfinite(h.scores_MxT)
  task_QxT = np.arange(T)[None, :] == h.query_task[qg][:, None]
  model_QxM = scored_MxT[:, h.query_task[qg]].T
  fwd = [
    (fam_MxF, None),  # family -> model: [M, F]
    (scored_MxT.T, h.scores_MxT.T),  # model -> task: [T, M]
    (h.task_domain_TxC.T, None),  # task -> domain: [C, T]
    (task_QxT, None),  # task -> query: [Q, T]
    (model_QxM, None),  # model -> query: [Q, M]
  ]
  out = []
  for b, s in fwd:
    out.append((b.astype(np.float64), s))
    out.append((b.T.astype(np.float64), None if s is None else s.T))
  return out


def dense_weights(b, s, norm):
  """Weights of one relation: normalisation (per-relation degrees, clamped >= 1) x min-max score."""
  din = np.maximum(b.sum(1), 1.0)[:, None]
  dout = np.maximum(b.sum(0), 1.0)[None, :]
  w = {
    "sym": b / np.sqrt(din * dout),
    "left": b / din,
    "right": b / dout,
    "none": b,
  }[norm]
  if s is not None:
    vals = s[b > 0]
    lo, hi = vals.min(), vals.max()
    s_hat = (np.where(b > 0, s, lo) - lo) / (hi - lo) if hi > lo else np.ones_like(b)
    w = w * s_hat
  return w


def dense_hops(h, x_NxD, form, norm, self_loop, max_hops=MAX_HOPS):
  """[K+1, N, D] float64: SPEC §2 one hop after another, on per-type dense matrices.

  ``form`` is a form name or an [R] relation mask.
  """
  counts = (
    h.num_families,
    h.num_models,
    h.num_tasks,
    h.num_domains,
    int(h.query_in_graph.sum()),
  )
  off = np.concatenate([[0], np.cumsum(counts)])
  rels = dense_relations(h)
  active = (gr.relation_mask(form) if isinstance(form, str) else np.asarray(form)) > 0
  ws = [dense_weights(b, s, norm) for b, s in rels]
  xs = [np.asarray(x_NxD[off[t] : off[t + 1]], np.float64) for t in range(5)]
  out = [np.concatenate(xs)]
  for _ in range(max_hops):
    new = []
    for t in range(5):
      into = [r for r in range(gr.NUM_RELATIONS) if active[r] and gr.REL_DST[r] == t]
      n = len(into) + self_loop
      if n == 0:
        new.append(xs[t])  # no incoming relation: keep the features
        continue
      acc = self_loop * xs[t]
      for r in into:
        acc = acc + ws[r] @ xs[gr.REL_SRC[r]]
      new.append(acc / n)
    xs = new
    out.append(np.concatenate(xs))
  return np.stack(out)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup():
  h = make_history(seed=1, **SMALL)
  g, info = gr.build_graph(h)
  x = np.random.default_rng(0).normal(size=(info.num_nodes, DIM)).astype(np.float32)
  blocks = tuple(jnp.asarray(b) for b in gr.relation_blocks(g, info))
  ref = {(form, norm, loop): dense_hops(h, x, form, norm, loop) for form, norm, loop in CONFIGS}
  return h, g, info, x, blocks, ref


def test_reference_sanity(setup):
  h, g, info, _, _, ref = setup
  # The small history exercises what the formula distinguishes.
  assert np.isnan(h.scores_MxT).any() and np.isfinite(h.scores_MxT).any()
  assert min(info.type_counts) > 0
  assert len(set(np.bincount(h.model_family).tolist())) > 1  # unequal degrees
  # Different norms and forms give different profiles, so the comparisons below can fail.
  ms = info.model_slice
  p = {k: v[2][ms] for k, v in ref.items()}
  assert not np.allclose(p["TQD", "sym", 0.0], p["TQD", "none", 0.0])
  assert not np.allclose(p["TQD", "left", 0.0], p["TQD", "right", 0.0])
  assert not np.allclose(p["T", "sym", 0.0], p["TD", "sym", 0.0])
  assert not np.allclose(p["T", "sym", 0.0], p["T", "sym", 1.0])


_prop = jax.jit(pg.propagate_hops, static_argnames="max_hops")
_readout = jax.jit(pg.readout_operator_hops, static_argnames=("num_nodes", "max_hops"))
_emb = jax.jit(pg.emb_gnn, static_argnames=("type_counts", "max_hops", "l2_normalize"))


@functools.partial(jax.jit, static_argnames=("type_counts",))
def _emb_cells(blocks, x, masks_SxR, hops_S, norms_Sx4, loops_S, *, type_counts):
  """propagate.emb_gnn vmapped over S cells (one compile per graph shape)."""
  one = functools.partial(pg.emb_gnn, type_counts=type_counts, max_hops=MAX_HOPS)
  return jax.vmap(one, in_axes=(None, None, 0, 0, 0, 0))(
    blocks, x, masks_SxR, hops_S, norms_Sx4, loops_S
  )


# Every (form, norm, self_loop, hops) cell, as stacked arrays.
CELLS = [(f, n, s, k) for f, n, s in CONFIGS for k in range(MAX_HOPS + 1)]
CELL_MASKS = np.stack([gr.relation_mask(f) for f, *_ in CELLS])
CELL_NORMS = np.stack([NORM_ONEHOT[n] for _, n, _, _ in CELLS])
CELL_LOOPS = np.array([s for _, _, s, _ in CELLS], np.float32)
CELL_HOPS = np.array([k for *_, k in CELLS], np.int32)


def test_propagate_hops_matches_dense_reference(setup):
  _, g, _, x, _, ref = setup
  for form, norm, loop in CONFIGS:
    got = _prop(g, x, gr.relation_mask(form), NORM_ONEHOT[norm], loop, max_hops=MAX_HOPS)
    assert got.shape == (MAX_HOPS + 1, *x.shape)
    np.testing.assert_allclose(
      got, ref[form, norm, loop], rtol=1e-4, atol=1e-5, err_msg=f"{form} {norm} {loop}"
    )


def test_readout_operator_hops_matches_dense_reference(setup):
  _, g, info, x, _, ref = setup
  rows = np.arange(info.model_slice.start, info.model_slice.stop)
  for form, norm, loop in CONFIGS:
    op = _readout(
      g,
      rows,
      gr.relation_mask(form),
      NORM_ONEHOT[norm],
      loop,
      num_nodes=info.num_nodes,
      max_hops=MAX_HOPS,
    )
    assert op.shape == (MAX_HOPS + 1, len(rows), info.num_nodes)
    got = np.einsum("kmn,nd->kmd", np.asarray(op, np.float64), x)
    np.testing.assert_allclose(
      got, ref[form, norm, loop][:, rows], rtol=1e-4, atol=1e-5, err_msg=f"{form} {norm} {loop}"
    )


def test_emb_gnn_matches_dense_reference(setup):
  _, _, info, x, blocks, ref = setup
  ms = info.model_slice
  got = _emb_cells(
    blocks, x, CELL_MASKS, CELL_HOPS, CELL_NORMS, CELL_LOOPS, type_counts=info.type_counts
  )
  assert got.shape == (len(CELLS), info.type_counts[gr.MODEL], x.shape[1])
  for s, (form, norm, loop, k) in enumerate(CELLS):
    np.testing.assert_allclose(
      got[s], ref[form, norm, loop][k, ms], rtol=1e-4, atol=1e-5, err_msg=str(CELLS[s])
    )


def test_l2_normalize_rows():
  x = jnp.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]])
  np.testing.assert_allclose(pg.l2_normalize_rows(x), [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]])


def test_types_without_incoming_relation_keep_features(setup):
  _, g, info, x, _, _ = setup
  h = _prop(g, x, gr.relation_mask("T"), NORM_ONEHOT["sym"], 0.0, max_hops=MAX_HOPS)
  for t in ("domain", "query"):
    sl = info.type_slice(t)
    for k in range(MAX_HOPS + 1):
      np.testing.assert_array_equal(h[k, sl], x[sl])


def test_jit_equals_eager(setup):
  _, g, _, x, _, _ = setup
  args = (g, x, gr.relation_mask("TQD"), NORM_ONEHOT["left"], 1.0)
  np.testing.assert_allclose(
    pg.propagate_hops(*args, max_hops=MAX_HOPS),
    _prop(*args, max_hops=MAX_HOPS),
    rtol=1e-6,
    atol=1e-6,
  )


@pytest.mark.parametrize("node_type", ["task", "domain", "query"])
def test_masking_a_type_equals_dropping_it(setup, node_type):
  """All relations of a type masked off == the graph built without that type (model profiles)."""
  _, g, info, x, blocks, _ = setup
  t = gr.NODE_TYPES.index(node_type)
  src_r, dst_r = gr.REL_SRC, gr.REL_DST
  touches = (src_r == t) | (dst_r == t)
  g2, info2 = gr.drop_node_type(g, info, node_type)
  blocks2 = tuple(jnp.asarray(b) for b in gr.relation_blocks(g2, info2))
  x2 = np.delete(x, np.arange(info.num_nodes)[info.type_slice(t)], axis=0)
  assert x2.shape[0] == info2.num_nodes
  masks = CELL_MASKS * ~touches
  args = (masks, CELL_HOPS, CELL_NORMS, CELL_LOOPS)
  a = np.asarray(_emb_cells(blocks, x, *args, type_counts=info.type_counts))
  b = np.asarray(_emb_cells(blocks2, x2, *args, type_counts=info2.type_counts))
  # Both float32 computations against one float64 reference of the masked form (in exact
  # arithmetic the two graphs give the same model profiles, but float32 sums in another order on
  # another graph, so comparing them with each other at float32 precision is CPU-dependent).
  # Tolerance: each hop sums at most a few dozen terms here, so after K <= 4 hops float32's
  # relative rounding (6e-8) grows to ~1e-5 of the largest value involved.
  h = setup[0]
  ms = info.model_slice
  refs = {}
  for s, (form, norm, loop, k) in enumerate(CELLS):
    if (form, norm, loop) not in refs:
      refs[form, norm, loop] = dense_hops(h, x, masks[s], norm, loop)
    want = refs[form, norm, loop][k, ms]
    tol = dict(rtol=1e-4, atol=1e-5 * max(1.0, np.abs(want).max()), err_msg=str(CELLS[s]))
    np.testing.assert_allclose(a[s], want, **tol)
    np.testing.assert_allclose(b[s], want, **tol)
  # The masked type does matter when it is on (so the test can fail).
  on = _emb_cells(blocks, x, CELL_MASKS, *args[1:], type_counts=info.type_counts)
  uses = CELL_MASKS[:, touches].any(1) & (CELL_HOPS >= 2)
  assert not np.allclose(np.asarray(on)[uses], np.asarray(a)[uses])


def test_emb_gnn_grid_equals_loop_and_compiles_once(setup):
  _, _, info, x, blocks, _ = setup
  cells = [
    (form, k, norm, loop)
    for form in gr.FORMS
    for k in range(MAX_HOPS + 1)
    for norm in gr.NORMS
    for loop in (0, 1)
  ]
  assert len(cells) == 200
  masks, hops, norms, loops = eg.grid_arrays(cells)
  kw = dict(type_counts=info.type_counts, max_hops=MAX_HOPS)
  before = eg.TRACE_COUNT
  grid = np.asarray(eg.emb_gnn_grid(blocks, x, masks, hops, norms, loops, **kw))
  x_b = x[::-1].copy()
  grid_b = np.asarray(eg.emb_gnn_grid(blocks, x_b, masks, hops, norms, loops, **kw))
  traces = eg.TRACE_COUNT - before
  assert traces == 1  # the second call (new features, same shapes) reuses the first trace
  assert grid.shape == (200, info.type_counts[gr.MODEL], x.shape[1])
  for s, (form, k, norm, loop) in enumerate(cells):
    want = _emb(blocks, x, gr.relation_mask(form), k, NORM_ONEHOT[norm], float(loop), **kw)
    np.testing.assert_allclose(grid[s], want, rtol=1e-5, atol=1e-6, err_msg=str(cells[s]))
  s = cells.index(("TQ", 3, "right", 1))
  want_b = _emb(blocks, x_b, gr.relation_mask("TQ"), 3, NORM_ONEHOT["right"], 1.0, **kw)
  np.testing.assert_allclose(grid_b[s], want_b, rtol=1e-5, atol=1e-6)
  assert not np.allclose(grid_b[s], grid[s])


def test_grid_rejects_unknown_norm():
  with pytest.raises(ValueError, match="unknown normalisation 'max'"):
    eg.norm_onehot("max")


def test_odd_k_defect_and_self_loop_fix(setup):
  """Reference (self_loop=0), form T, K=1: a model's own features vanish from its profile."""
  _, _, info, x, blocks, _ = setup
  kw = dict(type_counts=info.type_counts, max_hops=MAX_HOPS)
  mask, sym = gr.relation_mask("T"), NORM_ONEHOT["sym"]
  m = 2
  node = info.model_slice.start + m
  x0 = x.copy()
  x0[node] = 0.0  # the model's own feature row zeroed
  p = lambda feats, k, loop: np.asarray(_emb(blocks, feats, mask, k, sym, loop, **kw))
  np.testing.assert_allclose(p(x, 1, 0.0)[m], p(x0, 1, 0.0)[m], rtol=0, atol=0)
  # With self_loop=1 the model keeps 1/3 of its own row (family->model, task->model, itself).
  diff = p(x, 1, 1.0)[m] - p(x0, 1, 1.0)[m]
  np.testing.assert_allclose(diff, x[node] / 3.0, rtol=1e-5, atol=1e-6)
  # At even K the reference does see the model's own features again (model->task->model).
  assert not np.allclose(p(x, 2, 0.0)[m], p(x0, 2, 0.0)[m])
