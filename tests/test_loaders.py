"""Loaders: the public RouteProfile release (real data), the generic long format, synthetic."""

import collections
import csv
import json
import pathlib
import time

import jax
import numpy as np
import pytest

from rp_jax import metrics as mt
from rp_jax.data import load_generic, load_routeprofile, make_history, task_kinds
from rp_jax.data.synthetic import TINY_SIZES
from rp_jax.routers.baselines import baselines
from rp_jax.types import TEST, TRAIN, DataError, History

MISTRAL = "mistral-small-24b-instruct-2501-bf16"
QWEN = "qwen2.5-7b-instruct"
# The 8 routing-task benchmarks whose mistral-small scores model_feature_newllm.json nulls.
NEWLLM_NULLED = (
  "agentverse-logicgrid",
  "agentverse-mgsm",
  "commongen",
  "gsm8k",
  "human_eval",
  "mbpp",
  "natural_qa",
  "trivia_qa",
)


# -- real data ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(data_dir):
  """Both settings of the public release, loaded once for the module (load times printed)."""
  out = {}
  for setting in ("standard", "newllm"):
    t0 = time.perf_counter()
    out[setting] = load_routeprofile(data_dir, setting)
    print(f"load_routeprofile({setting!r}): {time.perf_counter() - t0:.2f} s")
  return out


@pytest.fixture(scope="module")
def raw(data_dir):
  """The raw JSON of the files the checks below compare against."""
  rd, pd_ = data_dir / "route_data", data_dir / "profile_data"
  read = lambda p: json.loads(p.read_text(encoding="utf-8"))
  return {
    "test": read(rd / "routing_test_data.json"),
    "pairs_standard": read(rd / "pairwise_training_data_standard.json")["pairwise_data"],
    "pairs_newllm": read(rd / "pairwise_training_data_newllm.json")["pairwise_data"],
    "models_standard": read(pd_ / "model_feature_standard.json"),
    "models_newllm": read(pd_ / "model_feature_newllm.json"),
  }


@pytest.mark.real_data
@pytest.mark.parametrize("setting", ["standard", "newllm"])
def test_real_sizes(real, setting):
  h = real[setting]
  assert h.setting == setting
  assert len(h.test_queries) == 600
  assert len(h.routing_tasks) == 12
  assert len(h.candidates) == 8
  assert h.num_models == 24
  assert h.num_families == 5
  assert h.num_tasks == 44
  assert int(np.isfinite(h.scores_MxT).any(0).sum()) == 29
  assert h.num_domains == 6
  # 50 test rows per routing task.
  counts = np.bincount(h.query_task[h.test_queries], minlength=h.num_tasks)[h.routing_tasks]
  np.testing.assert_array_equal(counts, 50)


@pytest.mark.real_data
@pytest.mark.parametrize(
  "setting, in_file, dropped, remain", [("standard", 4200, 127, 4073), ("newllm", 4070, 69, 4001)]
)
def test_real_pair_counts_and_notes(real, raw, setting, in_file, dropped, remain):
  h = real[setting]
  assert len(h.pairs_Px3) == remain
  notes = "\n".join(h.notes)
  assert f"{in_file} pairs in the file" in notes
  assert f"dropped {dropped} of {in_file} training pairs" in notes
  assert f"{remain} pairs remain" in notes
  # Cross-check the drop count against the raw files.
  test_keys = {(r["task_name"], r["query"]) for r in raw["test"]}
  prows = raw[f"pairs_{setting}"]
  assert len(prows) == in_file
  assert sum((r["task_name"], r["query"]) in test_keys for r in prows) == dropped


@pytest.mark.real_data
@pytest.mark.parametrize("setting", ["standard", "newllm"])
def test_real_no_test_query_in_training(real, setting):
  h = real[setting]
  key = lambda q: (int(h.query_task[q]), h.query_texts[q])
  test_keys = {key(q) for q in h.test_queries}
  train_keys = {key(q) for q in h.train_queries}
  assert len(test_keys) == 600
  assert not test_keys & train_keys
  assert (h.query_split[h.pairs_Px3[:, 0]] == TRAIN).all()
  assert not h.query_in_graph[h.test_queries].any()


