"""rp_jax's optimisation core and the pure, vmappable training loop (purejaxrl style) of the
trainable routers.

The core, shared by every training in rp_jax (``make_train`` below, the HAN profiles'
``profiles.trainable.train_ssl``):

- ``adamw_cosine``: gradient clipping + AdamW with a cosine decay, learning rate and weight decay
  traced through ``optax.inject_hyperparams``;
- ``gradient_step``: loss, gradient and update of one step, optionally conditional (empty
  batches), scaled (an update-free pass) or on one flat parameter vector.

``make_train(pieces, config)`` returns ``train(profile_AxD, key, hparams) -> (params, metrics)``:
one pure function with epochs and mini-batches as nested ``lax.scan``, so that

  jax.jit(jax.vmap(jax.vmap(train, (None, 0, None)), (0, None, None)))(profile_SxAxD, keys_Z, hp)

trains S profiles x R seeds in one compiled call. A router supplies its ``Pieces`` (init, the
validation split, the batches of an epoch, the loss and the validation score);
everything that fixes shapes (sizes, epochs, batch counts, dropout rate) is static, everything
swept (learning rate, weight decay, margin) is a traced scalar in ``hparams``:

- the optimiser is ``adamw_cosine`` (``make_optimizer``): a cosine decay from ``learning_rate``
  to ``cosine_alpha * learning_rate`` over all steps (``cosine_alpha = 1`` is a constant rate,
  ``weight_decay = 0`` is plain Adam), so a sweep over learning rates or weight decays never
  recompiles;
- shuffling, dropout, initialisation and the validation split all come from ``key``
  (``run_keys``), so a fixed key gives identical results; all epochs' batches (index arrays)
  are drawn before the epoch loop;
- model selection happens inside jit: after every epoch the validation score is computed and the
  best parameters are carried (a later epoch must be strictly better: ties keep the earlier one;
  while no epoch has a validation score, e.g. ``val_fraction=0``, the latest epoch is kept);
- per-epoch metrics come back as arrays: ``train_loss[E]``, ``val_score[E]``, plus
  ``best_epoch`` and ``best_score``.

A mini-batch whose ``weight`` (e.g. its number of valid pairs) is zero leaves parameters and
optimiser state untouched, so padded batches at the end of an epoch are true no-ops (unless the
router declares that no batch can be empty: ``TrainConfig.skip_empty=False``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from rp_jax import progress


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Static settings of the loop (hashable: part of the jit cache key).

  Attributes:
    epochs: passes over the training batches (E).
    num_batches: mini-batches per epoch (the leading axis of ``Pieces.batches``' output).
    clip_norm: global-norm gradient clipping; 0 disables it.
    cosine_alpha: final learning rate as a fraction of the initial one (1.0 = constant).
    skip_empty: batches may be empty (``weight == 0``); each update is then guarded by a
      conditional (a select under vmap, which costs a copy of the parameters and moments per step
      on CPU). False when the router knows that no batch can be empty.
    report_progress: call ``rp_jax.progress.on_epoch`` (a host callback) after every epoch.
    val_every: validate (and consider the epoch for selection) after every ``val_every``-th
      epoch and the last; the others record a NaN validation score. Validation can cost as much
      as the epoch's training (the Graph router's full-graph forward); a conditional skips it
      when cells run one after another (under vmap both branches run).
  """

  epochs: int
  num_batches: int
  clip_norm: float = 1.0
  cosine_alpha: float = 0.1
  skip_empty: bool = True
  report_progress: bool = False
  val_every: int = 1

  def __post_init__(self):
    if self.epochs < 1 or self.num_batches < 1:
      raise ValueError(
        f"TrainConfig: epochs and num_batches must be >= 1; got {self.epochs}, {self.num_batches}"
      )
    if not 0.0 <= self.cosine_alpha <= 1.0:
      raise ValueError(f"TrainConfig.cosine_alpha must lie in [0, 1]; got {self.cosine_alpha}")
    if self.clip_norm < 0:
      raise ValueError(f"TrainConfig.clip_norm must be >= 0; got {self.clip_norm}")
    if self.val_every < 1:
      raise ValueError(f"TrainConfig.val_every must be >= 1; got {self.val_every}")

  @classmethod
  def for_router(cls, router_config, num_batches: int) -> TrainConfig:
    """The loop settings a router config carries (``epochs``, ``clip_norm``, ``cosine_alpha``,
    ``skip_empty``, ``val_every`` if it has one), with the router's batches per epoch."""
    return cls(
      epochs=router_config.epochs,
      num_batches=num_batches,
      clip_norm=router_config.clip_norm,
      cosine_alpha=router_config.cosine_alpha,
      skip_empty=router_config.skip_empty,
      val_every=getattr(router_config, "val_every", 1),
    )

  @property
  def total_steps(self) -> int:
    return self.epochs * self.num_batches


