"""GraphRouter: a bipartite query-model graph attention network with an edge scorer (SPEC §2).

Every query is linked to every candidate model. Query embeddings and model profiles are projected
to ``hidden`` = 256 (ELU); then 2 GAT layers (4 heads, mean over heads, LeakyReLU 0.2 scoring,
dropout 0.1 on the attention weights, ELU between layers), written as dense attention because the
graph is complete bipartite:

- a query attends over the A models and itself;
- a model attends over the query nodes of the graph and itself.

An edge MLP on [h_q || h_m] (hidden 256, ReLU) gives one logit per (query, model); the loss is a
binary cross-entropy against ``RouterData.labels_QxA`` (masked where NaN). rp_jax's labels are the
History outcomes; on the public data the training outcomes are rebuilt from the pairs (binary
tasks: better => 1, worse => 0, other models unknown), as the full outcome rows are not released.
Adam 1e-4 (constant rate), 100 epochs, batches of 32 training queries.

Validation (model selection inside jit): for each validation query, the model with the highest
logit *among the models whose label is known* for that query is picked, and the score is the mean
label of the picks over validation queries with any known label (the public labels are sparse, so
an argmax over all models would mostly land on unknown labels). The epoch with the best score is
kept (ties: the earlier).

Inductive (default) vs transductive:

- inductive: only training queries are graph nodes. During training the models attend over
  training queries; at test each test query attends over the models (whose representations come
  from the graph of the non-validation training queries) and itself, and is never attended by a
  model. Validation queries are treated like test queries.
- transductive (``transductive=True``, the reference's behaviour): the test queries are also graph
  nodes (without labels) that the models attend over, during training and at test.

Cost control: a full-graph forward per step (~1k query nodes x (768 x 256 + 2 x 256 x 1024)) is
~1.5 GFLOP forward, ~4.5 with the backward pass, x ~3,000 steps (100 epochs x 29 batches) per
cell. By default (``full_graph=False``) each step uses a *subgraph*: the batch's queries (plus, in
transductive mode, a random sample of test queries of proportional size) and all A models, so the
models attend over the batch's queries only during training (neighbour sampling as in GraphSAGE).
Validation and test always use the full graph (all non-validation training queries, plus the test
queries in transductive mode). ``full_graph=True`` runs every training step on the full graph.
Because attention weights sum to one, a model's representation is a weighted mean over its query
neighbours in both cases; only the share of its self-loop differs (1/33 vs ~1/900). Measured on
the public data (100 epochs, one H200): 0.64 s per cell with subgraph steps, 1.58 s with
full-graph steps (single-cell calls); 0.078 s per cell in a vmapped 16 x 5 grid; 35-45 s per
cell on the shared 2-core CPU machine (subgraph steps).

GAT attention is "static" (the ranking of a node's neighbours is the same for every node) and a
model's representation is mostly a mean over queries, so the router learns query-dependent
routing slowly and, on the public data, often settles near the best constant router.

Initialisation: Dense kernels U(±1/sqrt(fan_in)) (PyTorch's Linear), attention vectors Glorot,
biases zero, all from one flat random draw (``rp_jax.train.uniform_init``).

newllm: held-out models (``trainable_A`` False) are masked out of every query's attention during
training and validation, and carry no labels, so the loss does not depend on their profile rows
(its gradient there is exactly zero). At test all A models are graph nodes and selectable.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rp_jax import train as tr
from rp_jax.ops import NEG, PRECISION
from rp_jax.routers import validation
from rp_jax.routers.base import Family, RouterFns
from rp_jax.routers.data import RouterData


@dataclasses.dataclass(frozen=True)
class GraphConfig:
  """Static GraphRouter settings (SPEC §2 defaults; hashable, part of the jit cache key).

  Attributes:
    epochs: training epochs.
    batch_size: training queries per batch.
    hidden: node feature size after projection and after each GAT layer.
    heads: attention heads per GAT layer (averaged).
    layers: GAT layers.
    dropout: dropout on attention weights.
    transductive: test queries are graph nodes during training (the reference's behaviour).
    full_graph: every training step on the full graph instead of the batch's subgraph.
    val_fraction: fraction of training queries held out for model selection.
    clip_norm: global-norm gradient clipping (0 = off).
    cosine_alpha: final learning rate fraction (1.0 = constant, as the reference's Adam).
    skip_empty: guard updates against batches without any label; ``resolve`` sets it False when
      every training query has a label on a trainable model.
    val_every: validate after every ``val_every``-th epoch (and the last) only (speed).
    val_metric: epoch selection by "utility" (routing utility of the argmax over all candidates,
      ``rp_jax.routers.validation``) or "labelled" (the mean label of the argmax among the models
      whose label is known: the previous default; it never routes to unlabelled models).
  """

  epochs: int = 100
  batch_size: int = 32
  hidden: int = 256
  heads: int = 4
  layers: int = 2
  dropout: float = 0.1
  transductive: bool = False
  full_graph: bool = False
  val_fraction: float = 0.1
  clip_norm: float = 1.0
  cosine_alpha: float = 1.0
  skip_empty: bool = True
  val_metric: str = "utility"
  val_every: int = 1

  def __post_init__(self):
    if self.val_metric not in ("utility", "labelled"):
      raise ValueError(f"unknown val_metric {self.val_metric!r}; expected 'utility' or 'labelled'")
    if min(self.epochs, self.batch_size, self.hidden, self.heads, self.layers) < 1:
      raise ValueError("GraphConfig: epochs, batch_size, hidden, heads and layers must be >= 1")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"GraphConfig.dropout must lie in [0, 1); got {self.dropout}")


DEFAULT_HPARAMS = {"learning_rate": 1e-4, "weight_decay": 0.0, "model_dropout": 0.0}


def resolve(config: GraphConfig, data: RouterData) -> GraphConfig:
  """The config with ``skip_empty`` fixed from the data (host side): False when every training
  query has a known label on a trainable model (no batch can then be empty)."""
  labels = np.asarray(data.labels_QxA)[:, np.asarray(data.trainable_A)]
  if config.skip_empty and bool(np.isfinite(labels).any(1).all()):
    return dataclasses.replace(config, skip_empty=False)
  return config


class BipartiteGAT(nn.Module):
  """One dense GAT layer on the complete bipartite query-model graph (with self-loops).

  One shared linear map and attention vectors for all nodes (a homogeneous GAT over the union of
  query and model nodes). Every query attends over the (masked) models and itself; every model
  attends over the queries marked in ``node_mask_N`` and itself. Queries outside the mask (e.g.
  inductive test queries, padding) are scored but are not neighbours of the models. Attention
  dropout is applied through explicit multipliers (None: no dropout).
  """

  hidden: int
  heads: int

  @nn.compact
  def __call__(self, hq_NxD, hm_AxD, node_mask_N, model_mask_A, keep=None):
    H, F = self.heads, self.hidden
    lin = nn.Dense(H * F, use_bias=False, precision=PRECISION)
    att_src_HxD = self.param("att_src", nn.initializers.glorot_uniform(), (H, F))
    att_dst_HxD = self.param("att_dst", nn.initializers.glorot_uniform(), (H, F))
    bias_D = self.param("bias", nn.initializers.zeros, (F,))
    # One matmul for queries and models (shared weights), then split.
    n = hq_NxD.shape[0]
    z = lin(jnp.concatenate([hq_NxD, hm_AxD])).reshape(-1, H, F)
    s = jnp.einsum("nhf,hf->nh", z, att_src_HxD, precision=PRECISION)
    d = jnp.einsum("nhf,hf->nh", z, att_dst_HxD, precision=PRECISION)
    zq, sq, dq = z[:n], s[:n], d[:n]
    zm, sm, dm = z[n:], s[n:], d[n:]

    def attend(z_self, s_self, d_self, z_nb, s_nb, mask_nb, keep_XxYxH):
      """Nodes (rows of z_self) attend over the masked neighbours z_nb and themselves."""
      e_nb = nn.leaky_relu(s_nb[None, :, :] + d_self[:, None, :], 0.2)  # [X, Y, H]
      e_nb = jnp.where(mask_nb[None, :, None], e_nb, NEG)
      e_self = nn.leaky_relu(s_self + d_self, 0.2)  # [X, H]
      a = jax.nn.softmax(jnp.concatenate([e_nb, e_self[:, None, :]], axis=1), axis=1)
      if keep_XxYxH is not None:
        a = a * keep_XxYxH
      out = (
        jnp.einsum("xyh,yhf->xhf", a[:, :-1], z_nb, precision=PRECISION)
        + a[:, -1][..., None] * z_self
      )
      return out.mean(axis=1) + bias_D[None, :]

    keep_q, keep_m = (None, None) if keep is None else keep
    return (
      attend(zq, sq, dq, zm, sm, model_mask_A, keep_q),
      attend(zm, sm, dm, zq, sq, node_mask_N, keep_m),
    )


def attention_shapes(num_queries: int, num_models: int, heads: int, layers: int) -> list:
  """Shapes of the attention-dropout multipliers: per layer, queries' and models' attention."""
  q, a = (num_queries, num_models + 1, heads), (num_models, num_queries + 1, heads)
  return [s for _ in range(layers) for s in (q, a)]


class GraphRouter(nn.Module):
  """``__call__(query_NxD, node_mask_N, profile_AxD, model_mask_A)`` -> [N, A] logits.

  Rows of ``query_NxD`` inside ``node_mask_N`` are graph nodes (the models attend over them);
  the other rows are scored queries outside the graph. ``model_mask_A`` selects the models the
  queries attend over (False: held out of training). ``keep``: attention-dropout multipliers in
  ``attention_shapes`` order, or None.
  """

  hidden: int = 256
  heads: int = 4
  layers: int = 2

  @nn.compact
  def __call__(self, query_NxD, node_mask_N, profile_AxD, model_mask_A, keep=None):
    hq = nn.elu(nn.Dense(self.hidden, precision=PRECISION, name="proj_query")(query_NxD))
    hm = nn.elu(nn.Dense(self.hidden, precision=PRECISION, name="proj_model")(profile_AxD))
    for layer in range(self.layers):
      gat = BipartiteGAT(self.hidden, self.heads, name=f"gat{layer}")
      k = None if keep is None else keep[2 * layer : 2 * layer + 2]
      hq, hm = gat(hq, hm, node_mask_N, model_mask_A, k)
      if layer < self.layers - 1:
        hq, hm = nn.elu(hq), nn.elu(hm)
    # Edge MLP on [h_q || h_m]: its first layer splits into a query part and a model part, so it
    # costs (N + A) x F x F instead of N x A x 2F x F.
    eq = nn.Dense(self.hidden, precision=PRECISION, name="edge_query")(hq)
    em = nn.Dense(self.hidden, use_bias=False, precision=PRECISION, name="edge_model")(hm)
    h_NxAxD = nn.relu(eq[:, None, :] + em[None, :, :])
    return nn.Dense(1, precision=PRECISION, name="edge_out")(h_NxAxD)[..., 0]


def init_bound(path, shape) -> float:
  """Uniform bounds: Dense kernels U(±1/sqrt(fan_in)) (PyTorch's Linear), attention vectors
  Glorot (PyG's GATConv), biases zero."""
  name = path[-1].key
  if name == "kernel":
    return 1.0 / math.sqrt(shape[0])
  if name in ("att_src", "att_dst"):
    return math.sqrt(6.0 / (shape[0] + shape[1]))
  return 0.0


def masked_bce(*, logits, labels, mask) -> tuple[jax.Array, jax.Array]:
  """(mean binary cross-entropy over masked entries, number of entries)."""
  assert logits.shape == labels.shape == mask.shape
  terms = optax.sigmoid_binary_cross_entropy(logits, jnp.where(mask, labels, 0.0))
  weight = mask.sum().astype(jnp.float32)
  return jnp.where(mask, terms, 0.0).sum() / jnp.maximum(weight, 1.0), weight


def static_sizes(config: GraphConfig, data: RouterData) -> tuple[int, int, int]:
  """(validation queries, batches per epoch, test queries sampled per batch), all static."""
  n_val = tr.num_val_queries(data.num_train, config.val_fraction)
  n_fit = data.num_train - n_val
  num_batches = tr.ceil_div(n_fit, config.batch_size)
  n_ctx = 0
  if config.transductive and not config.full_graph and data.num_test:
    n_ctx = min(data.num_test, tr.ceil_div(config.batch_size * data.num_test, n_fit))
  return n_val, num_batches, n_ctx


def make(config: GraphConfig, data: RouterData) -> RouterFns:
  """The pure functions (training pieces, loop, state, score) of a GraphRouter on ``data``.

  The state holds the trained parameters and the graph's query nodes (``nodes_NxD``: the
  non-validation training queries, then the test queries in transductive mode); scoring appends
  the scored queries as rows outside the graph. A scored query attends over the models and itself
  only, so a test query scored outside the graph gets the same logits as the same query inside it.
  """
  module = GraphRouter(config.hidden, config.heads, config.layers)
  n_val, num_batches, n_ctx = static_sizes(config, data)
  num_q, num_test, bs = data.num_train, data.num_test, config.batch_size
  num_cand, rate = data.num_candidates, config.dropout
  data = jax.tree.map(jnp.asarray, data)
  trainable_A = data.trainable_A

  def apply(params, queries, node_mask, profile, model_mask, key=None):
    keep = None
    if key is not None and rate > 0.0:
      shapes = attention_shapes(queries.shape[0], num_cand, config.heads, config.layers)
      keep = tr.dropout_keep(key, rate, shapes)
    return module.apply({"params": params}, queries, node_mask, profile, model_mask, keep)

  eval_graph = _eval_graph_fn(config, data)

  def init(key, profile_AxD):
    q = data.train_q_QxD[:1]
    args = (q, jnp.ones(1, bool), profile_AxD, trainable_A)
    shapes = jax.eval_shape(module.init, key, *args)["params"]
    return tr.uniform_init(key, shapes, init_bound)

  def split(key):
    return tr.query_split(key, num_q, n_val)

  batches = _batches_fn(num_q - n_val, num_test, bs, num_batches, n_ctx)

  def loss(params, profile_AxD, batch, key, hparams, sp):
    pos_B, valid_B, ctx_C = batch
    ids_B = sp.train_idx[pos_B]
    if config.full_graph:
      queries, node_mask, _ = eval_graph(sp, data.train_q_QxD[:0])
      logits_BxA = apply(params, queries, node_mask, profile_AxD, trainable_A, key)[pos_B]
    else:
      queries = jnp.concatenate([data.train_q_QxD[ids_B], data.test_q_QxD[ctx_C]])
      node_mask = jnp.concatenate([valid_B, jnp.ones(ctx_C.shape[0], bool)])
      logits_BxA = apply(params, queries, node_mask, profile_AxD, trainable_A, key)[:bs]
    labels_BxA = data.labels_QxA[ids_B]
    keep_A = tr.model_dropout_keep(key, trainable_A, hparams["model_dropout"])
    mask = jnp.isfinite(labels_BxA) & valid_B[:, None] & (trainable_A & keep_A)[None, :]
    return masked_bce(logits=logits_BxA, labels=labels_BxA, mask=mask)

  def validate(params, profile_AxD, sp, hparams):
    queries, node_mask, start = eval_graph(sp, data.train_q_QxD[sp.val_idx])
    if config.val_metric == "utility":  # argmax over all candidates, as at test time
      all_A = jnp.ones_like(trainable_A)
      logits_VxA = apply(params, queries, node_mask, profile_AxD, all_A)[start:]
      return validation.val_utility(logits_VxA, data, sp)
    logits_VxA = apply(params, queries, node_mask, profile_AxD, trainable_A)[start:]
    return validation.labelled_utility(logits_VxA, data, sp)

  def state(params, profile_AxD, sp, hparams):
    del profile_AxD, hparams
    queries, _, n_nodes = eval_graph(sp, data.train_q_QxD[:0])
    return {"params": params, "nodes_NxD": queries[:n_nodes]}

  loop = tr.TrainConfig.for_router(config, num_batches)
  return RouterFns(tr.Pieces(init, split, batches, loss, validate), loop, state)


def _eval_graph_fn(config: GraphConfig, data: RouterData):
  """``eval_graph(sp, outside_QxD)``: the query rows of an evaluation graph.

  Rows: non-validation training queries, [test queries if transductive], then outside rows.
  Returns (queries, node mask, index of the first outside row).
  """

  def eval_graph(sp, outside_QxD):
    parts = [data.train_q_QxD[sp.train_idx]]
    if config.transductive:
      parts.append(data.test_q_QxD)
    n_nodes = sum(p.shape[0] for p in parts)
    queries = jnp.concatenate([*parts, outside_QxD])
    return queries, jnp.arange(queries.shape[0]) < n_nodes, n_nodes

  return eval_graph


def _batches_fn(n_fit: int, num_test: int, bs: int, num_batches: int, n_ctx: int):
  """``batches(key, sp)``: per batch, ``bs`` positions into ``sp.train_idx`` (the full graph's
  node order, so full-graph steps can gather), their validity, and ``n_ctx`` test queries of
  context (transductive mode; none otherwise)."""

  def batches(key, sp):
    del sp  # positions index sp.train_idx inside the loss
    # One draw of random words for both shuffles (training positions, then test context).
    bits = jax.random.bits(key, (n_fit + num_test,), jnp.uint32)
    # Positions into sp.train_idx (the full graph's node order), so full-graph steps can gather.
    pos = jnp.argsort(bits[:n_fit]).astype(jnp.int32)
    total = bs * num_batches
    valid = jnp.arange(total) < pos.shape[0]
    pos = jnp.concatenate([pos, jnp.zeros(total - pos.shape[0], jnp.int32)])
    pos, valid = pos.reshape(num_batches, bs), valid.reshape(num_batches, bs)
    if n_ctx == 0:
      return pos, valid, jnp.zeros((num_batches, 0), jnp.int32)
    perm = jnp.argsort(bits[n_fit:]).astype(jnp.int32)
    reps = tr.ceil_div(num_batches * n_ctx, num_test)
    ctx = jnp.tile(perm, reps)[: num_batches * n_ctx].reshape(num_batches, n_ctx)
    return pos, valid, ctx

  return batches


def score(config: GraphConfig, state, profile_AxD, query_QxD, hparams) -> jax.Array:
  """[Q, A] logits of queries scored outside the graph whose nodes the state holds."""
  del hparams
  nodes_NxD = state["nodes_NxD"]
  queries = jnp.concatenate([nodes_NxD, query_QxD])
  node_mask = jnp.arange(queries.shape[0]) < nodes_NxD.shape[0]
  all_A = jnp.ones(profile_AxD.shape[0], bool)
  module = GraphRouter(config.hidden, config.heads, config.layers)
  logits = module.apply({"params": state["params"]}, queries, node_mask, profile_AxD, all_A)
  return logits[nodes_NxD.shape[0] :]


FAMILY = Family("graph", GraphConfig, DEFAULT_HPARAMS, make, score, resolve=resolve)