@pytest.mark.real_data
def test_real_newllm_held_out(real, raw):
  h, hs = real["newllm"], real["standard"]
  assert h.held_out_names == (MISTRAL,)
  assert hs.held_out_names == ()
  m = h.model_index(MISTRAL)
  assert m in h.candidates
  assert not np.isin(h.pairs_Px3[:, 1:], m).any()
  assert np.isin(hs.pairs_Px3[:, 1:], m).any()  # the standard setting does train on it
  assert np.isnan(h.outcomes_QxM[h.train_queries, m]).all()
  assert np.isfinite(h.outcomes_QxM[h.test_queries, m]).all()  # selectable at test
  # Exactly the benchmarks that the newllm model file nulls are NaN; the standard file has them.
  s_std, s_new = raw["models_standard"][MISTRAL], raw["models_newllm"][MISTRAL]
  nulled = sorted(
    t
    for t, v in s_std["detailed_scores"].items()
    if v is not None and s_new["detailed_scores"].get(t) is None
  )
  assert tuple(nulled) == NEWLLM_NULLED
  routing = {h.task_names[t] for t in h.routing_tasks}
  # The file keeps one routing-task score (mmlu); the loader removes it too, and says so.
  assert s_new["detailed_scores"]["mmlu"] is not None
  assert np.isnan(h.scores_MxT[m, h.routing_tasks]).all()
  assert any("mistral-small-24b-instruct-2501-bf16/mmlu" in n for n in h.notes)
  for t in NEWLLM_NULLED:
    assert t in routing
    assert np.isnan(h.scores_MxT[m, h.task_index(t)])
    assert np.isfinite(hs.scores_MxT[m, hs.task_index(t)])
  # Every other model's scores are the same in both settings.
  others = np.arange(h.num_models) != m
  np.testing.assert_array_equal(h.scores_MxT[others], hs.scores_MxT[others])


@pytest.mark.real_data
def test_real_constant_router_means(real):
  h = real["standard"]
  perf_QxA = h.outcomes_QxM[np.ix_(h.test_queries, h.candidates)].astype(np.float64)
  assert np.isfinite(perf_QxA).all()
  means = dict(zip(h.candidate_names, perf_QxA.mean(0), strict=True))
  assert means[QWEN] == pytest.approx(0.4988, abs=5e-4)
  assert means[MISTRAL] == pytest.approx(0.6125, abs=5e-4)
  assert max(means, key=means.get) == MISTRAL
  assert perf_QxA.mean() == pytest.approx(0.538, abs=5e-4)
  assert perf_QxA.max(1).mean() == pytest.approx(0.7574, abs=5e-4)
  # Both settings share the test rows.
  hn = real["newllm"]
  np.testing.assert_array_equal(
    hn.outcomes_QxM[np.ix_(hn.test_queries, hn.candidates)], perf_QxA.astype(np.float32)
  )


@pytest.mark.real_data
@pytest.mark.parametrize("setting", ["standard", "newllm"])
def test_real_training_outcomes_from_pairs(real, setting):
  h = real[setting]
  tr = h.train_queries
  out_tr = h.outcomes_QxM[tr]
  known_q, known_m = np.nonzero(np.isfinite(out_tr))
  assert len(known_q) > 1000
  # Only binary tasks, only 0/1.
  assert h.task_binary[h.query_task[tr[known_q]]].all()
  assert np.isin(out_tr[known_q, known_m], (0.0, 1.0)).all()
  # f1_score and commongen_coverage tasks are continuous by their metric names, whatever their
  # test outcomes look like (natural_qa's and trivia_qa's happen to be all 0/1).
  for t in ("commongen", "natural_qa", "trivia_qa"):
    assert not h.task_binary[h.task_index(t)], t
  assert not np.isin(
    h.query_task[tr[known_q]], [h.task_index(t) for t in ("natural_qa", "trivia_qa")]
  ).any()
  # Every pair on a binary task: better 1, worse 0 (or NaN if the pairs contradict each other).
  P = h.pairs_Px3
  b = P[h.task_binary[h.query_task[P[:, 0]]]]
  ob, ow = h.outcomes_QxM[b[:, 0], b[:, 1]], h.outcomes_QxM[b[:, 0], b[:, 2]]
  assert np.isin(ob[np.isfinite(ob)], 1.0).all() and np.isin(ow[np.isfinite(ow)], 0.0).all()
  assert np.isfinite(ob).mean() > 0.9
  # Every known training outcome is implied by some pair.
  implied = set(zip(b[:, 0].tolist(), b[:, 1].tolist(), strict=True)) | set(
    zip(b[:, 0].tolist(), b[:, 2].tolist(), strict=True)
  )
  known = set(zip(tr[known_q].tolist(), known_m.tolist(), strict=True))
  assert known <= implied


