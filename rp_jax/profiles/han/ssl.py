"""The self-supervised objective of the HAN profiles and the parameter initialisation.

Objective (``ssl_loss``), both terms weight 1:

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
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax.graphs import MODEL, NUM_NODE_TYPES, NUM_RELATIONS, TASK
from rp_jax.profiles.han.config import TrainableConfig
from rp_jax.profiles.han.modules import INIT_STD, SSLModel
from rp_jax.profiles.han.structure import Structure, offsets, types_present


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
    the attention-dropout seed of every layer (all ``max_depth`` of them, whatever the depth:
    the draws do not depend on it).
  """
  off = offsets(type_counts)
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
  depth: jax.Array | int,
  key: jax.Array,
  *,
  config: TrainableConfig,
  type_counts: tuple[int, ...],
  train: jax.Array | float = 1.0,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
  """Self-supervised loss of one step, masks and dropout drawn from ``key``.

  Args:
    params: the SSLModel's variables (``init_params``).
    struct: the graph's Structure.
    x_NxD: [N, D] node features.
    rel_mask_R: [R] 0/1 organisational form.
    depth: HAN layers, static (Python int) or traced (see ``HANEncoder``).
    key: this step's key (masks, dropout).
    config: static hyperparameters.
    type_counts: static ``GraphInfo.type_counts``.
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
  """Initial parameters of the encoder (all ``max_depth`` layers) and the self-supervised heads.

  Every parameter comes from one unit-variance uniform draw, scaled by ``INIT_STD``: kernels
  std 1/sqrt(fan_in) (LeCun; uniform like PyTorch's Linear default, not normal), biases and
  the mask token 0, attention vectors 1/sqrt(channels), score-feature logit weights 0.1. The
  draw does not depend on the depth a training uses.
  """
  model = SSLModel(config, tuple(type_counts), x_NxD.shape[-1])
  mask = jnp.ones((NUM_RELATIONS,), jnp.float32)
  shapes = jax.eval_shape(
    lambda: model.init(
      jax.random.key(0),
      x_NxD,
      struct,
      mask,
      jnp.int32(1),  # traced: every layer's parameters are built
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
    if name not in INIT_STD:
      raise ValueError(f"no init rule for parameter {jax.tree_util.keystr(path)}")
    std = float(INIT_STD[name](leaf.shape))
    out.append(z[start : start + size].reshape(leaf.shape) * std)
    start += size
  return jax.tree_util.tree_unflatten(treedef, out)
