"""probe profiles: a model as its accuracy on clusters of quiz queries (UniRoute's Ψ).

UniRoute (Jitkrittum et al., 2025) clusters the training prompts (K-means on their embeddings)
and represents an LLM m by Ψ_m ∈ [0, 1]^K, its mean error on each cluster measured on a small set
of probe prompts; an unseen LLM is routed from Ψ with no retraining: the predicted error of m on
query q is Σ_k P(k | q) Ψ_m[k]. Here Ψ holds accuracies (1 − error) and is measured on the quiz
(rp_jax.profiles.quiz), shrunk toward the seen models' pooled accuracy on that cluster so that a
model with few answers on a cluster is not described by one lucky or unlucky answer:

  Ψ_m[k] = (Σ_q P(k | q) ans_qm y_qm + s · prior_k) / (Σ_q P(k | q) ans_qm + s)

where ans_qm = m answered quiz query q (a known outcome), y_qm its outcome and s the traced
``strength``. Seen and new models are profiled from the same quiz by the same formula, so their
profiles live in one space: give every model the quiz's answered mask, not all its training rows.

K counts clusters here (as in quiz.py), not hops.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rp_jax.ops import PRECISION

MIN_SCALE = 1e-6


def cluster_assignments(
  emb_QxD: jax.Array, centres_KxD: jax.Array, *, temperature: float | None = None
) -> jax.Array:
  """[Q, K] P(cluster k | query q): one-hot nearest centre, or a softmax of −distance².

  Args:
    emb_QxD: [Q, D] query embeddings.
    centres_KxD: [K, D] cluster centres (``quiz.kmeans``).
    temperature: None for hard assignments; else softmax(−|e_q − c_k|² / temperature).

  Returns:
    [Q, K] float32, rows summing to 1.
  """
  emb_QxD = jnp.asarray(emb_QxD, jnp.float32)
  centres_KxD = jnp.asarray(centres_KxD, jnp.float32)
  cross_QxK = jnp.matmul(emb_QxD, centres_KxD.T, precision=PRECISION)
  d_QxK = (
    jnp.sum(emb_QxD**2, axis=1)[:, None] + jnp.sum(centres_KxD**2, axis=1)[None, :] - 2 * cross_QxK
  )
  if temperature is None:
    return jax.nn.one_hot(jnp.argmin(d_QxK, axis=1), centres_KxD.shape[0], dtype=jnp.float32)
  return jax.nn.softmax(-d_QxK / temperature, axis=1)


def probe_profiles(
  outcomes_QxM: jax.Array,
  answered_QxM: jax.Array,
  assign_QxK: jax.Array,
  seen_M: jax.Array,
  strength: jax.Array | float,
) -> jax.Array:
  """[M, K] each model's per-cluster quiz accuracy, shrunk toward the seen models' (module doc).

  prior_k is the seen models' pooled accuracy on the answered quiz queries of cluster k; where no
  seen model answered any query of cluster k, their overall quiz accuracy; where they answered
  nothing at all, 0.5. A model with no answered query on cluster k gets prior_k, whatever the
  strength; strength = ∞ gives the prior everywhere. NaN outcomes count as unanswered, so the
  result is never NaN. Jittable; vmappable over ``answered_QxM`` and the traced ``strength``.

  Args:
    outcomes_QxM: [Q, M] outcomes in [0, 1], NaN = unknown.
    answered_QxM: [Q, M] bool, the quiz queries each model answered (for a quiz mask quiz_Q:
      ``quiz_Q[:, None] & isfinite(outcomes_QxM)``; rows off the quiz must be False).
    assign_QxK: [Q, K] P(k | q) (``cluster_assignments``).
    seen_M: [M] bool, the models whose answers form the prior (the training pool).
    strength: s >= 0, pseudo-answers of the prior per cluster.

  Returns:
    [M, K] float32 accuracies Ψ.
  """
  y_QxM = jnp.asarray(outcomes_QxM, jnp.float32)
  ans_QxM = jnp.asarray(answered_QxM, bool) & jnp.isfinite(y_QxM)
  w_QxM = ans_QxM.astype(jnp.float32)
  assign_QxK = jnp.asarray(assign_QxK, jnp.float32)
  hits_MxK = jnp.matmul((w_QxM * jnp.where(ans_QxM, y_QxM, 0.0)).T, assign_QxK, precision=PRECISION)
  counts_MxK = jnp.matmul(w_QxM.T, assign_QxK, precision=PRECISION)
  seen_M1 = jnp.asarray(seen_M, bool)[:, None]
  seen_hits_K = jnp.sum(jnp.where(seen_M1, hits_MxK, 0.0), axis=0)
  seen_counts_K = jnp.sum(jnp.where(seen_M1, counts_MxK, 0.0), axis=0)
  # Overall quiz accuracy of the seen models: a plain mean, whatever the assignment weights.
  seen_w_QxM = jnp.where(seen_M1.T, w_QxM, 0.0)
  total_hits = jnp.sum(seen_w_QxM * jnp.where(ans_QxM, y_QxM, 0.0))
  total_counts = jnp.sum(seen_w_QxM)
  overall = jnp.where(total_counts > 0, total_hits / jnp.maximum(total_counts, 1.0), 0.5)
  prior_K = jnp.where(
    seen_counts_K > 0, seen_hits_K / jnp.where(seen_counts_K > 0, seen_counts_K, 1.0), overall
  )
  # Ψ = w acc + (1 − w) prior with w = n / (n + s): the same formula, finite for s = ∞ and n = 0.
  has_MxK = counts_MxK > 0
  acc_MxK = hits_MxK / jnp.where(has_MxK, counts_MxK, 1.0)
  w_MxK = jnp.where(has_MxK, counts_MxK / jnp.where(has_MxK, counts_MxK + strength, 1.0), 0.0)
  return w_MxK * acc_MxK + (1.0 - w_MxK) * prior_K[None, :]


def probe_features(
  accuracy_MxK: jax.Array,
  *,
  seen_M: jax.Array | None = None,
  theta_MxD: jax.Array | None = None,
  theta_weight: float = 0.5,
  centre: bool = True,
) -> jax.Array:
  """[M, F] the profile vector a router receives: centred, scaled Ψ, optionally with θ.

  With c_m = Ψ_m − mean_{seen j} Ψ_j (or c_m = Ψ_m when not ``centre``), the accuracy block is
  c_m / r with r = sqrt(mean_{seen j} |c_j|²): the seen models' profiles have root-mean-square
  norm 1, a new model's norm says how far it sits from the pool, and each coordinate says on
  which clusters the model is better (> 0) or worse than the pool. With ``theta_MxD`` (IRT
  abilities, standardised over the seen models) the block theta_weight · θ_m / sqrt(D) follows,
  so F = K (+ D).

  Args:
    accuracy_MxK: [M, K] Ψ (``probe_profiles``).
    seen_M: [M] bool, the pool that fixes the centre and scale; None = every row.
    theta_MxD: optional [M, D] abilities (``quiz.fit_irt`` / ``quiz.fit_ability``).
    theta_weight: weight of the θ block.
    centre: subtract the seen models' mean per cluster.

  Returns:
    [M, F] float32 features.
  """
  acc_MxK = jnp.asarray(accuracy_MxK, jnp.float32)
  num_m = acc_MxK.shape[0]
  seen_M = jnp.ones((num_m,), bool) if seen_M is None else jnp.asarray(seen_M, bool)
  w_M = seen_M.astype(jnp.float32) / jnp.maximum(jnp.sum(seen_M), 1)
  c_MxK = acc_MxK - jnp.matmul(w_M, acc_MxK, precision=PRECISION)[None, :] if centre else acc_MxK
  scale = jnp.sqrt(jnp.sum(w_M * jnp.sum(c_MxK**2, axis=1)))
  out_MxK = c_MxK / jnp.maximum(scale, MIN_SCALE)
  if theta_MxD is None:
    return out_MxK
  theta_MxD = jnp.asarray(theta_MxD, jnp.float32)
  return jnp.concatenate([out_MxK, theta_weight * theta_MxD / theta_MxD.shape[1] ** 0.5], axis=1)


def predicted_accuracy(assign_QxK: jax.Array, accuracy_MxK: jax.Array) -> jax.Array:
  """[Q, M] UniRoute's training-free score: P(correct | q, m) = Σ_k P(k | q) Ψ_m[k].

  Args:
    assign_QxK: [Q, K] P(k | q), rows summing to 1.
    accuracy_MxK: [M, K] Ψ.
  """
  return jnp.matmul(
    jnp.asarray(assign_QxK, jnp.float32),
    jnp.asarray(accuracy_MxK, jnp.float32).T,
    precision=PRECISION,
  )
