"""Loader for the public RouteProfile release (``profile_data/`` + ``route_data/``) -> History.

Layout (SPEC §3)::

  profile_data/model_feature_{setting}.json   model -> {feature, architecture, detailed_scores,
                                               input_price, output_price, ...}
  profile_data/model_family_feature.json      family (architecture) -> text
  profile_data/task_feature.json              task -> text
  profile_data/domain_feature.json            domain -> text
  profile_data/domain_task_map.json           domain -> [task, ...]
  profile_data/candidate_models.json          candidate model -> {...}
  route_data/routing_test_data.json           [{task_name, query, metric, choices,
                                                model_performance: {model: {task_performance,
                                                prompt_tokens, completion_tokens}}}]
  route_data/pairwise_training_data_{setting}.json
                                              {pairwise_data: [{task_name, query, better_model,
                                                worse_model, metric, choices}]}
  route_data/default_query_train.jsonl        training queries (graph query nodes)

What the loader decides, and reports in ``History.notes``:
- Training queries are those of the pairwise file plus ``default_query_train.jsonl`` (the
  latter are the graph's query nodes; the release's own per-benchmark query lists are not public).
- Training rows whose (task, query) also occurs among the test rows are dropped (the release
  duplicates some human_eval and mbpp test queries in its training data).
- Training outcomes are rebuilt from pairs only where exact: on a binary task (all test outcomes
  of the task are 0 or 1) the better model scored 1 and the worse 0; everything else is NaN.
- Names the release references without describing them (a domain-map task with no text, a null
  score for an unknown benchmark) are ignored and listed; a real score for an unknown benchmark
  is an error.
"""

from __future__ import annotations

import collections
import pathlib

import numpy as np

from rp_jax.data import validate as V
from rp_jax.types import TEST, TRAIN, DataError, History

SETTINGS = ("standard", "newllm")
# The release's new-LLM setting holds out this model (SPEC §3); it is not named in any file.
DEFAULT_HELD_OUT = ("mistral-small-24b-instruct-2501-bf16",)
# Metric names whose outcomes are 0/1, used when a task has no test rows to look at.
BINARY_METRICS = frozenset({"em_mc", "math", "gsm8k", "code_eval"})


