"""JSON records, as several router repositories store routing data -> the generic long table.

**Layout**: a ``.json`` file holding a list of records, or a ``.jsonl`` / ``.ndjson`` file with
one record per line (either may be gzipped, ``.json.gz`` / ``.jsonl.gz``). A record:

  ======================================  ==================================================
  key                                     meaning
  ======================================  ==================================================
  ``"query"`` or ``"question"``           the query text (``"query"`` wins when both given)
  ``"scores"``                            ``{model: outcome}``, outcomes in [0, 1]; null =
                                          not run (training records only)
  ``"task"`` / ``"dataset"`` / ``"cluster"``  optional, the first given is the task (a
                                          cluster number becomes its text); default
                                          ``"default"``
  ``"split"``                             optional, ``"train"`` or ``"test"``; default: from
                                          the file name (``*_test.jsonl``, ``test.json``),
                                          else ``"train"``
  ``"prompt"``                            optional, the text the LLM receives
  ``"costs"``                             optional, ``{model: $}`` for that query, >= 0
  ======================================  ==================================================

Other keys are ignored. A (task, query) occurs once over all files. Test records need an outcome
for every model found in the files. Records are numbered by file line (``line 3``) in JSON lines
and from 1 in a list (``record 3``).
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from rp_jax.data import columns as Co
from rp_jax.data import validate as V
from rp_jax.data.convert import common as C
from rp_jax.types import DataError

SUFFIXES = (".json", ".jsonl", ".ndjson")
TASK_KEYS = ("task", "dataset", "cluster")


def read_records(path: str | pathlib.Path) -> tuple[list[dict], list[str]]:
  """(records, where each one is) of a .json list or a .jsonl file."""
  p = V.require_file(path, "records file")
  name = p.name.lower()
  gz = name.endswith(".gz")
  suffix = pathlib.Path(name.removesuffix(".gz")).suffix
  if suffix not in SUFFIXES:
    raise DataError(str(p), None, "unknown records format; expected .json, .jsonl or .ndjson")
  text = Co.read_text(p, gz)
  if suffix != ".json":
    objs, lines = Co.json_lines(text, str(p))
    return objs, [f"line {i}" for i in lines]
  try:
    obj = json.loads(text)
  except json.JSONDecodeError as e:
    raise DataError(
      str(p), f"line {e.lineno}, column {e.colno}", f"malformed JSON: {e.msg}"
    ) from None
  except (ValueError, RecursionError) as e:
    raise DataError(str(p), None, f"malformed JSON: {e}") from None
  if not isinstance(obj, list):
    raise DataError(
      str(p), "top level", f"expected a JSON list of records, got {type(obj).__name__}"
    )
  for i, r in enumerate(obj, 1):
    if not isinstance(r, dict):
      raise DataError(str(p), f"record {i}", f"expected a JSON object, got {type(r).__name__}")
  return obj, [f"record {i}" for i in range(1, len(obj) + 1)]


def convert_records(src) -> C.Converted:
  """JSON records (see module docstring) -> the generic long table.

  Args:
    src: a records file, or a list of them.
  """
  paths = [src] if isinstance(src, str | pathlib.Path) else list(src)
  if not paths:
    raise DataError("<none>", None, "no source given; expected a records file")
  queries, rows, seen = [], [], {}
  for path in paths:
    recs, wheres = read_records(path)
    default_split = C.split_from_name(pathlib.Path(path)) or "train"
    for rec, where in zip(recs, wheres, strict=True):
      q = _record(rec, str(path), where, default_split)
      key = (q["task"], q["query"])
      if key in seen:
        again = f"the query of {seen[key]} again (task {q['task']!r}); a query occurs once"
        raise DataError(str(path), where, again)
      seen[key] = f"{path} {where}"
      queries.append(q)
  models = list(dict.fromkeys(m for q in queries for m in q["scores"]))
  for q in queries:
    _check_complete(q, models)
    for m, x in q["scores"].items():
      if not np.isnan(x):
        rows.append((q, m, x))
  if not rows:
    raise DataError(str(paths[0]), None, "no outcomes; expected records with scores")
  empty = sum(all(np.isnan(x) for x in q["scores"].values()) for q in queries)
  notes = [f"{empty} training queries dropped: no score"] if empty else []
  cols = {
    "query": [q["query"] for q, _, _ in rows],
    "task": [q["task"] for q, _, _ in rows],
    "model": [m for _, m, _ in rows],
    "performance": [x for _, _, x in rows],
    "split": [q["split"] for q, _, _ in rows],
    "cost": [q["costs"].get(m, np.nan) for q, m, _ in rows],
    "prompt": [q["prompt"] for q, _, _ in rows],
  }
  return C.Converted(C.make_frame(cols), tuple(notes), empty, tuple(map(str, paths)))


def _record(rec: dict, src: str, where: str, default_split: str) -> dict:
  """One record, checked: {query, task, split, prompt, scores {model: float, NaN = none}, costs}."""
  key = "query" if "query" in rec else "question"
  if key not in rec:
    raise DataError(src, where, "missing field 'question' (or 'query')")
  text = V.to_str(rec[key], src, f"{where}, field {key!r}")
  task = next((k for k in TASK_KEYS if rec.get(k) is not None), None)
  tval = "default" if task is None else rec[task]
  if isinstance(tval, int) and not isinstance(tval, bool):
    tval = str(tval)
  tval = V.to_str(tval, src, f"{where}, field {task!r}")
  split = rec.get("split") or default_split
  if split not in ("train", "test"):
    raise DataError(src, f"{where}, field 'split'", f"expected 'train' or 'test', got {split!r}")
  prompt = rec.get("prompt")
  if prompt is not None:
    prompt = V.to_str(prompt, src, f"{where}, field 'prompt'", allow_empty=True) or None
  scores = _model_numbers(rec, "scores", src, where, 0, 1, required=True)
  costs = _model_numbers(rec, "costs", src, where, 0, 1e6, required=False)
  for m in costs:
    if m not in scores:
      raise DataError(src, f"{where}, field 'costs'", f"cost for model {m!r}, which has no score")
  return dict(
    query=text,
    task=tval,
    split=split,
    prompt=prompt,
    scores=scores,
    costs=costs,
    src=src,
    where=where,
  )


def _model_numbers(rec, key, src, where, lo, hi, required) -> dict[str, float]:
  """{model: float (NaN = null)} of an object field."""
  if key not in rec and not required:
    return {}
  obj = V.get_field(rec, key, src, where, dict)
  if required and not obj:
    raise DataError(src, f"{where}, field {key!r}", "expected at least one model")
  out = {}
  for m, v in obj.items():
    if not m.strip():
      raise DataError(src, f"{where}, field {key!r}", "expected non-empty model names")
    where_m = f"{where}, field {key!r}, key {m!r}"
    out[m] = np.nan if v is None else V.to_float(v, src, where_m, lo, hi)
  return out


def _check_complete(q: dict, models: list[str]) -> None:
  """Test records need an outcome for every model."""
  if q["split"] != "test":
    return
  for m in models:
    if np.isnan(q["scores"].get(m, np.nan)):
      raise DataError(
        q["src"],
        f"{q['where']}, field 'scores'",
        f"no outcome for model {m!r}; a test query needs every model ({len(models)} in the files)",
      )