@pytest.mark.real_data
@pytest.mark.parametrize("setting, rebuilt", [("standard", 3733), ("newllm", 3580)])
def test_real_binary_tasks_follow_metric_names(real, raw, setting, rebuilt):
  h = real[setting]
  used = np.unique(h.query_task)
  for t in used:
    want = task_kinds.metric_is_binary(h.task_metric[t])
    assert want is not None, h.task_names[t]  # the public data uses only metrics of the table
    assert bool(h.task_binary[t]) == want, h.task_names[t]
  binary = {h.task_names[t] for t in used if h.task_binary[t]}
  assert binary == {
    "mmlu", "commonsense_qa", "arc_challenge", "openbook_qa", "gsm8k", "agentverse-mgsm",
    "human_eval", "mbpp", "agentverse-logicgrid", "math", "gpqa",
  }  # fmt: skip
  notes = "\n".join(h.notes)
  assert f"{rebuilt} known; continuous tasks (trivia_qa, natural_qa, commongen)" in notes
  assert int(np.isfinite(h.outcomes_QxM[h.train_queries]).sum()) == rebuilt
  assert "metric unknown" not in notes
  # The test outcomes of natural_qa are all 0/1 for the candidates: the old rule (decide from the
  # test rows) called it binary; the metric name does not.
  nq = [r for r in raw["test"] if r["task_name"] == "natural_qa"]
  assert all(v["task_performance"] in (0, 1) for r in nq for v in r["model_performance"].values())


@pytest.mark.real_data
def test_real_include_choices(real, data_dir, raw):
  h = real["standard"]
  t0 = time.perf_counter()
  hc = load_routeprofile(data_dir, "standard", include_choices=True)
  print(f"load_routeprofile(include_choices=True): {time.perf_counter() - t0:.2f} s")
  has_choices = np.array([r.get("choices") not in (None, "", "None") for r in raw["test"]])
  assert 0 < has_choices.sum() < 600
  te, tec = h.test_queries, hc.test_queries
  texts = [h.query_texts[q] for q in te]
  texts_c = [hc.query_texts[q] for q in tec]
  for i in range(600):
    if has_choices[i]:
      assert texts_c[i] != texts[i]
      assert texts_c[i].startswith(texts[i] + "\nChoices: ")
    else:
      assert texts_c[i] == texts[i]
  # e.g. "{'text': ['1', '2'], 'labels': ['A', 'B']}" -> "(A) 1 (B) 2"
  i = int(np.flatnonzero(has_choices)[0])
  assert "(A) " in texts_c[i]


@pytest.mark.real_data
def test_real_baselines_reproduce_spec(real):
  h = real["standard"]
  test = mt.TestSet.from_history(h)
  bs = baselines(h, test)
  sel_SxQxA = np.stack([b.sel_QxA for b in bs.values()])
  avg_S = jax.jit(jax.vmap(mt.evaluate, (0, None)))(sel_SxQxA, test)["avg_performance"]
  got = dict(zip(bs, np.asarray(avg_S).tolist(), strict=True))
  want = {
    "random": 0.538,
    "oracle_query": 0.7574,
    "oracle_single": 0.6125,
    "task_best_benchmark": 0.645,
    "task_best_pairs": 0.657,
    "oracle_task": 0.672,
  }
  for k, v in want.items():
    assert got[k] == pytest.approx(v, abs=1e-3), k


# -- generic format -------------------------------------------------------------------------------

