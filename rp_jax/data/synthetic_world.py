"""What the synthetic generator (rp_jax.data.synthetic) draws: its config, words and templates.

- ``SyntheticConfig``: every size and knob of the generator, validated.
- Vocabularies: skill names and word lists, filler, domain and family names, model sizes.
- Containers of the drawn latent world (``Domains``, ``Models``, ``Tasks``) and the text
  templates that describe it (``write_texts``, ``write_query_texts``): the templates draw only
  words from their random stream, in a fixed order.
- ``prompt_formats``: what an LLM would receive for a query (rp_jax.data.prompts), rendered from
  the raw text with a per-task system line; no random draws.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from rp_jax.data.prompts import PromptFormat

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
METRIC_BY_DOMAIN = {"math": "gsm8k", "coding": "code_eval", "qa": "f1_score"}
CONTINUOUS_METRIC = "coverage"
INSTRUCTION_BY_METRIC = {
  "em_mc": "Choose the correct option for the question below.",
  "gsm8k": "Work out the problem below and state the final answer.",
  "code_eval": "Complete the task below so that all hidden checks pass.",
  "f1_score": "Reply with a short answer to the question below.",
  CONTINUOUS_METRIC: "Write one line that uses all of these keywords.",
}
# System line of a task's prompts, by metric. Prompts are rendered from the raw texts, never
# drawn, so they cost no random numbers and leave the raw history as it was.
SYSTEM_BY_METRIC = {
  "em_mc": "Answer the following multiple-choice question by selecting the correct option.",
  "gsm8k": "Answer the following math question step by step.",
  "code_eval": "You are an expert Python programmer. Put your code in this format: [BEGIN] <Your "
  "Code> [Done]",
  "f1_score": "Answer the following question with a short phrase.",
  CONTINUOUS_METRIC: "Write one coherent sentence that uses all the given words.",
}
MAX_COMPLETION_TOKENS = 1024
WORDS_PER_SKILL = 8  # word draws index skill k's list as k * 8 + j
assert all(len(ws) == WORDS_PER_SKILL for _, ws in SKILLS)


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
    self._check_field_types()
    nf, na = self._model_counts()
    nr, ng, nc = self._task_counts()
    self._check_sizes_and_scales()
    return dict(
      num_families=nf,
      num_candidates=na,
      num_routing_tasks=nr,
      num_graph_only_tasks=ng,
      num_continuous_tasks=nc,
    )

  def _check_field_types(self) -> None:
    """Count fields hold integers (or None where they default), the others finite numbers."""
    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      if f.type in ("int", "int | None"):
        _need(
          v is None or (isinstance(v, int | np.integer) and not isinstance(v, bool)),
          f.name,
          f"expected an integer, got {v!r}",
        )
      else:
        _need(
          isinstance(v, int | float | np.number) and math.isfinite(v),
          f.name,
          f"expected a finite number, got {v!r}",
        )

  def _model_counts(self) -> tuple[int, int]:
    """(families, candidates), checked against the number of models."""
    _need(self.num_models >= 1, "num_models", f"expected >= 1, got {self.num_models}")
    nf = min(5, self.num_models) if self.num_families is None else self.num_families
    _need(
      1 <= nf <= self.num_models,
      "num_families",
      f"expected 1..num_models={self.num_models}, got {nf}",
    )
    na = min(8, self.num_models) if self.num_candidates is None else self.num_candidates
    _need(
      1 <= na <= self.num_models,
      "num_candidates",
      f"expected 1..num_models={self.num_models}, got {na}",
    )
    return nf, na

  def _task_counts(self) -> tuple[int, int, int]:
    """(routing, graph-only, continuous) tasks, after the task and domain counts are checked."""
    _need(self.num_tasks >= 1, "num_tasks", f"expected >= 1, got {self.num_tasks}")
    _need(
      self.num_unscored_tasks >= 0,
      "num_unscored_tasks",
      f"expected >= 0, got {self.num_unscored_tasks}",
    )
    _need(self.num_domains >= 1, "num_domains", f"expected >= 1, got {self.num_domains}")
    nr = min(12, self.num_tasks) if self.num_routing_tasks is None else self.num_routing_tasks
    _need(
      1 <= nr <= self.num_tasks,
      "num_routing_tasks",
      f"expected 1..num_tasks={self.num_tasks} (a history needs a routing task), got {nr}",
    )
    ng = (
      min(2, self.num_tasks - nr)
      if self.num_graph_only_tasks is None
      else self.num_graph_only_tasks
    )
    _need(
      0 <= ng <= self.num_tasks - nr,
      "num_graph_only_tasks",
      f"expected 0..num_tasks - num_routing_tasks={self.num_tasks - nr}, got {ng}",
    )
    nc = min(1, nr) if self.num_continuous_tasks is None else self.num_continuous_tasks
    _need(
      0 <= nc <= nr,
      "num_continuous_tasks",
      f"expected 0..num_routing_tasks={nr}, got {nc}",
    )
    return nr, ng, nc

  def _check_sizes_and_scales(self) -> None:
    """Query counts, latent skills, scales, probabilities and the per-query knobs."""
    _need(self.train_per_task >= 1, "train_per_task", f"expected >= 1, got {self.train_per_task}")
    _need(self.test_per_task >= 1, "test_per_task", f"expected >= 1, got {self.test_per_task}")
    _need(
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
      _need(getattr(self, name) >= 0, name, f"expected >= 0, got {getattr(self, name)}")
    for name in ("second_domain_prob", "score_missing"):
      _need(0 <= getattr(self, name) <= 1, name, f"expected 0..1, got {getattr(self, name)}")
    _need(self.bench_queries >= 1, "bench_queries", f"expected >= 1, got {self.bench_queries}")
    _need(
      self.pairs_per_query >= 1,
      "pairs_per_query",
      f"expected >= 1 (pairs per training query that has any), got {self.pairs_per_query}",
    )
    _need(
      self.query_content_words >= 1,
      "query_content_words",
      f"expected >= 1, got {self.query_content_words}",
    )


def _need(cond, field: str, msg: str) -> None:
  """Raises ValueError naming the SyntheticConfig field unless ``cond``."""
  if not cond:
    raise ValueError(f"SyntheticConfig.{field}: {msg}")


def top_indices(v: np.ndarray, n: int) -> list[int]:
  """Indices of the n largest entries, largest first (stable, so ties break by index)."""
  return np.argsort(-v, kind="stable")[:n].tolist()


def join_and(xs: list[str]) -> str:
  return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def unique_names(names: list[str]) -> list[str]:
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


def price_str(x: float) -> str:
  return f"${x:.2f}"


# -- the latent world, as drawn by rp_jax.data.synthetic -------------------------------------------


@dataclasses.dataclass
class Domains:
  """The latent world's domains: names and skill directions."""

  names: list[str]  # [C]
  u_CxK: np.ndarray  # skill direction of each domain


