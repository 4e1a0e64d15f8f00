"""Bad input -> DataError naming the file, the row / line / key, and what was expected.

One test per bad input. Two starting points, both built inside the test's tmp_path:
- ``release``: a copy of the public release layout (../shared/data/routeprofile, via RP_JAX_DATA),
  trimmed once per module to a few rows per file so that each test stays fast; skipped without
  the data;
- ``generic``: a tiny table in the generic long format plus description files.
Each test breaks exactly one thing and checks the error message.
"""

import csv
import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from rp_jax import io as rio
from rp_jax.data import load_generic, load_routeprofile, make_history
from rp_jax.data import validate as V
from rp_jax.types import DataError

MISTRAL = "mistral-small-24b-instruct-2501-bf16"


def expect_error(fn, file: str, where: str | None, *what: str) -> DataError:
  """Runs fn, asserts a DataError whose message names file, where and each of ``what``."""
  with pytest.raises(DataError) as info:
    fn()
  e = info.value
  msg = str(e)
  assert pathlib.Path(e.source).name == file, msg
  assert file in msg
  if where is not None:
    assert e.where is not None and where in e.where, msg
    assert where in msg
  for w in what:
    assert w in msg, msg
  return e


# -- the release layout ---------------------------------------------------------------------------


def _read(p):
  return json.loads(pathlib.Path(p).read_text(encoding="utf-8"))


def _write(p, obj):
  pathlib.Path(p).write_text(json.dumps(obj, indent=1), encoding="utf-8")


@pytest.fixture(scope="module")
def release_base(data_dir, tmp_path_factory):
  """A copy of the release with 3 test rows and 8 pairs per task and 30 graph queries."""
  base = tmp_path_factory.mktemp("release") / "routeprofile"
  shutil.copytree(data_dir, base)
  # The source may be read-only; the copy (and every per-test copy of it) must be writable.
  for d, _, files in os.walk(base):
    pathlib.Path(d).chmod(0o755)
    for f in files:
      (pathlib.Path(d) / f).chmod(0o644)
  rd = base / "route_data"
  per_task = {}
  test = [r for r in _read(rd / "routing_test_data.json") if per_task.setdefault(r["task_name"], []).append(1) or len(per_task[r["task_name"]]) <= 3]  # fmt: skip
  _write(rd / "routing_test_data.json", test)
  for setting in ("standard", "newllm"):
    f = rd / f"pairwise_training_data_{setting}.json"
    obj = _read(f)
    seen = {}
    obj["pairwise_data"] = [
      r
      for r in obj["pairwise_data"]
      if seen.setdefault(r["task_name"], []).append(1) or len(seen[r["task_name"]]) <= 8
    ]
    _write(f, obj)
  lines = (rd / "default_query_train.jsonl").read_text(encoding="utf-8").splitlines(True)
  (rd / "default_query_train.jsonl").write_text("".join(lines[:30]), encoding="utf-8")
  return base


@pytest.fixture
def release(release_base, tmp_path):
  d = tmp_path / "routeprofile"
  shutil.copytree(release_base, d)
  return d


def test_release_copy_loads(release):
  """The trimmed copy is valid, so each test below fails only because of what it breaks."""
  for setting in ("standard", "newllm"):
    h = load_routeprofile(release, setting)
    assert len(h.test_queries) == 36 and len(h.pairs_Px3) > 0


def test_missing_file(release):
  os.remove(release / "profile_data" / "task_feature.json")
  e = expect_error(
    lambda: load_routeprofile(release), "task_feature.json", None, "missing", "no such file"
  )
  assert e.where is None


def test_missing_data_folder(tmp_path):
  expect_error(
    lambda: load_routeprofile(tmp_path / "nowhere"), "nowhere", None, "profile_data/", "route_data/"
  )


