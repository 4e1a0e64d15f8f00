"""A seeded generator of realistic interaction histories: rp_jax's embedded default data.

``make_history(seed=0)`` returns a validated :class:`rp_jax.types.History` shaped like the public
RouteProfile release (SPEC §3): 5 families, 24 models of which 8 candidates, 29 scored benchmark
tasks plus 15 text-only ones, 6 domains, 12 routing tasks with 150 train + 50 test queries each,
2 graph-only tasks (train queries only), ~4 training pairs per query that has any, ~30% of the
benchmark scores missing. Everything is drawn from one latent model, so profiles and routers have
real signal to find, and the truth behind it is known.

The latent model (k = ``latent_dim`` skills, each skill with a name and a word list):

- **Domains.** Domain c has a skill direction u_c ~ Dirichlet(0.2 + 5·pref_c) over the k skills,
  where pref_c marks the skills its name suggests (math -> arithmetic, mathematical reasoning).
- **Families and models.** Family f has a skill mean mu_f ~ N(0, family_scale² I). Model m of
  family f has relative skills z_m = c(mu_f + N(0, model_scale² I)), where c subtracts the mean
  over skills (so no model is best at everything by construction), a size (billions of
  parameters, drawn from realistic sizes) and a general ability s_m = size_effect · (log size −
  mean log size) + g_m, g_m ~ N(0, general_scale²), so bigger models are stronger on average.
  Prices grow with size (~ size^0.85, log-normal jitter; the output price is sometimes 3x the
  input price).
- **Tasks.** Each task has a primary domain and, with probability ``second_domain_prob``, a
  second one. Its skill mixture is w_t ~ Dirichlet(0.2 + 6·mean_c u_c) over its domains (so tasks
  of a domain share a direction, and w_t is nonnegative, sums to 1 and is sparse-ish), its base
  difficulty b_t ~ N(task_difficulty_mean, task_difficulty_sd²). A metric follows from the
  primary domain; ``num_continuous_tasks`` routing tasks are continuous (metric "coverage", like
  commongen), all others binary.
- **Queries.** Query q of task t has w_q ∝ w_t · exp(query_skill_noise · eps_q), eps_q ~ N(0, I)
  (its own perturbation of the task mixture, so there is query-level signal beyond the task),
  and difficulty b_q = b_t + N(0, query_difficulty_sd²).
- **Outcomes.** IRT-style p(m, q) = sigmoid(a · (s_m + z_m · w_q) − b_q), a = ``discrimination``
  (s_m + z_m · w_q = (s_m 1 + z_m) · w_q since w_q sums to 1). Binary tasks draw Bernoulli(p);
  continuous tasks take clip(p + N(0, continuous_noise²), 0, 1).
  Test queries keep the outcomes of every candidate. Training queries keep only what the pairs
  imply exactly, like the public data: pairs are drawn per training query of a routing task among
  the candidates (minus the held-out one) with strictly different latent outcomes, 1 +
  Poisson(pairs_per_query − 1) of them (at most all such pairs); then on binary tasks the better
  model of a pair has outcome 1 and the worse 0, everything else (continuous tasks, models in no
  pair, non-candidates) is NaN. Graph-only tasks have training queries but no pairs or outcomes.
- **Benchmark scores.** score(m, t) = 100 · mean p(m, q) over ``bench_queries`` fresh queries of
  task t + N(0, score_noise²), clipped to [0, 100], for every model and scored task. A fraction
  ``score_missing`` is NaN, except the candidates' scores on routing tasks (the public data has
  those) and at least one score per scored task.
- **Tokens.** Prompt tokens per query are log-normal around a per-task mean (times a small
  per-model tokenizer factor); completion tokens per (query, model) are log-normal around a
  per-model verbosity times a per-task factor, clipped to [1, 1024]. Like the public data, tokens
  (and outcomes) of test queries are given for the candidates only, so ``History.query_cost_QxM``
  works on test rows.
- **Texts** come from templates, so that a bag-of-words text encoder carries signal: family texts
  name the family's two strongest skills and its weakest; model texts name the family, size,
  prices, the top-2 domains (by z_m · u_c) and the top-2 skills (by z_m) with skill words; task
  texts name the domain(s), the top skills of w_t and words of their vocabularies; domain texts
  name the top skills of u_c. A query text is a metric-specific instruction, two keywords fixed
  per task, ``query_content_words`` words drawn from the skill vocabularies with skill
  probabilities w_q, two words of the skill the query's perturbation raised most, and filler.

Settings: "standard", and "newllm" where the candidate with the highest mean latent p over the
routing tasks' test queries is held out (named in ``History.notes``): its scores on the routing
tasks are NaN, it appears in no training pair and has no training outcome. Both settings of one
seed share the same latent world, texts and test outcomes; only the pairs (and what they imply)
and the held-out model's routing-task scores differ.

Calibration: the defaults were tuned so that the test rows resemble the public data. Means over
seeds 0-9 (public data in brackets): best single candidate 0.62 (0.6125), uniform random 0.53
(0.538), per-query oracle 0.78 (0.757), per-task oracle 0.67 (0.672), "pick the best benchmark
score on the query's task" 0.65 (0.645), 57% of the routing tasks' training queries with at least
one pair (57%), 4.0 pairs per such query (4.1).

Randomness: ``np.random.default_rng(seed)`` spawns one independent stream per component, so e.g.
changing the number of candidates does not change the texts. Same seed and config => identical
History.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rp_jax.data.prompts import prompt_text
from rp_jax.data.synthetic_world import (
  CONTINUOUS_METRIC,
  DOMAINS,
  FILLER,
  MAX_COMPLETION_TOKENS,
  METRIC_BY_DOMAIN,
  SETTINGS,
  SIZES_B,
  SKILLS,
  TINY_SIZES,
  Domains,
  Models,
  SyntheticConfig,
  Tasks,
  Texts,
  prompt_formats,
  write_query_texts,
  write_texts,
)
from rp_jax.types import TEST, TRAIN, History

__all__ = [
  "FILLER",
  "SETTINGS",
  "SKILLS",
  "TINY_SIZES",
  "SyntheticConfig",
  "SyntheticLatent",
  "make_history",
  "make_history_and_latent",
]


@dataclasses.dataclass(frozen=True, eq=False)
class SyntheticLatent:
  """The latent truth behind a synthetic History (for measuring routers against the Bayes oracle).

  Attributes:
    skill_names: [K] names of the latent skills.
    config: the resolved SyntheticConfig.
    theta_MxK: model abilities (s_m + z_m); p(m, q) = sigmoid(a * theta_m . w_q - b_q).
    size_M: model sizes in billions of parameters.
    u_CxK: domain skill directions.
    w_TxK: task skill mixtures.
    w_QxJ, b_Q: query skill mixtures and difficulties.
    p_QxM: success probabilities of every model on every query.
    outcome_QxM: the full latent outcomes the History reveals parts of.
  """

  skill_names: tuple[str, ...]
  config: SyntheticConfig
  theta_MxK: np.ndarray
  size_M: np.ndarray
  u_CxK: np.ndarray
  w_TxK: np.ndarray
  w_QxJ: np.ndarray
  b_Q: np.ndarray
  p_QxM: np.ndarray
  outcome_QxM: np.ndarray


def make_history(
  config: SyntheticConfig | None = None,
  *,
  seed: int = 0,
  setting: str = "standard",
  **overrides,
) -> History:
  """Draws a realistic interaction history from the latent model in the module docstring.

  Args:
    config: sizes and knobs (default ``SyntheticConfig()``).
    seed: seed of ``np.random.default_rng``; same seed and config => identical History.
    setting: "standard", or "newllm" (the strongest candidate on average is held out).
    **overrides: SyntheticConfig fields replacing those of ``config``
      (e.g. ``num_models=6, num_candidates=3``).

  Returns:
    A validated History (``setting`` as given, ``source`` naming the generator and seed).

  Raises:
    ValueError: unknown setting or override, or invalid sizes (the message names the field).
  """
  return make_history_and_latent(config, seed=seed, setting=setting, **overrides)[0]


def make_history_and_latent(
  config: SyntheticConfig | None = None,
  *,
  seed: int = 0,
  setting: str = "standard",
  **overrides,
) -> tuple[History, SyntheticLatent]:
  """Like ``make_history``, and also returns the latent truth the History was drawn from.

  The steps below draw from one random stream each (spawned from ``seed`` in a fixed order), so
  a step's draws depend only on its own stream and inputs.

  Args:
    config, seed, setting, **overrides: as for ``make_history``.

  Returns:
    (history, latent): the History and its SyntheticLatent (same seed => same latent world in
    both settings).
  """
  cfg = resolve_config(config, setting, seed, overrides)
  (
    rng_world,
    rng_query,
    rng_outcome,
    rng_score,
    rng_token,
    rng_text,
    rng_pair,
  ) = np.random.default_rng(seed).spawn(7)
  world = _draw_world(cfg, rng_world, rng_query, rng_outcome)
  shown = _reveal(cfg, setting, world, rng_pair, rng_score, rng_token)
  txt, query_texts, query_prompts = _write_texts(rng_text, cfg, world)
  dom, mod, tsk, q_split = world.dom, world.mod, world.tsk, world.q_split
  history = History(
    model_names=tuple(txt.model_names),
    model_texts=tuple(txt.model_texts),
    model_family=mod.family_M,
    prices_Mx2=mod.prices_Mx2,
    family_names=tuple(txt.family_names),
    family_texts=tuple(txt.family_texts),
    task_names=tuple(tsk.names),
    task_texts=tuple(txt.task_texts),
    task_metric=tuple(tsk.metric),
    task_binary=~tsk.is_cont_T,
    domain_names=tuple(dom.names),
    domain_texts=tuple(txt.domain_texts),
    task_domain_TxC=tsk.domain_TxC,
    scores_MxT=shown.scores_MxT,
    query_texts=tuple(query_texts),
    query_prompts=tuple(query_prompts),
    query_task=world.q_task,
    query_split=q_split,
    query_in_graph=q_split == TRAIN,
    outcomes_QxM=shown.outcomes_QxM,
    tokens_QxMx2=shown.tokens_QxMx2,
    cost_QxM=np.full((len(q_split), cfg.num_models), np.nan),
    pairs_Px3=shown.pairs_Px3,
    candidates=np.arange(cfg.num_candidates),
    held_out=shown.held_out,
    setting=setting,
    source=f"rp_jax.data.synthetic(seed={seed})",
    notes=tuple(_notes(cfg, seed, setting, tsk, shown, txt.model_names)),
  )
  return history, world.latent


@dataclasses.dataclass(frozen=True, eq=False)
class _World:
  """The latent world of a seed: domains, models, tasks, the query layout and the truth."""

  dom: Domains
  mod: Models
  tsk: Tasks
  q_task: np.ndarray
  q_split: np.ndarray
  latent: SyntheticLatent


def _draw_world(cfg: SyntheticConfig, rng_world, rng_query, rng_outcome) -> _World:
  """Draws domains, models and tasks, lays out the queries and draws their latent outcomes."""
  dom = draw_domains(rng_world, cfg)
  mod = draw_models(rng_world, cfg)
  tsk = draw_tasks(rng_world, cfg, dom.names, dom.u_CxK)
  q_task, q_split = lay_out_queries(cfg, tsk)
  w_QxJ, b_Q = draw_query_mixtures(rng_query, cfg, tsk, q_task)
  p_QxM = _sigmoid(cfg.discrimination * (w_QxJ @ mod.theta_MxK.T) - b_Q[:, None])
  latent_QxM = draw_latent_outcomes(rng_outcome, cfg, p_QxM, tsk.is_cont_T[q_task])
  latent = SyntheticLatent(
    skill_names=tuple(s[0] for s in SKILLS[: cfg.latent_dim]),
    config=cfg,
    theta_MxK=mod.theta_MxK,
    size_M=mod.size_M,
    u_CxK=dom.u_CxK,
    w_TxK=tsk.w_TxK,
    w_QxJ=w_QxJ,
    b_Q=b_Q,
    p_QxM=p_QxM,
    outcome_QxM=latent_QxM,
  )
  return _World(dom, mod, tsk, q_task, q_split, latent)


@dataclasses.dataclass(frozen=True, eq=False)
class _Shown:
  """What the History reveals of the world: held-out model, pairs, outcomes, scores, tokens."""

  held_out: np.ndarray
  strength_A: np.ndarray
  pairs_Px3: np.ndarray
  outcomes_QxM: np.ndarray
  scores_MxT: np.ndarray
  tokens_QxMx2: np.ndarray


def _reveal(
  cfg: SyntheticConfig, setting: str, world: _World, rng_pair, rng_score, rng_token
) -> _Shown:
  """Holds out the strongest candidate (newllm), draws pairs, scores and tokens."""
  A, tsk, q_task, q_split = cfg.num_candidates, world.tsk, world.q_task, world.q_split
  latent_QxM = world.latent.outcome_QxM
  test_Q = q_split == TEST
  # mean latent p over the routing tasks' test queries
  strength_A = world.latent.p_QxM[test_Q][:, :A].mean(0)
  held_out = np.array([int(np.argmax(strength_A))] if setting == "newllm" else [], int)
  pair_q = np.flatnonzero((q_split == TRAIN) & np.isin(q_task, tsk.routing_T))
  pairs_Px3 = draw_pairs(rng_pair, cfg, latent_QxM[pair_q], pair_q, held_out)
  outcomes_QxM = reveal_outcomes(latent_QxM, test_Q, A, pairs_Px3, tsk.is_cont_T[q_task])
  scores_MxT = draw_scores(rng_score, cfg, world.mod.theta_MxK, tsk, held_out)
  tokens_QxMx2 = draw_tokens(rng_token, cfg, q_task, test_Q, len(tsk.names))
  return _Shown(held_out, strength_A, pairs_Px3, outcomes_QxM, scores_MxT, tokens_QxMx2)


def _write_texts(
  rng_text: np.random.Generator, cfg: SyntheticConfig, world: _World
) -> tuple[Texts, list[str], list[str]]:
  """(family, model, task and domain texts; query texts; query prompts)."""
  tsk, q_task = world.tsk, world.q_task
  txt = write_texts(rng_text, cfg, world.dom, world.mod, tsk)
  query_texts = write_query_texts(rng_text, cfg, world.latent.w_QxJ, tsk, q_task, txt.task_keywords)
  fmts = prompt_formats(tsk.names, tsk.metric)
  query_prompts = [
    prompt_text(fmts[t], s) for t, s in zip(q_task.tolist(), query_texts, strict=True)
  ]
  return txt, query_texts, query_prompts


def resolve_config(
  config: SyntheticConfig | None, setting: str, seed, overrides: dict
) -> SyntheticConfig:
  """The resolved config with ``overrides`` applied; ValueError naming a bad argument."""
  if setting not in SETTINGS:
    raise ValueError(f"unknown setting {setting!r}; expected one of {SETTINGS}")
  cfg = SyntheticConfig() if config is None else config
  if not isinstance(cfg, SyntheticConfig):
    raise ValueError(f"config must be a SyntheticConfig, got {type(cfg).__name__}")
  fields = [f.name for f in dataclasses.fields(SyntheticConfig)]
  unknown = sorted(set(overrides) - set(fields))
  if unknown:
    raise ValueError(f"unknown SyntheticConfig field(s) {unknown}; expected some of {fields}")
  cfg = dataclasses.replace(cfg, **overrides).resolved()
  if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
    raise ValueError(f"seed must be a nonnegative integer, got {seed!r}")
  return cfg


# -- the latent world -----------------------------------------------------------------------------


def draw_domains(rng: np.random.Generator, cfg: SyntheticConfig) -> Domains:
  """Domain names and skill directions u_c ~ Dirichlet(0.2 + 5 pref_c)."""
  K, C = cfg.latent_dim, cfg.num_domains
  names = [DOMAINS[c][0] if c < len(DOMAINS) else f"domain{c + 1}" for c in range(C)]
  pref_CxK = np.zeros((C, K))
  for c in range(min(C, len(DOMAINS))):
    prefs = [k for k in DOMAINS[c][1] if k < K]
    pref_CxK[c, prefs] = 5.0
  extra = max(0, C - len(DOMAINS))
  if extra:  # domains without a built-in name lean on two random skills
    rows = len(DOMAINS) + np.arange(extra)
    pref_CxK[rows[:, None], rng.integers(0, K, (extra, 2))] = 5.0
  return Domains(names, _dirichlet_rows(rng, 0.2 + pref_CxK))


def draw_models(rng: np.random.Generator, cfg: SyntheticConfig) -> Models:
  """Family means, model skills, sizes, general abilities and prices."""
  K, F, M = cfg.latent_dim, cfg.num_families, cfg.num_models
  mu_FxK = rng.normal(0.0, cfg.family_scale, (F, K))
  family_M = np.arange(M) % F
  z_MxK = mu_FxK[family_M] + rng.normal(0.0, cfg.model_scale, (M, K))
  # Skills are relative strengths (centred per model), so no model is best at everything by
  # construction; overall strength comes from size and the general factor g_m only.
  z_MxK -= z_MxK.mean(1, keepdims=True)
  size_M = SIZES_B[rng.integers(0, len(SIZES_B), M)]
  g_M = rng.normal(0.0, cfg.general_scale, M)
  s_M = cfg.size_effect * (np.log(size_M) - np.log(SIZES_B).mean()) + g_M
  theta_MxK = s_M[:, None] + z_MxK  # ability on a query = theta_m . w_q (w_q sums to 1)
  price_in_M = np.maximum(
    0.01, np.round(0.015 * size_M**0.85 * np.exp(rng.normal(0.0, 0.25, M)), 2)
  )
  out_factor_M = np.where(rng.random(M) < 0.25, 3.0, 1.0)
  prices_Mx2 = np.stack([price_in_M, np.round(price_in_M * out_factor_M, 2)], -1)
  return Models(family_M, mu_FxK, z_MxK, size_M, theta_MxK, prices_Mx2)


def draw_tasks(
  rng: np.random.Generator, cfg: SyntheticConfig, domain_names: list[str], u_CxK: np.ndarray
) -> Tasks:
  """Task domains, skill mixtures, difficulties, roles (routing / graph-only) and metrics."""
  C, T_sc = cfg.num_domains, cfg.num_tasks
  T = T_sc + cfg.num_unscored_tasks
  R, G = cfg.num_routing_tasks, cfg.num_graph_only_tasks
  primary_T = rng.permutation(np.arange(T) % C)
  has_second_T = (rng.random(T) < cfg.second_domain_prob) & (C > 1)
  second_T = (primary_T + 1 + rng.integers(0, max(C - 1, 1), T)) % C
  domain_TxC = np.zeros((T, C), bool)
  domain_TxC[np.arange(T), primary_T] = True
  domain_TxC[np.arange(T)[has_second_T], second_T[has_second_T]] = True
  u_task_TxK = (domain_TxC @ u_CxK) / domain_TxC.sum(1, keepdims=True)
  w_TxK = _dirichlet_rows(rng, 0.2 + 6.0 * u_task_TxK)
  b_T = rng.normal(cfg.task_difficulty_mean, cfg.task_difficulty_sd, T)
  # Routing and graph-only tasks are a random subset of the scored tasks, kept in index order.
  chosen = rng.permutation(T_sc)[: R + G]
  routing_T = np.sort(chosen[:R])
  graph_only_T = np.sort(chosen[R:])
  continuous_T = np.sort(rng.permutation(routing_T)[: cfg.num_continuous_tasks])
  is_cont_T = np.zeros(T, bool)
  is_cont_T[continuous_T] = True
  metric = [
    CONTINUOUS_METRIC if is_cont_T[t] else METRIC_BY_DOMAIN.get(domain_names[primary_T[t]], "em_mc")
    for t in range(T)
  ]
  counters: dict[str, int] = {}
  names = []
  for t in range(T):
    stem = domain_names[primary_T[t]]
    counters[stem] = counters.get(stem, 0) + 1
    names.append(f"synth-{stem}-{counters[stem]}")
  return Tasks(
    names, metric, domain_TxC, w_TxK, b_T, routing_T, graph_only_T, continuous_T, is_cont_T
  )


# -- queries, outcomes, pairs ---------------------------------------------------------------------


def lay_out_queries(cfg: SyntheticConfig, tsk: Tasks) -> tuple[np.ndarray, np.ndarray]:
  """[Q] task and split of each query: train queries of routing + graph-only tasks, then test."""
  tr_tasks = np.concatenate([tsk.routing_T, tsk.graph_only_T])
  q_task = np.concatenate(
    [np.repeat(tr_tasks, cfg.train_per_task), np.repeat(tsk.routing_T, cfg.test_per_task)]
  ).astype(np.int32)
  q_split = np.concatenate(
    [
      np.full(len(tr_tasks) * cfg.train_per_task, TRAIN),
      np.full(len(tsk.routing_T) * cfg.test_per_task, TEST),
    ]
  ).astype(np.int8)
  return q_task, q_split


def draw_query_mixtures(
  rng: np.random.Generator, cfg: SyntheticConfig, tsk: Tasks, task_N: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Skill mixtures w [N, K] (the task's, perturbed log-normally) and difficulties b [N]."""
  eps_NxK = rng.normal(0.0, 1.0, (len(task_N), cfg.latent_dim))
  w_NxK = tsk.w_TxK[task_N] * np.exp(cfg.query_skill_noise * eps_NxK)
  w_NxK /= w_NxK.sum(-1, keepdims=True)
  b_N = tsk.b_T[task_N] + rng.normal(0.0, cfg.query_difficulty_sd, len(task_N))
  return w_NxK, b_N