@dataclasses.dataclass
class Models:
  """The latent world's models: families, skills, sizes, abilities, prices."""

  family_M: np.ndarray  # family index of each model
  mu_FxK: np.ndarray  # family skill means
  z_MxK: np.ndarray  # relative skills (centred per model)
  size_M: np.ndarray  # billions of parameters
  theta_MxK: np.ndarray  # ability on a query = theta_m . w_q
  prices_Mx2: np.ndarray  # $ per million input, output tokens


@dataclasses.dataclass
class Tasks:
  """The latent world's tasks: names, metrics, domains, skill mixtures and roles."""

  names: list[str]  # [T] scored tasks first, then text-only ones
  metric: list[str]  # [T]
  domain_TxC: np.ndarray  # bool membership (primary and maybe a second domain)
  w_TxK: np.ndarray  # skill mixtures
  b_T: np.ndarray  # base difficulties
  routing_T: np.ndarray  # sorted indices of tasks with train and test queries
  graph_only_T: np.ndarray  # sorted indices of tasks with train queries only
  continuous_T: np.ndarray  # sorted indices of the continuous routing tasks
  is_cont_T: np.ndarray  # bool


# -- texts ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Texts:
  """The texts describing the latent world (and each task's query keywords)."""

  family_names: list[str]
  family_texts: list[str]
  model_names: list[str]
  model_texts: list[str]
  task_texts: list[str]
  task_keywords: list[list[str]]  # 2 words per task that every query of the task repeats
  domain_texts: list[str]


