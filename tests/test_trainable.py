"""Tests of the trainable (HAN, self-supervised) profiles (rp_jax.profiles.trainable).

Compiling a training program is the cost here (~25 s CPU each at XLA's default optimisation),
so the tiny-graph tests share a few compiled programs (the grid's one per depth, the traced-depth
grid, the single-config function; same config and shapes), the real-data test adds one, and every
test compiles with LLVM optimisation level 0 (``FAST``), which halves compile time; nothing
tested here depends on how well the kernels are optimised.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rp_jax.data import load_routeprofile
from rp_jax.data.synthetic import make_history
from rp_jax.graphs import MODEL, TASK, Graph, build_graph, relation_mask
from rp_jax.profiles import trainable as T
from rp_jax.text import make_encoder

# HAN grids over forms, depths and seeds: .ci/run's slow tier.
pytestmark = pytest.mark.slow

TINY = dict(
  num_models=6,
  num_candidates=3,
  num_tasks=5,
  num_unscored_tasks=1,
  num_domains=3,
  train_per_task=3,
  test_per_task=2,
)
CFG = T.TrainableConfig(
  hidden=16, heads=2, max_depth=3, semantic_dim=8, score_hidden=8, steps=40, lr=3e-3
)
DEPTHS, SEEDS = (1, 3), (0, 1)
FAST = {"xla_backend_optimization_level": 0}
MODEL_QUERY = (8, 9)  # relations model->query, query->model


def _features(texts, dim):
  return make_encoder("hashing", dim=dim).encode(list(texts))


def _drop_relations(graph: Graph, rels) -> Graph:
  keep = ~np.isin(graph.relation_E, rels)
  return graph._replace(
    senders_E=graph.senders_E[keep],
    receivers_E=graph.receivers_E[keep],
    relation_E=graph.relation_E[keep],
    score_E=graph.score_E[keep],
    score_hat_E=graph.score_hat_E[keep],
    norm_weight_4xE=graph.norm_weight_4xE[:, keep],
  )


@pytest.fixture(scope="module")
def tiny():
  h = make_history(seed=0, **TINY)
  graph, info = build_graph(h)
  return h, graph, info, _features(info.node_texts, 16)


@pytest.fixture(scope="module")
def grid_run(tiny):
  _, graph, info, x = tiny
  return _grid(graph, x, "TQD", info.type_counts)


def _grid(graph, x, form, type_counts):
  return T.trainable_grid(
    graph, x, relation_mask(form), DEPTHS, SEEDS, CFG, type_counts, FAST, return_log=True
  )


@pytest.fixture(scope="module")
def single(tiny):
  """The single-configuration function, jitted once (graph as an argument)."""
  _, _, info, _ = tiny
  return jax.jit(
    lambda s, x, m, d, k: T.trainable_profiles(
      s, x, m, d, k, config=CFG, type_counts=info.type_counts
    ),
    compiler_options=FAST,
  )


# -- attention primitives ----------------------------------------------------------------------


def test_segment_softmax_sums_to_one_per_segment_and_is_zero_safe():
  rng = np.random.default_rng(0)
  seg = np.array([0, 0, 0, 2, 2, 3, 5], np.int32)  # segments 1 and 4 have no edges
  logits = jnp.asarray(rng.normal(size=(7, 3)) * 30, jnp.float32)
  mask = np.array([1, 1, 0, 1, 1, 0, 1], bool)  # segment 3's only edge is masked
  w = T.segment_softmax(logits, seg, 6, mask_E=mask)
  sums = jax.ops.segment_sum(w, seg, num_segments=6)
  np.testing.assert_allclose(sums, [[1] * 3, [0] * 3, [1] * 3, [0] * 3, [0] * 3, [1] * 3], 1e-6)
  assert (np.asarray(w)[~mask] == 0).all()
  top = np.exp(np.asarray(logits[:2]) - np.asarray(logits[:2]).max(0))
  ref = top / top.sum(0)
  np.testing.assert_allclose(w[:2], ref, rtol=1e-5)
  # Gradients stay finite with all-masked and empty segments.
  g = jax.grad(lambda z: jnp.sum(T.segment_softmax(z, seg, 6, mask_E=mask) * z))(logits)
  assert np.isfinite(g).all() and (np.asarray(g)[~mask] == 0).all()
  # The dense version: rows of a masked block, an empty row gives zeros.
  m = jnp.asarray(rng.random((4, 5)) < 0.5).at[2].set(False)
  a = T.masked_softmax(jnp.asarray(rng.normal(size=(4, 5))), m, axis=1)
  np.testing.assert_allclose(a.sum(1), np.where(np.asarray(m).any(1), 1.0, 0.0), atol=1e-6)


# -- encoder ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder(tiny):
  """(params, encode): encode(config, params, form, depth, obs) runs a jitted HANEncoder.

  One compiled forward per config (form, depth and the visible-score grid are traced), shared
  by the encoder tests.
  """
  _, graph, info, x = tiny
  tc = info.type_counts
  struct = T.graph_structure(graph, tc, edges=True)
  params = T.init_params(jax.random.key(3), struct, x, config=CFG, type_counts=tc)
  some_hidden = (np.random.default_rng(1).random((tc[MODEL], tc[TASK])) > 0.3).astype(np.float32)
  jitted = {}

  def encode(config, enc_params, form, depth, obs=some_hidden):
    if config not in jitted:
      jitted[config] = jax.jit(
        lambda p, m, d, o: T.HANEncoder(config, tc, x.shape[1]).apply(p, x, struct, o, m, d),
        compiler_options=FAST,
      )
    return np.asarray(jitted[config](enc_params, relation_mask(form), depth, obs))

  return {"params": params["params"]["encoder"]}, encode


def test_dense_attention_matches_edge_attention(tiny, encoder):
  _, _, info, _ = tiny
  params, encode = encoder
  cfg_e = dataclasses.replace(CFG, attention="edges")
  for form in ("TQD", "Q", "T"):
    dense, edges = encode(CFG, params, form, 3), encode(cfg_e, params, form, 3)
    np.testing.assert_allclose(dense, edges, atol=2e-5, err_msg=form)
    assert np.isfinite(dense).all()
    norms = np.linalg.norm(dense, axis=1)  # unit rows; a node whose ReLUs all died stays 0
    assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))
    np.testing.assert_allclose(norms[info.model_slice], 1.0, atol=1e-5)


def test_benchmark_scores_reach_the_encoder(tiny, encoder):
  _, _, info, _ = tiny
  params, encode = encoder
  tc = info.type_counts
  seen = np.ones((tc[MODEL], tc[TASK]), np.float32)
  hidden = np.zeros_like(seen)
  # With model<->task edges (form T) hiding the scores changes the model embeddings...
  rows = info.model_slice
  diff = encode(CFG, params, "T", 1, seen)[rows] - encode(CFG, params, "T", 1, hidden)[rows]
  assert np.abs(diff).max() > 1e-3
  # ... without them (form Q) it cannot.
  same = encode(CFG, params, "Q", 2, seen) - encode(CFG, params, "Q", 2, hidden)
  assert np.abs(same).max() == 0


def test_static_depth_encoder_equals_traced_depth(tiny, encoder):
  _, graph, info, x = tiny
  params, encode = encoder
  tc = info.type_counts
  struct = T.graph_structure(graph, tc, edges=False)
  obs = np.ones((tc[MODEL], tc[TASK]), np.float32)
  for d in (0, 2):  # a Python int depth builds only that many layers
    static = T.HANEncoder(CFG, tc, x.shape[1]).apply(params, x, struct, obs, relation_mask("T"), d)
    np.testing.assert_allclose(static, encode(CFG, params, "T", d, obs), atol=1e-6)
  with pytest.raises(ValueError, match="depth must lie"):
    T.HANEncoder(CFG, tc, x.shape[1]).apply(params, x, struct, obs, relation_mask("T"), 4)


def test_layers_beyond_depth_are_identity(encoder):
  p3, encode = encoder
  # A max_depth=2 model holding the first two of the three stacked layers.
  cfg2 = dataclasses.replace(CFG, max_depth=2)
  p2 = {"params": {**p3["params"], "han": jax.tree.map(lambda v: v[:2], p3["params"]["han"])}}
  d2_of_3, d2_of_2 = encode(CFG, p3, "TQD", 2), encode(cfg2, p2, "TQD", 2)
  np.testing.assert_allclose(d2_of_3, d2_of_2, atol=1e-6)
  assert np.abs(encode(CFG, p3, "TQD", 3) - d2_of_3).max() > 1e-3
  assert np.abs(encode(CFG, p3, "TQD", 1) - d2_of_3).max() > 1e-3


# -- training -----------------------------------------------------------------------------------


def test_grid_equals_python_loop(tiny, grid_run, single):
  _, graph, info, x = tiny
  prof_SxZxMxD, log = grid_run
  M, D = info.type_counts[MODEL], x.shape[1]
  assert prof_SxZxMxD.shape == (len(DEPTHS), len(SEEDS), M, D)
  assert log.loss_I.shape == (len(DEPTHS), len(SEEDS), CFG.steps)
  struct = T.graph_structure(graph, info.type_counts, edges=False)
  mask = relation_mask("TQD")
  cells = np.asarray(prof_SxZxMxD).reshape(-1, M * D)
  apart = np.abs(cells[:, None] - cells[None]).max(-1)[~np.eye(len(cells), dtype=bool)].min()
  for i, d in enumerate(DEPTHS):
    for j, s in enumerate(SEEDS):
      prof, loss = single(struct, x, mask, d, jax.random.key(s))
      # Step 0 (init, masks, forward) agrees to rounding. Later steps drift apart by up to
      # ~lr: vmapped and unbatched matmuls round differently, and Adam's first updates are
      # ~lr * sign(g), so near-zero gradients of either sign move a parameter by ~lr.
      np.testing.assert_allclose(loss[0], log.loss_I[i, j, 0], rtol=1e-6)
      np.testing.assert_allclose(loss, log.loss_I[i, j], rtol=2e-2)
      np.testing.assert_allclose(prof, prof_SxZxMxD[i, j], atol=1e-2)
  assert apart > 0.1  # so the tolerance above still tells the cells apart


def test_one_program_per_depth_equals_traced_depth(tiny, grid_run):
  """The grid runs one program per depth (only its layers); the traced-depth program (every
  layer computed, those beyond the depth as the identity) gives bitwise the same numbers."""
  _, graph, info, x = tiny
  tc = info.type_counts
  prof, log = grid_run
  traced = T.grid_function(tuple(FAST.items()))
  struct = T.graph_structure(graph, tc, edges=False)
  seeds = np.asarray(SEEDS, np.uint32)
  for i, d in enumerate(DEPTHS):
    depth_R = np.full(len(SEEDS), d, np.int32)
    p_t, log_t = traced(struct, x, relation_mask("TQD"), seeds, depth_R, config=CFG, type_counts=tc)
    assert np.array_equal(p_t, prof[i]), d
    for a, b in zip(log_t, log, strict=True):
      assert np.array_equal(a, b[i]), d


def test_cells_over_forms_and_depths(tiny, grid_run):
  _, graph, info, x = tiny
  tc = info.type_counts
  prof, log = grid_run
  masks = np.stack([relation_mask(f) for f in ("TQD", "Q", "TQD", "TQD")])
  # Depth 1: two forms in one vmapped call (a batched mask), the third cell repeats the first.
  prof_c, loss_c = T.trainable_cells(graph, x, masks, (1, 1, 1, 3), (0, 1, 0, 1), CFG, tc, FAST)
  assert prof_c.shape == (4, tc[MODEL], x.shape[1]) and loss_c.shape == (4, CFG.steps)
  assert np.array_equal(prof_c[0], prof_c[2]) and np.array_equal(loss_c[0], loss_c[2])
  # Other batches than the grid's round differently (see test_grid_equals_python_loop).
  for c, (i, j) in ((0, (0, 0)), (3, (1, 1))):
    np.testing.assert_allclose(loss_c[c], log.loss_I[i, j], rtol=2e-2)
    np.testing.assert_allclose(prof_c[c], prof[i, j], atol=1e-2)
  assert np.abs(np.asarray(prof_c[1]) - np.asarray(prof[0, 1])).max() > 1e-2  # form Q differs
  with pytest.raises(ValueError, match="rel_mask must be"):
    T.trainable_cells(graph, x, masks[:3], (1, 1, 1, 3), (0, 1, 0, 1), CFG, tc, FAST)


def test_training_decreases_loss_with_finite_gradients(grid_run):
  prof, log = grid_run
  loss = np.asarray(log.loss_I)
  assert np.isfinite(loss).all() and np.isfinite(prof).all()
  assert (loss[..., -5:].mean(-1) < 0.8 * loss[..., :5].mean(-1)).all(), loss[..., ::8]
  # Both terms are trained: the feature term falls, the score term is present and finite.
  assert (np.asarray(log.feat_loss_I)[..., -5:].mean(-1) < log.feat_loss_I[..., :5].mean(-1)).all()
  assert (np.asarray(log.score_loss_I) > 0).any()
  gn = np.asarray(log.grad_norm_I)
  assert np.isfinite(gn).all() and (gn > 0).all()
  np.testing.assert_allclose(np.linalg.norm(prof, axis=-1), 1.0, atol=1e-5)


def test_deterministic_and_depth_and_seed_matter(tiny, grid_run):
  _, graph, info, x = tiny
  prof, log = grid_run
  again, log2 = _grid(graph, x, "TQD", info.type_counts)
  assert np.array_equal(prof, again) and np.array_equal(log.loss_I, log2.loss_I)
  assert np.abs(np.asarray(prof[0, 0]) - np.asarray(prof[1, 0])).max() > 1e-2  # depth 1 vs 3
  assert np.abs(np.asarray(prof[0, 0]) - np.asarray(prof[0, 1])).max() > 1e-2  # seed 0 vs 1


def test_masked_relation_changes_nothing(tiny, grid_run):
  _, graph, info, x = tiny
  tc = info.type_counts
  pruned = _drop_relations(graph, MODEL_QUERY)
  assert len(pruned.senders_E) < len(graph.senders_E)
  # Form TQD masks model<->query: deleting those edges changes nothing (same compiled program).
  prof, log = grid_run
  prof_p, log_p = _grid(pruned, x, "TQD", tc)
  assert np.array_equal(prof, prof_p) and np.array_equal(log.loss_I, log_p.loss_I)
  # Form Q uses them: there deleting them does change the profiles (the test can fail).
  prof_q, _ = _grid(graph, x, "Q", tc)
  prof_qp, _ = _grid(pruned, x, "Q", tc)
  assert np.abs(np.asarray(prof_q) - np.asarray(prof_qp)).max() > 1e-3


def test_trace_once_and_bad_inputs(tiny, grid_run):
  _, graph, info, x = tiny
  tc = info.type_counts
  before = T.TRACE_COUNT
  prof, loss = T.trainable_grid(graph, x, relation_mask("TQD"), DEPTHS, SEEDS, CFG, tc, FAST)
  assert before == T.TRACE_COUNT  # cached by the grid fixture's call
  np.testing.assert_array_equal(loss, grid_run[1].loss_I)  # without return_log: the loss
  with pytest.raises(ValueError, match="multiple of heads"):
    T.TrainableConfig(hidden=10, heads=4)
  with pytest.raises(ValueError, match="unknown attention"):
    T.TrainableConfig(attention="sparse")
  with pytest.raises(ValueError, match="depths must lie"):
    T.trainable_grid(graph, x, relation_mask("T"), (5,), SEEDS, CFG, tc)
  with pytest.raises(ValueError, match="contiguously"):
    T.trainable_grid(graph, x, relation_mask("T"), DEPTHS, SEEDS, CFG, tc[::-1])
  with pytest.raises(ValueError, match="x_NxD must be"):
    T.trainable_profiles(graph, x[:-1], relation_mask("T"), 1, jax.random.key(0), type_counts=tc)


# -- newllm and real data -----------------------------------------------------------------------


def _held_out_task_edges(h, graph, info, skip=()) -> int:
  """Number of model<->task edges between held-out models and routing tasks (but ``skip``)."""
  off = info.offsets
  held = off[MODEL] + h.held_out
  route = off[TASK] + np.array([t for t in h.routing_tasks if h.task_names[t] not in skip])
  mt = np.isin(graph.relation_E, (2, 3))
  touch = (np.isin(graph.senders_E, held) & np.isin(graph.receivers_E, route)) | (
    np.isin(graph.receivers_E, held) & np.isin(graph.senders_E, route)
  )
  return int((mt & touch).sum())


def test_newllm_held_out_model_has_no_routing_task_scores():
  std = make_history(seed=0, **TINY)
  new = make_history(seed=0, setting="newllm", **TINY)
  assert len(new.held_out) == 1
  g_new, info = build_graph(new)
  assert _held_out_task_edges(new, g_new, info) == 0
  g_std, info_std = build_graph(std)
  assert _held_out_task_edges(new, g_std, info_std) > 0  # present in the standard graph


@pytest.mark.real_data
def test_real_graph_trains(data_dir):
  h = load_routeprofile(data_dir, "newllm")
  graph, info = build_graph(h)
  assert h.held_out_names == ("mistral-small-24b-instruct-2501-bf16",)
  # The release's model_feature_newllm.json still has the held-out model's MMLU score (80.67);
  # the loader removes it with the others, so no routing-task edge of the new model remains.
  assert _held_out_task_edges(h, graph, info) == 0
  std = load_routeprofile(data_dir, "standard")
  g_std, i_std = build_graph(std)
  assert _held_out_task_edges(h, g_std, i_std) > 0
  # 20 steps on the real (standard) graph, form TQD, hashed features projected to 32-d.
  x = _features(i_std.node_texts, 768) @ np.random.default_rng(0).normal(0, 1 / 768**0.5, (768, 32))
  cfg = dataclasses.replace(CFG, max_depth=2, steps=20)
  tc = i_std.type_counts
  prof, loss = jax.jit(
    lambda s, x: T.trainable_profiles(
      s, x, relation_mask("TQD"), 2, jax.random.key(0), config=cfg, type_counts=tc
    ),
    compiler_options=FAST,
  )(T.graph_structure(g_std, tc, edges=False), x.astype(np.float32))
  assert prof.shape == (std.num_models, 32) and np.isfinite(prof).all()
  assert np.isfinite(loss).all() and loss[-5:].mean() < loss[:5].mean(), loss