class Pieces(NamedTuple):
  """The router-specific pure functions the loop is built from.

  Attributes:
    init: (key, profile_AxD) -> params.
    split: (key) -> split pytree (validation and training query indices), the default split of a
      run whose caller passes none (``make_train``'s ``split`` argument).
    batches: (key, split) -> pytree whose leaves have a leading [num_batches] axis.
    loss: (params, profile_AxD, batch, dropout_key, hparams, split) -> (loss, weight); ``weight``
      is the batch's number of valid terms (0 = an empty batch: no update).
    validate: (params, profile_AxD, split, hparams) -> scalar score, higher is better.
  """

  init: Callable
  split: Callable
  batches: Callable
  loss: Callable
  validate: Callable


class RunKeys(NamedTuple):
  """The keys of one training run, all from a single ``jax.random.split`` (see ``run_keys``)."""

  init: jax.Array
  split: jax.Array
  batches_I: jax.Array
  dropout_IxB: jax.Array


def run_keys(key: jax.Array, config: TrainConfig) -> RunKeys:
  """Init, validation-split, per-epoch batch and per-step dropout keys of a run.

  One split call (not one per use) keeps the compiled program small; calling this twice on the
  same key (the grid recomputes the split for scoring) is deduplicated by XLA.
  """
  E, B = config.epochs, config.num_batches
  keys = jax.random.split(key, 2 + E + E * B)
  return RunKeys(keys[0], keys[1], keys[2 : 2 + E], keys[2 + E :].reshape(E, B))


def adamw_cosine(
  *,
  total_steps: int,
  learning_rate: jax.Array | float,
  weight_decay: jax.Array | float,
  clip_norm: float = 1.0,
  cosine_alpha: float = 0.1,
) -> optax.GradientTransformation:
  """Clipping + AdamW with a cosine schedule; learning rate and weight decay are traced.

  The one optimiser of rp_jax's training loops (the routers' ``make_train`` and the HAN
  profiles). ``optax.inject_hyperparams`` keeps the rate and the decay in the optimiser state,
  so they may be traced (vmapped, swept) values: a sweep over them never recompiles.

  Args:
    total_steps: static length of the cosine decay (updates over the whole run).
    learning_rate: initial rate; the schedule decays it to ``cosine_alpha * learning_rate``.
    weight_decay: AdamW's decoupled weight decay (0 = plain Adam).
    clip_norm: static global-norm gradient clip; 0 disables it.
    cosine_alpha: static final fraction of the rate (1.0 = constant).
  """

  def factory(learning_rate, weight_decay):
    # The schedule is a fraction of the (traced) rate, so the rate itself stays a hyperparameter.
    shape = optax.cosine_decay_schedule(1.0, total_steps, cosine_alpha)
    adamw = optax.adamw(lambda count: learning_rate * shape(count), weight_decay=weight_decay)
    return optax.chain(optax.clip_by_global_norm(clip_norm), adamw) if clip_norm > 0 else adamw

  return optax.inject_hyperparams(factory)(learning_rate=learning_rate, weight_decay=weight_decay)