def test_malformed_json_gives_line_and_column(release):
  f = release / "profile_data" / "domain_feature.json"
  f.write_text('{\n  "knowledge": "x",\n  "reasoning" "y"\n}\n', encoding="utf-8")
  expect_error(
    lambda: load_routeprofile(release),
    "domain_feature.json",
    "line 3, column 15",
    "malformed JSON",
    "Expecting ':' delimiter",
  )


def test_malformed_json_top_level_type(release):
  _write(release / "profile_data" / "task_feature.json", ["mmlu"])
  expect_error(
    lambda: load_routeprofile(release),
    "task_feature.json",
    "top level",
    "expected a JSON dict",
    "got list",
  )


def test_malformed_jsonl_line(release):
  f = release / "route_data" / "default_query_train.jsonl"
  lines = f.read_text(encoding="utf-8").splitlines(True)
  lines[2] = '{"task_name": "mmlu", "query": \n'
  f.write_text("".join(lines), encoding="utf-8")
  expect_error(
    lambda: load_routeprofile(release),
    "default_query_train.jsonl",
    "line 3",
    "malformed JSON line",
  )


def test_jsonl_line_not_an_object(release):
  f = release / "route_data" / "default_query_train.jsonl"
  lines = f.read_text(encoding="utf-8").splitlines(True)
  lines[4] = '["mmlu", "q"]\n'
  f.write_text("".join(lines), encoding="utf-8")
  expect_error(
    lambda: load_routeprofile(release),
    "default_query_train.jsonl",
    "line 5",
    "expected a JSON object",
    "got list",
  )


def _edit_test_rows(release, fn):
  f = release / "route_data" / "routing_test_data.json"
  rows = _read(f)
  fn(rows)
  _write(f, rows)
  return rows


def _edit_pairs(release, fn, setting="standard"):
  f = release / "route_data" / f"pairwise_training_data_{setting}.json"
  obj = _read(f)
  fn(obj["pairwise_data"])
  _write(f, obj)
  return obj["pairwise_data"]


def test_missing_field_query(release):
  _edit_test_rows(release, lambda rows: rows[3].pop("query"))
  expect_error(
    lambda: load_routeprofile(release), "routing_test_data.json", "row 3", "missing field 'query'"
  )


def test_missing_field_performance(release):
  def drop(rows):
    rows[2]["model_performance"]["gemma-2-9b-it"].pop("task_performance")

  _edit_test_rows(release, drop)
  expect_error(
    lambda: load_routeprofile(release),
    "routing_test_data.json",
    "row 2, model_performance['gemma-2-9b-it']",
    "missing field 'task_performance'",
  )


def test_missing_field_task_name(release):
  _edit_pairs(release, lambda rows: rows[5].pop("task_name"))
  expect_error(
    lambda: load_routeprofile(release),
    "pairwise_training_data_standard.json",
    "pairwise_data[5]",
    "missing field 'task_name'",
  )


def test_missing_field_better_model(release):
  _edit_pairs(release, lambda rows: rows[7].pop("better_model"))
  expect_error(
    lambda: load_routeprofile(release),
    "pairwise_training_data_standard.json",
    "pairwise_data[7]",
    "missing field 'better_model'",
  )


def test_unknown_model_in_pairs(release):
  _edit_pairs(release, lambda rows: rows[4].__setitem__("worse_model", "gpt-9"))
  expect_error(
    lambda: load_routeprofile(release),
    "pairwise_training_data_standard.json",
    "pairwise_data[4], field 'worse_model'",
    "unknown model 'gpt-9'",
    "model_feature_standard.json",
  )


def test_unknown_model_in_test_performance(release):
  def add(rows):
    rows[1]["model_performance"]["gpt-9"] = {"task_performance": 1.0}

  _edit_test_rows(release, add)
  expect_error(
    lambda: load_routeprofile(release),
    "routing_test_data.json",
    "row 1, model_performance['gpt-9']",
    "unknown model",
  )


def test_unknown_task_name(release):
  _edit_test_rows(release, lambda rows: rows[6].__setitem__("task_name", "no-such-bench"))
  expect_error(
    lambda: load_routeprofile(release),
    "routing_test_data.json",
    "row 6, field 'task_name'",
    "unknown task 'no-such-bench'",
    "task_feature.json",
  )


