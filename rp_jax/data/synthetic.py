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
import math

import numpy as np

from rp_jax.types import TEST, TRAIN, History

SETTINGS = ("standard", "newllm")

# A small world for tests and examples (builds in milliseconds): make_history(**TINY_SIZES).
TINY_SIZES = dict(
  num_models=4,
  num_candidates=3,
  num_tasks=4,
  num_unscored_tasks=0,
  num_domains=2,
  train_per_task=3,
  test_per_task=2,
)

# (display name, word list) per latent skill; the first `latent_dim` are used. No word is shared
# between two skills or with the filler, so a word says which skill it came from.
SKILLS: tuple[tuple[str, tuple[str, ...]], ...] = (
  (
    "arithmetic",
    ("arithmetic", "sum", "multiply", "fraction", "percent", "total", "divide", "remainder"),
  ),
  (
    "mathematical reasoning",
    ("algebra", "polynomial", "theorem", "integral", "geometry", "equation", "proof", "variable"),
  ),
  (
    "logical deduction",
    ("logic", "deduce", "clue", "puzzle", "premise", "infer", "arrangement", "contradiction"),
  ),
  (
    "factual recall",
    ("history", "capital", "invented", "century", "author", "country", "famous", "born"),
  ),
  (
    "reading comprehension",
    ("passage", "paragraph", "article", "according", "context", "evidence", "excerpt", "summary"),
  ),
  (
    "programming",
    ("python", "function", "return", "string", "loop", "array", "implement", "recursion"),
  ),
  (
    "commonsense",
    ("everyday", "likely", "kitchen", "weather", "neighbor", "usually", "household", "outdoors"),
  ),
  (
    "text generation",
    ("compose", "scene", "describe", "fluent", "coherent", "narrative", "phrase", "vivid"),
  ),
  (
    "instruction following",
    ("format", "bullet", "exactly", "lowercase", "style", "respond", "template", "limit"),
  ),
  (
    "scientific knowledge",
    ("physics", "chemistry", "biology", "molecule", "energy", "cell", "experiment", "force"),
  ),
  (
    "multilingual understanding",
    ("translate", "spanish", "french", "chinese", "german", "bilingual", "idiom", "dialect"),
  ),
  (
    "truthfulness",
    ("truthful", "misconception", "myth", "honest", "harmful", "safe", "rumor", "accurate"),
  ),
)
FILLER = (
  "the", "a", "of", "which", "following", "given", "what", "is", "in", "for", "that", "with",
  "and", "to", "each", "one", "this", "these", "question", "below",
)  # fmt: skip
# Domain name -> indices into SKILLS that the name suggests (its direction leans on them).
DOMAINS: tuple[tuple[str, tuple[int, ...]], ...] = (
  ("knowledge", (3, 9)),
  ("reasoning", (2, 6)),
  ("qa", (4, 3)),
  ("math", (0, 1)),
  ("coding", (5, 2)),
  ("alignment", (8, 7, 11)),
  ("science", (9, 1)),
  ("multilingual", (10, 4)),
  ("safety", (11, 8)),
)
FAMILIES = (
  "qwen", "llama", "gemma", "mistral", "mixtral", "phi", "falcon", "yi", "deepseek", "olmo",
)  # fmt: skip
SIZES_B = np.array([1, 2, 3, 7, 8, 9, 12, 14, 22, 24, 27, 32, 56, 70, 72, 123, 176], np.float64)
# Metric by primary domain (binary ones); continuous routing tasks use "coverage".
_METRIC_BY_DOMAIN = {"math": "gsm8k", "coding": "code_eval", "qa": "f1_score"}
CONTINUOUS_METRIC = "coverage"
_PROMPT_BY_METRIC = {
  "em_mc": "Choose the correct option for the question below.",
  "gsm8k": "Work out the problem below and state the final answer.",
  "code_eval": "Complete the task below so that all hidden checks pass.",
  "f1_score": "Reply with a short answer to the question below.",
  CONTINUOUS_METRIC: "Write one line that uses all of these keywords.",
}
_MAX_COMPLETION_TOKENS = 1024
_WORDS_PER_SKILL = 8  # word draws index skill k's list as k * 8 + j
assert all(len(ws) == _WORDS_PER_SKILL for _, ws in SKILLS)


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """Sizes and knobs of the synthetic history; defaults resemble the public RouteProfile data.

  Counts that must not exceed another count default to None, meaning min(real-data value, bound):
  num_families -> min(5, num_models), num_candidates -> min(8, num_models), num_routing_tasks ->
  min(12, num_tasks), num_graph_only_tasks -> min(2, num_tasks - routing), num_continuous_tasks ->
  min(1, routing). An explicit value is never clamped: an impossible one raises ValueError.

  Attributes:
    num_families: model families (names beyond the built-in ten are "famN").
    num_models: models in the pool.
    num_candidates: the first ``num_candidates`` models of the pool are the candidates.
    num_tasks: scored benchmark tasks (routing and graph-only tasks are among them).
    num_unscored_tasks: extra task nodes with a text and domains but no scores or queries.
    num_domains: domains (names beyond the built-in nine are "domainN").
    second_domain_prob: probability that a task also belongs to a second domain.
    num_routing_tasks: tasks with training and test queries.
    num_graph_only_tasks: tasks with training queries only (graph nodes; no pairs, no outcomes).
    num_continuous_tasks: routing tasks with continuous outcomes in [0, 1] (the rest are binary).
    train_per_task, test_per_task: queries per task (graph-only tasks have train queries only).
    latent_dim: number of latent skills k (at most ``len(SKILLS)``).
    family_scale: std of family skill means.
    model_scale: std of a model's own skill deviation from its family mean.
    size_effect: general ability per unit of log(size in billions).
    general_scale: std of a model's general ability beyond its size.
    discrimination: IRT slope a.
    task_difficulty_mean, task_difficulty_sd: distribution of task base difficulty b_t.
    query_difficulty_sd: std of a query's difficulty around its task's.
    query_skill_noise: std of the log-normal perturbation of a query's skill mixture.
    continuous_noise: std of the Gaussian noise on continuous outcomes.
    score_noise: std of the noise on benchmark scores (points of 0..100).
    score_missing: fraction of benchmark scores set to NaN.
    bench_queries: latent queries per task used to compute benchmark scores.
    pairs_per_query: mean of 1 + Poisson(pairs_per_query - 1), the pairs drawn per training
      query that has any (capped at the number of strictly ordered candidate pairs).
    query_content_words: skill words per query text (plus 2 perturbation words and filler).
  """

  num_families: int | None = None
  num_models: int = 24
  num_candidates: int | None = None
  num_tasks: int = 29
  num_unscored_tasks: int = 15
  num_domains: int = 6
  second_domain_prob: float = 0.3
  num_routing_tasks: int | None = None
  num_graph_only_tasks: int | None = None
  num_continuous_tasks: int | None = None
  train_per_task: int = 150
  test_per_task: int = 50
  latent_dim: int = 8
  family_scale: float = 0.9
  model_scale: float = 0.6
  size_effect: float = 0.12
  general_scale: float = 0.2
  discrimination: float = 2.0
  task_difficulty_mean: float = -0.4
  task_difficulty_sd: float = 1.5
  query_difficulty_sd: float = 4.0
  query_skill_noise: float = 1.0
  continuous_noise: float = 0.1
  score_noise: float = 2.0
  score_missing: float = 0.3
  bench_queries: int = 200
  pairs_per_query: float = 4.0
  query_content_words: int = 10

  def __post_init__(self):
    self._resolved_counts()  # validates

  def resolved(self) -> SyntheticConfig:
    """This config with every None count replaced by its default; raises ValueError if invalid."""
    return dataclasses.replace(self, **self._resolved_counts())

  def _resolved_counts(self) -> dict[str, int]:
    """Validates every field; returns the None-defaulted counts resolved."""

    def need(cond, field, msg):
      if not cond:
        raise ValueError(f"SyntheticConfig.{field}: {msg}")

    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      if f.type in ("int", "int | None"):
        need(
          v is None or (isinstance(v, int | np.integer) and not isinstance(v, bool)),
          f.name,
          f"expected an integer, got {v!r}",
        )
      else:
        need(
          isinstance(v, int | float | np.number) and math.isfinite(v),
          f.name,
          f"expected a finite number, got {v!r}",
        )
    need(self.num_models >= 1, "num_models", f"expected >= 1, got {self.num_models}")
    nf = min(5, self.num_models) if self.num_families is None else self.num_families
    need(
      1 <= nf <= self.num_models,
      "num_families",
      f"expected 1..num_models={self.num_models}, got {nf}",
    )
    na = min(8, self.num_models) if self.num_candidates is None else self.num_candidates
    need(
      1 <= na <= self.num_models,
      "num_candidates",
      f"expected 1..num_models={self.num_models}, got {na}",
    )
    need(self.num_tasks >= 1, "num_tasks", f"expected >= 1, got {self.num_tasks}")
    need(
      self.num_unscored_tasks >= 0,
      "num_unscored_tasks",
      f"expected >= 0, got {self.num_unscored_tasks}",
    )
    need(self.num_domains >= 1, "num_domains", f"expected >= 1, got {self.num_domains}")
    nr = min(12, self.num_tasks) if self.num_routing_tasks is None else self.num_routing_tasks
    need(
      1 <= nr <= self.num_tasks,
      "num_routing_tasks",
      f"expected 1..num_tasks={self.num_tasks} (a history needs a routing task), got {nr}",
    )
    ng = (
      min(2, self.num_tasks - nr)
      if self.num_graph_only_tasks is None
      else self.num_graph_only_tasks
    )
    need(
      0 <= ng <= self.num_tasks - nr,
      "num_graph_only_tasks",
      f"expected 0..num_tasks - num_routing_tasks={self.num_tasks - nr}, got {ng}",
    )
    nc = min(1, nr) if self.num_continuous_tasks is None else self.num_continuous_tasks
    need(
      0 <= nc <= nr,
      "num_continuous_tasks",
      f"expected 0..num_routing_tasks={nr}, got {nc}",
    )
    need(self.train_per_task >= 1, "train_per_task", f"expected >= 1, got {self.train_per_task}")
    need(self.test_per_task >= 1, "test_per_task", f"expected >= 1, got {self.test_per_task}")
    need(
      1 <= self.latent_dim <= len(SKILLS),
      "latent_dim",
      f"expected 1..{len(SKILLS)} (one word list per skill), got {self.latent_dim}",
    )
    for name in (
      "family_scale",
      "model_scale",
      "size_effect",
      "general_scale",
      "discrimination",
      "task_difficulty_sd",
      "query_difficulty_sd",
      "query_skill_noise",
      "continuous_noise",
      "score_noise",
    ):
      need(getattr(self, name) >= 0, name, f"expected >= 0, got {getattr(self, name)}")
    for name in ("second_domain_prob", "score_missing"):
      need(0 <= getattr(self, name) <= 1, name, f"expected 0..1, got {getattr(self, name)}")
    need(self.bench_queries >= 1, "bench_queries", f"expected >= 1, got {self.bench_queries}")
    need(
      self.pairs_per_query >= 1,
      "pairs_per_query",
      f"expected >= 1 (pairs per training query that has any), got {self.pairs_per_query}",
    )
    need(
      self.query_content_words >= 1,
      "query_content_words",
      f"expected >= 1, got {self.query_content_words}",
    )
    return dict(
      num_families=nf,
      num_candidates=na,
      num_routing_tasks=nr,
      num_graph_only_tasks=ng,
      num_continuous_tasks=nc,
    )


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _dirichlet_rows(rng: np.random.Generator, alpha_NxK: np.ndarray) -> np.ndarray:
  """One Dirichlet draw per row of alpha (Generator.dirichlet takes a single alpha)."""
  g_NxK = rng.gamma(alpha_NxK)
  # A row of all-zero gammas (possible only for tiny alphas) falls back to the mean direction.
  s_N = g_NxK.sum(-1, keepdims=True)
  mean_NxK = alpha_NxK / alpha_NxK.sum(-1, keepdims=True)
  return np.where(s_N > 0, g_NxK / np.where(s_N > 0, s_N, 1.0), mean_NxK)