def write_texts(
  rng: np.random.Generator, cfg: SyntheticConfig, dom: Domains, mod: Models, tsk: Tasks
) -> Texts:
  """Family, model, task and domain texts from templates (words drawn from ``rng``, in order)."""
  K, F, M, C = cfg.latent_dim, cfg.num_families, cfg.num_models, cfg.num_domains
  skill_names = [s[0] for s in SKILLS[:K]]
  skill_words = [s[1] for s in SKILLS[:K]]
  words_of = lambda k, n: [skill_words[k][j] for j in rng.permutation(WORDS_PER_SKILL)[:n]]
  fam_short = [FAMILIES[f] if f < len(FAMILIES) else f"fam{f + 1}" for f in range(F)]
  family_names = [f"Synth{s.capitalize()}ForCausalLM" for s in fam_short]
  family_texts = []
  for f in range(F):
    top = top_indices(mod.mu_FxK[f], 2)
    weak = int(np.argmin(mod.mu_FxK[f]))
    family_texts.append(
      f"A family of decoder-only transformer language models (synth-{fam_short[f]}). Its models "
      f"are known for strong {join_and([skill_names[k] for k in top])} "
      f"({', '.join(w for k in top for w in words_of(k, 2))}) and are weaker at "
      f"{skill_names[weak]}."
    )
  size_int = mod.size_M.astype(int)
  model_names = unique_names(
    [f"synth-{fam_short[mod.family_M[m]]}-{size_int[m]}b" for m in range(M)]
  )
  dom_ability_MxC = mod.z_MxK @ dom.u_CxK.T
  model_texts = []
  for m in range(M):
    tops, topd = top_indices(mod.z_MxK[m], 2), top_indices(dom_ability_MxC[m], min(2, C))
    model_texts.append(
      f"{model_names[m]} is a {size_int[m]}-billion parameter instruction-tuned model of the "
      f"{family_names[mod.family_M[m]]} family, priced at {price_str(mod.prices_Mx2[m, 0])} per "
      f"million input tokens and {price_str(mod.prices_Mx2[m, 1])} per million output tokens. It "
      f"is strongest on {join_and([dom.names[c] for c in topd])} tasks, especially "
      f"{join_and([skill_names[k] for k in tops])} "
      f"({', '.join(w for k in tops for w in words_of(k, 2))})."
    )
  task_keywords, task_texts = [], []
  for t in range(len(tsk.names)):
    doms = [dom.names[c] for c in np.flatnonzero(tsk.domain_TxC[t])]
    tops = top_indices(tsk.w_TxK[t], min(3, K))
    first = words_of(tops[0], 4)  # 2 keywords that every query of the task repeats, 2 more
    task_keywords.append(first[:2])
    task_texts.append(
      f"{tsk.names[t]} is a benchmark in the {join_and(doms)} domain"
      f"{'s' if len(doms) > 1 else ''}. It measures {join_and([skill_names[k] for k in tops])}; "
      f"typical items involve {', '.join(first + [w for k in tops[1:] for w in words_of(k, 2)])}. "
      f"Answers are scored with the {tsk.metric[t]} metric."
    )
  domain_texts = []
  for c in range(C):
    tops = top_indices(dom.u_CxK[c], min(2, K))
    domain_texts.append(
      f"The {dom.names[c]} domain covers tasks that require "
      f"{join_and([skill_names[k] for k in tops])}, such as "
      f"{', '.join(w for k in tops for w in words_of(k, 3))}."
    )
  return Texts(
    family_names, family_texts, model_names, model_texts, task_texts, task_keywords, domain_texts
  )


def write_query_texts(
  rng: np.random.Generator,
  cfg: SyntheticConfig,
  w_QxJ: np.ndarray,
  tsk: Tasks,
  q_task: np.ndarray,
  task_keywords: list[list[str]],
) -> list[str]:
  """[Q] query texts: metric instruction, task keywords, skill words by w_q, filler; unique."""
  K, Q = cfg.latent_dim, len(q_task)
  skill_words = [s[1] for s in SKILLS[:K]]
  # Query words: indices into one vocabulary (skill words, then filler), built per position.
  vocab = [w for ws in skill_words for w in ws] + list(FILLER)
  n_c, n_p, n_f = cfg.query_content_words, 2, max(2, cfg.query_content_words // 2)
  content_skill = _categorical(rng, w_QxJ, n_c)
  pert_skill = np.argmax(w_QxJ - tsk.w_TxK[q_task], -1)
  skill_QxL = np.concatenate([content_skill, np.repeat(pert_skill[:, None], n_p, 1)], 1)
  word_QxL = skill_QxL * WORDS_PER_SKILL + rng.integers(0, WORDS_PER_SKILL, skill_QxL.shape)
  filler_QxL = K * WORDS_PER_SKILL + rng.integers(0, len(FILLER), (Q, n_f))
  word_QxL = np.concatenate([word_QxL, filler_QxL], 1)
  perm_QxL = np.argsort(rng.random(word_QxL.shape), 1)
  word_QxL = np.take_along_axis(word_QxL, perm_QxL, 1)
  query_texts = [
    f"{INSTRUCTION_BY_METRIC[tsk.metric[t]]} {' '.join(task_keywords[t])}: "
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
  return query_texts


def prompt_formats(task_names: list[str], task_metric: list[str]) -> list[PromptFormat]:
  """[T] prompt formats: a per-task system line (the metric's instruction and the task's name);
  the user message is "Question: {query}", or the raw query on continuous tasks (like commongen)."""
  return [
    PromptFormat(
      "raw" if m == CONTINUOUS_METRIC else "question",
      f"{SYSTEM_BY_METRIC[m]} The question is from the {t} benchmark.\n",
    )
    for t, m in zip(task_names, task_metric, strict=True)
  ]


def _categorical(rng: np.random.Generator, probs_NxK: np.ndarray, n: int) -> np.ndarray:
  """[N, n] int draws from each row's categorical distribution (inverse CDF, vectorised)."""
  cdf_NxK = np.cumsum(probs_NxK, -1)
  u_Nxn = rng.random((probs_NxK.shape[0], n)) * cdf_NxK[:, -1:]
  idx = (cdf_NxK[:, None, :] <= u_Nxn[..., None]).sum(-1)
  return np.minimum(idx, probs_NxK.shape[1] - 1)