def _set_perf(value):
  def edit(rows):
    rows[0]["model_performance"]["qwen2.5-7b-instruct"]["task_performance"] = value

  return edit


@pytest.mark.parametrize(
  "value, expected",
  [
    (float("nan"), "expected a finite number in [0, 1], got nan"),
    ("abc", "expected a number in [0, 1], got 'abc'"),
    (1.5, "expected a number in [0, 1], got 1.5"),
    (-0.25, "expected a number in [0, 1], got -0.25"),
  ],
  ids=["nan", "abc", "above_1", "below_0"],
)
def test_bad_performance_release(release, value, expected):
  _edit_test_rows(release, _set_perf(value))
  expect_error(
    lambda: load_routeprofile(release),
    "routing_test_data.json",
    "row 0, model_performance['qwen2.5-7b-instruct'].task_performance",
    expected,
  )


def test_empty_candidate_set(release):
  _write(release / "profile_data" / "candidate_models.json", {})
  expect_error(
    lambda: load_routeprofile(release),
    "candidate_models.json",
    "top level",
    "empty candidate set",
  )


def test_candidate_not_in_pool(release):
  f = release / "profile_data" / "candidate_models.json"
  cands = _read(f)
  cands["gpt-9"] = {"input_price": 1.0}
  _write(f, cands)
  expect_error(
    lambda: load_routeprofile(release),
    "candidate_models.json",
    "key 'gpt-9'",
    "candidate is not in the pool",
  )


def test_candidate_list_with_non_string_entry(release):
  _write(release / "profile_data" / "candidate_models.json", [{"name": "gemma-2-9b-it"}])
  expect_error(lambda: load_routeprofile(release), "candidate_models.json", None, "expected")


def test_held_out_model_not_in_pool(release):
  expect_error(
    lambda: load_routeprofile(release, "newllm", held_out=("gpt-9",)),
    "model_feature_newllm.json",
    "held-out model 'gpt-9'",
    "not in the model pool",
  )


def test_held_out_model_in_training_pair(release):
  _edit_pairs(release, lambda rows: rows[2].__setitem__("better_model", MISTRAL), "newllm")
  expect_error(
    lambda: load_routeprofile(release, "newllm"),
    "pairwise_training_data_newllm.json",
    "pairwise_data[2], field 'better_model'",
    f"held-out model {MISTRAL!r} in a training pair",
  )


def test_held_out_in_pair_rejected_by_history_check():
  h = make_history(
    seed=0,
    setting="newllm",
    num_models=4,
    num_candidates=3,
    num_tasks=2,
    num_unscored_tasks=0,
    num_domains=1,
    train_per_task=4,
    test_per_task=2,
  )
  bad = h.pairs_Px3.copy()
  other = int(np.setdiff1d(h.candidates, h.held_out)[0])
  bad[1] = (bad[1, 0], h.held_out[0], other)
  with pytest.raises(DataError) as info:
    h.replace(pairs_Px3=bad)
  assert "pairs_Px3 row 1" in str(info.value)
  assert "held-out model must not appear in training pairs" in str(info.value)


class _Sentinel:
  pass


@pytest.mark.parametrize(
  "literal",
  ["__import__('os')", "{'text': ['a', 'b'], 'labels': ['A', 'B'",  "open({marker!r}, 'w')"],
  ids=["import", "unclosed", "open_file"],
)  # fmt: skip
def test_malformed_choices_literal(release, literal):
  marker = release.parent / "executed.txt"
  literal = literal.replace("{marker!r}", repr(str(marker)))
  _edit_test_rows(release, lambda rows: rows[4].__setitem__("choices", literal))
  expect_error(
    lambda: load_routeprofile(release),
    "routing_test_data.json",
    "row 4, field 'choices'",
    "malformed literal",
  )
  assert not marker.exists()  # parsed with ast.literal_eval, never executed


