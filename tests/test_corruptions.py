"""Random corruptions of valid inputs: every loader and converter loads or raises a DataError.

Property-based (hypothesis). Each test starts from a small valid input written into a temporary
folder, applies a few random corruptions (dropped / renamed columns, bad numbers, NaN, empty and
huge cells, blank / ragged / duplicated / dropped rows, latin-1 or UTF-16 bytes, truncation, gzip)
and checks that the reader either loads the result or raises a DataError whose message names the
file; any other exception fails. Where a single cell is made a bad number, the error must name
its row. A converter's table, when it converts, must load with ``load_generic``. The generic
loader's column-wise reader must agree with the row-by-row reference on every input: the same
table, or the same error message.

Examples per test: ``RP_JAX_HYPOTHESIS_EXAMPLES`` (default 100; ``.ci/run`` sets 1000);
derandomized, so a run is reproducible.
"""

import contextlib
import csv
import gzip
import io
import json
import math
import os
import pathlib
import tempfile

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rp_jax.data import columns, load_generic, table
from rp_jax.data.convert import convert_matrix, convert_records, convert_routerbench
from rp_jax.types import DataError

SETTINGS = settings(
  max_examples=int(os.environ.get("RP_JAX_HYPOTHESIS_EXAMPLES", "100")),
  deadline=None,
  derandomize=True,
  database=None,
  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- corruptions ----------------------------------------------------------------------------------

HUGE = "x" * 200_000  # beyond the csv module's field limit
TEXTS = [
  "", " ", "abc", "nan", "NaN", "inf", "-inf", "-1", "1.5", "2", "1e400", "None", "null", "[",
  "['x'", "[1, 2]", "{[1]: 2}", "'", '"', "\u00e9", "train", "test", "0", "1", "0.5", "\x00",
  "a,b", "two\nlines", HUGE,
]  # fmt: skip
TEXT = st.one_of(st.sampled_from(TEXTS), st.text(max_size=8))
JSON_VALUE = st.one_of(
  TEXT,
  st.none(),
  st.booleans(),
  st.integers(-3, 3),
  st.just(10**400),
  st.floats(allow_nan=True, allow_infinity=True),
  st.lists(st.integers(0, 2), max_size=2),
  st.dictionaries(st.text(max_size=2), st.integers(0, 1), max_size=2),
)
NAMES = st.sampled_from(["", "query ", "Query", "model", "split", "prompt", "x|total_cost", "item"])
IDX = st.integers(0, 60)
OP = st.one_of(
  st.tuples(st.just("drop_column"), IDX),
  st.tuples(st.just("rename_column"), IDX, NAMES),
  st.tuples(st.just("cell"), IDX, IDX, TEXT, JSON_VALUE),
  st.tuples(st.just("copy_cell"), IDX, IDX, IDX),  # another row's value: conflicts, repeats
  st.tuples(st.just("drop_key"), IDX, IDX),
  st.tuples(st.just("duplicate_row"), IDX),
  st.tuples(st.just("drop_row"), IDX),
  st.tuples(st.just("blank_row"), IDX),
  st.tuples(st.just("ragged_row"), IDX),
)
OPS = st.lists(OP, min_size=1, max_size=3)
# How the text becomes bytes: encoding, and truncation (a fraction of the bytes kept) before or
# after gzip.
BYTES = st.tuples(
  st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]),
  st.one_of(st.none(), st.floats(0, 1)),
  st.booleans(),
)


def corrupt(header: list[str], rows: list[list], ops) -> tuple[list[str], list]:
  """Applies the ops to a table of cells; a row becomes None (blank) or shorter (ragged)."""
  header, rows = list(header), [list(r) for r in rows]
  for op in ops:
    kind, i = op[0], op[1]
    r = i % max(len(rows), 1)
    live = rows and rows[r] is not None
    if kind == "drop_column" and header:
      j = i % len(header)
      header.pop(j)
      rows = [None if x is None else x[:j] + x[j + 1 :] for x in rows]
    elif kind == "rename_column" and header:
      header[i % len(header)] = op[2]
    elif kind == "cell" and live and rows[r]:
      rows[r][op[2] % len(rows[r])] = ("text", op[3], op[4])
    elif kind == "copy_cell" and live and rows[r]:
      src = rows[op[2] % len(rows)]
      j = op[3] % len(rows[r])
      if src is not None and j < len(src):
        rows[r][j] = src[j]
    elif kind == "drop_key" and live and rows[r]:
      rows[r][op[2] % len(rows[r])] = ("absent",)
    elif kind == "duplicate_row" and rows:
      rows.insert(r, rows[r])
    elif kind == "drop_row" and rows:
      rows.pop(r)
    elif kind == "blank_row":
      rows.insert(r, None)
    elif kind == "ragged_row" and live and rows[r]:
      rows[r] = rows[r][:-1]
  return header, rows