def make_optimizer(config: TrainConfig, hparams: dict) -> optax.GradientTransformation:
  """``adamw_cosine`` with a loop's static settings; learning rate and weight decay traced.

  Args:
    config: static settings (total steps, clipping, final fraction of the rate).
    hparams: dict with scalar ``learning_rate`` and ``weight_decay`` (traced or Python floats).
  """
  return adamw_cosine(
    total_steps=config.total_steps,
    learning_rate=hparams["learning_rate"],
    weight_decay=hparams["weight_decay"],
    clip_norm=config.clip_norm,
    cosine_alpha=config.cosine_alpha,
  )


def gradient_step(
  loss_fn: Callable,
  tx: optax.GradientTransformation,
  params: Any,
  opt_state: Any,
  *args,
  update_if: Callable | None = None,
  update_scale: jax.Array | float | None = None,
  unravel: Callable | None = None,
) -> tuple[tuple[Any, Any], tuple[jax.Array, Any, Any]]:
  """One optimisation step: the loss, its gradient, and the optimiser's update.

  Args:
    loss_fn: ``(params, *args) -> (loss, aux)``, differentiated with respect to ``params``.
    tx: the optimiser (e.g. ``adamw_cosine``).
    params, opt_state: the current parameters and optimiser state.
    *args: the loss's other arguments.
    update_if: optional ``aux -> traced bool``; where False, the step leaves parameters and
      optimiser state (moments, schedule count) untouched. A conditional, not a select: a
      select keeps old and new buffers alive, so XLA would copy every parameter and moment per
      step on CPU (under vmap with a batched predicate it becomes a select anyway).
    update_scale: optional traced multiplier of the updates: 0 leaves the parameters as they
      are while the optimiser state still advances (for a final pass whose state is dropped,
      such as the HAN's evaluation pass). Note ``p + 1.0 * u`` is not always bitwise ``p + u``
      once compiled: XLA may fuse the last multiply of ``u`` and the add into one FMA in one
      form and not the other.
    unravel: flat mode: ``params`` is one flat vector (``jax.flatten_util.ravel_pytree``) and
      ``loss_fn`` sees ``unravel(params)``. The gradient is raveled and materialised before the
      update, so the (elementwise, global-norm clipped) update runs as a few fused kernels over
      one vector instead of a few per parameter; the barrier stops XLA from splitting it back
      into per-parameter pieces.

  Returns:
    ``((params, opt_state), (loss, aux, grads))``; ``grads`` is the flat gradient in flat mode.
  """
  if unravel is None:
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, *args)
  else:
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(unravel(params), *args)
    grads = jax.lax.optimization_barrier(ravel_pytree(grads)[0])

  def apply(carry):
    params, opt_state = carry
    updates, opt_state = tx.update(grads, opt_state, params)
    if update_scale is not None:
      updates = jax.tree.map(lambda u: update_scale * u, updates)
    return optax.apply_updates(params, updates), opt_state

  if update_if is None:
    new = apply((params, opt_state))
  else:
    new = jax.lax.cond(update_if(aux), apply, lambda c: c, (params, opt_state))
  return new, (loss, aux, grads)


