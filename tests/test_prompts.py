"""The prompt a router sees (History.query_prompts): layouts, inference, loaders, synthetic."""

import hashlib
import json

import numpy as np
import pytest

from rp_jax.data import generic as gen
from rp_jax.data import load_generic, load_routeprofile, make_history
from rp_jax.data import prompts as P
from rp_jax.data import routeprofile as rp
from rp_jax.data import validate as V
from rp_jax.data.synthetic import TINY_SIZES
from rp_jax.types import DataError

MMLU_SYS = (
  "Answer the following multiple-choice question by selecting the correct option (A, B, C, or "
  "D). You MUST put your final answer letter in a parenthesis.\n"
)


# -- layouts and inference, on tiny hand-made rows --------------------------------------------------

# One task per layout: two stored rows that fix the layout, and a third query (with its choices)
# whose rendering is written out by hand.
EXAMPLES = {
  "raw": (
    None,
    [("who wrote hamlet", None, "who wrote hamlet"), ("capital of peru", None, "capital of peru")],
    ("largest ocean", None, "largest ocean"),
  ),
  "question": (
    "Answer the following math question step by step.\n",
    [("1+1?", None, "Question: 1+1?"), ("2*3?", None, "Question: 2*3?")],
    ("5-2?", None, "Question: 5-2?"),
  ),
  "complete_function": (
    "Implement the body.\n",
    [("def f():\n", None, "Complete the following function:\n\ndef f():\n")] * 2,
    ("def g(x):\n  pass", None, "Complete the following function:\n\ndef g(x):\n  pass"),
  ),
  "code_tests": (
    "You are an expert Python programmer.\n",
    [
      (
        "Add two numbers.",
        "['assert add(1, 2) == 3', 'assert add(0, 0) == 0']",
        "Task: Add two numbers.\n\nYour code should pass these tests:\n\n"
        "assert add(1, 2) == 3\nassert add(0, 0) == 0",
      )
    ],
    (
      "Negate.",
      ["assert neg(1) == -1"],
      "Task: Negate.\n\nYour code should pass these tests:\n\nassert neg(1) == -1",
    ),
  ),
  "markdown_options": (
    MMLU_SYS,
    [
      (
        "Pick one.",
        "['red', 'blue']",
        "## Question:\nPick one.\n\n## Options:\nA. red\nB. blue\n",
      )
    ],
    (
      "Which?",
      ["x", "y", "z"],
      "## Question:\nWhich?\n\n## Options:\nA. x\nB. y\nC. z\n",
    ),
  ),
  "labelled_options": (
    MMLU_SYS,
    [
      (
        "Where?",
        "{'label': ['A', 'B'], 'text': ['home', 'shed']}",
        "Question: Where?\n\n(A) home\n(B) shed",
      ),
      (
        "When?",
        "{'text': ['now', 'later'], 'label': ['A', 'B']}",
        "Question: When?\n\n(A) now\n(B) later",
      ),
    ],
    (
      "Who?",
      {"labels": ["1", "2"], "text": ["me", "you"]},
      "Question: Who?\n\n(1) me\n(2) you",
    ),
  ),
}


def _rows(task, system, stored):
  return [
    {"task_name": task, "query": q, "choices": c, "formatted_query": {"system": system, "user": u}}
    for q, c, u in stored
  ]


@pytest.mark.parametrize("layout", list(EXAMPLES))
def test_each_layout_is_inferred_and_renders_exactly(layout):
  system, stored, (query, choices, want_user) = EXAMPLES[layout]
  rows = _rows(f"task-{layout}", system, stored)
  rows.append({"task_name": "no-template", "query": "plain", "choices": None})
  rows = json.loads(json.dumps(rows))  # as read from a file
  formats, notes = P.infer_formats(rows, "routing_test_data.json")
  assert formats[f"task-{layout}"] == P.PromptFormat(layout, system)
  assert formats["no-template"] == P.RAW
  assert f"task-{layout} {layout}" in notes[0] and "raw query: no-template" in notes[0]
  assert P.render(formats[f"task-{layout}"], query, choices) == (system, want_user)
  want = want_user if system is None else system.rstrip("\n") + "\n\n" + want_user
  assert P.prompt_text(formats[f"task-{layout}"], query, choices) == want


