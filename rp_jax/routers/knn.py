"""KNNRouter: training-free routing by the outcomes of the nearest training queries.

For a query q, its ``k`` nearest training queries of the fold (cosine similarity of the query
features; with "prompt+task" inputs the task one-hot makes same-task neighbours closer) vote with
softmax(similarity / temperature) weights. Each neighbour n carries per-candidate evidence e[n, m]
in [0, 1]: the known outcome where the training data has one, else its pair record on n
((1 + (wins - losses) / pairs) / 2), else none. A candidate's score blends the weighted evidence
with a prior:

  score(q, m) = (sum_n w_n e[n, m] + prior_weight * prior_m) / (sum_n w_n [e[n, m] known]
                + prior_weight)

prior_m is m's mean evidence over the whole fold; a candidate without any evidence (a new model)
gets the profile-similarity prior, the mean evidence of the other candidates weighted by
softmax(cos(profile_m, profile_j) / profile_temperature) — so a new model whose profile resembles
strong models can win, and routing never needs retraining. A new model known from a few quiz
answers gets the others' means shifted by its paired differences with them on its quiz queries
(``prior``). Traced hyperparameters: ``k`` (rounded,
at most ``max_k``), ``temperature``, ``prior_weight``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rp_jax.ops import PRECISION
from rp_jax.routers.base import Family, RouterFns
from rp_jax.routers.data import RouterData


@dataclasses.dataclass(frozen=True)
class KNNConfig:
  """Static KNNRouter settings.

  Attributes:
    max_k: the largest neighbourhood (``k`` is traced and clipped to it).
    val_fraction: fraction of training queries held out for model selection (the memory is the
      rest).
    profile_temperature: softness of the profile-similarity prior of candidates without evidence.
  """

  max_k: int = 64
  val_fraction: float = 0.1
  profile_temperature: float = 0.1

  def __post_init__(self):
    if self.max_k < 1 or self.profile_temperature <= 0:
      raise ValueError("KNNConfig: max_k must be >= 1 and profile_temperature > 0")


DEFAULT_HPARAMS = {"k": 16.0, "temperature": 0.05, "prior_weight": 0.5}


def _unit(x):
  n = jnp.linalg.norm(x, axis=-1, keepdims=True)
  return x / jnp.where(n > 0, n, 1.0)


def query_evidence(data: RouterData) -> tuple[jax.Array, jax.Array]:
  """([Q, A] evidence in [0, 1], [Q, A] bool known) of every training query (see module doc)."""
  q_P, better_P, worse_P = (jnp.asarray(data.pairs_Px3)[:, i] for i in range(3))
  num_q, num_a = data.num_train, data.num_candidates
  seg = lambda m_P, w: jax.ops.segment_sum(w, q_P * num_a + m_P, num_segments=num_q * num_a)
  ones = jnp.ones_like(q_P, jnp.float32)
  wins = seg(better_P, ones).reshape(num_q, num_a)
  losses = seg(worse_P, ones).reshape(num_q, num_a)
  n = wins + losses
  pair_ev = 0.5 * (1.0 + (wins - losses) / jnp.maximum(n, 1.0))
  labels = jnp.asarray(data.labels_QxA)
  known_label = jnp.isfinite(labels)
  ev = jnp.where(known_label, labels, pair_ev)
  # RouterData holds no label or pair of an untrainable (held-out) candidate; the mask is a guard.
  known = (known_label | (n > 0)) & jnp.asarray(data.trainable_A)[None, :]
  return jnp.where(known, ev, 0.0), known


def make(config: KNNConfig, data: RouterData) -> RouterFns:
  """The (training-free) pure functions of a KNNRouter: its state is the fold's memory."""
  del config  # the grid passes the fold's split (stratified by task)
  data = jax.tree.map(jnp.asarray, data)
  ev_QxA, known_QxA = query_evidence(data)

  def state(params, profile_AxD, sp, hparams):
    del params, profile_AxD, hparams
    ids = sp.train_idx
    return {
      "memory_NxD": _unit(data.train_q_QxD[ids]),
      "evidence_NxA": ev_QxA[ids],
      "known_NxA": known_QxA[ids].astype(jnp.float32),
      # History query ids of the memory rows: a deployed router adds a new model's quiz answers
      # to the rows of its quiz queries (rp_jax.onboard).
      "memory_ids_N": jnp.asarray(data.train_ids)[ids],
    }

  return RouterFns(pieces=None, loop=None, state=state)


# A candidate with less than this share of the median candidate's evidence is "sparse" (a new
# model known from a few quiz answers): its prior is anchored on the others (``prior``).
SPARSE_SHARE = 0.25