def _text(cell):
  return (
    cell[1]
    if isinstance(cell, tuple) and cell[0] == "text"
    else ""
    if cell == ("absent",)
    else cell
  )


def _json(cell):
  return cell[2] if isinstance(cell, tuple) and cell[0] == "text" else cell


def csv_text(header, rows) -> str:
  out = io.StringIO()
  w = csv.writer(out, lineterminator="\n")
  w.writerow(header)
  for r in rows:
    w.writerow([] if r is None else [_text(c) for c in r])
  return out.getvalue()


def json_objects(header, rows) -> list:
  objs = []
  for r in rows:
    if r is None:
      objs.append(None)
      continue
    pairs = zip(header, r, strict=False)
    objs.append({k: _json(v) for k, v in pairs if v != ("absent",)})
  return objs


def jsonl_text(header, rows) -> str:
  return "".join("\n" if o is None else json.dumps(o) + "\n" for o in json_objects(header, rows))


def to_bytes(text: str, how, gz: bool) -> bytes:
  encoding, keep, after_gzip = how
  data = text.encode(encoding, errors="replace")
  cut = lambda b: b if keep is None else b[: int(len(b) * keep)]
  if not gz:
    return cut(data)
  return cut(gzip.compress(data, mtime=0)) if after_gzip else gzip.compress(cut(data), mtime=0)


@contextlib.contextmanager
def folder():
  with tempfile.TemporaryDirectory(prefix="rp_jax_corrupt_") as d:
    yield pathlib.Path(d)


def loads_or_names(fn, *names: str):
  """Runs fn: a result, or a DataError whose source is one of ``names`` (file or folder names)."""
  try:
    out = fn()
  except DataError as e:
    assert pathlib.Path(e.source).name in names, f"{e} does not name any of {names}"
    assert any(n in str(e) for n in names), str(e)
    event("DataError")  # --hypothesis-show-statistics: how often each outcome occurs
    return e
  event("loaded")
  return out


# -- the generic table ----------------------------------------------------------------------------

G_HEADER = ["query", "task", "model", "performance", "split", "cost", "metric", "prompt"]
G_ROWS = [
  ["q1", "math", "a", "1", "train", "0.01", "em_mc", "P1"],
  ["q1", "math", "b", "0", "train", "", "em_mc", "P1"],
  ["q2", "code", "a", "0.5", "train", "0.02", "", ""],
  ["q2", "code", "b", "0.25", "train", "", "", ""],
  ["q3", "math", "a", "1", "test", "0.03", "em_mc", ""],
  ["q3", "math", "b", "0", "test", "0.04", "em_mc", ""],
]
G_JSON = [  # the same rows with JSON numbers and nulls
  [*r[:3], float(r[3]), r[4], float(r[5]) if r[5] else None, r[6] or None, r[7] or None]
  for r in G_ROWS
]


def _same_table(a: table.Table, b: table.Table) -> None:
  for f in ("model_names", "task_names", "q_text", "q_task", "q_split", "metrics", "prompts"):
    assert getattr(a, f) == getattr(b, f), f
  assert a.metric_line == b.metric_line and a.prompt_line == b.prompt_line
  np.testing.assert_array_equal(
    np.asarray(a.recs, np.float64).reshape(-1, 6), np.asarray(b.recs, np.float64).reshape(-1, 6)
  )


def check_columns_match_rows(path: pathlib.Path) -> None:
  """The column-wise reader gives read_rows's table, or read_rows's exact error."""
  try:
    c = columns.read_columns(path)
  except DataError:
    return
  src = str(path)
  got = want = None
  try:
    got = table.table_from_columns(c, src, {}, None)
  except DataError as e:
    got = str(e)
  try:
    want = table.read_rows([c.row(i) for i in range(len(c))], src, {}, None)
  except DataError as e:
    want = str(e)
  if isinstance(want, str) or isinstance(got, str):
    assert got == want
  else:
    _same_table(got, want)