A, B, G, D = "alpha-7b", "beta-13b", "gamma-70b", "delta-1b"  # D: model card only (pool, no rows)
NAN = float("nan")
# (query, task, {model: performance}, split); code is continuous, math binary.
GENERIC_QUERIES = [
  ("m1", "math", {A: 1, B: 0, G: 1}, "train"),
  ("m2", "math", {A: 0, B: 0, G: 1}, "train"),
  ("m3", "math", {A: 1, G: 0}, "train"),
  ("c1", "code", {A: 0.5, B: 0.25, G: 0.75}, "train"),
  ("c2", "code", {A: 0.5, B: 0.5}, "train"),
  ("c3", "code", {G: 1}, "train"),
  ("m4", "math", {A: 1, B: 0, G: 1}, "test"),
  ("m5", "math", {A: 0, B: 1, G: 0}, "test"),
  ("c4", "code", {A: 0.2, B: 0.4, G: 0.6}, "test"),
  ("c5", "code", {A: 1, B: 1, G: 1}, "test"),
]
COST_OVERRIDE = ("c5", A, 0.5)
CARDS = {
  A: {
    "family": "AlphaLM",
    "text": "Alpha 7B, a small model.",
    "input_price": 0.1,
    "output_price": 0.2,
    "scores": {"math": 60, "code": 40, "mmlu": 70, "gsm8k": None},
  },
  B: {
    "family": "BetaLM",
    "text": "Beta 13B.",
    "input_price": 0.3,
    "output_price": 0.3,
    "scores": {"math": 30},
  },
  G: {
    "family": "AlphaLM",
    "text": "Gamma 70B, large.",
    "input_price": 1.0,
    "output_price": 2.0,
    "scores": {"math": 80, "code": 90, "mmlu": 85},
  },
  D: {"family": "BetaLM", "text": "Delta 1B.", "scores": {"mmlu": 20}},
}
FAMILIES = {"AlphaLM": "The Alpha family.", "BetaLM": "The Beta family."}
TASKS = {"math": {"text": "Grade school math.", "domains": ["reasoning"]}, "code": "Python tasks."}
DOMAINS = {"reasoning": "Reasoning.", "coding": {"text": "Coding.", "tasks": ["code"]}}


def generic_rows():
  """One dict per (query, model): the table both formats hold (tokens on test rows only)."""
  rows = []
  for qi, (q, task, perf, split) in enumerate(GENERIC_QUERIES):
    for mi, (m, p) in enumerate(perf.items()):
      test = split == "test"
      cost = COST_OVERRIDE[2] if (q, m) == COST_OVERRIDE[:2] else None
      rows.append(
        {
          "query": q,
          "task": task,
          "model": m,
          "performance": p,
          "split": split,
          "prompt_tokens": 100 + qi if test else None,
          "completion_tokens": 10 * (mi + 1) if test else None,
          "cost": cost,
        }
      )
  return rows


def write_generic(folder: pathlib.Path, fmt: str = "csv", rows=None) -> dict:
  """Writes the generic fixture; returns load_generic keyword arguments."""
  folder.mkdir(parents=True, exist_ok=True)
  rows = generic_rows() if rows is None else rows
  if fmt == "csv":
    table = folder / "outcomes.csv"
    cols = list(rows[0])
    with open(table, "w", newline="", encoding="utf-8") as f:
      w = csv.writer(f)
      w.writerow(cols)
      for r in rows:
        w.writerow(["" if r.get(c) is None else r[c] for c in cols])
  else:
    table = folder / "outcomes.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
  paths = {"table": table}
  for name, obj in (
    ("model_cards", CARDS),
    ("families", FAMILIES),
    ("tasks", TASKS),
    ("domains", DOMAINS),
  ):
    paths[name] = folder / f"{name}.json"
    paths[name].write_text(json.dumps(obj, indent=2), encoding="utf-8")
  return paths


@pytest.fixture
def generic(tmp_path):
  return load_generic(**write_generic(tmp_path), setting="mine")