def test_parse_literal_accepts_literals_only(tmp_path):
  marker = tmp_path / "ran.txt"
  assert V.parse_literal("['x', 'y']", "f.json", "row 0") == ["x", "y"]
  assert V.parse_literal("None", "f.json", "row 0") is None
  assert V.parse_literal(["z"], "f.json", "row 0") == ["z"]
  code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
  with pytest.raises(DataError, match="row 7: malformed literal"):
    V.parse_literal(code, "f.json", "row 7")
  assert not marker.exists()
  with pytest.raises(DataError, match="expected a string literal, got int"):
    V.parse_literal(3, "f.json", "row 7")


def test_test_query_missing_candidate_outcome(release):
  _edit_test_rows(release, lambda rows: rows[5]["model_performance"].pop("llama-3.3-70b-instruct"))
  expect_error(
    lambda: load_routeprofile(release),
    "routing_test_data.json",
    "row 5, field 'model_performance'",
    "no outcome for candidate(s) ['llama-3.3-70b-instruct']",
  )


def test_unknown_architecture(release):
  f = release / "profile_data" / "model_feature_standard.json"
  models = _read(f)
  models["gemma-2-9b-it"]["architecture"] = "NoSuchForCausalLM"
  _write(f, models)
  expect_error(
    lambda: load_routeprofile(release),
    "model_feature_standard.json",
    "model 'gemma-2-9b-it', field 'architecture'",
    "unknown family 'NoSuchForCausalLM'",
    "model_family_feature.json",
  )


def test_score_for_unknown_task(release):
  f = release / "profile_data" / "model_feature_standard.json"
  models = _read(f)
  models["gemma-2-9b-it"]["detailed_scores"]["no-such-bench"] = 50.0
  _write(f, models)
  expect_error(
    lambda: load_routeprofile(release),
    "model_feature_standard.json",
    "key 'no-such-bench'",
    "score for an unknown task",
  )


def test_duplicate_test_query(release):
  _edit_test_rows(release, lambda rows: rows.append(dict(rows[0])))
  expect_error(
    lambda: load_routeprofile(release),
    "routing_test_data.json",
    "row 36",
    "duplicate test query",
  )


def test_training_query_in_test_without_dedupe(release):
  def dup(rows):
    t = _read(release / "route_data" / "routing_test_data.json")[0]
    rows[0].update(task_name=t["task_name"], query=t["query"], choices=t.get("choices"))

  _edit_pairs(release, dup)
  assert load_routeprofile(release).pairs_Px3.shape[0] > 0  # dedupe=True drops it
  expect_error(
    lambda: load_routeprofile(release, dedupe=False),
    "pairwise_training_data_standard.json",
    "pairwise_data[0]",
    "also in the test set",
  )


# -- the generic format ---------------------------------------------------------------------------

HEADER = ["query", "task", "model", "performance", "split"]
ROWS = [  # 2 train + 1 test queries x 2 models (CSV lines 2..7)
  ["q1", "math", "a", "1", "train"],
  ["q1", "math", "b", "0", "train"],
  ["q2", "math", "a", "0.5", "train"],
  ["q2", "math", "b", "0.25", "train"],
  ["q3", "math", "a", "1", "test"],
  ["q3", "math", "b", "0", "test"],
]
CARDS = {
  "a": {"family": "F1", "text": "Model a.", "scores": {"math": 50}},
  "b": {"family": "F2", "text": "Model b.", "scores": {"math": 60}},
}


def write_csv(folder: pathlib.Path, rows=ROWS, header=HEADER) -> pathlib.Path:
  f = folder / "outcomes.csv"
  with open(f, "w", newline="", encoding="utf-8") as fh:
    w = csv.writer(fh)
    w.writerow(header)
    w.writerows(rows)
  return f


def write_jsonl(folder: pathlib.Path, rows=ROWS, header=HEADER) -> pathlib.Path:
  f = folder / "outcomes.jsonl"
  f.write_text(
    "".join(json.dumps(dict(zip(header, r, strict=True))) + "\n" for r in rows), encoding="utf-8"
  )
  return f


