"""Converters (rp_jax.data.convert), the RouterBench loader and ``launch.convert``.

Each converter runs on a tiny fixture written into tmp_path, and its table loads with
``load_generic``; each error path raises a DataError naming the file and the row / key. The real
RouterBench subset (RP_JAX_ROUTERBENCH) is checked against SPEC §8.
"""

import csv
import gzip
import json
import os
import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
import pandas as pd
import pytest

from rp_jax.data import load_generic, load_history
from rp_jax.data import routerbench as rb_loader
from rp_jax.data.convert import (
  COLUMNS,
  convert,
  convert_matrix,
  convert_records,
  convert_routerbench,
  routerbench_cards,
  routerbench_tasks,
  write_table,
)
from rp_jax.data.convert import routerbench as rb
from rp_jax.types import TEST, TRAIN, DataError

REPO = pathlib.Path(__file__).resolve().parents[1]


def expect_error(fn, file: str, where: str | None, *what: str) -> DataError:
  """Runs fn; asserts a DataError naming ``file`` (its name), ``where`` and each of ``what``."""
  with pytest.raises(DataError) as info:
    fn()
  e, msg = info.value, str(info.value)
  assert pathlib.Path(e.source).name == file, msg
  if where is not None:
    assert e.where is not None and where in e.where, msg
  for w in what:
    assert w in msg, msg
  return e


# -- RouterBench fixture --------------------------------------------------------------------------

A, B, C = "org/alpha-7b-chat", "beta-v1", "gpt-x"
MODELS = (A, B, C)
P_IN = {A: 0.2, B: 1.0, C: 10.0}  # $ per million tokens; output = 3 x input
NAN = float("nan")


def rb_row(sid: str, text, task: str, out: dict, idx: int = 0) -> dict:
  """One RouterBench row: outcomes {model: 0/1/NaN}; costs follow P_IN from text lengths."""
  texts = text if isinstance(text, list) else [text]
  q = "\n\n".join(texts)
  row = {"": str(idx), "sample_id": sid, "prompt": repr(texts), "eval_name": task}
  for m in MODELS:
    x = out.get(m, NAN)
    row[m] = "" if np.isnan(x) else str(float(x))
  resp = {m: repr([f"answer of {m} to {sid}" * (1 + (idx + i) % 3)]) for i, m in enumerate(MODELS)}
  for m in MODELS:
    row[f"{m}|model_response"] = resp[m]
  for m in MODELS:
    tok_in, tok_out = len(q) / 4, (len(resp[m]) - 4) / 4
    row[f"{m}|total_cost"] = repr((P_IN[m] * tok_in + 3 * P_IN[m] * tok_out) / 1e6)
  row["oracle_model_to_route_to"] = C
  return row


def rb_rows():
  """{file name: rows}: 2 tasks; train has a partial prompt and one that is also a test prompt."""
  ones = {A: 1, B: 0, C: 1}
  return {
    "arc_train.csv": [
      rb_row("arc.1", "Which gas do plants take in?", "arc-challenge", ones, 1),
      rb_row("arc.2", ["Batched one.", "Batched two."], "arc-challenge", {B: 1}, 2),  # partial
      rb_row("arc.3", "Why is the sky blue?", "arc-challenge", {A: 0, B: 1, C: 1}, 3),
    ],
    "mbpp_train.csv": [
      rb_row("mbpp.1", "Write add(a, b).", "mbpp", ones, 4),
      rb_row("mbpp.2", "Write is_prime(n).", "mbpp", {A: 0, B: 0, C: 1}, 5),  # also a test prompt
    ],
    "arc_test.csv": [
      rb_row("arc.9", "What melts ice?", "arc-challenge", {A: 1, B: 1, C: 0}, 6),
      rb_row("arc.10", "Name a planet.", "arc-challenge", {A: 1, C: 1}, 7),  # incomplete: dropped
    ],
    "mbpp_test.csv": [
      rb_row("mbpp.7", "Write is_prime(n).", "mbpp", {A: 1, B: 0, C: 1}, 8),
      rb_row("mbpp.8", "Write fib(n).", "mbpp", {A: 0, B: 0, C: 1}, 9),
    ],
  }