def _categorical(rng: np.random.Generator, probs_NxK: np.ndarray, n: int) -> np.ndarray:
  """[N, n] int draws from each row's categorical distribution (inverse CDF, vectorised)."""
  cdf_NxK = np.cumsum(probs_NxK, -1)
  u_Nxn = rng.random((probs_NxK.shape[0], n)) * cdf_NxK[:, -1:]
  idx = (cdf_NxK[:, None, :] <= u_Nxn[..., None]).sum(-1)
  return np.minimum(idx, probs_NxK.shape[1] - 1)


def _top(v: np.ndarray, n: int) -> list[int]:
  """Indices of the n largest entries, largest first (stable, so ties break by index)."""
  return np.argsort(-v, kind="stable")[:n].tolist()


def _join_and(xs: list[str]) -> str:
  return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def _unique(names: list[str]) -> list[str]:
  """Makes names unique by suffixing repeats with -v2, -v3, ... (in order, so deterministic)."""
  out, used = [], set()
  for n in names:
    cand, j = n, 1
    while cand in used:
      j += 1
      cand = f"{n}-v{j}"
    used.add(cand)
    out.append(cand)
  return out


def _price_str(x: float) -> str:
  return f"${x:.2f}"


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
    w_QxK, b_Q: query skill mixtures and difficulties.
    p_QxM: success probabilities of every model on every query.
    outcome_QxM: the full latent outcomes the History reveals parts of.
  """

  skill_names: tuple[str, ...]
  config: SyntheticConfig
  theta_MxK: np.ndarray
  size_M: np.ndarray
  u_CxK: np.ndarray
  w_TxK: np.ndarray
  w_QxK: np.ndarray
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

  Args:
    config, seed, setting, **overrides: as for ``make_history``.

  Returns:
    (history, latent): the History and its SyntheticLatent (same seed => same latent world in
    both settings).
  """
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

  (
    rng_world,
    rng_query,
    rng_outcome,
    rng_score,
    rng_token,
    rng_text,
    rng_pair,
  ) = np.random.default_rng(seed).spawn(7)

  K = cfg.latent_dim
  F, M, A = cfg.num_families, cfg.num_models, cfg.num_candidates
  C = cfg.num_domains
  T_sc = cfg.num_tasks
  T = T_sc + cfg.num_unscored_tasks
  R, G = cfg.num_routing_tasks, cfg.num_graph_only_tasks
  a = cfg.discrimination
  skill_names = [s[0] for s in SKILLS[:K]]
  skill_words = [s[1] for s in SKILLS[:K]]

  # -- domains --------------------------------------------------------------------------------
  domain_names = [DOMAINS[c][0] if c < len(DOMAINS) else f"domain{c + 1}" for c in range(C)]
  pref_CxK = np.zeros((C, K))
  for c in range(min(C, len(DOMAINS))):
    prefs = [k for k in DOMAINS[c][1] if k < K]
    pref_CxK[c, prefs] = 5.0
  extra = max(0, C - len(DOMAINS))
  if extra:  # domains without a built-in name lean on two random skills
    rows = len(DOMAINS) + np.arange(extra)
    pref_CxK[rows[:, None], rng_world.integers(0, K, (extra, 2))] = 5.0
  u_CxK = _dirichlet_rows(rng_world, 0.2 + pref_CxK)

  # -- families and models --------------------------------------------------------------------
  mu_FxK = rng_world.normal(0.0, cfg.family_scale, (F, K))
  model_family_M = np.arange(M) % F
  z_MxK = mu_FxK[model_family_M] + rng_world.normal(0.0, cfg.model_scale, (M, K))
  # Skills are relative strengths (centred per model), so no model is best at everything by
  # construction; overall strength comes from size and the general factor g_m only.
  z_MxK -= z_MxK.mean(1, keepdims=True)
  size_M = SIZES_B[rng_world.integers(0, len(SIZES_B), M)]
  g_M = rng_world.normal(0.0, cfg.general_scale, M)
  s_M = cfg.size_effect * (np.log(size_M) - np.log(SIZES_B).mean()) + g_M
  theta_MxK = s_M[:, None] + z_MxK  # ability on a query = theta_m . w_q (w_q sums to 1)
  price_in_M = np.maximum(
    0.01, np.round(0.015 * size_M**0.85 * np.exp(rng_world.normal(0.0, 0.25, M)), 2)
  )
  out_factor_M = np.where(rng_world.random(M) < 0.25, 3.0, 1.0)
  prices_Mx2 = np.stack([price_in_M, np.round(price_in_M * out_factor_M, 2)], -1)

  # -- tasks ----------------------------------------------------------------------------------
  primary_T = rng_world.permutation(np.arange(T) % C)
  has_second_T = (rng_world.random(T) < cfg.second_domain_prob) & (C > 1)
  second_T = (primary_T + 1 + rng_world.integers(0, max(C - 1, 1), T)) % C
  task_domain_TxC = np.zeros((T, C), bool)
  task_domain_TxC[np.arange(T), primary_T] = True
  task_domain_TxC[np.arange(T)[has_second_T], second_T[has_second_T]] = True
  u_task_TxK = (task_domain_TxC @ u_CxK) / task_domain_TxC.sum(1, keepdims=True)
  w_TxK = _dirichlet_rows(rng_world, 0.2 + 6.0 * u_task_TxK)
  b_T = rng_world.normal(cfg.task_difficulty_mean, cfg.task_difficulty_sd, T)
  # Routing and graph-only tasks are a random subset of the scored tasks, kept in index order.
  chosen = rng_world.permutation(T_sc)[: R + G]
  routing_T = np.sort(chosen[:R])
  graph_only_T = np.sort(chosen[R:])
  continuous_T = np.sort(rng_world.permutation(routing_T)[: cfg.num_continuous_tasks])
  is_cont_T = np.zeros(T, bool)
  is_cont_T[continuous_T] = True
  task_metric = [
    CONTINUOUS_METRIC
    if is_cont_T[t]
    else _METRIC_BY_DOMAIN.get(domain_names[primary_T[t]], "em_mc")
    for t in range(T)
  ]
  counters: dict[str, int] = {}
  task_names = []
  for t in range(T):
    stem = domain_names[primary_T[t]]
    counters[stem] = counters.get(stem, 0) + 1
    task_names.append(f"synth-{stem}-{counters[stem]}")

  # -- queries --------------------------------------------------------------------------------
  tr_tasks = np.concatenate([routing_T, graph_only_T])
  q_task = np.concatenate(
    [np.repeat(tr_tasks, cfg.train_per_task), np.repeat(routing_T, cfg.test_per_task)]
  ).astype(np.int32)
  q_split = np.concatenate(
    [
      np.full(len(tr_tasks) * cfg.train_per_task, TRAIN),
      np.full(R * cfg.test_per_task, TEST),
    ]
  ).astype(np.int8)
  Q = len(q_task)

  def draw_queries(rng, task_N):
    eps_NxK = rng.normal(0.0, 1.0, (len(task_N), K))
    w_NxK = w_TxK[task_N] * np.exp(cfg.query_skill_noise * eps_NxK)
    w_NxK /= w_NxK.sum(-1, keepdims=True)
    b_N = b_T[task_N] + rng.normal(0.0, cfg.query_difficulty_sd, len(task_N))
    return w_NxK, b_N

  w_QxK, b_Q = draw_queries(rng_query, q_task)
  p_QxM = _sigmoid(a * (w_QxK @ theta_MxK.T) - b_Q[:, None])

  # -- latent outcomes (every model), then what the history reveals ---------------------------
  bern_QxM = (rng_outcome.random((Q, M)) < p_QxM).astype(np.float64)
  cont_QxM = np.clip(p_QxM + rng_outcome.normal(0.0, cfg.continuous_noise, (Q, M)), 0.0, 1.0)
  latent_QxM = np.where(is_cont_T[q_task][:, None], cont_QxM, bern_QxM)
  cand_A = np.arange(A)
  is_cand_M = np.zeros(M, bool)
  is_cand_M[cand_A] = True
  test_Q = q_split == TEST
  # Strongest on average: mean latent p over the routing tasks' test queries.
  strength_A = p_QxM[test_Q][:, cand_A].mean(0)
  held_out = np.array([int(cand_A[np.argmax(strength_A)])] if setting == "newllm" else [], int)

  # -- pairs ----------------------------------------------------------------------------------
  pair_q = np.flatnonzero((q_split == TRAIN) & np.isin(q_task, routing_T))
  o_PqxA = latent_QxM[np.ix_(pair_q, cand_A)]
  ok_A = ~np.isin(cand_A, held_out)
  valid_PqxAxA = (o_PqxA[:, :, None] > o_PqxA[:, None, :]) & ok_A[:, None] & ok_A[None, :]
  n_valid = valid_PqxAxA.reshape(len(pair_q), -1).sum(1)
  # Both settings draw the same numbers, so their pairs differ only on the queries where the
  # standard setting drew a pair with the held-out model.
  n_want = 1 + rng_pair.poisson(cfg.pairs_per_query - 1.0, len(pair_q))
  keys_PqxAA = rng_pair.random((len(pair_q), A * A))
  n_take = np.minimum(n_want, n_valid)
  keys_PqxAA = np.where(valid_PqxAxA.reshape(len(pair_q), -1), keys_PqxAA, 2.0)
  order_PqxAA = np.argsort(keys_PqxAA, axis=1, kind="stable")
  take_PqxAA = np.arange(A * A)[None, :] < n_take[:, None]
  rows, cols = np.nonzero(take_PqxAA)
  flat = order_PqxAA[rows, cols]
  pairs_Px3 = np.stack([pair_q[rows], cand_A[flat // A], cand_A[flat % A]], -1).astype(np.int32)

  outcomes_QxM = np.full((Q, M), np.nan)
  outcomes_QxM[np.ix_(np.flatnonzero(test_Q), cand_A)] = latent_QxM[np.ix_(test_Q, cand_A)]
  bin_pair = ~is_cont_T[q_task[pairs_Px3[:, 0]]]
  outcomes_QxM[pairs_Px3[bin_pair, 0], pairs_Px3[bin_pair, 1]] = 1.0
  outcomes_QxM[pairs_Px3[bin_pair, 0], pairs_Px3[bin_pair, 2]] = 0.0

  # -- benchmark scores -----------------------------------------------------------------------
  bench_task = np.repeat(np.arange(T_sc), cfg.bench_queries)
  wb_NxK, bb_N = draw_queries(rng_score, bench_task)
  pb_NxM = _sigmoid(a * (wb_NxK @ theta_MxK.T) - bb_N[:, None])
  mean_MxTs = pb_NxM.reshape(T_sc, cfg.bench_queries, M).mean(1).T
  scores_MxTs = np.clip(
    100.0 * mean_MxTs + rng_score.normal(0.0, cfg.score_noise, (M, T_sc)), 0.0, 100.0
  )
  missing_MxTs = rng_score.random((M, T_sc)) < cfg.score_missing
  missing_MxTs[np.ix_(cand_A, routing_T)] = False
  # Every scored task keeps at least one score (else it would be a text-only task).
  keep_Ts = np.argmin(rng_score.random((M, T_sc)), 0)
  missing_MxTs[keep_Ts, np.arange(T_sc)] &= ~missing_MxTs.all(0)
  scores_MxT = np.full((M, T), np.nan)
  scores_MxT[:, :T_sc] = np.where(missing_MxTs, np.nan, np.round(scores_MxTs, 2))
  if len(held_out):
    scores_MxT[np.ix_(held_out, routing_T)] = np.nan

  # -- tokens ---------------------------------------------------------------------------------
  prompt_mean_T = np.exp(rng_token.uniform(np.log(40.0), np.log(700.0), T))
  prompt_Q = prompt_mean_T[q_task] * np.exp(rng_token.normal(0.0, 0.35, Q))
  tokenizer_M = np.exp(rng_token.normal(0.0, 0.03, M))
  verbosity_M = np.exp(rng_token.normal(np.log(150.0), 0.5, M))
  task_len_T = np.exp(rng_token.normal(0.0, 0.6, T))
  completion_QxM = (
    verbosity_M[None, :] * task_len_T[q_task][:, None] * np.exp(rng_token.normal(0.0, 0.5, (Q, M)))
  )
  tokens_QxMx2 = np.stack(
    [
      np.maximum(1.0, np.round(prompt_Q[:, None] * tokenizer_M[None, :])),
      np.clip(np.round(completion_QxM), 1.0, _MAX_COMPLETION_TOKENS),
    ],
    -1,
  )
  tokens_QxMx2[~(test_Q[:, None] & is_cand_M[None, :])] = np.nan

  # -- texts ----------------------------------------------------------------------------------
  words_of = lambda k, n: [skill_words[k][j] for j in rng_text.permutation(_WORDS_PER_SKILL)[:n]]
  fam_short = [FAMILIES[f] if f < len(FAMILIES) else f"fam{f + 1}" for f in range(F)]
  family_names = [f"Synth{s.capitalize()}ForCausalLM" for s in fam_short]
  family_texts = []
  for f in range(F):
    top = _top(mu_FxK[f], 2)
    weak = int(np.argmin(mu_FxK[f]))
    family_texts.append(
      f"A family of decoder-only transformer language models (synth-{fam_short[f]}). Its models "
      f"are known for strong {_join_and([skill_names[k] for k in top])} "
      f"({', '.join(w for k in top for w in words_of(k, 2))}) and are weaker at "
      f"{skill_names[weak]}."
    )
  size_int = size_M.astype(int)
  model_names = _unique([f"synth-{fam_short[model_family_M[m]]}-{size_int[m]}b" for m in range(M)])
  dom_ability_MxC = z_MxK @ u_CxK.T
  model_texts = []
  for m in range(M):
    tops, topd = _top(z_MxK[m], 2), _top(dom_ability_MxC[m], min(2, C))
    model_texts.append(
      f"{model_names[m]} is a {size_int[m]}-billion parameter instruction-tuned model of the "
      f"{family_names[model_family_M[m]]} family, priced at {_price_str(prices_Mx2[m, 0])} per "
      f"million input tokens and {_price_str(prices_Mx2[m, 1])} per million output tokens. It is "
      f"strongest on {_join_and([domain_names[c] for c in topd])} tasks, especially "
      f"{_join_and([skill_names[k] for k in tops])} "
      f"({', '.join(w for k in tops for w in words_of(k, 2))})."
    )
  task_keywords = []
  task_texts = []
  for t in range(T):
    doms = [domain_names[c] for c in np.flatnonzero(task_domain_TxC[t])]
    tops = _top(w_TxK[t], min(3, K))
    first = words_of(tops[0], 4)  # 2 keywords that every query of the task repeats, 2 more
    task_keywords.append(first[:2])
    task_texts.append(
      f"{task_names[t]} is a benchmark in the {_join_and(doms)} domain"
      f"{'s' if len(doms) > 1 else ''}. It measures {_join_and([skill_names[k] for k in tops])}; "
      f"typical items involve {', '.join(first + [w for k in tops[1:] for w in words_of(k, 2)])}. "
      f"Answers are scored with the {task_metric[t]} metric."
    )
  domain_texts = []
  for c in range(C):
    tops = _top(u_CxK[c], min(2, K))
    domain_texts.append(
      f"The {domain_names[c]} domain covers tasks that require "
      f"{_join_and([skill_names[k] for k in tops])}, such as "
      f"{', '.join(w for k in tops for w in words_of(k, 3))}."
    )

  # Query words: indices into one vocabulary (skill words, then filler), built per position.
  vocab = [w for ws in skill_words for w in ws] + list(FILLER)
  n_c, n_p, n_f = cfg.query_content_words, 2, max(2, cfg.query_content_words // 2)
  content_skill = _categorical(rng_text, w_QxK, n_c)
  pert_skill = np.argmax(w_QxK - w_TxK[q_task], -1)
  skill_QxL = np.concatenate([content_skill, np.repeat(pert_skill[:, None], n_p, 1)], 1)
  word_QxL = skill_QxL * _WORDS_PER_SKILL + rng_text.integers(0, _WORDS_PER_SKILL, skill_QxL.shape)
  filler_QxL = K * _WORDS_PER_SKILL + rng_text.integers(0, len(FILLER), (Q, n_f))
  word_QxL = np.concatenate([word_QxL, filler_QxL], 1)
  perm_QxL = np.argsort(rng_text.random(word_QxL.shape), 1)
  word_QxL = np.take_along_axis(word_QxL, perm_QxL, 1)
  query_texts = [
    f"{_PROMPT_BY_METRIC[task_metric[t]]} {' '.join(task_keywords[t])}: "
    f"{' '.join(vocab[i] for i in row)}?"
    for t, row in zip(q_task.tolist(), word_QxL.tolist(), strict=True)
  ]
  # (task, text) must be unique; a collision is astronomically unlikely, but make it impossible.
  seen: set[tuple[int, str]] = set()
  for i, (t, s) in enumerate(zip(q_task.tolist(), query_texts, strict=True)):
    j = 1
    while (t, query_texts[i]) in seen:
      j += 1
      query_texts[i] = f"{s} (variant {j})"
    seen.add((t, query_texts[i]))

  n_pairs_q = len(np.unique(pairs_Px3[:, 0]))
  notes = [
    f"synthetic history, seed={seed}, setting={setting!r}",
    f"sizes: {F} families, {M} models ({A} candidates), {T_sc} scored + "
    f"{cfg.num_unscored_tasks} text-only tasks, {C} domains, {R} routing tasks x "
    f"({cfg.train_per_task} train + {cfg.test_per_task} test queries), {G} graph-only tasks x "
    f"{cfg.train_per_task} train queries, latent_dim={K}",
    f"continuous routing tasks: {[task_names[t] for t in continuous_T] or 'none'}; graph-only "
    f"tasks: {[task_names[t] for t in graph_only_T] or 'none'}",
    f"{len(pairs_Px3)} pairs over {n_pairs_q} training queries; training outcomes only where a "
    f"pair implies them (binary tasks); test outcomes and tokens for candidates only",
  ]
  if len(held_out):
    h = int(held_out[0])
    notes.append(
      f"newllm: held out {model_names[h]!r}, the strongest candidate on average "
      f"(mean latent p {strength_A[h]:.3f} on test queries); its routing-task scores are removed"
    )

  history = History(
    model_names=tuple(model_names),
    model_texts=tuple(model_texts),
    model_family=model_family_M,
    prices_Mx2=prices_Mx2,
    family_names=tuple(family_names),
    family_texts=tuple(family_texts),
    task_names=tuple(task_names),
    task_texts=tuple(task_texts),
    task_metric=tuple(task_metric),
    task_binary=~is_cont_T,
    domain_names=tuple(domain_names),
    domain_texts=tuple(domain_texts),
    task_domain_TxC=task_domain_TxC,
    scores_MxT=scores_MxT,
    query_texts=tuple(query_texts),
    query_task=q_task,
    query_split=q_split,
    query_in_graph=q_split == TRAIN,
    outcomes_QxM=outcomes_QxM,
    tokens_QxMx2=tokens_QxMx2,
    cost_QxM=np.full((Q, M), np.nan),
    pairs_Px3=pairs_Px3,
    candidates=cand_A,
    held_out=held_out,
    setting=setting,
    source=f"rp_jax.data.synthetic(seed={seed})",
    notes=tuple(notes),
  )
  latent = SyntheticLatent(
    skill_names=tuple(skill_names),
    config=cfg,
    theta_MxK=theta_MxK,
    size_M=size_M,
    u_CxK=u_CxK,
    w_TxK=w_TxK,
    w_QxK=w_QxK,
    b_Q=b_Q,
    p_QxM=p_QxM,
    outcome_QxM=latent_QxM,
  )
  return history, latent