def draw_latent_outcomes(
  rng: np.random.Generator, cfg: SyntheticConfig, p_QxM: np.ndarray, is_cont_Q: np.ndarray
) -> np.ndarray:
  """[Q, M] latent outcomes of every model: Bernoulli(p), or clip(p + noise) if continuous."""
  bern_QxM = (rng.random(p_QxM.shape) < p_QxM).astype(np.float64)
  cont_QxM = np.clip(p_QxM + rng.normal(0.0, cfg.continuous_noise, p_QxM.shape), 0.0, 1.0)
  return np.where(is_cont_Q[:, None], cont_QxM, bern_QxM)


def draw_pairs(
  rng: np.random.Generator,
  cfg: SyntheticConfig,
  latent_PqxM: np.ndarray,
  pair_q: np.ndarray,
  held_out: np.ndarray,
) -> np.ndarray:
  """[P, 3] (query, better, worse): 1 + Poisson(pairs_per_query - 1) pairs per training query.

  Pairs are drawn among the candidates minus the held-out ones, with strictly different latent
  outcomes. Both settings draw the same numbers, so their pairs differ only on the queries where
  the standard setting drew a pair with the held-out model.
  """
  A = cfg.num_candidates
  cand_A = np.arange(A)
  o_PqxA = latent_PqxM[:, cand_A]
  ok_A = ~np.isin(cand_A, held_out)
  valid_PqxAxA = (o_PqxA[:, :, None] > o_PqxA[:, None, :]) & ok_A[:, None] & ok_A[None, :]
  n_valid = valid_PqxAxA.reshape(len(pair_q), -1).sum(1)
  n_want = 1 + rng.poisson(cfg.pairs_per_query - 1.0, len(pair_q))
  keys_PqxAA = rng.random((len(pair_q), A * A))
  n_take = np.minimum(n_want, n_valid)
  keys_PqxAA = np.where(valid_PqxAxA.reshape(len(pair_q), -1), keys_PqxAA, 2.0)
  order_PqxAA = np.argsort(keys_PqxAA, axis=1, kind="stable")
  take_PqxAA = np.arange(A * A)[None, :] < n_take[:, None]
  rows, cols = np.nonzero(take_PqxAA)
  flat = order_PqxAA[rows, cols]
  return np.stack([pair_q[rows], cand_A[flat // A], cand_A[flat % A]], -1).astype(np.int32)


def reveal_outcomes(
  latent_QxM: np.ndarray,
  test_Q: np.ndarray,
  A: int,
  pairs_Px3: np.ndarray,
  is_cont_Q: np.ndarray,
) -> np.ndarray:
  """[Q, M] what the History shows: candidates' test outcomes, and 1/0 for better/worse in pairs
  on binary tasks; NaN everywhere else."""
  cand_A = np.arange(A)
  outcomes_QxM = np.full(latent_QxM.shape, np.nan)
  outcomes_QxM[np.ix_(np.flatnonzero(test_Q), cand_A)] = latent_QxM[np.ix_(test_Q, cand_A)]
  bin_pair = ~is_cont_Q[pairs_Px3[:, 0]]
  outcomes_QxM[pairs_Px3[bin_pair, 0], pairs_Px3[bin_pair, 1]] = 1.0
  outcomes_QxM[pairs_Px3[bin_pair, 0], pairs_Px3[bin_pair, 2]] = 0.0
  return outcomes_QxM


def draw_scores(
  rng: np.random.Generator,
  cfg: SyntheticConfig,
  theta_MxK: np.ndarray,
  tsk: Tasks,
  held_out: np.ndarray,
) -> np.ndarray:
  """[M, T] benchmark scores: 100 x mean p over fresh queries + noise, some missing."""
  T_sc, M, A = cfg.num_tasks, cfg.num_models, cfg.num_candidates
  bench_task = np.repeat(np.arange(T_sc), cfg.bench_queries)
  wb_NxK, bb_N = draw_query_mixtures(rng, cfg, tsk, bench_task)
  pb_NxM = _sigmoid(cfg.discrimination * (wb_NxK @ theta_MxK.T) - bb_N[:, None])
  mean_MxTs = pb_NxM.reshape(T_sc, cfg.bench_queries, M).mean(1).T
  scores_MxTs = np.clip(100.0 * mean_MxTs + rng.normal(0.0, cfg.score_noise, (M, T_sc)), 0.0, 100.0)
  missing_MxTs = rng.random((M, T_sc)) < cfg.score_missing
  missing_MxTs[np.ix_(np.arange(A), tsk.routing_T)] = False
  # Every scored task keeps at least one score (else it would be a text-only task).
  keep_Ts = np.argmin(rng.random((M, T_sc)), 0)
  missing_MxTs[keep_Ts, np.arange(T_sc)] &= ~missing_MxTs.all(0)
  scores_MxT = np.full((M, len(tsk.names)), np.nan)
  scores_MxT[:, :T_sc] = np.where(missing_MxTs, np.nan, np.round(scores_MxTs, 2))
  if len(held_out):
    scores_MxT[np.ix_(held_out, tsk.routing_T)] = np.nan
  return scores_MxT


def draw_tokens(
  rng: np.random.Generator, cfg: SyntheticConfig, q_task: np.ndarray, test_Q: np.ndarray, T: int
) -> np.ndarray:
  """[Q, M, 2] prompt / completion tokens, given for the candidates on test queries only."""
  Q, M = len(q_task), cfg.num_models
  prompt_mean_T = np.exp(rng.uniform(np.log(40.0), np.log(700.0), T))
  prompt_Q = prompt_mean_T[q_task] * np.exp(rng.normal(0.0, 0.35, Q))
  tokenizer_M = np.exp(rng.normal(0.0, 0.03, M))
  verbosity_M = np.exp(rng.normal(np.log(150.0), 0.5, M))
  task_len_T = np.exp(rng.normal(0.0, 0.6, T))
  completion_QxM = (
    verbosity_M[None, :] * task_len_T[q_task][:, None] * np.exp(rng.normal(0.0, 0.5, (Q, M)))
  )
  tokens_QxMx2 = np.stack(
    [
      np.maximum(1.0, np.round(prompt_Q[:, None] * tokenizer_M[None, :])),
      np.clip(np.round(completion_QxM), 1.0, MAX_COMPLETION_TOKENS),
    ],
    -1,
  )
  is_cand_M = np.arange(M) < cfg.num_candidates
  tokens_QxMx2[~(test_Q[:, None] & is_cand_M[None, :])] = np.nan
  return tokens_QxMx2


def _notes(
  cfg: SyntheticConfig, seed: int, setting: str, tsk: Tasks, shown: _Shown, model_names: list[str]
) -> list[str]:
  pairs_Px3, held_out, strength_A = shown.pairs_Px3, shown.held_out, shown.strength_A
  F, M, A, C = cfg.num_families, cfg.num_models, cfg.num_candidates, cfg.num_domains
  R, G = cfg.num_routing_tasks, cfg.num_graph_only_tasks
  n_pairs_q = len(np.unique(pairs_Px3[:, 0]))
  notes = [
    f"synthetic history, seed={seed}, setting={setting!r}",
    f"sizes: {F} families, {M} models ({A} candidates), {cfg.num_tasks} scored + "
    f"{cfg.num_unscored_tasks} text-only tasks, {C} domains, {R} routing tasks x "
    f"({cfg.train_per_task} train + {cfg.test_per_task} test queries), {G} graph-only tasks x "
    f"{cfg.train_per_task} train queries, latent_dim={cfg.latent_dim}",
    f"continuous routing tasks: {[tsk.names[t] for t in tsk.continuous_T] or 'none'}; graph-only "
    f"tasks: {[tsk.names[t] for t in tsk.graph_only_T] or 'none'}",
    f"{len(pairs_Px3)} pairs over {n_pairs_q} training queries; training outcomes only where a "
    f"pair implies them (binary tasks); test outcomes and tokens for candidates only",
  ]
  if len(held_out):
    h = int(held_out[0])
    notes.append(
      f"newllm: held out {model_names[h]!r}, the strongest candidate on average "
      f"(mean latent p {strength_A[h]:.3f} on test queries); its routing-task scores are removed"
    )
  return notes


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _dirichlet_rows(rng: np.random.Generator, alpha_NxK: np.ndarray) -> np.ndarray:
  """One Dirichlet draw per row of alpha (Generator.dirichlet takes a single alpha)."""
  g_NxK = rng.gamma(alpha_NxK)
  # A row of all-zero gammas (possible only for tiny alphas) falls back to the mean direction.
  s_N = g_NxK.sum(-1, keepdims=True)
  mean_NxK = alpha_NxK / alpha_NxK.sum(-1, keepdims=True)
  return np.where(s_N > 0, g_NxK / np.where(s_N > 0, s_N, 1.0), mean_NxK)