def write_json(folder: pathlib.Path, name: str, obj) -> pathlib.Path:
  f = folder / name
  f.write_text(json.dumps(obj), encoding="utf-8")
  return f


def test_generic_fixture_loads(tmp_path):
  for table in (write_csv(tmp_path), write_jsonl(tmp_path)):
    h = load_generic(table, model_cards=write_json(tmp_path, "cards.json", CARDS))
    assert h.model_names == ("a", "b") and len(h.test_queries) == 1 and len(h.pairs_Px3) == 2


def test_generic_missing_table(tmp_path):
  expect_error(lambda: load_generic(tmp_path / "nope.csv"), "nope.csv", None, "no such file")


def test_generic_unknown_table_format(tmp_path):
  f = tmp_path / "outcomes.xlsx"
  f.write_text("x", encoding="utf-8")
  expect_error(lambda: load_generic(f), "outcomes.xlsx", None, "expected .csv or .jsonl")


def test_generic_malformed_csv_row(tmp_path):
  rows = [list(r) for r in ROWS]
  rows[2] = rows[2][:4]  # line 4: 4 fields instead of 5
  expect_error(
    lambda: load_generic(write_csv(tmp_path, rows)),
    "outcomes.csv",
    "line 4",
    "expected 5 fields like the header, got 4",
  )


def test_generic_csv_duplicate_column(tmp_path):
  header = [*HEADER[:4], "query"]
  expect_error(
    lambda: load_generic(write_csv(tmp_path, ROWS, header)),
    "outcomes.csv",
    "line 1",
    "duplicate column(s) ['query']",
  )


def test_generic_empty_csv(tmp_path):
  f = tmp_path / "outcomes.csv"
  f.write_text("", encoding="utf-8")
  expect_error(lambda: load_generic(f), "outcomes.csv", "line 1", "expected a header row")


def test_generic_malformed_jsonl_line(tmp_path):
  f = write_jsonl(tmp_path)
  lines = f.read_text(encoding="utf-8").splitlines(True)
  lines[3] = lines[3][:-5] + "\n"
  f.write_text("".join(lines), encoding="utf-8")
  expect_error(lambda: load_generic(f), "outcomes.jsonl", "line 4", "malformed JSON line")


def test_generic_missing_column_performance(tmp_path):
  header = [h for h in HEADER if h != "performance"]
  rows = [[c for i, c in enumerate(r) if i != 3] for r in ROWS]
  expect_error(
    lambda: load_generic(write_csv(tmp_path, rows, header)),
    "outcomes.csv",
    "line 2",
    "missing field 'performance'",
    "required columns",
  )


def test_generic_missing_field_query_jsonl(tmp_path):
  f = write_jsonl(tmp_path)
  lines = f.read_text(encoding="utf-8").splitlines(True)
  row = json.loads(lines[2])
  row.pop("query")
  lines[2] = json.dumps(row) + "\n"
  f.write_text("".join(lines), encoding="utf-8")
  expect_error(lambda: load_generic(f), "outcomes.jsonl", "line 3", "missing field 'query'")


def test_generic_jsonl_line_numbers_count_blank_lines(tmp_path):
  f = write_jsonl(tmp_path)
  lines = f.read_text(encoding="utf-8").splitlines(True)
  row = json.loads(lines[3])
  row["performance"] = "abc"
  lines[3] = json.dumps(row) + "\n"
  lines.insert(1, "\n")  # the bad row is now on line 5 of the file
  f.write_text("".join(lines), encoding="utf-8")
  expect_error(lambda: load_generic(f), "outcomes.jsonl", "line 5", "got 'abc'")


def test_generic_unknown_model_with_cards(tmp_path):
  rows = [list(r) for r in ROWS]
  rows[3][2] = "zeta"  # line 5
  expect_error(
    lambda: load_generic(
      write_csv(tmp_path, rows), model_cards=write_json(tmp_path, "cards.json", CARDS)
    ),
    "outcomes.csv",
    "line 5, field 'model'",
    "unknown model 'zeta'",
    "cards.json",
  )