def test_generic_names_and_descriptions(generic):
  h = generic
  assert h.setting == "mine"
  assert h.model_names == (A, B, G, D)  # card order; D joins the pool from its card
  assert h.model_texts == tuple(CARDS[m]["text"] for m in (A, B, G, D))
  assert h.family_names == ("AlphaLM", "BetaLM")
  assert h.family_texts == ("The Alpha family.", "The Beta family.")
  np.testing.assert_array_equal(h.model_family, [0, 1, 0, 1])
  np.testing.assert_array_equal(
    h.prices_Mx2, np.array([[0.1, 0.2], [0.3, 0.3], [1.0, 2.0], [NAN, NAN]], np.float32)
  )
  # Table tasks first (in order of appearance), then benchmark-only tasks from the scores.
  assert h.task_names == ("math", "code", "mmlu")
  assert h.task_texts == ("Grade school math.", "Python tasks.", "The mmlu benchmark.")
  assert any("mmlu" in n for n in h.notes)
  assert h.domain_names == ("reasoning", "coding")
  assert h.domain_texts == ("Reasoning.", "Coding.")
  np.testing.assert_array_equal(h.task_domain_TxC, [[1, 0], [0, 1], [0, 0]])
  np.testing.assert_array_equal(
    h.scores_MxT,
    np.array([[60, 40, 70], [30, NAN, NAN], [80, 90, 85], [NAN, NAN, 20]], np.float32),
  )
  # math: all training outcomes 0/1; code: 0.5 among them; mmlu: no training outcome at all.
  np.testing.assert_array_equal(h.task_binary, [True, False, False])
  assert h.task_metric == ("", "", "")


def test_generic_queries_and_outcomes(generic):
  h = generic
  assert h.query_texts == tuple(q for q, *_ in GENERIC_QUERIES)
  np.testing.assert_array_equal(h.query_task, [0, 0, 0, 1, 1, 1, 0, 0, 1, 1])
  np.testing.assert_array_equal(h.query_split, [TRAIN] * 6 + [TEST] * 4)
  np.testing.assert_array_equal(h.query_in_graph, h.query_split == TRAIN)
  want = np.full((10, 4), np.nan, np.float32)
  for q, (*_, perf, _) in enumerate(GENERIC_QUERIES):
    for m, p in perf.items():
      want[q, h.model_index(m)] = p
  np.testing.assert_array_equal(h.outcomes_QxM, want)
  np.testing.assert_array_equal(h.candidates, [0, 1, 2])  # D has no rows: not a candidate
  assert h.held_out.size == 0
  np.testing.assert_array_equal(h.routing_tasks, [0, 1])


def test_generic_tokens_and_cost(generic):
  h = generic
  tok = h.tokens_QxMx2
  assert np.isnan(tok[:6]).all()  # no tokens on training rows
  for q in range(6, 10):
    for a in range(3):
      np.testing.assert_array_equal(tok[q, a], [100 + q, 10 * (a + 1)])
  assert np.isnan(tok[:, 3]).all()
  q5, a = 9, 0
  assert h.cost_QxM[q5, a] == pytest.approx(0.5)
  assert np.isnan(np.delete(h.cost_QxM.reshape(-1), q5 * 4 + a)).all()
  cost = h.query_cost_QxM()
  assert cost[q5, a] == pytest.approx(0.5)  # the override wins over tokens x prices
  # c4 (q 8), gamma: 108 prompt tokens x $1 + 30 completion tokens x $2 per million.
  assert cost[8, 2] == pytest.approx((108 * 1.0 + 30 * 2.0) / 1e6)
  assert cost[9, 1] == pytest.approx((109 * 0.3 + 20 * 0.3) / 1e6)


def test_generic_pairs_from_training_outcomes(generic):
  got = {tuple(p) for p in generic.pairs_Px3.tolist()}
  assert len(got) == len(generic.pairs_Px3)
  # Every strictly ordered pair of candidates on each training query (NaN never compares).
  want = {
    (0, 0, 1),
    (0, 2, 1),
    (1, 2, 0),
    (1, 2, 1),
    (2, 0, 2),
    (3, 0, 1),
    (3, 2, 0),
    (3, 2, 1),
  }
  assert got == want


def test_generic_jsonl_equals_csv(tmp_path):
  h_csv = load_generic(**write_generic(tmp_path / "a", "csv"))
  h_jsonl = load_generic(**write_generic(tmp_path / "b", "jsonl"))
  for f in History.__dataclass_fields__:
    if f in ("source", "notes"):
      continue
    x, y = getattr(h_csv, f), getattr(h_jsonl, f)
    if isinstance(x, np.ndarray):
      np.testing.assert_array_equal(x, y, err_msg=f)
    else:
      assert x == y, f


