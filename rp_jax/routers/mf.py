"""MFRouter: Bradley–Terry scoring whose model side is a function of the profile.

Two forms (``MFConfig.form``):

- "bilinear" (default): s(m, q) = x_qᵀ H p_m + c · p_m, with H a full [Dx, Dp] map and c a
  vector. Convex in (H, c). It is trained in its kernel form (representer theorem): parameters
  Θ = H Pᵀ [Dx, A] and b = P c [A] over the candidates' profiles P, penalties
  l2 · (tr(Θ K⁻¹ Θᵀ) + ‖w‖²) + ``bias_l2`` · bᵀ K⁻¹ b with K = P Pᵀ + ρ I. Scoring any
  profiles P' (a candidate added later, a held-out model) uses the same map:
  s = (x Θ + b) K⁻¹ P P'ᵀ — for the training candidates this is x Θ + b (up to ρ), for a new
  one the kernel interpolation of the others' columns by profile similarity. The ridge ρ
  (``kernel_ridge``, traced) is the kernel of a white-noise term added to the linear profile
  kernel: for seen models it mixes the columns by (K + ρI)⁻¹K, which Θ undoes at a larger
  penalty; for a new model it is the ridge of the regression of its column on the others'
  (c = (K + ρI)⁻¹ P p_new). With near-orthogonal
  profiles (index, text embeddings) that interpolation is a shrunken blend, almost never the
  argmax; with ``scores`` profiles (standardised benchmark scores, few dimensions) it can
  extrapolate from a new model's benchmark scores (docs/findings.md, cold start). Full batches, zero
  initialisation, Adam with a cosine decay; the problem is convex, so the step count matters
  little. This is the recipe that came closest to (and tied) the per-task lookup on the public
  data (see docs/findings.md).
- "factorised": s(m, q) = <g(p_m), W x_q> + b(p_m) with a rank-``rank`` factorisation (g linear,
  or a tanh MLP with ``hidden`` > 0), b linear in the profile; L2 on every kernel.

x_q is the query's feature vector (its embedding, plus the task one-hot for "prompt+task"
inputs). There are no free per-model parameters in either form (RouteLLM's MF has a free v_m and
b_m): a model enters through its profile, so a new model gets scores from its profile alone.

Loss (full batches of training queries by default): the Bradley–Terry logistic loss on every
(better, worse) pair, softplus(-(s_better - s_worse)), plus ``bce_weight`` x the binary
cross-entropy of sigmoid(s(m, q) + w · x_q) against the known outcomes (the public data: rebuilt
0/1 outcomes of binary tasks), where w · x_q is a query-difficulty offset that cancels in pairs
and in the argmax, plus the L2 penalty. The pairwise term alone is shift-invariant per query; the
pointwise term ties the scores to an absolute outcome scale.

Model dropout (cold start by construction): with probability ``model_dropout`` per step, one random
trainable candidate loses all its pairs and outcomes from that step's loss.

Traced hyperparameters: learning rate, weight decay (AdamW's, 0 by default), ``l2``,
``bce_weight``, ``model_dropout``, ``kernel_ridge``.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from rp_jax import train as tr
from rp_jax.ops import PRECISION
from rp_jax.routers import validation
from rp_jax.routers.base import Family, RouterFns
from rp_jax.routers.data import RouterData

FORMS = ("bilinear", "factorised")


@dataclasses.dataclass(frozen=True)
class MFConfig:
  """Static MFRouter settings (hashable).

  Attributes:
    form: "bilinear" (kernel form, convex) or "factorised" (see the module docstring).
    epochs: validation checkpoints: after every ``passes_per_epoch`` passes over the training
      queries the validation score is taken and the best checkpoint kept.
    passes_per_epoch: passes over the training queries between checkpoints (with full batches,
      optimiser steps): 100 steps = 10 epochs x 10 passes. The bilinear form is convex: on the
      public data 100 and 250 steps select and route alike (docs/findings.md).
    queries_per_batch: whole training queries per batch; 0 = all of the fold in one batch.
    rank: dimension of the factorisation ("factorised").
    hidden: "factorised": 0 = g is linear in the profile; > 0 = a tanh hidden layer.
    bias_l2: the penalty on the profile bias, bᵀ K⁻¹ b ("bilinear").
    val_fraction: fraction of training queries held out for model selection.
    clip_norm: global-norm gradient clipping (0 = off).
    cosine_alpha: final learning rate as a fraction of the initial one.
    skip_empty: guard updates against batches without any pair or outcome.
    val_metric: epoch selection by "utility" (routing utility) or "pairs" (pair accuracy).
  """

  form: str = "bilinear"
  epochs: int = 10
  passes_per_epoch: int = 10
  queries_per_batch: int = 0
  rank: int = 32
  hidden: int = 0
  bias_l2: float = 1e-4
  val_fraction: float = 0.1
  clip_norm: float = 0.0
  cosine_alpha: float = 0.01
  skip_empty: bool = True
  val_metric: str = "utility"

  def __post_init__(self):
    if self.form not in FORMS:
      raise ValueError(f"unknown MF form {self.form!r}; expected one of {FORMS}")
    if min(self.epochs, self.passes_per_epoch, self.rank) < 1:
      raise ValueError("MFConfig: epochs, passes_per_epoch and rank must be >= 1")
    if self.hidden < 0 or self.queries_per_batch < 0:
      raise ValueError("MFConfig: hidden and queries_per_batch must be >= 0")
    if self.val_metric not in ("utility", "pairs"):
      raise ValueError(f"unknown val_metric {self.val_metric!r}; expected 'utility' or 'pairs'")


DEFAULT_HPARAMS = {
  "learning_rate": 3e-2,
  "weight_decay": 0.0,
  "l2": 3e-3,
  "bce_weight": 0.3,
  "model_dropout": 0.0,
  "kernel_ridge": 1e-4,
}


class MFRouter(nn.Module):
  """``__call__(query_QxD, profile_AxD)`` -> (scores [Q, A], difficulty [Q])."""

  rank: int = 32
  hidden: int = 0

  @nn.compact
  def __call__(self, query_QxD, profile_AxD):
    dense = lambda n, name, bias=False: nn.Dense(n, use_bias=bias, precision=PRECISION, name=name)
    u_QxD = dense(self.rank, "query")(query_QxD)
    h_AxH = profile_AxD
    if self.hidden:
      h_AxH = jnp.tanh(dense(self.hidden, "profile_hidden", bias=True)(profile_AxD))
    v_AxD = dense(self.rank, "profile")(h_AxH)
    b_A = dense(1, "profile_bias")(profile_AxD)[:, 0]
    scores_QxA = jnp.matmul(u_QxD, v_AxD.T, precision=PRECISION) + b_A[None, :]
    difficulty_Q = dense(1, "difficulty", bias=True)(query_QxD)[:, 0]
    return scores_QxA, difficulty_Q


def init_bound(path, shape) -> float:
  """Kernels U(±1/sqrt(fan_in)) (PyTorch's Linear), biases zero."""
  return 1.0 / math.sqrt(shape[0]) if path[-1].key == "kernel" else 0.0


def pairwise_and_pointwise_loss(
  *, s_BxA, d_B, table_BxJx2, pair_mask_BxJ, labels_BxA, label_mask_BxA, bce_weight
):
  """(BT logistic loss over pairs + bce_weight x BCE over known outcomes, number of terms)."""
  assert table_BxJx2.shape[:2] == pair_mask_BxJ.shape and labels_BxA.shape == s_BxA.shape
  better = jnp.take_along_axis(s_BxA, table_BxJx2[..., 0], axis=1)
  worse = jnp.take_along_axis(s_BxA, table_BxJx2[..., 1], axis=1)
  n_pairs = pair_mask_BxJ.sum()
  pair = jnp.where(pair_mask_BxJ, jax.nn.softplus(worse - better), 0.0).sum()
  logit = s_BxA + d_B[:, None]
  y = jnp.where(label_mask_BxA, labels_BxA, 0.0)
  n_labels = label_mask_BxA.sum()
  bce = jnp.where(label_mask_BxA, jax.nn.softplus(logit) - y * logit, 0.0).sum()
  loss = pair / jnp.maximum(n_pairs, 1) + bce_weight * bce / jnp.maximum(n_labels, 1)
  return loss, (n_pairs + n_labels).astype(jnp.float32)


def kernel_inverse(profile_AxD: jax.Array, eps: float) -> jax.Array:
  """[A, A] (P Pᵀ + eps I)⁻¹ of the candidates' profiles."""
  k = jnp.matmul(profile_AxD, profile_AxD.T, precision=PRECISION)
  return jnp.linalg.inv(k + eps * jnp.eye(k.shape[0], dtype=k.dtype))


def forward(config: MFConfig, params, train_profile_AxD, profile_BxD, query_QxD, ridge):
  """(scores [Q, B] of the profiles ``profile_BxD``, difficulty [Q]) of trained parameters.

  ``train_profile_AxD``: the candidates the parameters were trained with (the kernel's basis in
  the bilinear form; unused by the factorised form); ``ridge``: the kernel ridge ρ.
  """
  if config.form == "factorised":
    module = MFRouter(config.rank, config.hidden)
    return module.apply({"params": params}, query_QxD, profile_BxD)
  kinv = kernel_inverse(train_profile_AxD, ridge)
  basis_AxB = jnp.matmul(
    kinv, jnp.matmul(train_profile_AxD, profile_BxD.T, precision=PRECISION), precision=PRECISION
  )
  raw_QxA = jnp.matmul(query_QxD, params["theta"], precision=PRECISION) + params["bias"][None, :]
  scores = jnp.matmul(raw_QxA, basis_AxB, precision=PRECISION)
  return scores, jnp.matmul(query_QxD, params["difficulty"], precision=PRECISION)


def penalty(config: MFConfig, params, train_profile_AxD, ridge) -> jax.Array:
  """The L2 penalty of the parameters, before its ``l2`` factor, and the bias term."""
  if config.form == "factorised":
    kernels = [
      x for path, x in jax.tree_util.tree_leaves_with_path(params) if "kernel" in str(path)
    ]
    return sum(jnp.sum(k * k) for k in kernels), jnp.zeros(())
  kinv = kernel_inverse(train_profile_AxD, ridge)
  theta = params["theta"]
  reg = jnp.sum(jnp.matmul(theta, kinv, precision=PRECISION) * theta)
  reg = reg + jnp.sum(params["difficulty"] ** 2)
  b = params["bias"]
  return reg, jnp.dot(b, jnp.matmul(kinv, b, precision=PRECISION))


def make(config: MFConfig, data: RouterData) -> RouterFns:
  """The pure functions (training pieces, loop, state) of an MFRouter on ``data``."""
  module = MFRouter(config.rank, config.hidden)
  n_val = tr.num_val_queries(data.num_train, config.val_fraction)
  n_fit = data.num_train - n_val
  per_batch = config.queries_per_batch or n_fit
  per_pass = tr.ceil_div(n_fit, per_batch)
  num_batches = per_pass * config.passes_per_epoch
  num_a, dim = data.num_candidates, data.dim
  data = jax.tree.map(jnp.asarray, data)

  def init(key, profile_AxD):
    if config.form == "bilinear":  # convex: start at zero
      z = jnp.zeros
      return {"theta": z((dim, num_a)), "bias": z((num_a,)), "difficulty": z((dim,))}
    shapes = jax.eval_shape(module.init, key, data.train_q_QxD[:1], profile_AxD)["params"]
    return tr.uniform_init(key, shapes, init_bound)

  def split(key):
    return tr.query_split(key, data.num_train, n_val)

  full_batch = config.queries_per_batch == 0

  def batches(key, sp):
    if full_batch:  # every step sees the whole fold: no shuffling, no gathers (see loss)
      return jnp.zeros((num_batches,), jnp.int32)
    keys = jax.random.split(key, config.passes_per_epoch)
    ids, valid = jax.vmap(lambda k: tr.shuffled_batches(k, sp.train_idx, per_batch, per_pass))(keys)
    return ids.reshape(num_batches, per_batch), valid.reshape(num_batches, per_batch)

  def basis(profile_AxD):
    # The kernel's basis: the trained candidates only. An untrainable (held-out) candidate's row
    # is zero, so its profile changes nothing but its own interpolated column.
    return profile_AxD * data.trainable_A[:, None].astype(profile_AxD.dtype)

  def loss(params, profile_AxD, batch, key, hparams, sp):
    q, table, pair_mask, labels, valid_B = _batch_rows(data, batch, sp, full_batch)
    ridge = hparams["kernel_ridge"]
    s_BxA, d_B = forward(config, params, basis(profile_AxD), profile_AxD, q, ridge)
    keep_A = tr.model_dropout_keep(key, data.trainable_A, hparams["model_dropout"])
    pair_mask = pair_mask & valid_B[:, None]
    pair_mask &= keep_A[table[..., 0]] & keep_A[table[..., 1]]
    label_mask = jnp.isfinite(labels) & valid_B[:, None] & (data.trainable_A & keep_A)[None, :]
    fit, weight = pairwise_and_pointwise_loss(
      s_BxA=s_BxA,
      d_B=d_B,
      table_BxJx2=table,
      pair_mask_BxJ=pair_mask,
      labels_BxA=labels,
      label_mask_BxA=label_mask,
      bce_weight=hparams["bce_weight"],
    )
    reg, bias_reg = penalty(config, params, basis(profile_AxD), ridge)
    return fit + hparams["l2"] * reg + config.bias_l2 * bias_reg, weight

  def validate(params, profile_AxD, sp, hparams):
    q = data.train_q_QxD[sp.val_idx]
    s_VxA = forward(config, params, basis(profile_AxD), profile_AxD, q, hparams["kernel_ridge"])[0]
    if config.val_metric == "utility":
      return validation.val_utility(s_VxA, data, sp)
    return validation.pair_accuracy(s_VxA, data, sp)

  def state(params, profile_AxD, sp, hparams):
    del sp, hparams
    return {"params": params, "train_profiles_AxD": basis(profile_AxD)}

  loop = tr.TrainConfig.for_router(config, num_batches)
  return RouterFns(tr.Pieces(init, split, batches, loss, validate), loop, state)


def _batch_rows(data: RouterData, batch, sp, full_batch: bool):
  """(queries, pair table, pair mask, labels, valid rows) a loss step reads.

  Full batch: all training queries with the fold as a mask: the queries' features are shared by
  every cell of a vmapped grid, where per-cell gathers of the fold would copy them per step.
  Otherwise the batch's queries, gathered.
  """
  if full_batch:
    q, table, pair_mask = data.train_q_QxD, data.pair_table_QxJx2, data.pair_mask_QxJ
    labels = data.labels_QxA
    valid_B = jnp.zeros(data.num_train, bool).at[sp.train_idx].set(True)
  else:
    ids_B, valid_B = batch
    q, table = data.train_q_QxD[ids_B], data.pair_table_QxJx2[ids_B]
    pair_mask, labels = data.pair_mask_QxJ[ids_B], data.labels_QxA[ids_B]
  return q, table, pair_mask, labels, valid_B


def score(config: MFConfig, state, profile_AxD, query_QxD, hparams) -> jax.Array:
  """[Q, A] scores s(m, q) of any candidates' profiles (new ones included)."""
  ridge = hparams.get("kernel_ridge", DEFAULT_HPARAMS["kernel_ridge"])
  return forward(
    config, state["params"], state["train_profiles_AxD"], profile_AxD, query_QxD, ridge
  )[0]


FAMILY = Family("mf", MFConfig, DEFAULT_HPARAMS, make, score)