def test_generic_duplicate_query_model_row(tmp_path):
  rows = [list(r) for r in ROWS]
  rows.insert(2, ["q1", "math", "a", "0", "train"])  # line 4 repeats line 2
  expect_error(
    lambda: load_generic(write_csv(tmp_path, rows)),
    "outcomes.csv",
    "line 4",
    "duplicate (query, model) row; first seen on line 2",
  )


@pytest.mark.parametrize(
  "value, expected",
  [
    ("nan", "expected a number in [0, 1], got 'nan'"),
    ("abc", "expected a number in [0, 1], got 'abc'"),
    ("1.5", "expected a number in [0, 1], got 1.5"),
    ("-0.1", "expected a number in [0, 1], got -0.1"),
    ("", "expected a number in [0, 1], got ''"),
  ],
  ids=["nan", "abc", "above_1", "below_0", "empty"],
)
def test_generic_bad_performance_csv(tmp_path, value, expected):
  rows = [list(r) for r in ROWS]
  rows[4][3] = value  # line 6
  expect_error(
    lambda: load_generic(write_csv(tmp_path, rows)),
    "outcomes.csv",
    "line 6, field 'performance'",
    expected,
  )


def test_generic_nan_performance_jsonl(tmp_path):
  f = tmp_path / "outcomes.jsonl"
  recs = [dict(zip(HEADER, r, strict=True)) for r in ROWS]
  for r in recs:
    r["performance"] = float(r["performance"])
  recs[1]["performance"] = float("nan")  # json writes the NaN literal
  f.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
  expect_error(
    lambda: load_generic(f),
    "outcomes.jsonl",
    "line 2, field 'performance'",
    "expected a finite number in [0, 1], got nan",
  )


def test_generic_bad_split(tmp_path):
  rows = [list(r) for r in ROWS]
  rows[1][4] = "dev"  # line 3
  expect_error(
    lambda: load_generic(write_csv(tmp_path, rows)),
    "outcomes.csv",
    "line 3, field 'split'",
    "expected 'train' or 'test', got 'dev'",
  )


def test_generic_query_both_train_and_test(tmp_path):
  rows = [list(r) for r in ROWS]
  rows[1][4] = "test"  # q1 is train on line 2, test on line 3
  expect_error(
    lambda: load_generic(write_csv(tmp_path, rows)),
    "outcomes.csv",
    "line 3, field 'split'",
    "both train and test",
  )


def test_generic_empty_candidate_set(tmp_path):
  expect_error(
    lambda: load_generic(write_csv(tmp_path), candidates=()),
    "outcomes.csv",
    "candidates",
    "empty candidate set",
  )


def test_generic_candidate_not_in_pool(tmp_path):
  expect_error(
    lambda: load_generic(write_csv(tmp_path), candidates=("a", "zeta")),
    "outcomes.csv",
    "candidates",
    "candidate 'zeta' is not in the model pool",
  )


def test_generic_held_out_not_in_pool(tmp_path):
  expect_error(
    lambda: load_generic(write_csv(tmp_path), held_out=("zeta",)),
    "outcomes.csv",
    "held_out",
    "held-out model 'zeta' is not in the model pool",
  )


def test_generic_held_out_not_a_candidate(tmp_path):
  expect_error(
    lambda: load_generic(write_csv(tmp_path), candidates=("a",), held_out=("b",)),
    "outcomes.csv",
    "held_out",
    "held-out model 'b' is not a candidate",
  )


def test_generic_test_query_missing_candidate(tmp_path):
  rows = [r for r in ROWS if not (r[0] == "q3" and r[2] == "b")]
  expect_error(
    lambda: load_generic(write_csv(tmp_path, rows)),
    "outcomes.csv",
    "test query 'q3' (task 'math')",
    "no row for candidate 'b'",
  )