def write_rb(folder: pathlib.Path, files=None) -> pathlib.Path:
  folder.mkdir(parents=True, exist_ok=True)
  for name, rows in (rb_rows() if files is None else files).items():
    with open(folder / name, "w", newline="", encoding="utf-8") as f:
      w = csv.DictWriter(f, fieldnames=list(rows[0]))
      w.writeheader()
      w.writerows(rows)
  return folder


def write_one_rb(tmp_path, rows, name="arc_test.csv") -> pathlib.Path:
  write_rb(tmp_path / "rb", {name: rows})
  return tmp_path / "rb" / name


@pytest.fixture
def rb_dir(tmp_path):
  return write_rb(tmp_path / "rb")


def test_routerbench_rows_and_rules(rb_dir):
  conv = convert_routerbench(rb_dir)
  f = conv.frame
  assert list(f.columns[: len(COLUMNS)]) == list(COLUMNS)
  q = f.drop_duplicates(["query", "split"])
  assert sorted(q[q.split == "test"]["query"]) == [
    "What melts ice?",
    "Write fib(n).",
    "Write is_prime(n).",
  ]
  # Train: the prompt shared with test is gone; the partial prompt keeps its one outcome.
  train = f[f.split == "train"]
  assert "Write is_prime(n)." not in set(train["query"])
  part = train[train["query"] == "Batched one.\n\nBatched two."]
  assert part["model"].tolist() == [B] and part["performance"].tolist() == [1.0]
  assert len(train) == 3 + 1 + 3 + 3  # arc.1, arc.2 (partial), arc.3, mbpp.1
  # Every test query has every model; cost is |total_cost; no token counts.
  assert (f[f.split == "test"].groupby("query").size() == 3).all()
  row = f[(f["query"] == "What melts ice?") & (f["model"] == C)].iloc[0]
  src = rb_rows()["arc_test.csv"][0]
  assert row["cost"] == pytest.approx(float(src[f"{C}|total_cost"]))
  assert row["task"] == "arc-challenge" and row["metric"] == "em_mc" and row["performance"] == 0
  assert f["prompt_tokens"].isna().all() and f["completion_tokens"].isna().all()
  assert set(f["model"]) == set(MODELS)  # full column names, org prefix kept
  notes = "\n".join(conv.notes)
  assert "1 test prompts dropped" in notes and "arc-challenge 1" in notes
  assert "1 training prompts dropped: also test prompts (mbpp.2)" in notes
  assert "1 training prompts are partial" in notes
  assert conv.dropped == 2


def test_routerbench_table_loads_in_every_form(rb_dir, tmp_path):
  conv = convert_routerbench(rb_dir)
  h_mem = load_generic(conv.frame)
  assert len(h_mem.test_queries) == 3 and len(h_mem.train_queries) == 4
  np.testing.assert_array_equal(h_mem.candidates, [0, 1, 2])
  for name in ("t.csv", "t.jsonl", "t.csv.gz", "t.jsonl.gz"):
    write_table(conv.frame, tmp_path / name)
    h = load_generic(tmp_path / name)
    assert h.query_texts == h_mem.query_texts, name
    np.testing.assert_array_equal(h.outcomes_QxM, h_mem.outcomes_QxM)
    np.testing.assert_allclose(h.cost_QxM, h_mem.cost_QxM)
  with gzip.open(tmp_path / "t.csv.gz", "rt", encoding="utf-8") as fh:
    assert fh.readline().strip() == ",".join(COLUMNS)


def test_routerbench_explicit_files_and_split_from_name(rb_dir):
  conv = convert("routerbench", [rb_dir / "arc_test.csv", rb_dir / "arc_train.csv"])
  assert set(conv.frame["task"]) == {"arc-challenge"}
  assert set(conv.frame["split"]) == {"train", "test"}