def make_train(pieces: Pieces, config: TrainConfig) -> Callable:
  """Builds ``train(profile_AxD, key, hparams, split=None) -> (params, metrics)``.

  ``split`` (a ``QuerySplit``, possibly traced) is the validation / training split of the run;
  None draws ``pieces.split`` from the run's key.

  Args:
    pieces: the router's pure functions (see ``Pieces``).
    config: static loop settings.

  Returns:
    ``train``: pure and jittable; ``params`` are the best-validation parameters; ``metrics`` is
    a dict with ``train_loss`` [E] (mean over valid terms), ``val_score`` [E], ``best_epoch`` and
    ``best_score`` (scalars).
  """

  def train(profile_AxD, key, hparams, split=None):
    keys = run_keys(key, config)
    params = pieces.init(keys.init, profile_AxD)
    tx = make_optimizer(config, hparams)
    opt_state = tx.init(params)
    if split is None:
      split = pieces.split(keys.split)

    def step(carry, xs):
      batch, k_drop = xs
      # An empty (all-padding) batch must not move Adam's moments, the schedule or the weights.
      update_if = (lambda weight: weight > 0) if config.skip_empty else None
      carry, (loss, weight, _) = gradient_step(
        pieces.loss, tx, *carry, profile_AxD, batch, k_drop, hparams, split, update_if=update_if
      )
      return carry, (loss * weight, weight)

    def epoch(carry, xs):
      params, opt_state, best_params, best_score, best_epoch = carry
      batches, drop_keys, e = xs
      (params, opt_state), (lw, w) = jax.lax.scan(step, (params, opt_state), (batches, drop_keys))
      train_loss = lw.sum() / jnp.maximum(w.sum(), 1.0)
      if config.val_every == 1:
        score = pieces.validate(params, profile_AxD, split, hparams)
      else:
        due = ((e + 1) % config.val_every == 0) | (e == config.epochs - 1)
        score = jax.lax.cond(
          due,
          lambda: jnp.asarray(pieces.validate(params, profile_AxD, split, hparams), jnp.float32),
          lambda: jnp.float32(jnp.nan),
        )
      cmp = jnp.where(jnp.isnan(score), -jnp.inf, score)
      # Strictly better wins (ties keep the earlier epoch). Without any validation score yet
      # (no validation queries, or none with a pair / label) the latest epoch is kept.
      better = (cmp > best_score) | (e == 0) | (jnp.isnan(score) & (best_score == -jnp.inf))
      best_params = jax.tree.map(lambda n, o: jnp.where(better, n, o), params, best_params)
      best_score = jnp.where(better, cmp, best_score)
      best_epoch = jnp.where(better, e, best_epoch)
      carry = (params, opt_state, best_params, best_score, best_epoch)
      if config.report_progress:
        # The epoch as a value batched like the cell (a select on the score: zeros_like would
        # see only its shape), so that a vmapped grid reports every cell.
        cell_e = jnp.where(jnp.isnan(score), e, e)
        jax.debug.callback(progress.on_epoch, cell_e, ordered=False)
      return carry, {"train_loss": train_loss, "val_score": score}

    # Every epoch's batches (index arrays, small) are drawn up front by one vmapped call.
    batches_I = jax.vmap(pieces.batches, (0, None))(keys.batches_I, split)
    init = (params, opt_state, params, jnp.asarray(-jnp.inf, jnp.float32), jnp.int32(0))
    (_, _, best_params, best_score, best_epoch), curves = jax.lax.scan(
      epoch, init, (batches_I, keys.dropout_IxB, jnp.arange(config.epochs, dtype=jnp.int32))
    )
    return best_params, {**curves, "best_epoch": best_epoch, "best_score": best_score}

  return train


# -- helpers shared by the routers ---------------------------------------------------------------


class QuerySplit(NamedTuple):
  """Validation / training split of the training queries (indices into RouterData's queries).

  Attributes:
    val_idx: [Q_val] int32 validation queries.
    train_idx: [Q_fit] int32 queries the loss sees.
  """

  val_idx: jax.Array
  train_idx: jax.Array


def num_val_queries(num_queries: int, val_fraction: float) -> int:
  """Static size of the validation split: round(fraction x Q), at least 1 and at most Q - 1."""
  if not 0.0 <= val_fraction < 1.0:
    raise ValueError(f"val_fraction must lie in [0, 1); got {val_fraction}")
  if val_fraction == 0.0 or num_queries < 2:
    return 0
  return min(max(1, round(val_fraction * num_queries)), num_queries - 1)


def permutation(key: jax.Array, n: int) -> jax.Array:
  """[n] int32 random permutation: the argsort of n random 32-bit words (one sort, no rounds)."""
  return jnp.argsort(jax.random.bits(key, (n,), jnp.uint32)).astype(jnp.int32)