def load_routeprofile(
  data_dir: str | pathlib.Path,
  setting: str = "standard",
  *,
  held_out: tuple[str, ...] | None = None,
  include_choices: bool = False,
  dedupe: bool = True,
) -> History:
  """Reads a folder laid out like the public release into a validated History.

  Args:
    data_dir: the folder holding ``profile_data/`` and ``route_data/``.
    setting: "standard" or "newllm" (selects the model-feature and pairwise files).
    held_out: models held out in the newllm setting (default: mistral-small, as in the paper).
      Ignored for "standard".
    include_choices: append a query's answer choices to its text ("Choices: ...").
    dedupe: drop training rows whose (task, query) also occurs in the test set.

  Returns:
    History with all 24 pool models, 44 task texts, the 600 test rows and the training queries.
  """
  if setting not in SETTINGS:
    raise ValueError(f"unknown setting {setting!r}; expected one of {SETTINGS}")
  root = pathlib.Path(data_dir)
  if not root.is_dir():
    raise DataError(
      str(root), None, "data folder not found (expected profile_data/ and route_data/)"
    )
  pd_, rd = root / "profile_data", root / "route_data"
  notes: list[str] = []

  # -- models, families ---------------------------------------------------------------------------
  f_models = pd_ / f"model_feature_{setting}.json"
  models = V.read_json(f_models, dict)
  if not models:
    raise DataError(str(f_models), "top level", "expected at least one model")
  f_fam = pd_ / "model_family_feature.json"
  families = V.read_json(f_fam, dict)
  family_names = list(families)
  family_texts = [V.to_str(v, str(f_fam), f"key {k!r}") for k, v in families.items()]
  model_names = list(models)
  model_texts, model_family, prices = [], [], []
  for name, card in models.items():
    where = f"model {name!r}"
    if not isinstance(card, dict):
      raise DataError(str(f_models), where, f"expected an object, got {type(card).__name__}")
    model_texts.append(
      V.to_str(
        V.get_field(card, "feature", str(f_models), where),
        str(f_models),
        f"{where}, field 'feature'",
      )
    )
    arch = V.get_field(card, "architecture", str(f_models), where, str)
    if arch not in families:
      raise DataError(
        str(f_models),
        f"{where}, field 'architecture'",
        f"unknown family {arch!r}; {f_fam.name} has {family_names}",
      )
    model_family.append(family_names.index(arch))
    prices.append(
      [
        V.to_float(
          card.get("input_price"),
          str(f_models),
          f"{where}, field 'input_price'",
          0,
          1e6,
          allow_missing=True,
        ),
        V.to_float(
          card.get("output_price"),
          str(f_models),
          f"{where}, field 'output_price'",
          0,
          1e6,
          allow_missing=True,
        ),
      ]
    )

  # -- tasks, domains, scores ---------------------------------------------------------------------
  f_task = pd_ / "task_feature.json"
  tasks = V.read_json(f_task, dict)
  task_names = list(tasks)
  task_texts = [V.to_str(v, str(f_task), f"key {k!r}") for k, v in tasks.items()]
  t_index = {t: i for i, t in enumerate(task_names)}
  f_dom, f_map = pd_ / "domain_feature.json", pd_ / "domain_task_map.json"
  domains = V.read_json(f_dom, dict)
  domain_names = list(domains)
  domain_texts = [V.to_str(v, str(f_dom), f"key {k!r}") for k, v in domains.items()]
  dmap = V.read_json(f_map, dict)
  task_domain = np.zeros((len(task_names), len(domain_names)), bool)
  ignored = []
  for d, ts in dmap.items():
    if d not in domains:
      raise DataError(str(f_map), f"key {d!r}", f"unknown domain; {f_dom.name} has {domain_names}")
    if not isinstance(ts, list):
      raise DataError(
        str(f_map), f"key {d!r}", f"expected a list of task names, got {type(ts).__name__}"
      )
    for t in ts:
      if t in t_index:
        task_domain[t_index[t], domain_names.index(d)] = True
      else:
        ignored.append(f"{d}/{t}")
  if ignored:
    notes.append(
      f"{f_map.name}: tasks without a text in {f_task.name} ignored: {', '.join(ignored)}"
    )

  scores = np.full((len(model_names), len(task_names)), np.nan, np.float32)
  ignored, unusual = set(), []
  for i, (name, card) in enumerate(models.items()):
    where = f"model {name!r}, field 'detailed_scores'"
    ds = V.get_field(card, "detailed_scores", str(f_models), f"model {name!r}", dict)
    for t, s in ds.items():
      x = V.to_float(s, str(f_models), f"{where}, key {t!r}", -1e4, 1e4, allow_missing=True)
      if not np.isnan(x) and not 0 <= x <= 100:
        unusual.append(f"{name}/{t}={x:g}")
      if t not in t_index:
        if np.isnan(x):
          ignored.add(t)
          continue
        raise DataError(
          str(f_models),
          f"{where}, key {t!r}",
          f"score for an unknown task; {f_task.name} has no {t!r}",
        )
      scores[i, t_index[t]] = x
  if ignored:
    notes.append(
      f"{f_models.name}: null scores of undescribed tasks ignored: {', '.join(sorted(ignored))}"
    )

  f_cand = pd_ / "candidate_models.json"
  cand = V.read_json(f_cand, (dict, list))
  cand_names = list(cand)
  if not cand_names:
    raise DataError(str(f_cand), "top level", "empty candidate set; expected at least one model")
  for c in cand_names:
    if not isinstance(c, str):
      raise DataError(
        str(f_cand),
        f"entry {c!r:.60}",
        "expected model names (an object keyed by name or a list of names)",
      )
    if c not in models:
      raise DataError(str(f_cand), f"key {c!r}", f"candidate is not in the pool of {f_models.name}")
  candidates = sorted(model_names.index(c) for c in cand_names)
  # The release prices llama-3.3-70b only in candidate_models.json: fill missing prices from there.
  filled = []
  if isinstance(cand, dict):
    for c, card in cand.items():
      i = model_names.index(c)
      for j, k in enumerate(("input_price", "output_price")):
        if np.isnan(prices[i][j]) and isinstance(card, dict) and card.get(k) is not None:
          prices[i][j] = V.to_float(card[k], str(f_cand), f"key {c!r}, field {k!r}", 0, 1e6)
          filled.append(f"{c}.{k}")
  if filled:
    notes.append(
      f"prices missing from {f_models.name} taken from {f_cand.name}: {', '.join(filled)}"
    )
  m_index = {m: i for i, m in enumerate(model_names)}

  # -- queries ------------------------------------------------------------------------------------
  q_text: list[str] = []
  q_task: list[int] = []
  q_split: list[int] = []
  q_graph: list[bool] = []
  q_index: dict[tuple[int, str], int] = {}
  metrics: dict[int, str] = {}

  def task_of(row, src, where):
    t = V.to_str(V.get_field(row, "task_name", src, where), src, f"{where}, field 'task_name'")
    if t not in t_index:
      raise DataError(
        src, f"{where}, field 'task_name'", f"unknown task {t!r}; not in {f_task.name}"
      )
    ti = t_index[t]
    m = row.get("metric")
    if isinstance(m, str) and m:
      m = m.lower()  # the release writes "math" and "MATH", "gsm8k" and "GSM8K"
      if metrics.setdefault(ti, m) != m:
        raise DataError(
          src,
          f"{where}, field 'metric'",
          f"task {t!r} has metric {metrics[ti]!r} elsewhere, got {m!r}",
        )
    return ti

  def text_of(row, src, where):
    text = V.to_str(V.get_field(row, "query", src, where), src, f"{where}, field 'query'")
    choices = V.parse_literal(row.get("choices"), src, f"{where}, field 'choices'")
    if include_choices and choices is not None:
      text = f"{text}\nChoices: {_choices_text(choices)}"
    return text

  def add_query(ti, text, split, graph):
    key = (ti, text)
    if key in q_index:
      q = q_index[key]
      q_graph[q] = q_graph[q] or graph
      return q
    q_index[key] = len(q_text)
    q_text.append(text)
    q_task.append(ti)
    q_split.append(split)
    q_graph.append(graph)
    return q_index[key]

  f_test = rd / "routing_test_data.json"
  test_rows = V.read_json(f_test, list)
  if not test_rows:
    raise DataError(str(f_test), "top level", "expected at least one test row")
  test_perf, test_tok = [], []
  cand_set = [model_names[c] for c in candidates]
  for r, row in enumerate(test_rows):
    where = f"row {r}"
    if not isinstance(row, dict):
      raise DataError(str(f_test), where, f"expected an object, got {type(row).__name__}")
    ti = task_of(row, str(f_test), where)
    text = text_of(row, str(f_test), where)
    if (ti, text) in q_index:
      raise DataError(str(f_test), where, f"duplicate test query of task {task_names[ti]!r}")
    add_query(ti, text, TEST, False)
    mp = V.get_field(row, "model_performance", str(f_test), where, dict)
    perf = np.full(len(model_names), np.nan, np.float32)
    tok = np.full((len(model_names), 2), np.nan, np.float32)
    for m, rec in mp.items():
      w = f"{where}, model_performance[{m!r}]"
      if m not in m_index:
        raise DataError(str(f_test), w, f"unknown model; not in {f_models.name}")
      if not isinstance(rec, dict):
        raise DataError(str(f_test), w, f"expected an object, got {type(rec).__name__}")
      perf[m_index[m]] = V.to_float(
        V.get_field(rec, "task_performance", str(f_test), w),
        str(f_test),
        f"{w}.task_performance",
        0,
        1,
      )
      for j, k in enumerate(("prompt_tokens", "completion_tokens")):
        tok[m_index[m], j] = V.to_float(
          rec.get(k), str(f_test), f"{w}.{k}", 0, 1e9, allow_missing=True
        )
    missing = [c for c in cand_set if c not in mp]
    if missing:
      raise DataError(
        str(f_test), f"{where}, field 'model_performance'", f"no outcome for candidate(s) {missing}"
      )
    test_perf.append(perf)
    test_tok.append(tok)
  test_keys = set(q_index)

  # Graph query nodes: the release's training query list, minus anything also in the test set.
  f_qtrain = rd / "default_query_train.jsonl"
  dropped_graph = collections.Counter()
  if f_qtrain.is_file():
    for r, row in enumerate(V.read_jsonl(f_qtrain), 1):
      where = f"line {r}"
      ti = task_of(row, str(f_qtrain), where)
      text = text_of(row, str(f_qtrain), where)
      if (ti, text) in test_keys:
        dropped_graph[task_names[ti]] += 1
        continue
      add_query(ti, text, TRAIN, True)
  else:
    notes.append(
      f"{f_qtrain.name} not found: the graph's query nodes are the pairwise training queries"
    )

  f_pairs = rd / f"pairwise_training_data_{setting}.json"
  pobj = V.read_json(f_pairs, dict)
  prows = V.get_field(pobj, "pairwise_data", str(f_pairs), "top level", list)
  held = (
    tuple(held_out if held_out is not None else DEFAULT_HELD_OUT) if setting == "newllm" else ()
  )
  for h in held:
    if h not in m_index:
      raise DataError(str(f_models), f"held-out model {h!r}", "not in the model pool")
  pairs, dropped_pairs = [], collections.Counter()
  for r, row in enumerate(prows):
    where = f"pairwise_data[{r}]"
    if not isinstance(row, dict):
      raise DataError(str(f_pairs), where, f"expected an object, got {type(row).__name__}")
    ti = task_of(row, str(f_pairs), where)
    text = text_of(row, str(f_pairs), where)
    ab = []
    for k in ("better_model", "worse_model"):
      m = V.to_str(V.get_field(row, k, str(f_pairs), where), str(f_pairs), f"{where}, field {k!r}")
      if m not in m_index:
        raise DataError(
          str(f_pairs), f"{where}, field {k!r}", f"unknown model {m!r}; not in {f_models.name}"
        )
      if m in held:
        raise DataError(
          str(f_pairs),
          f"{where}, field {k!r}",
          f"held-out model {m!r} in a training pair (it would leak)",
        )
      ab.append(m_index[m])
    if ab[0] == ab[1]:
      raise DataError(str(f_pairs), where, "better_model and worse_model are the same model")
    if (ti, text) in test_keys:
      if dedupe:
        dropped_pairs[task_names[ti]] += 1
        continue
      raise DataError(str(f_pairs), where, "training query also in the test set (pass dedupe=True)")
    q = add_query(ti, text, TRAIN, not f_qtrain.is_file())
    pairs.append((q, ab[0], ab[1]))
  if not pairs:
    raise DataError(str(f_pairs), "pairwise_data", "no training pairs left")
  n_pairs_file = len(prows)
  if dropped_pairs or dropped_graph:
    notes.append(
      f"dropped {sum(dropped_pairs.values())} of {n_pairs_file} training pairs whose (task, query) is a "
      f"test query ({_fmt_counts(dropped_pairs)}); {len(pairs)} pairs remain"
    )
    notes.append(
      f"dropped {sum(dropped_graph.values())} graph query nodes that are test queries "
      f"({_fmt_counts(dropped_graph)})"
    )

  # newllm: a held-out model must reach the graph without any routing-task score. The release's
  # model_feature_newllm.json nulls all of mistral-small's but one (mmlu, 80.67); drop the rest.
  if held:
    routing_t = sorted({q_task[i] for i in range(len(q_text)) if q_split[i] == TEST})
    kept = [
      f"{model_names[m_index[h]]}/{task_names[t]}"
      for h in held
      for t in routing_t
      if np.isfinite(scores[m_index[h], t])
    ]
    for h in held:
      scores[m_index[h], routing_t] = np.nan
    if kept:
      notes.append(
        f"{f_models.name} still scores the held-out model on routing task(s) {', '.join(kept)}; "
        "removed so that its profile carries no test-task benchmark result"
      )

  # -- arrays -------------------------------------------------------------------------------------
  Q, M, T = len(q_text), len(model_names), len(task_names)
  outcomes = np.full((Q, M), np.nan, np.float32)
  tokens = np.full((Q, M, 2), np.nan, np.float32)
  n_test = len(test_rows)
  outcomes[:n_test] = np.stack(test_perf)
  tokens[:n_test] = np.stack(test_tok)
  q_task_a = np.asarray(q_task, np.int32)
  q_split_a = np.asarray(q_split, np.int8)

  # A task is binary when all its test outcomes are 0/1 (else by metric name).
  binary = np.array([metrics.get(t, "") in BINARY_METRICS for t in range(T)])
  te = q_split_a == TEST
  for_test = np.zeros(T, bool)
  for_test[q_task_a[te]] = True
  tv = outcomes[:n_test][:, candidates]
  is01 = np.all((tv == 0) | (tv == 1), axis=1)
  all01 = np.ones(T, bool)
  np.logical_and.at(all01, q_task_a[:n_test], is01)
  binary = np.where(for_test, all01, binary)

  P = np.asarray(pairs, np.int32)
  bin_pair = binary[q_task_a[P[:, 0]]]
  Pb = P[bin_pair]
  ones = np.zeros((Q, M), bool)
  zeros = np.zeros((Q, M), bool)
  ones[Pb[:, 0], Pb[:, 1]] = True
  zeros[Pb[:, 0], Pb[:, 2]] = True
  conflict = ones & zeros
  train_out = np.where(ones, 1.0, np.where(zeros, 0.0, np.nan)).astype(np.float32)
  train_out[conflict] = np.nan
  outcomes[n_test:] = train_out[n_test:]
  if conflict.any():
    notes.append(
      f"{int(conflict.sum())} (query, model) outcomes are both better and worse in pairs; left unknown"
    )
  notes.append(
    "training outcomes rebuilt from pairs on binary tasks (better => 1, worse => 0): "
    f"{int(np.isfinite(outcomes[n_test:]).sum())} known; continuous tasks "
    f"({', '.join(task_names[t] for t in np.flatnonzero(for_test & ~binary))}) keep only the pairs"
  )

  return History(
    model_names=model_names,
    model_texts=model_texts,
    model_family=model_family,
    prices_Mx2=prices,
    family_names=family_names,
    family_texts=family_texts,
    task_names=task_names,
    task_texts=task_texts,
    task_metric=[metrics.get(t, "") for t in range(T)],
    task_binary=binary,
    domain_names=domain_names,
    domain_texts=domain_texts,
    task_domain_TxC=task_domain,
    scores_MxT=scores,
    query_texts=q_text,
    query_task=q_task_a,
    query_split=q_split_a,
    query_in_graph=q_graph,
    outcomes_QxM=outcomes,
    tokens_QxMx2=tokens,
    cost_QxM=np.full((Q, M), np.nan, np.float32),
    pairs_Px3=P,
    candidates=candidates,
    held_out=[m_index[h] for h in held],
    setting=setting,
    source=str(root),
    notes=[f"{f_pairs.name}: {n_pairs_file} pairs in the file", *notes],
  )


def _choices_text(choices) -> str:
  if isinstance(choices, dict):
    texts = choices.get("text") or choices.get("label") or []
    labels = choices.get("labels") or choices.get("label") or []
    if isinstance(texts, list) and isinstance(labels, list) and len(labels) == len(texts):
      return " ".join(f"({a}) {b}" for a, b in zip(labels, texts, strict=True))
    return str(texts)
  if isinstance(choices, list):
    return " | ".join(str(c) for c in choices)
  return str(choices)


def _fmt_counts(c: collections.Counter) -> str:
  return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"