def test_routerbench_cards_prices_families_scores(rb_dir):
  conv = convert_routerbench(rb_dir)
  cards = routerbench_cards(conv.frame)
  assert list(cards) == list(MODELS)
  for m in MODELS:  # costs were made from the same length rule: the fit recovers the prices
    assert cards[m]["input_price"] == pytest.approx(P_IN[m], rel=1e-3)
    assert cards[m]["output_price"] == pytest.approx(3 * P_IN[m], rel=1e-3)
  assert cards[C]["family"] == "OpenAI GPT" and cards[B]["family"] == "beta-v1"
  assert cards[A]["family"] == "org" and "7B-parameter chat model" in cards[A]["text"]
  # Scores: 100 x the mean TRAINING outcome per task (test rows never read).
  assert cards[A]["scores"] == {"arc-challenge": 50.0, "mbpp": 100.0}
  assert rb.model_family("meta/llama-2-70b-chat") == ("Meta Llama", "Meta")
  assert rb.model_family("zero-one-ai/Yi-34B-Chat")[0] == "01.AI Yi"
  assert rb.model_family("WizardLM/WizardLM-13B-V1.2")[0] == "WizardLM"
  assert rb.model_family("mistralai/mixtral-8x7b-chat")[0] == "Mistral"
  # Without answer lengths (a table read back from a file): input prices only.
  bare = routerbench_cards(conv.frame[list(COLUMNS)])
  assert bare[C]["output_price"] is None and bare[C]["input_price"] > 0
  assert load_generic(conv.frame, model_cards=bare).prices_Mx2.shape == (3, 2)
  tasks, domains = routerbench_tasks(conv.frame)
  assert tasks["mbpp"]["domains"] == ["coding"] and set(domains) == {
    "reasoning",
    "science",
    "coding",
  }


def test_nnls2_is_non_negative():
  A_Nx2 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  np.testing.assert_allclose(rb.nnls2(A_Nx2, A_Nx2 @ [2.0, 3.0]), [2.0, 3.0])
  # Unconstrained least squares gives x1 < 0: the best non-negative answer has x1 = 0.
  b = np.array([1.0, -1.0, 0.2])
  x = rb.nnls2(A_Nx2, b)
  assert x[1] == 0 and x[0] == pytest.approx(0.6)


def test_load_routerbench_history(rb_dir):
  h = rb_loader.load_routerbench(rb_dir)
  assert h.source == str(rb_dir) and h.setting == "standard"
  assert h.model_names == MODELS and h.family_names == ("org", "beta-v1", "OpenAI GPT")
  assert h.task_names == ("arc-challenge", "mbpp") and h.domain_names
  assert any("also test prompts" in n for n in h.notes)
  assert np.isfinite(h.prices_Mx2).all() and np.isfinite(h.scores_MxT).all()
  h.check()
  hn = rb_loader.load_routerbench(rb_dir, held_out=(C,), setting="newllm")
  c = hn.model_index(C)
  assert np.isnan(hn.outcomes_QxM[hn.train_queries, c]).all()
  assert np.isnan(hn.scores_MxT[c]).all()  # both tasks have test queries


def test_load_history_routerbench_branch(rb_dir, monkeypatch):
  monkeypatch.delenv("RP_JAX_DATA", raising=False)
  monkeypatch.setenv("RP_JAX_ROUTERBENCH", str(rb_dir))
  d = ml_collections.ConfigDict({"source": "routerbench", "data_dir": "", "held_out": ""})
  assert load_history(d, "standard").source == str(rb_dir)  # from the environment
  # newllm holds out RouterBench's best model by default (not in this fixture's pool: an error).
  with pytest.raises(ValueError, match="'gpt-4-1106-preview' is not in the model pool"):
    load_history(d, "newllm")
  d.held_out = C
  assert load_history(d, "newllm").held_out_names == (C,)
  d.data_dir = str(rb_dir / "nowhere")  # data_dir wins over the environment
  expect_error(lambda: load_history(d, "standard"), "nowhere", None, "no such file")
  # data_dir left at its default ($RP_JAX_DATA, the RouteProfile folder) is not taken.
  monkeypatch.setenv("RP_JAX_DATA", str(rb_dir / "nowhere"))
  assert rb_loader.resolve_dir(str(rb_dir / "nowhere")) == str(rb_dir)
  monkeypatch.delenv("RP_JAX_ROUTERBENCH")
  assert rb_loader.resolve_dir("") == ""


def test_config_validation_routerbench(monkeypatch):
  from rp_jax import config as cfg

  monkeypatch.delenv("RP_JAX_ROUTERBENCH", raising=False)
  monkeypatch.delenv("RP_JAX_DATA", raising=False)
  c = cfg.base_config()
  c.data.source = "routerbench"
  c.data.data_dir = ""
  with pytest.raises(ValueError, match="RP_JAX_ROUTERBENCH"):
    cfg.validate_config(c)