def test_join_rule():
  assert P.join_prompt(None, "u") == "u"
  assert P.join_prompt("", "u") == "u"
  assert P.join_prompt("sys", "u") == "sys\n\nu"
  assert P.join_prompt("sys\n", "u") == "sys\n\nu"  # the release's lines end with "\n"


def test_unreproducible_or_inconsistent_prompts_fall_back_to_raw():
  odd = _rows("odd", "S\n", [("q1", None, "Q: q1"), ("q2", None, "Q: q2")])
  two_sys = _rows("two", "S\n", [("q1", None, "Question: q1")]) + _rows(
    "two", "T\n", [("q2", None, "Question: q2")]
  )
  # One row of "half" breaks an otherwise exact "question" layout.
  half = _rows("half", None, [("q1", None, "Question: q1"), ("q2", None, "Question:  q2")])
  formats, notes = P.infer_formats(odd + two_sys + half, "f.json")
  assert formats == {"odd": P.RAW, "two": P.RAW, "half": P.RAW}
  assert "odd (no layout reproduces all 2 stored prompts, first on row 0)" in notes[1]
  assert "two (2 different system lines)" in notes[1]
  assert "half (no layout" in notes[1]


def test_layout_errors_and_bad_stored_prompts():
  with pytest.raises(P.LayoutError, match="markdown_options"):
    P.render(P.PromptFormat("markdown_options"), "q", None)
  with pytest.raises(P.LayoutError, match="labelled_options"):
    P.render(P.PromptFormat("labelled_options"), "q", ["a", "b"])
  with pytest.raises(P.LayoutError, match="labelled_options"):
    P.render(P.PromptFormat("labelled_options"), "q", {"label": ["A"], "text": ["a", "b"]})
  with pytest.raises(ValueError, match="unknown prompt layout"):
    P.PromptFormat("fancy")
  rows = [{"task_name": "t", "query": "q", "formatted_query": "just a string"}]
  with pytest.raises(DataError, match=r"f\.json, row 0, field 'formatted_query'"):
    P.infer_formats(rows, "f.json")
  rows = [{"task_name": "t", "query": "q", "formatted_query": {"system": 3, "user": "q"}}]
  with pytest.raises(DataError, match="formatted_query'.system"):
    P.infer_formats(rows, "f.json")
  rows = [{"task_name": "t", "query": "q", "formatted_query": {"system": None}}]
  with pytest.raises(DataError, match="missing field 'user'"):
    P.infer_formats(rows, "f.json")


def test_fill_prompts_stored_rendered_and_errors(tmp_path):
  """Test rows keep their stored prompt; training queries are rendered with the task's format."""
  tasks = ["mc", "free"]
  qt = rp.QueryTable(tasks, tmp_path / "task_feature.json", include_choices=False)
  test_rows = [
    {
      "task_name": "mc",
      "query": "Pick.",
      "choices": "['a', 'b']",
      "formatted_query": {
        "system": "S\n",
        "user": "## Question:\nPick.\n\n## Options:\nA. a\nB. b\n",
      },
    },
    {"task_name": "mc", "query": "Again.", "choices": "['c', 'd']"},  # no stored prompt
    {"task_name": "free", "query": "Say hi."},
  ]
  for r, row in enumerate(test_rows):
    qt.add(tasks.index(row["task_name"]), qt.query_of(row, "t.json", f"row {r}"), 1, False)
  qt.add(0, ("Train.", "Train.", ["e", "f"]), 0, True, ("train.jsonl", "line 1"))
  qt.add(1, ("Hey.", "Hey.", None), 0, True, ("train.jsonl", "line 2"))
  notes = []
  got = rp.fill_prompts(qt, test_rows, "t.json", notes)
  assert got == [
    "S\n\n## Question:\nPick.\n\n## Options:\nA. a\nB. b\n",
    "S\n\n## Question:\nAgain.\n\n## Options:\nA. c\nB. d\n",
    "Say hi.",
    "S\n\n## Question:\nTrain.\n\n## Options:\nA. e\nB. f\n",
    "Hey.",
  ]
  assert "mc markdown_options" in notes[0]
  # A training query whose choices do not fit its task's layout: the error names its row.
  qt.add(0, ("Bad.", "Bad.", None), 0, True, ("train.jsonl", "line 9"))
  with pytest.raises(DataError, match=r"train\.jsonl, line 9, field 'choices': task 'mc'"):
    rp.fill_prompts(qt, test_rows, "t.json", [])