def test_generic_held_out(tmp_path):
  paths = write_generic(tmp_path)
  h = load_generic(**paths, held_out=(G,), setting="newllm")
  g = h.model_index(G)
  np.testing.assert_array_equal(h.held_out, [g])
  assert g in h.candidates
  assert np.isnan(h.outcomes_QxM[h.train_queries, g]).all()
  np.testing.assert_array_equal(h.outcomes_QxM[h.test_queries, g], np.float32([1, 0, 0.6, 1]))
  # Scores on the test tasks (math, code) removed, the benchmark-only one (mmlu) kept.
  assert np.isnan(h.scores_MxT[g, :2]).all()
  assert h.scores_MxT[g, 2] == 85
  assert {tuple(p) for p in h.pairs_Px3.tolist()} == {(0, 0, 1), (3, 0, 1)}
  assert any("held out" in n for n in h.notes)
  # Other models untouched.
  h0 = load_generic(**paths)
  keep = np.arange(4) != g
  np.testing.assert_array_equal(h.scores_MxT[keep], h0.scores_MxT[keep])


def test_generic_explicit_candidates(tmp_path):
  paths = write_generic(tmp_path)
  h = load_generic(**paths, candidates=(G, A))
  np.testing.assert_array_equal(h.candidates, [0, 2])  # sorted by pool order
  assert h.candidate_names == (A, G)
  # Pairs only among the candidates.
  assert np.isin(h.pairs_Px3[:, 1:], [0, 2]).all()


def test_generic_table_only(tmp_path):
  """Without description files, names come from the table and texts from templates."""
  paths = write_generic(tmp_path)
  h = load_generic(paths["table"])
  assert h.model_names == (A, B, G)
  assert h.family_names == (A, B, G)  # each model its own family
  assert h.task_names == ("math", "code")
  assert h.domain_names == ()
  assert h.task_domain_TxC.shape == (2, 0)
  assert np.isnan(h.scores_MxT).all()
  assert np.isnan(h.prices_Mx2).all()


# -- synthetic (thorough tests live in tests/test_synthetic.py) -----------------------------------


def test_synthetic_default_history():
  h = make_history(seed=0)
  assert isinstance(h, History)
  assert (h.num_models, len(h.candidates), h.num_families) == (24, 8, 5)
  assert h.num_tasks == 44
  assert len(h.routing_tasks) == 12
  assert len(h.test_queries) == 600
  assert h.setting == "standard"
  h.check()


def test_synthetic_tiny_validates_both_settings():
  kw = TINY_SIZES
  hs = make_history(seed=0, **kw)
  hn = make_history(seed=0, setting="newllm", **kw)
  for h in (hs, hn):
    h.check()
    assert (h.num_models, len(h.candidates), h.num_tasks) == (4, 3, 4)
  assert len(hn.held_out) == 1
  assert not np.isin(hn.pairs_Px3[:, 1:], hn.held_out).any()
  # Same seed, same world: identical test outcomes.
  np.testing.assert_array_equal(hs.outcomes_QxM[hs.test_queries], hn.outcomes_QxM[hn.test_queries])
  assert collections.Counter(hs.query_split.tolist()) == {TRAIN: 12, TEST: 8}


def test_generic_metric_column(tmp_path):
  rows = generic_rows()
  for r in rows:
    r["metric"] = {"math": "f1_score", "code": "my_metric"}[r["task"]]
  h = load_generic(**write_generic(tmp_path, "jsonl", rows))
  assert h.task_metric == ("f1_score", "my_metric", "")
  # math is continuous by its metric; code's metric is unknown -> from its training rows (0.5).
  np.testing.assert_array_equal(h.task_binary, [False, False, False])
  assert any("metric unknown" in n and "code" in n for n in h.notes)
  rows[0]["metric"] = "em_mc"  # math says em_mc on line 1 and f1_score on line 2
  with pytest.raises(DataError, match=r"line 2, field 'metric'.*'em_mc' on line 1"):
    load_generic(**write_generic(tmp_path / "b", "jsonl", rows))