def test_data_fingerprint_hashes_the_csv_files(rb_dir, monkeypatch):
  from rp_jax import config as cfg
  from rp_jax.stage_cache import data_fingerprint

  monkeypatch.delenv("RP_JAX_DATA", raising=False)
  c = cfg.base_config()
  c.data.source = "routerbench"
  c.data.data_dir = str(rb_dir)
  fp = data_fingerprint(c)
  assert fp == data_fingerprint(c)
  f = rb_dir / "mbpp_test.csv"
  f.write_text(f.read_text(encoding="utf-8").replace("fib", "fibonacci"), encoding="utf-8")
  assert data_fingerprint(c) != fp


# -- RouterBench errors ---------------------------------------------------------------------------


def test_routerbench_missing_column(tmp_path):
  rows = [{k: v for k, v in r.items() if k != "eval_name"} for r in rb_rows()["arc_test.csv"]]
  f = write_one_rb(tmp_path, rows)
  expect_error(
    lambda: convert_routerbench(f), "arc_test.csv", "line 1", "missing column 'eval_name'"
  )


def test_routerbench_missing_cost_column(tmp_path):
  rows = [{k: v for k, v in r.items() if k != f"{B}|total_cost"} for r in rb_rows()["arc_test.csv"]]
  f = write_one_rb(tmp_path, rows)
  expect_error(lambda: convert_routerbench(f), "arc_test.csv", "line 1", f"'{B}|total_cost'")


@pytest.mark.parametrize(
  "value, expected",
  [("abc", "got 'abc'"), ("1.5", "got 1.5"), ("-1", "got -1.0"), ("inf", "finite")],
  ids=["word", "above_1", "below_0", "inf"],
)
def test_routerbench_bad_outcome(tmp_path, value, expected):
  rows = rb_rows()["arc_test.csv"]
  rows[1][A] = value  # line 3
  f = write_one_rb(tmp_path, rows)
  expect_error(lambda: convert_routerbench(f), "arc_test.csv", f"line 3, field '{A}'", expected)


def test_routerbench_bad_cost(tmp_path):
  rows = rb_rows()["arc_test.csv"]
  rows[0][f"{C}|total_cost"] = "cheap"
  f = write_one_rb(tmp_path, rows)
  expect_error(
    lambda: convert_routerbench(f), "arc_test.csv", f"line 2, field '{C}|total_cost'", "cheap"
  )


@pytest.mark.parametrize(
  "prompt, expected",
  [("['unclosed", "malformed literal"), ("[1, 2]", "list literal of strings"), ("[]", "list")],
  ids=["unclosed", "numbers", "empty"],
)
def test_routerbench_bad_prompt_literal(tmp_path, prompt, expected):
  rows = rb_rows()["arc_test.csv"]
  rows[1]["prompt"] = prompt
  f = write_one_rb(tmp_path, rows)
  expect_error(lambda: convert_routerbench(f), "arc_test.csv", "line 3, field 'prompt'", expected)


def test_routerbench_repeated_prompt_in_a_split(tmp_path):
  rows = rb_rows()["arc_test.csv"]
  rows.append(dict(rows[0], sample_id="arc.9"))  # line 4 repeats line 2
  f = write_one_rb(tmp_path, rows)
  expect_error(
    lambda: convert_routerbench(f), "arc_test.csv", "line 4, field 'prompt'", "line 2 again"
  )


def test_routerbench_sample_id_twice_with_other_prompts_is_kept(tmp_path):
  rows = rb_rows()["arc_test.csv"]
  rows[1] = rb_row("arc.9", ["What melts ice?", "Second."], "arc-challenge", {A: 1, B: 1, C: 1})
  conv = convert_routerbench(write_one_rb(tmp_path, rows))
  assert conv.frame["query"].nunique() == 2
  assert any("repeat a sample_id" in n for n in conv.notes)