def test_generic_unknown_family(tmp_path):
  cards = json.loads(json.dumps(CARDS))
  cards["b"]["family"] = "F9"
  expect_error(
    lambda: load_generic(
      write_csv(tmp_path),
      model_cards=write_json(tmp_path, "cards.json", cards),
      families=write_json(tmp_path, "families.json", {"F1": "one", "F2": "two"}),
    ),
    "cards.json",
    "model 'b', field 'family'",
    "unknown family 'F9'",
    "families.json",
  )


def test_generic_unknown_task_in_domains(tmp_path):
  expect_error(
    lambda: load_generic(
      write_csv(tmp_path),
      domains=write_json(tmp_path, "domains.json", {"d": {"text": "D.", "tasks": ["chess"]}}),
    ),
    "domains.json",
    "domain 'd', field 'tasks'",
    "unknown task 'chess'",
  )


def test_generic_domain_tasks_not_a_list(tmp_path):
  expect_error(
    lambda: load_generic(
      write_csv(tmp_path),
      domains=write_json(tmp_path, "domains.json", {"d": {"text": "D.", "tasks": "math"}}),
    ),
    "domains.json",
    "domain 'd', field 'tasks'",
    "expected a list",
  )


def test_generic_unknown_domain_in_tasks(tmp_path):
  expect_error(
    lambda: load_generic(
      write_csv(tmp_path),
      tasks=write_json(tmp_path, "tasks.json", {"math": {"text": "M.", "domains": ["art"]}}),
      domains=write_json(tmp_path, "domains.json", {"d": "D."}),
    ),
    "tasks.json",
    "task 'math', field 'domains'",
    "unknown domain 'art'",
  )


def test_generic_bad_score_in_cards(tmp_path):
  cards = json.loads(json.dumps(CARDS))
  cards["a"]["scores"]["math"] = "high"
  expect_error(
    lambda: load_generic(
      write_csv(tmp_path), model_cards=write_json(tmp_path, "cards.json", cards)
    ),
    "cards.json",
    "model 'a', field 'scores', key 'math'",
    "expected a number",
    "'high'",
  )


def test_generic_csv_with_byte_order_mark(tmp_path):
  f = write_csv(tmp_path)
  f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
  assert load_generic(f).query_texts == ("q1", "q2", "q3")


# -- io -------------------------------------------------------------------------------------------


def test_atomic_write_keeps_old_file_on_error(tmp_path):
  f = tmp_path / "out.json"
  rio.write_json(f, {"v": 1})
  with pytest.raises(RuntimeError, match="boom"), rio.atomic_write(f) as fh:
    fh.write('{"v": 2, "half')
    raise RuntimeError("boom")
  assert json.loads(f.read_text(encoding="utf-8")) == {"v": 1}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temp file left


def test_atomic_write_unserialisable_json_keeps_old_file(tmp_path):
  f = tmp_path / "out.json"
  rio.write_json(f, {"v": 1})
  with pytest.raises(TypeError):
    rio.write_json(f, {"v": 2, "bad": _Sentinel()})
  assert json.loads(f.read_text(encoding="utf-8")) == {"v": 1}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_write_replaces_on_success(tmp_path):
  f = tmp_path / "sub" / "out.txt"
  rio.write_text(f, "one")
  rio.write_text(f, "two")
  assert f.read_text(encoding="utf-8") == "two"
  assert sorted(p.name for p in f.parent.iterdir()) == ["out.txt"]


def test_write_npz_refuses_object_arrays(tmp_path):
  f = tmp_path / "x.npz"
  with pytest.raises(TypeError, match="dtype object"):
    rio.write_npz(f, {"ok": np.zeros(3), "bad": np.array([{"a": 1}, None], dtype=object)})
  assert not f.exists()
  assert list(tmp_path.iterdir()) == []
  rio.write_npz(f, {"ok": np.arange(3.0)})
  np.testing.assert_array_equal(rio.read_npz(f)["ok"], np.arange(3.0))