# -- the public release -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release(data_dir):
  test_rows = json.loads((data_dir / "route_data" / "routing_test_data.json").read_text("utf-8"))
  return test_rows, load_routeprofile(data_dir, "standard")


WANT_LAYOUTS = {
  "natural_qa": "raw",
  "trivia_qa": "raw",
  "mmlu": "markdown_options",
  "mbpp": "code_tests",
  "human_eval": "complete_function",
  "gsm8k": "question",
  "commonsense_qa": "labelled_options",
  "openbook_qa": "labelled_options",
  "arc_challenge": "labelled_options",
  "agentverse-logicgrid": "raw",
  "agentverse-mgsm": "raw",
  "commongen": "raw",
}


@pytest.mark.real_data
def test_real_all_450_stored_prompts_are_reproduced(release):
  test_rows, _ = release
  formats, notes = P.infer_formats(test_rows, "routing_test_data.json")
  assert {t: f.layout for t, f in formats.items()} == WANT_LAYOUTS
  assert formats["mmlu"].system == MMLU_SYS
  assert formats["gsm8k"].system == "Answer the following math question step by step.\n"
  assert formats["natural_qa"].system is None
  assert len(notes) == 1 and "all 450 stored prompts" in notes[0]
  n = 0
  for r, row in enumerate(test_rows):
    fq = row.get("formatted_query")
    if fq is None:
      assert row["task_name"] in ("agentverse-logicgrid", "agentverse-mgsm", "commongen")
      continue
    choices = V.parse_literal(row.get("choices"), "f", "row")
    got = P.render(formats[row["task_name"]], row["query"], choices)
    assert got == (fq["system"], fq["user"]), f"row {r} ({row['task_name']})"
    n += 1
  assert n == 450


@pytest.mark.real_data
def test_real_history_prompts(release):
  test_rows, h = release
  assert len(h.query_prompts) == h.num_queries
  te = h.test_queries
  for r, q in enumerate(te.tolist()):  # test rows are the first queries, in file order
    fq = test_rows[r].get("formatted_query")
    want = h.query_texts[q] if fq is None else P.join_prompt(fq["system"], fq["user"])
    assert h.query_prompts[q] == want
  # Training queries of templated tasks: the task's system line and layout, from their choices.
  mmlu, nq = h.task_index("mmlu"), h.task_index("natural_qa")
  for q in h.train_queries.tolist():
    if h.query_task[q] == mmlu:
      assert h.query_prompts[q].startswith(MMLU_SYS + "\n## Question:\n" + h.query_texts[q])
      assert "\n\n## Options:\nA. " in h.query_prompts[q]
    elif h.query_task[q] == nq:
      assert h.query_prompts[q] == h.query_texts[q]
  for t in ("gpqa", "math", "commongen"):  # no stored prompt: raw query
    qs = h.query_task == h.task_index(t)
    assert qs.any()
    assert all(h.query_prompts[q] == h.query_texts[q] for q in np.flatnonzero(qs))
  assert any("tasks without test rows" in n and "gpqa, math" in n for n in h.notes)


# -- the generic loader ---------------------------------------------------------------------------


def _table(tmp_path, rows, name="t.jsonl"):
  f = tmp_path / name
  f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
  return f


def _generic_rows(prompts):
  """q1 (train) and q2 (test) x models a, b; ``prompts[(query, model)]`` as the prompt column."""
  rows = []
  for q, split, perf in (("q1", "train", (1, 0)), ("q2", "test", (0, 1))):
    for m, p in zip("ab", perf, strict=True):
      rows.append({"query": q, "task": "t", "model": m, "performance": p, "split": split})
      if (q, m) in prompts:
        rows[-1]["prompt"] = prompts[q, m]
  return rows