def test_routerbench_model_columns_differ(tmp_path):
  files = rb_rows()
  files["arc_test.csv"] = [
    {k: v for k, v in r.items() if not k.startswith(B)} for r in files["arc_test.csv"]
  ]
  d = write_rb(tmp_path / "rb", files)
  # Files are read in name order: arc_test.csv (without B) is the reference.
  expect_error(lambda: convert_routerbench(d), "arc_train.csv", "line 1", f"extra ['{B}']")


def test_routerbench_no_files_and_bad_names(tmp_path):
  (tmp_path / "empty").mkdir()
  expect_error(lambda: convert_routerbench(tmp_path / "empty"), "empty", None, "no *_train.csv")
  f = tmp_path / "arc.csv"
  f.write_text("x\n", encoding="utf-8")
  expect_error(lambda: convert_routerbench(f), "arc.csv", None, "cannot tell the split")


def test_routerbench_every_prompt_dropped(tmp_path):
  rows = [rb_row("arc.9", "What melts ice?", "arc-challenge", {A: 1})]
  f = write_one_rb(tmp_path, rows)
  expect_error(lambda: convert_routerbench(f), "arc_test.csv", None, "no prompt left")


# -- records --------------------------------------------------------------------------------------

RECORDS = [
  {"question": "2+2?", "scores": {"m1": 1, "m2": 0}, "task": "math", "split": "train"},
  {"query": "3+3?", "scores": {"m1": 0.5, "m2": None}, "dataset": "math"},
  {"question": "Capital of France?", "scores": {"m1": 1, "m2": 1}, "cluster": 3},
  {
    "question": "5+5?",
    "scores": {"m1": 1, "m2": 0},
    "task": "math",
    "split": "test",
    "prompt": "Answer: 5+5?",
    "costs": {"m1": 0.01, "m2": 0.002},
  },
]


def write_records(path: pathlib.Path, recs=RECORDS, lines: bool | None = None) -> pathlib.Path:
  lines = path.suffix != ".json" if lines is None else lines
  text = "".join(json.dumps(r) + "\n" for r in recs) if lines else json.dumps(recs, indent=1)
  path.write_text(text, encoding="utf-8")
  return path


@pytest.mark.parametrize("name", ["recs.json", "recs.jsonl"])
def test_records_convert_and_load(tmp_path, name):
  conv = convert_records(write_records(tmp_path / name))
  f = conv.frame
  assert len(f) == 7  # 2 + 1 (a null score: no row) + 2 + 2
  assert f["task"].tolist()[:5] == ["math", "math", "math", "3", "3"]
  assert f["split"].tolist() == ["train"] * 5 + ["test"] * 2
  assert f["cost"].tolist()[-2:] == [0.01, 0.002] and f["prompt"].iloc[-1] == "Answer: 5+5?"
  h = load_generic(f)
  assert len(h.test_queries) == 1 and h.model_names == ("m1", "m2")
  assert h.query_prompts[-1] == "Answer: 5+5?"


def test_records_split_from_file_name(tmp_path):
  recs = [{k: v for k, v in r.items() if k != "split"} for r in RECORDS]
  conv = convert_records([write_records(tmp_path / "x_test.jsonl", recs[:1])])
  assert conv.frame["split"].tolist() == ["test", "test"]


def test_records_wrong_top_level(tmp_path):
  f = tmp_path / "r.json"
  f.write_text(json.dumps({"records": RECORDS}), encoding="utf-8")
  expect_error(lambda: convert_records(f), "r.json", "top level", "expected a JSON list")


def test_records_not_an_object(tmp_path):
  f = write_records(tmp_path / "r.json", [RECORDS[0], ["a", "list"]])
  expect_error(lambda: convert_records(f), "r.json", "record 2", "expected a JSON object")


def test_records_malformed_json_line(tmp_path):
  f = write_records(tmp_path / "r.jsonl")
  lines = f.read_text(encoding="utf-8").splitlines(True)
  lines[2] = lines[2][:-6] + "\n"
  f.write_text("".join(lines), encoding="utf-8")
  expect_error(lambda: convert_records(f), "r.jsonl", "line 3", "malformed JSON line")