@SETTINGS
@given(ops=OPS, how=BYTES, form=st.sampled_from(["csv", "jsonl", "csv.gz", "jsonl.gz"]))
def test_generic_table_corruptions(ops, how, form):
  json_form = form.startswith("jsonl")
  header, rows = corrupt(G_HEADER, G_JSON if json_form else G_ROWS, ops)
  text = jsonl_text(header, rows) if json_form else csv_text(header, rows)
  with folder() as d:
    p = d / f"outcomes.{form}"
    p.write_bytes(to_bytes(text, how, form.endswith(".gz")))
    loads_or_names(lambda: load_generic(p), p.name)
    check_columns_match_rows(p)


# Per column, values that make conflicts (one split / metric / prompt per query or task, one row
# per query x model) and bad cells likely; a CSV cell holds str(value), None as empty.
POOLS = {
  "query": ["q1", "q2", "q3", "", " ", None, 7],
  "task": ["math", "code", "", None, ["x"]],
  "model": ["a", "b", "c", "", None, {"m": 1}],
  "performance": ["1", "0", "0.5", "abc", "", "nan", "2", "-1", "inf", None, 1, 0.5, True,
                  10**400, float("nan"), [1]],
  "split": ["train", "test", "", "dev", " test", None, 0, 1, False],
  "cost": ["", "0.1", "-1", "x", None, 1e13, 0, "1_0"],
  "metric": ["em_mc", "EM_MC ", "f1_score", "", " ", None, 3],
  "prompt": ["P1", "P2", "", " ", None, 5],
}  # fmt: skip
EDITS = st.lists(
  st.tuples(st.integers(0, 5), st.sampled_from(G_HEADER), st.integers(0, 20)),
  min_size=1,
  max_size=5,
)


@SETTINGS
@given(edits=EDITS, ops=st.lists(OP, max_size=1), json_form=st.booleans())
def test_generic_column_reader_equals_row_reader(edits, ops, json_form):
  rows = [list(r) for r in (G_JSON if json_form else G_ROWS)]
  for r, col, k in edits:
    v = POOLS[col][k % len(POOLS[col])]
    rows[r][G_HEADER.index(col)] = v if json_form else "" if v is None else str(v)
  header, rows = corrupt(G_HEADER, rows, ops)
  with folder() as d:
    p = d / ("t.jsonl" if json_form else "t.csv")
    p.write_text(jsonl_text(header, rows) if json_form else csv_text(header, rows), "utf-8")
    check_columns_match_rows(p)
    loads_or_names(lambda: load_generic(p), p.name)


def test_generic_every_single_edit_matches_row_reader():
  """Not random: each pool value in each cell, in both forms (about 900 tiny tables)."""
  with folder() as d:
    for json_form in (False, True):
      base = G_JSON if json_form else G_ROWS
      p = d / ("t.jsonl" if json_form else "t.csv")
      for r in range(len(base)):
        for col, pool in POOLS.items():
          for v in pool:
            rows = [list(x) for x in base]
            rows[r][G_HEADER.index(col)] = v if json_form else "" if v is None else str(v)
            text = jsonl_text(G_HEADER, rows) if json_form else csv_text(G_HEADER, rows)
            p.write_text(text, "utf-8")
            check_columns_match_rows(p)


BAD_NUMBERS = st.sampled_from(["abc", "1.5", "-1", "inf", "2", "[1]", "1e400"])


@SETTINGS
@given(row=st.integers(0, 5), value=BAD_NUMBERS, json_form=st.booleans())
def test_generic_bad_number_names_its_row(row, value, json_form):
  rows = [list(r) for r in (G_JSON if json_form else G_ROWS)]
  rows[row][3] = value
  with folder() as d:
    if json_form:
      p = d / "t.jsonl"
      p.write_text(jsonl_text(G_HEADER, rows), "utf-8")
      line = row + 1
    else:
      p = d / "t.csv"
      p.write_text(csv_text(G_HEADER, rows), "utf-8")
      line = row + 2
    e = loads_or_names(lambda: load_generic(p), p.name)
    assert isinstance(e, DataError) and e.where == f"line {line}, field 'performance'", e


# -- RouterBench ----------------------------------------------------------------------------------

RB_MODELS = ("org/m-7b", "m2", "m3")
RB_HEADER = [
  "", "sample_id", "prompt", "eval_name", *RB_MODELS,
  *(f"{m}|model_response" for m in RB_MODELS), *(f"{m}|total_cost" for m in RB_MODELS),
  "oracle_model_to_route_to",
]  # fmt: skip


def rb_rows(split: str) -> list[list[str]]:
  out = []
  for i in range(3):
    outcome = [str(float((i + j) % 2)) for j in range(3)]
    resp = [repr([f"answer {j} {i}"]) for j in range(3)]
    cost = [repr(1e-5 * (i + j + 1)) for j in range(3)]
    prompt = repr([f"{split} question {i}?"])
    out.append([str(i), f"arc.{split}.{i}", prompt, "arc-challenge", *outcome, *resp, *cost, "m2"])
  return out