def query_split(key: jax.Array, num_queries: int, num_val: int) -> QuerySplit:
  """A random per-query validation split of static size (same key => same split)."""
  perm = permutation(key, num_queries)
  return QuerySplit(val_idx=perm[:num_val], train_idx=perm[num_val:])


def shuffled_batches(
  key: jax.Array, ids_N: jax.Array, per_batch: int, num_batches: int
) -> tuple[jax.Array, jax.Array]:
  """Shuffles ``ids_N`` into [num_batches, per_batch] with a validity mask (padding at the end).

  Returns:
    (ids_BxJ, valid_BxJ): padded slots hold ``ids_N[0]`` and are marked invalid.
  """
  n = ids_N.shape[0]
  total = per_batch * num_batches
  if total < n:
    raise ValueError(f"{num_batches} batches of {per_batch} cannot hold {n} items")
  ids = ids_N[permutation(key, n)]
  ids = jnp.concatenate([ids, jnp.broadcast_to(ids_N[:1], (total - n,))])
  valid = jnp.arange(total) < n
  return ids.reshape(num_batches, per_batch), valid.reshape(num_batches, per_batch)


def ceil_div(a: int, b: int) -> int:
  """max(1, ceil(a / b)) for static sizes."""
  return max(1, math.ceil(a / b))


# One random draw per call site keeps XLA's CPU compile time down: every distinct random call
# becomes its own block of threefry kernels (on CPU they dominate compile time), so parameters
# are initialised from one flat draw and all dropout masks of a step come from one draw.


def uniform_init(key: jax.Array, shapes: Any, bound: Callable) -> Any:
  """Parameters drawn U(-b, b) leaf by leaf from a single flat uniform draw.

  Args:
    key: PRNG key.
    shapes: pytree of ``jax.ShapeDtypeStruct`` (e.g. ``jax.eval_shape(module.init, ...)``).
    bound: (path, shape) -> b >= 0 for that leaf (0 gives zeros, e.g. biases).
  """
  leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
  sizes = [math.prod(leaf.shape) for _, leaf in leaves]
  u = jax.random.uniform(key, (sum(sizes),), jnp.float32, -1.0, 1.0)
  out, offset = [], 0
  for (path, leaf), n in zip(leaves, sizes, strict=True):
    b = float(bound(path, tuple(leaf.shape)))
    out.append((u[offset : offset + n] * b).reshape(leaf.shape).astype(leaf.dtype))
    offset += n
  return jax.tree_util.tree_unflatten(treedef, out)


def dropout_keep(key: jax.Array, rate: float, shapes: Sequence[tuple[int, ...]]) -> list[jax.Array]:
  """Inverted-dropout multipliers (0 or 1 / (1 - rate)) for several shapes from one draw."""
  sizes = [math.prod(s) for s in shapes]
  u = jax.random.uniform(key, (sum(sizes),))
  keep = jnp.where(u >= rate, 1.0 / (1.0 - rate), 0.0).astype(jnp.float32)
  out, offset = [], 0
  for s, n in zip(shapes, sizes, strict=True):
    out.append(keep[offset : offset + n].reshape(s))
    offset += n
  return out


def model_dropout_keep(key: jax.Array, trainable_A: jax.Array, rate) -> jax.Array:
  """[A] bool: with probability ``rate`` one random trainable candidate is dropped (False).

  Model dropout, the routers' cold-start option: the dropped candidate's pairs and outcomes leave
  that step's loss, so the other candidates' scores must not lean on it and its own score must
  come from its profile. The draw uses ``fold_in(key, 1)``, so the step's other randomness
  (dropout masks) is the same with or without it; rate 0 keeps every candidate.
  """
  k_pick, k_on = jax.random.split(jax.random.fold_in(key, 1))
  pick = jax.random.categorical(k_pick, jnp.where(trainable_A, 0.0, -jnp.inf))
  on = jax.random.uniform(k_on) < rate
  return ~((jnp.arange(trainable_A.shape[0]) == pick) & on)