def test_generic_prompt_column(tmp_path):
  h = load_generic(_table(tmp_path, _generic_rows({})))
  assert h.query_prompts == h.query_texts == ("q1", "q2")
  # Given on one row of q1 only (the other row leaves it out): used; q2 keeps its raw text.
  h = load_generic(_table(tmp_path, _generic_rows({("q1", "b"): "S\n\nQuestion: q1"})))
  assert h.query_prompts == ("S\n\nQuestion: q1", "q2")
  assert any("1 of 2 queries have no prompt" in n for n in h.notes)
  rows = _generic_rows({("q1", "a"): "P1", ("q1", "b"): "P1", ("q2", "a"): "P2", ("q2", "b"): ""})
  assert load_generic(_table(tmp_path, rows)).query_prompts == ("P1", "P2")


def test_generic_prompt_conflict_names_file_and_line(tmp_path):
  rows = _generic_rows({("q2", "a"): "Question: q2", ("q2", "b"): "Q: q2"})
  with pytest.raises(DataError) as e:
    load_generic(_table(tmp_path, rows, "mine.jsonl"))
  msg = str(e.value)
  assert e.value.source.endswith("mine.jsonl") and e.value.where == "line 4, field 'prompt'"
  assert "'q2' of task 't' has another prompt on line 3" in msg
  # CSV: the same check, lines counted with the header as line 1.
  f = tmp_path / "mine.csv"
  f.write_text(
    "query,task,model,performance,prompt\nq,t,a,1,P\nq,t,b,0,P\nq,t,c,0,R\n", encoding="utf-8"
  )
  with pytest.raises(DataError, match=r"mine\.csv, line 4, field 'prompt'.*on line 2"):
    load_generic(f)
  with pytest.raises(DataError, match="line 1, field 'prompt'"):
    gen.read_rows([{**_generic_rows({})[0], "prompt": 7, "__line__": 1}], "x.jsonl", {}, None)


# -- synthetic --------------------------------------------------------------------------------------


def _raw_digest(h) -> str:
  """A digest of the drawn raw history (texts, pairs, splits, which outcomes are known)."""
  d = hashlib.sha256()
  for texts in (h.query_texts, h.model_texts, h.task_texts):
    for s in texts:
      d.update(s.encode() + b"\0")
  for a in (h.pairs_Px3, h.query_task, h.query_split, h.held_out, np.isnan(h.outcomes_QxM)):
    d.update(np.ascontiguousarray(a).tobytes())
  return d.hexdigest()[:16]


@pytest.mark.parametrize(
  "setting, digest", [("standard", "ddfc913bbaa40704"), ("newllm", "b4925023a7d5c36b")]
)
def test_synthetic_prompts_leave_the_raw_history_unchanged(setting, digest):
  """Digests of the raw history made before prompts existed: rendering draws no random numbers."""
  h = make_history(seed=0, setting=setting, **TINY_SIZES)
  assert _raw_digest(h) == digest


def test_synthetic_prompts_are_deterministic_per_task():
  h = make_history(seed=3, **TINY_SIZES)
  assert h.query_prompts == make_history(seed=3, **TINY_SIZES).query_prompts
  assert len(h.query_prompts) == h.num_queries
  systems = {}
  for q, (p, s) in enumerate(zip(h.query_prompts, h.query_texts, strict=True)):
    t = int(h.query_task[q])
    system, user = p.split("\n\n", 1)
    assert f"the {h.task_names[t]} benchmark" in system
    assert user == (s if h.task_metric[t] == "coverage" else f"Question: {s}")
    assert systems.setdefault(t, system) == system  # one system line per task
  assert len(set(systems.values())) == len(systems)  # and a different one for each task


# -- History ----------------------------------------------------------------------------------------


def test_history_prompts_default_and_check():
  h = make_history(seed=0, **TINY_SIZES)
  raw = h.replace(query_prompts=None)
  assert raw.query_prompts == raw.query_texts  # default: the raw texts
  with pytest.raises(DataError, match=r"query_prompts: expected 20 prompts"):
    h.replace(query_prompts=h.query_prompts[:-1])
  with pytest.raises(DataError, match=r"query_prompts\[2\]: expected a string"):
    h.replace(query_prompts=h.query_prompts[:2] + (None,) + h.query_prompts[3:])
  # Default prompts follow new texts; explicit ones stay (and must still fit).
  new_texts = tuple(f"new {s}" for s in raw.query_texts)
  assert raw.replace(query_texts=new_texts).query_prompts == new_texts
  assert h.replace(query_texts=new_texts).query_prompts == h.query_prompts