@SETTINGS
@given(ops=OPS, how=BYTES, target=st.sampled_from(["arc_train.csv", "arc_test.csv"]))
def test_routerbench_corruptions(ops, how, target):
  with folder() as d:
    for name in ("arc_train.csv", "arc_test.csv"):
      header, rows = RB_HEADER, rb_rows(name[4:-4])
      if name == target:
        header, rows = corrupt(header, rows, ops)
      (d / name).write_bytes(
        to_bytes(csv_text(header, rows), how if name == target else ("utf-8", None, False), False)
      )
    conv = loads_or_names(lambda: convert_routerbench(d), "arc_train.csv", "arc_test.csv", d.name)
    if not isinstance(conv, DataError):
      load_generic(conv.frame)  # a converted table always loads


LITERALS = [
  "{[1]: 2}", "['x'", "[1, 2]", "[]", "'x'", "None", "", "[['a']]", "['a', 'b']", "(1,",
  "[" * 300, "\x00", "['\\x']", "b'x'", "{1, 2}", "[' ']", "1 +", "['q', 3]", "{'a': 1}",
]  # fmt: skip


@SETTINGS
@given(
  row=st.integers(0, 2),
  literal=st.one_of(st.sampled_from(LITERALS), st.text(max_size=6)),
  split=st.sampled_from(["train", "test"]),
)
def test_routerbench_prompt_literals(row, literal, split):
  rows = rb_rows(split)
  rows[row][2] = literal
  with folder() as d:
    (d / f"arc_{split}.csv").write_text(csv_text(RB_HEADER, rows), "utf-8")
    conv = loads_or_names(lambda: convert_routerbench(d), f"arc_{split}.csv")
    if isinstance(conv, DataError):
      assert conv.where.startswith(f"line {row + 2}"), conv
    else:
      load_generic(conv.frame)


@SETTINGS
@given(row=st.integers(0, 2), model=st.integers(0, 2), value=BAD_NUMBERS)
def test_routerbench_bad_outcome_names_its_row(row, model, value):
  rows = rb_rows("test")
  rows[row][4 + model] = value
  with folder() as d:
    (d / "arc_test.csv").write_text(csv_text(RB_HEADER, rows), "utf-8")
    e = loads_or_names(lambda: convert_routerbench(d), "arc_test.csv")
    assert isinstance(e, DataError) and e.where == f"line {row + 2}, field {RB_MODELS[model]!r}"


# -- records --------------------------------------------------------------------------------------

R_HEADER = ["question", "scores", "task", "split", "prompt"]
R_ROWS = [
  ["2+2?", {"a": 1, "b": 0}, "math", "train", "Q: 2+2?"],
  ["3+3?", {"a": 0.5, "b": None}, "math", "train", None],
  ["Capital of France?", {"a": 1, "b": 1}, "geo", "test", None],
]


@SETTINGS
@given(ops=OPS, how=BYTES, form=st.sampled_from(["jsonl", "json", "jsonl.gz"]))
def test_records_corruptions(ops, how, form):
  header, rows = corrupt(R_HEADER, R_ROWS, ops)
  if form == "json":
    text = json.dumps([{} if o is None else o for o in json_objects(header, rows)])
  else:
    text = jsonl_text(header, rows)
  with folder() as d:
    p = d / f"records.{form}"
    p.write_bytes(to_bytes(text, how, form.endswith(".gz")))
    conv = loads_or_names(lambda: convert_records(p), p.name)
    if not isinstance(conv, DataError):
      load_generic(conv.frame)


@SETTINGS
@given(row=st.integers(0, 2), value=BAD_NUMBERS, json_list=st.booleans())
def test_records_bad_score_names_its_row(row, value, json_list):
  objs = json_objects(R_HEADER, [[*r[:1], dict(r[1]), *r[2:]] for r in R_ROWS])
  objs[row]["scores"]["a"] = value
  with folder() as d:
    p = d / ("r.json" if json_list else "r.jsonl")
    p.write_text(json.dumps(objs) if json_list else "".join(json.dumps(o) + "\n" for o in objs))
    e = loads_or_names(lambda: convert_records(p), p.name)
    label = f"record {row + 1}" if json_list else f"line {row + 1}"
    assert isinstance(e, DataError) and e.where == f"{label}, field 'scores', key 'a'", e