@pytest.mark.parametrize(
  "change, where, expected",
  [
    ({"query": None}, "line 2, field 'query'", "expected a string"),
    ({"scores": [1, 0]}, "line 2, field 'scores'", "expected dict"),
    ({"scores": {}}, "line 2, field 'scores'", "at least one model"),
    ({"scores": {"m1": 1.5}}, "line 2, field 'scores', key 'm1'", "got 1.5"),
    ({"scores": {"m1": "abc"}}, "line 2, field 'scores', key 'm1'", "got 'abc'"),
    ({"scores": {"m1": float("nan")}}, "line 2, field 'scores', key 'm1'", "finite"),
    ({"split": "dev"}, "line 2, field 'split'", "got 'dev'"),
    ({"costs": {"m3": 1}}, "line 2, field 'costs'", "no score"),
  ],
  ids=["question", "scores_list", "scores_empty", "above_1", "word", "nan", "split", "cost"],
)
def test_records_bad_field(tmp_path, change, where, expected):
  recs = [dict(r) for r in RECORDS]
  recs[1].update(change)
  expect_error(
    lambda: convert_records(write_records(tmp_path / "r.jsonl", recs)), "r.jsonl", where, expected
  )


def test_records_missing_question_and_duplicate(tmp_path):
  recs = [dict(r) for r in RECORDS]
  del recs[2]["question"]
  f = write_records(tmp_path / "r.jsonl", recs)
  expect_error(lambda: convert_records(f), "r.jsonl", "line 3", "missing field 'question'")
  f = write_records(tmp_path / "s.jsonl", [*RECORDS, RECORDS[0]])
  expect_error(lambda: convert_records(f), "s.jsonl", "line 5", "line 1 again")


def test_records_test_record_needs_every_model(tmp_path):
  recs = [dict(r) for r in RECORDS]
  recs[3] = dict(recs[3], scores={"m1": 1, "m2": None}, costs={})
  f = write_records(tmp_path / "r.json", recs)
  expect_error(lambda: convert_records(f), "r.json", "record 4, field 'scores'", "model 'm2'")


# -- matrix ---------------------------------------------------------------------------------------

OUT_MxN = np.array([[1, 0, 1, np.nan], [0, 0, 1, 1], [1, 1, 0, 0.5]])
NPZ = {
  "outcomes": OUT_MxN,
  "models": np.array(["m1", "m2", "m3"]),
  "items": np.array(["i1", "i2", "i3", "i4"]),
  "texts": np.array(["What is 1+1?", "", "Name a color.", "Say hi."]),
  "tasks": np.array(["math", "math", "", "chat"]),
  "splits": np.array(["train", "train", "test", ""]),
}


def write_npz(path, **changes):
  arrays = {**NPZ, **changes}
  np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
  return path


def test_matrix_npz_converts_and_loads(tmp_path):
  conv = convert_matrix(write_npz(tmp_path / "m.npz"))
  f = conv.frame
  assert len(f) == 11  # one NaN
  assert f["query"].tolist()[:3] == ["What is 1+1?"] * 3
  assert f["query"].iloc[3] == "i2"  # empty text: the item id
  assert f[f["query"] == "Name a color."]["task"].unique().tolist() == ["default"]
  assert f[f["query"] == "Say hi."]["split"].unique().tolist() == ["train"]
  h = load_generic(f)
  assert len(h.test_queries) == 1 and h.model_names == ("m1", "m2", "m3")
  np.testing.assert_allclose(h.outcomes_QxM[h.query_texts.index("Say hi.")], [NAN, 1, 0.5])


def test_matrix_csv_with_items(tmp_path):
  m = tmp_path / "matrix.csv"
  m.write_text("model,i1,i2,i3\nm1,1,0,\nm2,0,1,1\n", encoding="utf-8")
  items = tmp_path / "items.csv"
  items.write_text("item,text,task,split\ni1,Q one,t,train\ni3,Q three,t,test\n", encoding="utf-8")
  expect_error(
    lambda: convert_matrix([items, m]), "matrix.csv", "line 2, field 'i3'", "test item needs"
  )
  m.write_text("model,i1,i2,i3\nm1,1,0,1\nm2,0,1,1\n", encoding="utf-8")
  f = convert_matrix([items, m]).frame
  assert f["query"].tolist() == ["Q one", "Q one", "i2", "i2", "Q three", "Q three"]
  assert f["split"].tolist() == ["train"] * 4 + ["test"] * 2
  assert len(load_generic(f).test_queries) == 1
  assert len(convert_matrix(m).frame) == 6  # without the items file: defaults


