"""Choosing a quiz: the few training queries a new model answers so that it can be profiled.

A model never seen in training (cold start) is described by its own outcomes on a small fixed
quiz (SPEC §8). The quiz is chosen before the new model is seen, from the training queries and the
*seen* models' outcomes only: every function here receives the seen models' outcomes and nothing
about a held-out model, so it cannot leak one. Methods (``choose_quiz``):

  random      uniform among the eligible queries.
  stratified  per task, proportional to the task's eligible queries (largest-remainder rounding),
              uniform within a task.
  cluster     UniRoute's probe set: K-means with K = k over the eligible queries' embeddings, the
              query nearest each centre.
  info        IRT (tinyBenchmarks, LLM Bandit): the items of highest Fisher information averaged
              over the seen models' abilities, spread over K-means clusters of the embeddings.

IRT here: P(correct | q, m) = σ(a_q · θ_m − b_q), a_q, θ_m ∈ R^D (``fit_irt``); the information
of item q at θ is the trace of its Fisher information matrix, |a_q|² p (1 − p). ``fit_ability``
gives a new model's ability from its quiz answers with the items frozen.

Shape letters as in rp_jax.types, except that K counts K-means clusters here and in probe.py (not
hops). ``kmeans``, ``*fisher_information`` and ``fit_ability`` are jittable JAX functions (numpy
accepted); ``fit_irt``, ``choose_quiz`` and ``quiz_masks`` are host functions (numpy out).
Randomness only from explicit keys: the same key gives the same result.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rp_jax.ops import PRECISION

METHODS = ("random", "stratified", "cluster", "info")
NEWTON_STEPS = 25
MAX_NEWTON_STEP = 1.0  # norm clip of a Newton step: pure Newton can overshoot far from the MAP
# ``info``: items below this fraction of the best item's information are taken last (an item
# every seen model gets right, or wrong, tells nothing about a new one, whatever its cluster).
MIN_RELATIVE_INFO = 0.1
MIN_STD = 1e-6


class IRT(NamedTuple):
  """Item parameters and abilities of a fitted IRT model (θ standardised over the models)."""

  a_QxD: np.ndarray
  b_Q: np.ndarray
  theta_MxD: np.ndarray


# -- K-means --------------------------------------------------------------------------------------


def _sq_dist(x_QxD: jax.Array, c_KxD: jax.Array) -> jax.Array:
  """[Q, K] squared Euclidean distances (clipped at 0 against rounding)."""
  cross = jnp.matmul(x_QxD, c_KxD.T, precision=PRECISION)
  d = jnp.sum(x_QxD**2, axis=1)[:, None] + jnp.sum(c_KxD**2, axis=1)[None, :] - 2.0 * cross
  return jnp.maximum(d, 0.0)


def kmeans(
  x_QxD: jax.Array, num_clusters: int, key: jax.Array, *, iters: int = 50
) -> tuple[jax.Array, jax.Array]:
  """K-means: k-means++ initialisation from ``key``, then ``iters`` Lloyd iterations.

  Jittable with ``num_clusters`` and ``iters`` static. A cluster that loses all its points keeps
  its centre (it may win points back later); ties go to the lower cluster index.

  Args:
    x_QxD: [Q, D] points (Q >= 1). With ``num_clusters`` > Q some centres coincide and their
      clusters stay empty.
    num_clusters: K, static.
    key: a ``jax.random`` key.
    iters: static number of Lloyd iterations.

  Returns:
    (centres_KxD float32, assign_Q int32 cluster of each point under the final centres).
  """
  x_QxD = jnp.asarray(x_QxD, jnp.float32)
  num_q = x_QxD.shape[0]
  first_key, rest_key = jax.random.split(key)
  first = jax.random.randint(first_key, (), 0, num_q)
  c0_KxD = jnp.zeros((num_clusters, x_QxD.shape[1]), jnp.float32).at[0].set(x_QxD[first])

  def seed(i, c_KxD):
    # Distance to the nearest centre chosen so far (rows >= i are not chosen yet).
    d_QxK = jnp.where(jnp.arange(num_clusters)[None, :] < i, _sq_dist(x_QxD, c_KxD), jnp.inf)
    d_Q = jnp.min(d_QxK, axis=1)
    total = jnp.sum(d_Q)
    p_Q = jnp.where(total > 0, d_Q / jnp.where(total > 0, total, 1.0), 1.0 / num_q)
    pick = jax.random.choice(jax.random.fold_in(rest_key, i), num_q, p=p_Q)
    return c_KxD.at[i].set(x_QxD[pick])

  c_KxD = jax.lax.fori_loop(1, num_clusters, seed, c0_KxD)

  def lloyd(_, c_KxD):
    assign_Q = jnp.argmin(_sq_dist(x_QxD, c_KxD), axis=1)
    sums_KxD = jax.ops.segment_sum(x_QxD, assign_Q, num_segments=num_clusters)
    counts_K = jax.ops.segment_sum(jnp.ones((num_q,), jnp.float32), assign_Q, num_clusters)
    mean_KxD = sums_KxD / jnp.maximum(counts_K, 1.0)[:, None]
    return jnp.where((counts_K > 0)[:, None], mean_KxD, c_KxD)

  c_KxD = jax.lax.fori_loop(0, iters, lloyd, c_KxD)
  return c_KxD, jnp.argmin(_sq_dist(x_QxD, c_KxD), axis=1).astype(jnp.int32)


_kmeans_jit = jax.jit(kmeans, static_argnums=1, static_argnames="iters")


# -- IRT ------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("dim", "steps"))
def _fit_irt(y_QxM, known_QxM, key, l2, learning_rate, *, dim, steps):
  num_q, num_m = y_QxM.shape
  n = jnp.maximum(jnp.sum(known_QxM), 1.0)
  mean_Q = jnp.sum(y_QxM * known_QxM, axis=1) / jnp.maximum(jnp.sum(known_QxM, axis=1), 1.0)
  mean_Q = jnp.where(jnp.any(known_QxM, axis=1), mean_Q, 0.5)
  ka, kt = jax.random.split(key)
  params = {
    "log_a_QxD": 0.1 * jax.random.normal(ka, (num_q, dim)) - 0.5 * np.log(dim),
    "b_Q": -jax.scipy.special.logit(jnp.clip(mean_Q, 0.05, 0.95)),
    "theta_MxD": 0.1 * jax.random.normal(kt, (num_m, dim)),
  }

  def loss_fn(p):
    a_QxD, theta_MxD = jnp.exp(p["log_a_QxD"]), p["theta_MxD"]
    logits = jnp.matmul(a_QxD, theta_MxD.T, precision=PRECISION) - p["b_Q"][:, None]
    bce = optax.sigmoid_binary_cross_entropy(logits, y_QxM)
    reg = sum(jnp.sum(v**2) for v in jax.tree.leaves(p))
    return (jnp.sum(jnp.where(known_QxM, bce, 0.0)) + l2 * reg) / n

  tx = optax.adam(learning_rate)

  def step(carry, _):
    p, opt_state = carry
    grads = jax.grad(loss_fn)(p)
    updates, opt_state = tx.update(grads, opt_state, p)
    return (optax.apply_updates(p, updates), opt_state), None

  (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
  return jnp.exp(params["log_a_QxD"]), params["b_Q"], params["theta_MxD"]


def fit_irt(
  outcomes_QxM: np.ndarray,
  *,
  key: jax.Array,
  dim: int = 1,
  steps: int = 500,
  l2: float = 0.5,
  learning_rate: float = 0.05,
) -> IRT:
  """Fits σ(a_q · θ_m − b_q) to the known outcomes by full-batch Adam; deterministic per key.

  Discriminations are positive, a = exp(α) (the 2PL assumption: a better model is likelier to
  answer; it also fixes the sign symmetry (a, θ) -> (−a, −θ)). Loss: (Σ_known BCE(soft label
  y_qm) + l2 (|α|² + |b|² + |θ|²)) / #known, i.e. MAP with N(0, 1 / (2 l2)) priors on log a, b
  and θ (l2 = 0.5: unit normal). A zero-centred prior on a itself would let weak data collapse
  every a to 0. After fitting, θ is standardised over the models per dimension (mean 0, std 1; a
  and b absorb the scale and shift, so the logits do not change).

  Args:
    outcomes_QxM: [Q, M] outcomes in [0, 1], NaN = unknown.
    key: ``jax.random`` key of the initialisation.
    dim: D, static ability dimension.
    steps: static number of Adam steps.
    l2: prior strength (see above).
    learning_rate: Adam's rate.

  Returns:
    IRT(a_QxD, b_Q, theta_MxD), float32 numpy.
  """
  y = np.asarray(outcomes_QxM, np.float32)
  known = np.isfinite(y)
  fitted = _fit_irt(
    np.where(known, y, 0.0), known, key, l2, learning_rate, dim=int(dim), steps=int(steps)
  )
  a, b, theta = (np.asarray(v, np.float64) for v in fitted)
  mu_D, sd_D = theta.mean(axis=0), np.maximum(theta.std(axis=0), MIN_STD)
  z = (theta - mu_D) / sd_D
  return IRT((a * sd_D).astype(np.float32), (b - a @ mu_D).astype(np.float32), z.astype(np.float32))


def fisher_information(irt: IRT, theta_D: jax.Array) -> jax.Array:
  """[Q] information of every item at ability θ: |a_q|² p_q (1 − p_q) (trace of a_q a_qᵀ p(1−p)).

  Args:
    irt: fitted items (only a_QxD and b_Q are read).
    theta_D: [D] ability.
  """
  a_QxD = jnp.asarray(irt.a_QxD)
  p_Q = jax.nn.sigmoid(jnp.matmul(a_QxD, jnp.asarray(theta_D), precision=PRECISION) - irt.b_Q)
  return jnp.sum(a_QxD**2, axis=1) * p_Q * (1.0 - p_Q)


def mean_fisher_information(irt: IRT) -> jax.Array:
  """[Q] item information averaged over the abilities in ``irt.theta_MxD`` (the seen models)."""
  return jnp.mean(jax.vmap(lambda t: fisher_information(irt, t))(irt.theta_MxD), axis=0)


_mean_info_jit = jax.jit(mean_fisher_information)


def fit_ability(
  a_QxD: jax.Array,
  b_Q: jax.Array,
  outcomes_Q: jax.Array,
  answered_Q: jax.Array,
  prior_mean_D: jax.Array,
  prior_cov_DxD: jax.Array,
) -> jax.Array:
  """MAP ability of one model from its answered items, items frozen, Gaussian prior on θ.

  Minimises Σ_answered BCE(y_q, a_q · θ − b_q) + ½ (θ − μ)ᵀ Σ⁻¹ (θ − μ) with ``NEWTON_STEPS``
  Newton steps from μ (each clipped to norm ``MAX_NEWTON_STEP``); the objective is strictly
  convex. With no answered item the result is μ exactly. NaN outcomes count as unanswered.
  Jittable; vmap it over models (outcomes) and over answered masks.

  Args:
    a_QxD, b_Q: frozen item parameters.
    outcomes_Q: [Q] outcomes in [0, 1] (soft labels allowed), NaN = unknown.
    answered_Q: [Q] bool, the items the model answered (its quiz).
    prior_mean_D, prior_cov_DxD: the Gaussian prior (e.g. the seen models' θ: 0 and I after
      ``fit_irt``'s standardisation); the covariance must be positive definite.

  Returns:
    [D] θ.
  """
  a_QxD = jnp.asarray(a_QxD, jnp.float32)
  y_Q = jnp.asarray(outcomes_Q, jnp.float32)
  w_Q = (jnp.asarray(answered_Q) & jnp.isfinite(y_Q)).astype(jnp.float32)
  y_Q = jnp.where(w_Q > 0, y_Q, 0.0)
  mu_D = jnp.asarray(prior_mean_D, jnp.float32)
  prec_DxD = jnp.linalg.inv(jnp.asarray(prior_cov_DxD, jnp.float32))

  def newton(_, theta_D):
    p_Q = jax.nn.sigmoid(jnp.matmul(a_QxD, theta_D, precision=PRECISION) - b_Q)
    g_D = jnp.matmul(w_Q * (p_Q - y_Q), a_QxD, precision=PRECISION)
    g_D = g_D + jnp.matmul(prec_DxD, theta_D - mu_D, precision=PRECISION)
    h_DxD = jnp.matmul(a_QxD.T * (w_Q * p_Q * (1.0 - p_Q))[None, :], a_QxD, precision=PRECISION)
    step_D = jnp.linalg.solve(h_DxD + prec_DxD, g_D[:, None])[:, 0]
    norm = jnp.linalg.norm(step_D)
    return theta_D - step_D * jnp.minimum(1.0, MAX_NEWTON_STEP / jnp.maximum(norm, 1e-12))

  return jax.lax.fori_loop(0, NEWTON_STEPS, newton, mu_D)


# -- choosing the quiz (host side) ----------------------------------------------------------------


def _spread(group_E, within_E, across_E, tier_E=None) -> np.ndarray:
  """[E] round-robin order over groups: each group's first item (lowest ``within``), then each
  group's second, ...; a round visits groups by ``across`` of their item (lowest first); a lower
  ``tier`` comes entirely before a higher one. Ties go to the lower index."""
  tier_E = np.zeros_like(group_E) if tier_E is None else tier_E
  by_group = np.lexsort((within_E, group_E, tier_E))
  keys = tier_E[by_group] * (int(group_E.max()) + 1) + group_E[by_group]
  rank_E = np.empty_like(group_E)
  rank_E[by_group] = np.arange(group_E.size) - np.searchsorted(keys, keys, side="left")
  return np.lexsort((across_E, rank_E, tier_E))


def _stratified(task_E, k, key) -> np.ndarray:
  tasks, size_T = np.unique(task_E, return_counts=True)
  quota_T = k * size_T / task_E.size
  take_T = np.floor(quota_T).astype(np.int64)
  # Largest remainder; ties to the lower task id (stable sort).
  extra = np.argsort(-(quota_T - take_T), kind="stable")[: k - int(take_T.sum())]
  take_T[extra] += 1
  picks = []
  for t, n in zip(tasks, take_T, strict=True):
    members = np.flatnonzero(task_E == t)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, int(t)), members.size))
    picks.append(members[perm[:n]])
  return np.concatenate(picks)


def _clustered(emb_ExD, num_clusters, key) -> tuple[np.ndarray, np.ndarray]:
  """(cluster [E], squared distance to its centre [E]) of K-means over the eligible rows."""
  x = np.asarray(emb_ExD, np.float32)
  centres, assign = _kmeans_jit(x, num_clusters, key)
  assign = np.asarray(assign, np.int64)
  dist = np.sum((x - np.asarray(centres)[assign]).astype(np.float64) ** 2, axis=1)
  return assign, dist


def _info_order(emb_ExD, outcomes_ExA, k, num_clusters, key) -> np.ndarray:
  k_irt, k_km = jax.random.split(key)
  info_E = np.asarray(_mean_info_jit(fit_irt(outcomes_ExA, key=k_irt)), np.float64)
  num_clusters = max(2, k // 5) if num_clusters is None else int(num_clusters)
  group_E, _ = _clustered(emb_ExD, max(1, min(num_clusters, info_E.size)), k_km)
  tier_E = (info_E < MIN_RELATIVE_INFO * info_E.max()).astype(np.int64)
  # Weak items come last in plain order of information (each its own group).
  group_E = np.where(tier_E > 0, group_E.max() + 1 + np.arange(info_E.size), group_E)
  return _spread(group_E, -info_E, -info_E, tier_E)


_NEEDS = {"stratified": ("task_Q",), "cluster": ("emb_QxD",), "info": ("emb_QxD", "outcomes_QxA")}


def _check_quiz_args(method, k, num_q, given) -> None:
  if method not in METHODS:
    raise ValueError(f"unknown quiz method {method!r}; expected one of {METHODS}")
  for name in _NEEDS.get(method, ()):
    if given[name] is None:
      raise ValueError(f"quiz method {method!r} needs {name}")
    if len(given[name]) != num_q:
      raise ValueError(f"{name} has {len(given[name])} rows; eligible_Q has {num_q}")
  if k < 0:
    raise ValueError(f"quiz size must be >= 0, got {k}")


def choose_quiz(
  method: str,
  k: int,
  *,
  eligible_Q: np.ndarray,
  key: jax.Array,
  emb_QxD: np.ndarray | None = None,
  outcomes_QxA: np.ndarray | None = None,
  task_Q: np.ndarray | None = None,
  num_clusters: int | None = None,
) -> np.ndarray:
  """The quiz: ``k`` distinct eligible query indices, chosen by ``method`` (module docstring).

  Reads the seen models' outcomes only (``outcomes_QxA``, for ``info``) and nothing about a new
  model: the quiz is fixed before any new model answers it. Only eligible rows are read (``info``
  fits its IRT on them), so outcomes or embeddings of other rows (test queries) cannot change it.

  ``cluster`` runs K-means with K = k and takes each cluster's query nearest its centre; if some
  cluster is empty the remaining slots go round-robin to the next-nearest queries of the largest
  clusters. ``info`` ranks items by their mean Fisher information over the seen models' θ and
  takes them round-robin over ``num_clusters`` K-means clusters (default max(2, k // 5)), each
  round in order of information; items under ``MIN_RELATIVE_INFO`` of the best come after
  them, in order of information.

  Args:
    method: one of ``METHODS``.
    k: quiz size (>= 0). Fewer than k indices come back only when fewer queries are eligible.
    eligible_Q: [Q] bool, the queries that may be quiz items (training queries with outcomes for
      the seen models; never test queries).
    key: ``jax.random`` key; the same key gives the same quiz.
    emb_QxD: [Q, D] query embeddings (``cluster``, ``info``).
    outcomes_QxA: [Q, A] the seen models' outcomes in [0, 1], NaN = unknown (``info``).
    task_Q: [Q] int task of each query (``stratified``).
    num_clusters: clusters of ``info`` (ignored by the other methods).

  Returns:
    int32 [min(k, #eligible)] query indices in order of choice (for ``random`` with one key, a
    quiz of size k is the prefix of a larger one).
  """
  given = {"emb_QxD": emb_QxD, "outcomes_QxA": outcomes_QxA, "task_Q": task_Q}
  eligible_Q = np.asarray(eligible_Q, bool)
  _check_quiz_args(method, k, eligible_Q.size, given)
  elig_E = np.flatnonzero(eligible_Q)
  k = min(int(k), elig_E.size)
  if k == 0:
    return np.zeros((0,), np.int32)
  if method == "random":
    order = np.asarray(jax.random.permutation(key, elig_E.size))
  elif method == "stratified":
    order = _stratified(np.asarray(task_Q, np.int64)[elig_E], k, key)
  elif method == "cluster":
    group_E, dist_E = _clustered(np.asarray(emb_QxD)[elig_E], k, key)
    size_E = np.bincount(group_E)[group_E]
    order = _spread(group_E, dist_E, -size_E)
  else:
    emb, out = np.asarray(emb_QxD)[elig_E], np.asarray(outcomes_QxA, np.float32)[elig_E]
    order = _info_order(emb, out, k, num_clusters, key)
  return elig_E[order[:k]].astype(np.int32)


def quiz_masks(
  method: str,
  ks: Sequence[int],
  *,
  eligible_Q: np.ndarray,
  key: jax.Array,
  emb_QxD: np.ndarray | None = None,
  outcomes_QxA: np.ndarray | None = None,
  task_Q: np.ndarray | None = None,
  num_clusters: int | None = None,
) -> np.ndarray:
  """[len(ks), Q] bool: one quiz per size in ``ks`` (``choose_quiz`` with the same key for all).

  The same quiz serves every new model, so k becomes an array axis that downstream code can vmap
  over. Arguments as in ``choose_quiz``.
  """
  eligible_Q = np.asarray(eligible_Q, bool)
  kw = dict(emb_QxD=emb_QxD, outcomes_QxA=outcomes_QxA, task_Q=task_Q, num_clusters=num_clusters)
  out = np.zeros((len(ks), eligible_Q.size), bool)
  for i, k in enumerate(ks):
    out[i, choose_quiz(method, k, eligible_Q=eligible_Q, key=key, **kw)] = True
  return out