# -- matrix ---------------------------------------------------------------------------------------

M_HEADER = ["model", "i1", "i2", "i3"]
M_ROWS = [["m1", "1", "0", "1"], ["m2", "0", "", "1"], ["m3", "0.5", "1", "0"]]
I_HEADER = ["item", "text", "task", "split"]
I_ROWS = [["i1", "Q one", "t", "train"], ["i2", "Q two", "t", "train"], ["i3", "", "u", "test"]]


@SETTINGS
@given(ops=OPS, how=BYTES, target=st.sampled_from(["matrix.csv", "items.csv"]))
def test_matrix_csv_corruptions(ops, how, target):
  with folder() as d:
    for name, header, rows in (("matrix.csv", M_HEADER, M_ROWS), ("items.csv", I_HEADER, I_ROWS)):
      if name == target:
        header, rows = corrupt(header, rows, ops)
      plain = ("utf-8", None, False)
      (d / name).write_bytes(
        to_bytes(csv_text(header, rows), how if name == target else plain, False)
      )
    conv = loads_or_names(
      lambda: convert_matrix([d / "matrix.csv", d / "items.csv"]), "matrix.csv", "items.csv"
    )
    if not isinstance(conv, DataError):
      load_generic(conv.frame)


@SETTINGS
@given(row=st.integers(0, 2), item=st.integers(0, 2), value=BAD_NUMBERS)
def test_matrix_bad_cell_names_its_row(row, item, value):
  rows = [list(r) for r in M_ROWS]
  rows[row][1 + item] = value
  with folder() as d:
    p = d / "matrix.csv"
    p.write_text(csv_text(M_HEADER, rows), "utf-8")
    e = loads_or_names(lambda: convert_matrix(p), p.name)
    assert isinstance(e, DataError) and e.where == f"line {row + 2}, field 'i{item + 1}'", e


NPZ_OP = st.one_of(
  st.tuples(st.just("cell"), IDX, IDX, st.floats(allow_nan=True, allow_infinity=True)),
  st.tuples(st.just("drop"), st.sampled_from(["outcomes", "models", "items", "texts", "splits"])),
  st.tuples(st.just("object"), st.sampled_from(["outcomes", "models", "items", "texts"])),
  st.tuples(st.just("ints"), st.sampled_from(["models", "items", "splits"])),
  st.tuples(
    st.just("transpose"),
  ),
  st.tuples(st.just("split"), IDX, TEXT),
  st.tuples(st.just("name"), st.sampled_from(["models", "items", "texts"]), IDX, TEXT),
)


@SETTINGS
@given(ops=st.lists(NPZ_OP, min_size=1, max_size=3), keep=st.one_of(st.none(), st.floats(0, 1)))
def test_matrix_npz_corruptions(ops, keep):
  arrays = {
    "outcomes": np.array([[1, 0, np.nan], [0, 1, 1], [1, 1, 0]]),
    "models": np.array(["m1", "m2", "m3"]),
    "items": np.array(["i1", "i2", "i3"]),
    "texts": np.array(["Q one", "Q two", "Q three"]),
    "splits": np.array(["train", "train", "test"]),
  }
  for op in ops:
    if op[0] == "cell" and "outcomes" in arrays and arrays["outcomes"].ndim == 2:
      o = arrays["outcomes"]
      o[op[1] % o.shape[0], op[2] % o.shape[1]] = op[3]
    elif op[0] == "drop":
      arrays.pop(op[1], None)
    elif op[0] == "object" and op[1] in arrays:
      arrays[op[1]] = np.array([*arrays[op[1]].tolist(), None], dtype=object)
    elif op[0] == "ints" and op[1] in arrays:
      arrays[op[1]] = np.arange(3)
    elif op[0] == "transpose" and "outcomes" in arrays:
      arrays["outcomes"] = arrays["outcomes"].T[:2]
    elif op[0] in ("split", "name"):
      key = "splits" if op[0] == "split" else op[1]
      if key in arrays and arrays[key].dtype.kind == "U":
        a = arrays[key].astype(object)
        a[op[-2] % len(a)] = op[-1]
        arrays[key] = a.astype(str)
  with folder() as d:
    p = d / "m.npz"
    with open(p, "wb") as f:
      np.savez(f, **arrays)
    if keep is not None:
      p.write_bytes(p.read_bytes()[: int(p.stat().st_size * keep)])
    conv = loads_or_names(lambda: convert_matrix(p), p.name)
    if not isinstance(conv, DataError):
      load_generic(conv.frame)
      assert not math.isnan(conv.frame["performance"].sum())
