"""MLPRouter: a two-tower scorer trained with a margin ranking loss on (query, better, worse).

Architecture and training follow SPEC §2: a query tower and a profile tower (D -> 512 -> 256,
ReLU, dropout 0.1), score(q, m) = <tower_q(q), tower_m(profile_m)>; margin ranking loss with
margin 0.2 on each training pair; AdamW 1e-4, weight decay 1e-4, cosine decay to 10%, 20 epochs,
gradient clipping at global norm 1.0 (a guard; the reference does not clip); the epoch with the
best validation pair accuracy (10% of the training *queries*, held out with all their pairs) is
kept. At test every candidate is scored and the argmax is chosen.

Batching (``MLPConfig.batching``):

- ``"query"`` (default, rp_jax's): a batch is a fixed number of whole training queries with all
  their pairs (padded to the largest per-query pair count with a mask). The number of queries per
  batch is chosen so that a batch holds ~``batch_size`` pairs on average (real data: 4.0 pairs per
  query -> 8 queries, ~32 pairs). Each step runs the profile tower once on the A candidates and
  the query tower once per distinct query, so a step costs ~(8 + A) tower rows instead of the
  reference's 32 query rows + 64 profile rows; the loss is the mean over the batch's pairs. This
  differs from the reference, whose batches are 32 random pairs (a query's pairs are spread over
  several batches); the number of steps per epoch is about the same.
- ``"pairs"`` (the reference's batches): 32 random training pairs per batch. The profile tower
  still runs once per step on all candidates and the query tower once per pair (so dropout masks
  are shared by the pairs of one model within a step, unlike the reference).

Initialisation: kernels U(±1/sqrt(fan_in)) as PyTorch's ``nn.Linear``, biases zero, all from one
flat random draw (``rp_jax.train.uniform_init``; fewer random call sites compile faster on CPU).

Speed (public data, 20 epochs, 114 steps per epoch): 0.175 s per cell as a single jitted call on
an H200, 0.040 s per cell in a vmapped 16 profiles x 5 seeds grid; 12-18 s per cell on the shared
2-core CPU machine, where a step is memory-bound (Adam's update of ~1.05M parameters is about half
of it), so vmapping cells does not pay there and ``train_grid(..., sequential=True)`` is the
fastest grid.

Held-out (newllm) models never reach the loss: no training pair involves them (RouterData drops
any), and scores of other models do not depend on a held-out model's profile row because the
profile tower works row by row.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rp_jax import train as tr
from rp_jax.ops import PRECISION
from rp_jax.routers import validation
from rp_jax.routers.base import Family, RouterFns
from rp_jax.routers.data import RouterData

BATCHINGS = ("query", "pairs")


@dataclasses.dataclass(frozen=True)
class MLPConfig:
  """Static MLPRouter settings (SPEC §2 defaults; hashable, part of the jit cache key).

  Attributes:
    epochs: training epochs.
    batch_size: pairs per batch (``"pairs"``) or the target mean pairs per batch (``"query"``).
    hidden, out: tower sizes (D -> hidden -> out).
    dropout: dropout rate after the hidden layer of each tower.
    batching: "query" or "pairs" (see the module docstring).
    queries_per_batch: queries per batch for "query" batching; 0 = chosen from the data by
      ``resolve`` (round(batch_size / mean pairs per training query)).
    val_fraction: fraction of training queries held out for model selection.
    clip_norm: global-norm gradient clipping (0 = off).
    cosine_alpha: final learning rate as a fraction of the initial one.
    skip_empty: guard updates against batches without pairs; ``resolve`` sets it False for
      "query" batching when every training query has a pair (no batch can then be empty).
    val_every: validate after every ``val_every``-th epoch (and the last) only (speed).
    val_metric: epoch selection by "utility" (routing utility of the argmax over all candidates,
      ``rp_jax.routers.validation``) or "pairs" (pair accuracy: the reference's).
  """

  epochs: int = 20
  batch_size: int = 32
  hidden: int = 512
  out: int = 256
  dropout: float = 0.1
  batching: str = "query"
  queries_per_batch: int = 0
  val_fraction: float = 0.1
  clip_norm: float = 1.0
  cosine_alpha: float = 0.1
  skip_empty: bool = True
  val_metric: str = "utility"
  val_every: int = 1

  def __post_init__(self):
    if self.val_metric not in ("utility", "pairs"):
      raise ValueError(f"unknown val_metric {self.val_metric!r}; expected 'utility' or 'pairs'")
    if self.batching not in BATCHINGS:
      raise ValueError(f"unknown MLPRouter batching {self.batching!r}; expected one of {BATCHINGS}")
    if self.epochs < 1 or self.batch_size < 1 or self.hidden < 1 or self.out < 1:
      raise ValueError("MLPConfig: epochs, batch_size, hidden and out must be >= 1")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"MLPConfig.dropout must lie in [0, 1); got {self.dropout}")


DEFAULT_HPARAMS = {
  "learning_rate": 1e-4,
  "weight_decay": 1e-4,
  "margin": 0.2,
  "model_dropout": 0.0,
}


def auto_queries_per_batch(config: MLPConfig, data: RouterData) -> int:
  """round(batch_size / mean pairs per training query), from array shapes only (static)."""
  mean = data.mean_pairs_per_query()
  qpb = max(1, round(config.batch_size / mean)) if mean > 0 else config.batch_size
  return min(qpb, data.num_train)


def resolve(config: MLPConfig, data: RouterData) -> MLPConfig:
  """The config with data-dependent static settings fixed (host side).

  ``queries_per_batch`` (if 0): round(batch_size / mean pairs per training query).
  ``skip_empty``: False for "query" batching when every training query has a pair.
  """
  if config.batching != "query":
    return config
  changes = {}
  if config.queries_per_batch <= 0:
    changes["queries_per_batch"] = auto_queries_per_batch(config, data)
  if config.skip_empty and bool(np.asarray(data.pair_mask_QxJ).any(1).all()):
    changes["skip_empty"] = False
  return dataclasses.replace(config, **changes) if changes else config


class Tower(nn.Module):
  """D -> hidden (ReLU, dropout through the ``keep`` multipliers) -> out."""

  hidden: int
  out: int

  @nn.compact
  def __call__(self, x_BxD: jax.Array, keep_BxH: jax.Array | None = None) -> jax.Array:
    h_BxH = nn.relu(nn.Dense(self.hidden, precision=PRECISION)(x_BxD))
    if keep_BxH is not None:
      h_BxH = h_BxH * keep_BxH
    return nn.Dense(self.out, precision=PRECISION)(h_BxH)


class MLPRouter(nn.Module):
  """Two towers; ``__call__(query_QxD, profile_AxD)`` -> [Q, A] scores (dot products).

  Dropout is applied through explicit multipliers ``keep_QxH`` / ``keep_AxH`` (see
  ``rp_jax.train.dropout_keep``); None means no dropout (evaluation).
  """

  hidden: int = 512
  out: int = 256

  def setup(self):
    self.query_tower = Tower(self.hidden, self.out)
    self.profile_tower = Tower(self.hidden, self.out)

  def __call__(self, query_QxD, profile_AxD, keep_QxH=None, keep_AxH=None) -> jax.Array:
    e_QxH = self.query_tower(query_QxD, keep_QxH)
    e_AxH = self.profile_tower(profile_AxD, keep_AxH)
    return jnp.matmul(e_QxH, e_AxH.T, precision=PRECISION)


def torch_linear_bound(path, shape) -> float:
  """U(±1/sqrt(fan_in)) kernels as PyTorch's nn.Linear; zero biases."""
  return 1.0 / math.sqrt(shape[0]) if path[-1].key == "kernel" else 0.0


def margin_loss(*, better, worse, mask, margin) -> tuple[jax.Array, jax.Array]:
  """(mean over masked pairs of max(0, margin - (better - worse)), number of pairs)."""
  assert better.shape == worse.shape == mask.shape
  terms = jnp.where(mask, jax.nn.relu(margin - (better - worse)), 0.0)
  weight = mask.sum().astype(jnp.float32)
  return terms.sum() / jnp.maximum(weight, 1.0), weight


def static_sizes(config: MLPConfig, data: RouterData) -> tuple[int, int, int]:
  """(validation queries, batches per epoch, items per batch), all static."""
  n_val = tr.num_val_queries(data.num_train, config.val_fraction)
  if config.batching == "query":
    qpb = config.queries_per_batch or auto_queries_per_batch(config, data)
    return n_val, tr.ceil_div(data.num_train - n_val, qpb), qpb
  # Pair batches cover all P pairs; the validation queries' pairs become padding at the end.
  return n_val, tr.ceil_div(len(data.pairs_Px3), config.batch_size), config.batch_size


def make(config: MLPConfig, data: RouterData) -> RouterFns:
  """The pure functions (training pieces, loop, state, score) of an MLPRouter on ``data``.

  Args:
    config: resolved static settings.
    data: RouterData (numpy or jax arrays; shapes must be concrete).
  """
  module = MLPRouter(config.hidden, config.out)
  n_val, num_batches, per_batch = static_sizes(config, data)
  num_q = data.num_train
  data = jax.tree.map(jnp.asarray, data)

  def init(key, profile_AxD):
    shapes = jax.eval_shape(module.init, key, data.train_q_QxD[:1], profile_AxD)["params"]
    return tr.uniform_init(key, shapes, torch_linear_bound)

  def split(key):
    return tr.query_split(key, num_q, n_val)

  scores = _scores_fn(module, config, data.num_candidates)
  batching = _query_batches if config.batching == "query" else _pair_batches
  batches, loss = batching(data, scores, num_batches, per_batch)

  def validate(params, profile_AxD, sp, hparams):
    """Routing utility, or pair accuracy (better strictly above worse), on validation queries."""
    s_VxA = scores(params, data.train_q_QxD[sp.val_idx], profile_AxD)
    if config.val_metric == "utility":
      return validation.val_utility(s_VxA, data, sp)
    return validation.pair_accuracy(s_VxA, data, sp)

  def state(params, profile_AxD, sp, hparams):
    del profile_AxD, sp, hparams
    return {"params": params}

  loop = tr.TrainConfig.for_router(config, num_batches)
  return RouterFns(tr.Pieces(init, split, batches, loss, validate), loop, state)


def _scores_fn(module: MLPRouter, config: MLPConfig, num_cand: int):
  """``scores(params, query_QxD, profile_AxD, key=None)``: [Q, A] scores, with dropout where a
  key is given (and ``config.dropout`` > 0)."""
  rate = config.dropout

  def scores(params, query_QxD, profile_AxD, key=None):
    if key is None or rate == 0.0:
      return module.apply({"params": params}, query_QxD, profile_AxD)
    shapes = [(query_QxD.shape[0], config.hidden), (num_cand, config.hidden)]
    keep_q, keep_a = tr.dropout_keep(key, rate, shapes)
    return module.apply({"params": params}, query_QxD, profile_AxD, keep_q, keep_a)

  return scores


def _query_batches(data: RouterData, scores, num_batches: int, per_batch: int):
  """(batches, loss) of ``batching="query"``: whole training queries with all their pairs."""

  def batches(key, sp):
    return tr.shuffled_batches(key, sp.train_idx, per_batch, num_batches)

  def loss(params, profile_AxD, batch, key, hparams, sp):
    del sp
    ids_B, valid_B = batch
    s_BxA = scores(params, data.train_q_QxD[ids_B], profile_AxD, key)
    table_BxJx2 = data.pair_table_QxJx2[ids_B]
    keep_A = tr.model_dropout_keep(key, data.trainable_A, hparams["model_dropout"])
    mask_BxJ = data.pair_mask_QxJ[ids_B] & valid_B[:, None]
    mask_BxJ &= keep_A[table_BxJx2[..., 0]] & keep_A[table_BxJx2[..., 1]]
    return margin_loss(
      better=jnp.take_along_axis(s_BxA, table_BxJx2[..., 0], axis=1),
      worse=jnp.take_along_axis(s_BxA, table_BxJx2[..., 1], axis=1),
      mask=mask_BxJ,
      margin=hparams["margin"],
    )

  return batches, loss


def _pair_batches(data: RouterData, scores, num_batches: int, per_batch: int):
  """(batches, loss) of ``batching="pairs"``: random training pairs (the reference's)."""
  num_q, num_pairs = data.num_train, data.pairs_Px3.shape[0]

  def batches(key, sp):
    is_val_Q = jnp.zeros(num_q, bool).at[sp.val_idx].set(True)
    is_val_P = is_val_Q[data.pairs_Px3[:, 0]]
    # Training pairs first, in random order; validation pairs become masked padding.
    order = jnp.argsort(is_val_P + jax.random.uniform(key, (num_pairs,)))
    total = num_batches * per_batch
    idx = jnp.concatenate([order, jnp.zeros(total - num_pairs, order.dtype)])
    valid = jnp.arange(total) < num_pairs - is_val_P.sum()
    return idx.reshape(num_batches, per_batch), valid.reshape(num_batches, per_batch)

  def loss(params, profile_AxD, batch, key, hparams, sp):
    del sp
    idx_B, valid_B = batch
    p_Bx3 = data.pairs_Px3[idx_B]
    s_BxA = scores(params, data.train_q_QxD[p_Bx3[:, 0]], profile_AxD, key)
    pick = lambda col: jnp.take_along_axis(s_BxA, p_Bx3[:, col : col + 1], axis=1)[:, 0]
    keep_A = tr.model_dropout_keep(key, data.trainable_A, hparams["model_dropout"])
    mask = valid_B & keep_A[p_Bx3[:, 1]] & keep_A[p_Bx3[:, 2]]
    return margin_loss(better=pick(1), worse=pick(2), mask=mask, margin=hparams["margin"])

  return batches, loss


def score(config: MLPConfig, state, profile_AxD, query_QxD, hparams) -> jax.Array:
  """[Q, A] two-tower scores of the trained parameters (no dropout)."""
  del hparams
  module = MLPRouter(config.hidden, config.out)
  return module.apply({"params": state["params"]}, query_QxD, profile_AxD)


FAMILY = Family("mlp", MLPConfig, DEFAULT_HPARAMS, make, score, resolve=resolve)