def test_matrix_npz_object_array(tmp_path):
  f = write_npz(tmp_path / "m.npz", models=np.array(["m1", "m2", None], dtype=object))
  expect_error(lambda: convert_matrix(f), "m.npz", "key 'models'", "object array")


@pytest.mark.parametrize(
  "change, where, expected",
  [
    ({"items": None}, None, "missing array(s) ['items']"),
    ({"outcomes": OUT_MxN.T}, "key 'outcomes'", "[3, 4]"),
    ({"outcomes": np.where(OUT_MxN == 0.5, 2.0, OUT_MxN)}, "model 'm3', item 'i4'", "got 2.0"),
    ({"models": np.array(["m1", "m1", "m3"])}, "key 'models'", "duplicate"),
    ({"models": np.array([1, 2, 3])}, "key 'models'", "string array"),
    ({"splits": np.array(["train", "dev", "test", ""])}, "key 'splits', item 'i2'", "'dev'"),
    (
      {"outcomes": np.where(np.isnan(OUT_MxN), 1, OUT_MxN), "splits": np.array(["test"] * 4)},
      None,
      None,
    ),
    (
      {"splits": np.array(["train", "train", "train", "test"])},
      "model 'm1', item 'i4'",
      "test item",
    ),
    (
      {"texts": np.array(["A", "A", "B", "C"]), "tasks": None},
      "key 'texts', item 'i2'",
      "(task, text)",
    ),
  ],
  ids=[
    "missing_key",
    "shape",
    "above_1",
    "dup_model",
    "int_models",
    "split",
    "ok",
    "test_nan",
    "dup_text",
  ],
)
def test_matrix_npz_errors(tmp_path, change, where, expected):
  f = write_npz(tmp_path / "m.npz", **change)
  if expected is None:
    assert len(convert_matrix(f).frame) == 12
    return
  expect_error(lambda: convert_matrix(f), "m.npz", where, expected)


def test_matrix_npz_truncated_and_not_zip(tmp_path):
  f = write_npz(tmp_path / "m.npz")
  f.write_bytes(f.read_bytes()[:200])
  expect_error(lambda: convert_matrix(f), "m.npz", None)
  f.write_bytes(b"not a zip file at all")
  expect_error(lambda: convert_matrix(f), "m.npz", None, "not a readable .npz")


def test_matrix_csv_errors(tmp_path):
  m = tmp_path / "matrix.csv"
  m.write_text("model,i1,i2\nm1,1,0\nm2,0,yes\n", encoding="utf-8")
  expect_error(lambda: convert_matrix(m), "matrix.csv", "line 3, field 'i2'", "got 'yes'")
  m.write_text("model,i1,i2\nm1,1,0\nm1,0,1\n", encoding="utf-8")
  expect_error(lambda: convert_matrix(m), "matrix.csv", "line 3, field 'model'", "again (line 2)")
  m.write_text("name,i1\nm1,1\n", encoding="utf-8")
  expect_error(lambda: convert_matrix(m), "matrix.csv", "line 1", "a 'model' column")
  m.write_text("model,i1,i2\nm1,1,0\n", encoding="utf-8")
  items = tmp_path / "items.csv"
  items.write_text("item,text\ni9,Q\n", encoding="utf-8")
  expect_error(
    lambda: convert_matrix([m, items]), "items.csv", "line 2, field 'item'", "not a column"
  )


# -- the generic loader: gzip, encodings, in-memory tables -----------------------------------------


def test_generic_gzip_and_encoding_errors(tmp_path):
  rows = [
    {"query": "q1", "task": "t", "model": "a", "performance": 1, "split": "train"},
    {"query": "q1", "task": "t", "model": "b", "performance": 0, "split": "train"},
  ]
  write_table(rows, tmp_path / "t.jsonl.gz")
  assert load_generic(tmp_path / "t.jsonl.gz").model_names == ("a", "b")
  bad = tmp_path / "bad.csv.gz"
  bad.write_bytes(gzip.compress(b"query,task,model,performance\n")[:-8])
  expect_error(lambda: load_generic(bad), "bad.csv.gz", None, "gzip")
  latin = tmp_path / "latin.csv"
  latin.write_bytes("query,task,model,performance\ncaf\u00e9,t,a,1\n".encode("latin-1"))
  expect_error(lambda: load_generic(latin), "latin.csv", "line 2", "expected UTF-8")
  utf16 = tmp_path / "u16.csv"
  utf16.write_bytes("query,task,model,performance\nq,t,a,1\n".encode("utf-16"))
  expect_error(lambda: load_generic(utf16), "u16.csv", "line 1", "UTF-16")


