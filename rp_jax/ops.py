"""Small array helpers and constants shared by the learned models (HAN profiles, routers).

Pure ``jax.numpy`` functions, each safe where a row or segment is empty or fully masked: no NaN
in values or gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG = -1e30  # masked logit: "minus infinity" that keeps exp() and its gradient finite
# float32 matmuls on GPUs too (no TF32 rounding); CPUs compute float32 either way.
PRECISION = jax.lax.Precision.HIGHEST


def masked_softmax(logits: jax.Array, mask: jax.Array, axis: int) -> jax.Array:
  """Softmax along ``axis`` over the entries where ``mask``; 0 elsewhere and on empty rows."""
  x = jnp.where(mask, logits, NEG)
  mx = jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
  e = jnp.where(mask, jnp.exp(x - mx), 0.0)
  den = jnp.sum(e, axis=axis, keepdims=True)
  return e / jnp.where(den > 0, den, 1.0)


def segment_softmax(
  logits_ExH: jax.Array,
  segment_ids_E: jax.Array,
  num_segments: int,
  mask_E: jax.Array | None = None,
) -> jax.Array:
  """Softmax of edge logits over the edges of each segment (e.g. a (relation, receiver) pair).

  Args:
    logits_ExH: [E, H] logits (H heads; any trailing shape works).
    segment_ids_E: [E] int segment of each edge.
    num_segments: static number of segments.
    mask_E: optional [E] bool; masked edges get weight 0 and do not count in the softmax.

  Returns:
    [E, H] weights summing to 1 over each segment's unmasked edges; 0 on masked edges. Segments
    without edges simply have none: no NaN anywhere, gradients included.
  """
  expand = lambda v: v.reshape(v.shape + (1,) * (logits_ExH.ndim - 1))
  if mask_E is None:
    mask_E = jnp.ones(segment_ids_E.shape, bool)
  keep = expand(mask_E)
  x = jnp.where(keep, logits_ExH, NEG)
  mx = jax.ops.segment_max(x, segment_ids_E, num_segments=num_segments)
  mx = jax.lax.stop_gradient(jnp.where(jnp.isfinite(mx), mx, 0.0))
  e = jnp.where(keep, jnp.exp(x - mx[segment_ids_E]), 0.0)
  den = jax.ops.segment_sum(e, segment_ids_E, num_segments=num_segments)[segment_ids_E]
  # A safe denominator, not a tiny clamp: the clamp's square underflows to 0 in the gradient.
  return e / jnp.where(den > 0, den, 1.0)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Rows scaled to unit L2 norm; zero rows stay zero, with a finite gradient there too."""
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps * eps))


def counter_hash(seed: jax.Array, n: int) -> jax.Array:
  """[n] uint32 pseudo-random words: the lowbias32 integer hash of (index + mixed seed).

  A counter-based hash costs a few integer ops per word and fuses into its consumer, where
  ``jax.random.bits`` (threefry, ~20 rounds) took a sizeable share of a training step on CPU
  for the millions of dropout decisions a dense layer needs. Plenty for dropout.
  """

  def lowbias32(x):
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)

  return lowbias32(jnp.arange(n, dtype=jnp.uint32) + lowbias32(jnp.asarray(seed, jnp.uint32)))


def hash_dropout_keep(seed: jax.Array, n: int, rate: float) -> tuple[jax.Array, float]:
  """[n] dropout keep-mask from ``counter_hash``, and P(keep).

  Two 16-bit uniforms per hashed word; P(keep) ~ 1 - rate, the rate rounded to a multiple of
  1/65536.

  Args:
    seed: uint32 seed (e.g. one ``jax.random.bits`` word per layer and step).
    n: static number of decisions.
    rate: static drop probability in [0, 1].

  Returns:
    (keep_n, p_keep): [n] bool mask and the exact keep probability (scale kept values by
    1 / p_keep for inverted dropout).
  """
  threshold = int(round(rate * 65536))
  u16 = jax.lax.bitcast_convert_type(counter_hash(seed, (n + 1) // 2), jnp.uint16)
  return u16.reshape(-1)[:n] >= threshold, 1.0 - threshold / 65536