def prior(config: KNNConfig, state, profile_AxD) -> jax.Array:
  """[A] each candidate's prior: its mean evidence over the memory; for a sparse candidate (a new
  model known from a few quiz answers) the others' means plus its paired differences with them
  on the rows it has evidence on; for a candidate without any evidence the
  profile-similarity-weighted mean of the others'.

  The paired estimate mean_j + mean over shared rows of (e_m − e_j), averaged over the dense
  candidates j weighted by the shared rows, compares the new model with each seen one on the same
  queries: 50 quiz answers then say how much better or worse it is than a model measured on a
  thousand, instead of competing as a noisy 50-answer mean against a 1,000-answer one.
  """
  ev, known = state["evidence_NxA"], state["known_NxA"]
  count_A = known.sum(0)
  mean_A = (ev * known).sum(0) / jnp.maximum(count_A, 1.0)
  seen_A = count_A > 0
  p = _unit(profile_AxD)
  sim_AxA = jnp.matmul(p, p.T, precision=PRECISION) / config.profile_temperature
  w = jax.nn.softmax(jnp.where(seen_A[None, :], sim_AxA, -jnp.inf), axis=-1)
  borrowed_A = jnp.matmul(w, jnp.where(seen_A, mean_A, 0.0), precision=PRECISION)
  ref = jnp.median(jnp.where(seen_A, count_A, jnp.nan))
  sparse_A = seen_A & (count_A < SPARSE_SHARE * jnp.nan_to_num(ref))
  dense_A = seen_A & ~sparse_A
  evk = ev * known
  shared_AxA = jnp.matmul(known.T, known, precision=PRECISION)
  diff_AxA = jnp.matmul(evk.T, known, precision=PRECISION) - jnp.matmul(
    known.T, evk, precision=PRECISION
  )
  anchored_AxA = mean_A[None, :] + diff_AxA / jnp.maximum(shared_AxA, 1.0)
  weight_AxA = jnp.where(dense_A[None, :] & ~jnp.eye(len(count_A), dtype=bool), shared_AxA, 0.0)
  total_A = weight_AxA.sum(1)
  anchored_A = (weight_AxA * anchored_AxA).sum(1) / jnp.maximum(total_A, 1.0)
  own_A = jnp.where(sparse_A & (total_A > 0), anchored_A, mean_A)
  return jnp.where(seen_A, own_A, borrowed_A)


def score(config: KNNConfig, state, profile_AxD, query_QxD, hparams) -> jax.Array:
  """[Q, A] neighbour-evidence scores blended with the prior (see module docstring)."""
  mem = state["memory_NxD"]
  k_max = min(config.max_k, mem.shape[0])
  sims_QxN = jnp.matmul(_unit(query_QxD), mem.T, precision=PRECISION)
  top_QxJ, idx_QxJ = jax.lax.top_k(sims_QxN, k_max)
  k = jnp.clip(jnp.round(hparams["k"]), 1, k_max)
  in_k = jnp.arange(k_max)[None, :] < k
  z = jnp.where(in_k, (top_QxJ - top_QxJ[:, :1]) / hparams["temperature"], -jnp.inf)
  w_QxJ = jax.nn.softmax(z, axis=-1)
  ev_QxJxA = state["evidence_NxA"][idx_QxJ]
  known_QxJxA = state["known_NxA"][idx_QxJ]
  num_QxA = jnp.einsum("qk,qka->qa", w_QxJ, ev_QxJxA * known_QxJxA)
  den_QxA = jnp.einsum("qk,qka->qa", w_QxJ, known_QxJxA)
  lam = hparams["prior_weight"]
  p_A = prior(config, state, profile_AxD)
  return (num_QxA + lam * p_A[None, :]) / (den_QxA + lam + 1e-9)


def extend(state, evidence_N, known_N):
  """The state with one more candidate column: its evidence on the memory rows (a deployed
  router's new model: its quiz answers on the rows of its quiz queries, none elsewhere).

  ``state`` may carry a leading fold axis (a cross-validated cell): the column is added to every
  fold's memory (``evidence_N`` / ``known_N`` are indexed by ``memory_ids_N``-aligned rows, or
  given per fold with the same leading axis).
  """
  ev, kn = state["evidence_NxA"], state["known_NxA"]
  col = lambda x: jnp.broadcast_to(jnp.asarray(x, ev.dtype), ev.shape[:-1])[..., None]
  out = dict(state)
  out["evidence_NxA"] = jnp.concatenate([ev, col(evidence_N)], axis=-1)
  out["known_NxA"] = jnp.concatenate([kn, col(known_N)], axis=-1)
  return out


FAMILY = Family("knn", KNNConfig, DEFAULT_HPARAMS, make, score, trainable=False, extend=extend)