def test_generic_in_memory_table_names_its_source():
  frame = pd.DataFrame({"query": ["q"], "task": ["t"], "model": ["a"], "performance": [2.0]})
  expect_error(
    lambda: load_generic(frame, source="mine.csv"), "mine.csv", "line 1, field 'performance'"
  )


# -- launcher -------------------------------------------------------------------------------------


def _launch(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.run(
    [sys.executable, "-m", "launch.convert", *args],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )


def test_launch_convert(rb_dir, tmp_path):
  out = tmp_path / "out"
  r = _launch(
    "--format=routerbench",
    f"--src={rb_dir}",
    f"--out={out / 'table.csv'}",
    f"--cards_out={out / 'cards.json'}",
    f"--tasks_out={out / 'tasks.json'}",
    f"--domains_out={out / 'domains.json'}",
    f"--families_out={out / 'families.json'}",
  )
  assert r.returncode == 0, r.stderr
  assert r.stdout.strip().endswith("19 rows, 7 queries (4 train, 3 test), 3 models, 2 dropped")
  h = load_generic(
    out / "table.csv",
    model_cards=out / "cards.json",
    tasks=out / "tasks.json",
    domains=out / "domains.json",
    families=out / "families.json",
  )
  assert h.family_names == ("org", "beta-v1", "OpenAI GPT") and h.domain_names
  bad = write_records(tmp_path / "r.jsonl", [{"question": "q", "scores": {"m": "high"}}])
  r = _launch("--format=records", f"--src={bad}", f"--out={out / 'r.csv'}")
  assert r.returncode == 1
  assert "r.jsonl, line 1, field 'scores', key 'm'" in r.stderr and "'high'" in r.stderr
  assert "Traceback" not in r.stderr + r.stdout


# -- the real RouterBench subset (SPEC §8) ---------------------------------------------------------


@pytest.mark.real_data
def test_real_routerbench_facts(routerbench_dir):
  conv = convert_routerbench(routerbench_dir)
  f = conv.frame
  assert f["model"].nunique() == 11
  h = rb_loader.load_routerbench(routerbench_dir)
  assert h.num_models == 11 and len(h.candidates) == 11
  # Train: 2,225 prompts, 2 also test prompts (dropped), 20 partial; test: 945 of 953 complete.
  tr, te = h.query_split == TRAIN, h.query_split == TEST
  assert tr.sum() == 2225 - 2 and te.sum() == 945
  partial = np.isnan(h.outcomes_QxM[tr]).any(1)
  assert partial.sum() == 20
  assert not np.isnan(h.outcomes_QxM[te]).any()
  count = lambda mask: {t: int((h.query_task[mask] == i).sum()) for i, t in enumerate(h.task_names)}
  assert count(te) == {"arc-challenge": 437, "mbpp": 128, "winogrande": 380}
  assert count(tr) == {"arc-challenge": 1039, "mbpp": 299 - 2, "winogrande": 887}
  g = h.model_index("gpt-4-1106-preview")
  assert h.outcomes_QxM[te, g].mean() == pytest.approx(0.879, abs=5e-4)
  assert np.nanmean(h.cost_QxM[te, g]) * 1000 == pytest.approx(5.00, abs=0.01)
  best = np.nanmean(h.outcomes_QxM[te][:, h.candidates], 0).argmax()
  assert h.model_names[h.candidates[best]] == "gpt-4-1106-preview"
  assert conv.dropped == 8 + 2
  cards = routerbench_cards(f)
  assert cards["gpt-4-1106-preview"]["input_price"] == pytest.approx(10, rel=0.05)  # list $10/$30
  assert cards["gpt-4-1106-preview"]["output_price"] == pytest.approx(30, rel=0.05)
