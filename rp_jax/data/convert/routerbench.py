"""RouterBench's wide layout -> the generic long table, plus model cards and task descriptions.

**Layout** (RouterBench; also redistributed by router repositories as ``routerbench_zs/``): one
CSV per benchmark and split, named ``<name>_train.csv`` / ``<name>_test.csv`` (``.csv.gz`` too),
one row per prompt:

  ===============================  ==========================================================
  column                           meaning
  ===============================  ==========================================================
  (unnamed, ``Unnamed: 0``)        an index, ignored
  ``sample_id``                    the benchmark's item id
  ``prompt``                       a Python list literal of the text(s) sent to the model,
                                   e.g. ``['Question ...']`` (parsed, never evaluated); the
                                   query is its strings joined by a blank line
  ``eval_name``                    the benchmark (the task), e.g. ``arc-challenge``
  ``<model>``                      one per model: the outcome, 0/1 (any number in [0, 1]);
                                   empty = not run. The name keeps its org prefix
                                   (``meta/llama-2-70b-chat``).
  ``<model>|total_cost``           $ spent on that call (required for every model)
  ``<model>|model_response``       the answer, a list literal (optional; only its length is
                                   read, for the price estimate of ``routerbench_cards``)
  ``oracle_model_to_route_to``     ignored
  ===============================  ==========================================================

**Rules.** Every file has the same model columns. A test prompt without an outcome for some model
is dropped whole (test queries need every candidate); a training prompt keeps the outcomes it has
(partial rows). A prompt that is also a test prompt is dropped from training (test queries are
never training queries). The same (benchmark, prompt) twice in one split is an error. A
``sample_id`` may repeat with different prompts: RouterBench stores gpt-3.5-turbo's answer to a
batched two-prompt call as a separate row (8 arc-challenge ids in the public subset); each row is
its own prompt. Token columns stay empty (the data has none); ``cost`` is ``|total_cost``;
``metric`` is set for the benchmarks of ``METRICS``.

The frame also carries ``sample_id`` and ``response_chars`` (the length of the stored answer)
for the description helpers.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import numpy as np
import pandas as pd

from rp_jax.data import columns as Co
from rp_jax.data import validate as V
from rp_jax.data.convert import common as C
from rp_jax.types import DataError

INDEX_COLUMNS = ("", "Unnamed: 0", "index")
META_COLUMNS = ("sample_id", "prompt", "eval_name", "oracle_model_to_route_to")
REQUIRED = ("sample_id", "prompt", "eval_name")
METRICS = {  # benchmark -> metric name known to rp_jax.data.task_kinds
  "arc-challenge": "em_mc",
  "winogrande": "em_mc",
  "hellaswag": "em_mc",
  "mmlu": "em_mc",
  "mbpp": "code_eval",
  "gsm8k": "gsm8k",
  "grade-school-math": "gsm8k",
}
SUFFIXES = {"_train.csv": "train", "_test.csv": "test"}


def routerbench_files(src) -> list[tuple[pathlib.Path, str]]:
  """(file, split) of a RouterBench folder (every ``*_train.csv`` / ``*_test.csv``, sorted) or of
  explicit files; the split comes from the name."""
  srcs = [src] if isinstance(src, str | pathlib.Path) else list(src)
  if not srcs:
    raise DataError("<none>", None, "no source given; expected a folder or *_train.csv files")
  out = []
  for s in srcs:
    p = pathlib.Path(s)
    if p.is_dir():
      found = sorted(f for f in p.iterdir() if f.is_file() and _split(f) is not None)
      if not found:
        raise DataError(str(p), None, "no *_train.csv or *_test.csv files in this folder")
      out += [(f, _split(f)) for f in found]
      continue
    V.require_file(p, "RouterBench file")
    if _split(p) is None:
      raise DataError(
        str(p),
        None,
        "cannot tell the split: expected a name ending in _train.csv or _test.csv (or .csv.gz)",
      )
    out.append((p, _split(p)))
  return out


def _split(p: pathlib.Path) -> str | None:
  name = p.name.removesuffix(".gz")
  return next((s for suf, s in SUFFIXES.items() if name.endswith(suf)), None)


@dataclasses.dataclass
class _File:
  """One RouterBench file, checked: [R] per prompt row, [R, M] per model."""

  src: str
  split: str
  line_R: np.ndarray
  sample_id: list[str]
  task: list[str]
  query: list[str]
  models: list[str]
  out_RxM: np.ndarray
  cost_RxM: np.ndarray
  chars_RxM: np.ndarray


def read_file(path: pathlib.Path, split: str) -> _File:
  """Reads and checks one RouterBench CSV (DataError naming file, line and column)."""
  src = str(path)
  c = Co.read_columns(path)
  header = list(c.cols)
  models = _model_columns(header, src)
  if not len(c):
    raise DataError(src, None, "no rows; expected one row per prompt")
  at = lambda k: C.Wheres(c.line_R, f", field {k!r}")
  sample_id = C.check_strings(c.cols["sample_id"], src, at("sample_id"))
  task = C.check_strings(c.cols["eval_name"], src, at("eval_name"))
  query = [_prompt_text(v, src, at("prompt")[r]) for r, v in enumerate(c.cols["prompt"])]
  out = [C.check_floats(c.cols[m], src, at(m), 0, 1, True) for m in models]
  cost = [
    C.check_floats(c.cols[f"{m}|total_cost"], src, at(f"{m}|total_cost"), 0, 1e6, True)
    for m in models
  ]
  chars = [_chars(c.cols.get(f"{m}|model_response"), len(c)) for m in models]
  return _File(
    src=src,
    split=split,
    line_R=c.line_R,
    sample_id=sample_id,
    task=task,
    query=query,
    models=models,
    out_RxM=np.stack(out, 1),
    cost_RxM=np.stack(cost, 1),
    chars_RxM=np.stack(chars, 1),
  )


def _model_columns(header: list[str], src: str) -> list[str]:
  """The outcome columns; checks the layout's other columns."""
  for k in REQUIRED:
    if k not in header:
      raise DataError(
        src,
        "line 1",
        f"missing column {k!r}; a RouterBench file has sample_id, prompt, eval_name, one 0/1 "
        "column per model and <model>|total_cost",
      )
  models = [h for h in header if h not in INDEX_COLUMNS + META_COLUMNS and "|" not in h]
  if not models:
    raise DataError(src, "line 1", "no model columns; expected one 0/1 outcome column per model")
  for h in header:
    m, sep, kind = h.rpartition("|")
    if sep and kind in ("total_cost", "model_response") and m not in models:
      raise DataError(src, "line 1", f"column {h!r} names model {m!r}, which has no column")
  for m in models:
    if f"{m}|total_cost" not in header:
      raise DataError(src, "line 1", f"missing column '{m}|total_cost' ($ of {m!r}'s answers)")
  return models


def _prompt_text(v, src: str, where: str) -> str:
  """The query: the prompt list's strings joined by a blank line."""
  x = V.parse_literal(v, src, where)
  if isinstance(x, str):
    x = [x]
  if not isinstance(x, list) or not x or not all(isinstance(s, str) for s in x):
    raise DataError(src, where, f"expected a list literal of strings, got {str(v)!r:.80}")
  text = "\n\n".join(x)
  if not text.strip():
    raise DataError(src, where, "expected a non-empty prompt")
  return text


def _chars(col: np.ndarray | None, n: int) -> np.ndarray:
  """[R] approximate answer length in characters (the literal's, less its brackets); NaN = none."""
  if col is None:
    return np.full(n, np.nan)
  lens = np.fromiter((len(v) if isinstance(v, str) else 0 for v in col), np.float64, n)
  return np.where(lens > 0, np.maximum(lens - 4, 0), np.nan)


def convert_routerbench(src) -> C.Converted:
  """RouterBench folder (or files) -> the generic long table (see module docstring).

  Args:
    src: a folder of ``*_train.csv`` / ``*_test.csv`` files, or a list of such files.
  """
  files = [read_file(p, s) for p, s in routerbench_files(src)]
  models = files[0].models
  for f in files[1:]:
    if sorted(f.models) != sorted(models):
      miss = [m for m in models if m not in f.models]
      extra = [m for m in f.models if m not in models]
      raise DataError(
        f.src, "line 1", f"model columns differ from {files[0].src}: missing {miss}, extra {extra}"
      )
  order = [[f.models.index(m) for m in models] for f in files]
  for f, o in zip(files, order, strict=True):
    f.models = models
    f.out_RxM, f.cost_RxM, f.chars_RxM = f.out_RxM[:, o], f.cost_RxM[:, o], f.chars_RxM[:, o]
  _check_repeats(files)
  keep, notes, dropped = _keep_rows(files)
  frame = _frame(files, keep, models)
  if frame.empty:
    raise DataError(files[0].src, None, f"no prompt left with an outcome; {'; '.join(notes)}")
  return C.Converted(frame, tuple(notes), dropped, tuple(f.src for f in files))


def _check_repeats(files: list[_File]) -> None:
  """DataError for a (benchmark, prompt) twice in one split."""
  seen: dict[tuple[str, str, str], tuple[str, int]] = {}
  for f in files:
    for r, (task, query) in enumerate(zip(f.task, f.query, strict=True)):
      key = (f.split, task, query)
      if key in seen:
        file0, line0 = seen[key]
        raise DataError(
          f.src,
          f"line {int(f.line_R[r])}, field 'prompt'",
          f"the prompt of {file0} line {line0} again (sample {f.sample_id[r]!r}, task "
          f"{task!r}); a prompt occurs once per split",
        )
      seen[key] = (f.src, int(f.line_R[r]))


def _keep_rows(files: list[_File]) -> tuple[list[np.ndarray], list[str], int]:
  """([R] bool per file: the prompt stays, by the rules), notes on what did not, and how many."""
  test_texts = {q for f in files if f.split == "test" for q in f.query}
  keep, notes = [], []
  incomplete, leaked, partial, empty, twice = {}, [], 0, 0, 0
  for f in files:
    known_RxM = np.isfinite(f.out_RxM)
    k = np.ones(len(f.query), bool)
    if f.split == "test":
      k &= known_RxM.all(1)
      for t in np.asarray(f.task, object)[~k]:
        incomplete[t] = incomplete.get(t, 0) + 1
    else:
      leak = np.fromiter((q in test_texts for q in f.query), bool, len(f.query))
      leaked += [f.sample_id[r] for r in np.flatnonzero(leak)]
      k &= ~leak
      partial += int((k & known_RxM.any(1) & ~known_RxM.all(1)).sum())
      empty += int((k & ~known_RxM.any(1)).sum())
      k &= known_RxM.any(1)
    ids = pd.Series(f.sample_id)
    twice += int(ids.duplicated().sum())
    keep.append(k)
  if incomplete:
    by = ", ".join(f"{t} {n}" for t, n in incomplete.items())
    notes.append(
      f"{sum(incomplete.values())} test prompts dropped: some model has no outcome and test "
      f"prompts need every model ({by})"
    )
  if leaked:
    notes.append(
      f"{len(leaked)} training prompts dropped: also test prompts ({', '.join(leaked[:10])})"
    )
  if partial:
    notes.append(f"{partial} training prompts are partial: some models have no outcome")
  if empty:
    notes.append(f"{empty} training prompts dropped: no model has an outcome")
  if twice:
    notes.append(
      f"{twice} rows repeat a sample_id of their file with another prompt (RouterBench keeps "
      "gpt-3.5-turbo's batched calls apart): each is its own prompt"
    )
  return keep, notes, sum(incomplete.values()) + len(leaked) + empty


def _frame(files: list[_File], keep: list[np.ndarray], models: list[str]) -> pd.DataFrame:
  """One row per kept prompt x model with an outcome, prompt-major, models in column order."""
  parts = []
  for f, k in zip(files, keep, strict=True):
    r, m = np.nonzero(k[:, None] & np.isfinite(f.out_RxM))
    task = np.asarray(f.task, object)[r]
    parts.append(
      {
        "query": np.asarray(f.query, object)[r],
        "task": task,
        "model": np.asarray(models, object)[m],
        "performance": f.out_RxM[r, m],
        "split": np.full(len(r), f.split, object),
        "cost": f.cost_RxM[r, m],
        "metric": np.asarray([_metric(t) for t in task], object),
        "sample_id": np.asarray(f.sample_id, object)[r],
        "response_chars": f.chars_RxM[r, m],
      }
    )
  cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  extra = {k: cat.pop(k) for k in ("sample_id", "response_chars")}
  return C.make_frame(cat, extra)


def _metric(task: str) -> str | None:
  return METRICS.get(task) or ("em_mc" if task.startswith("mmlu") else None)


# -- descriptions ---------------------------------------------------------------------------------

# (substring of the lower-case model name, family, maker); the first match wins.
FAMILY_RULES = (
  ("gpt-", "OpenAI GPT", "OpenAI"),
  ("claude", "Anthropic Claude", "Anthropic"),
  ("wizardlm", "WizardLM", "the WizardLM team"),
  ("llama", "Meta Llama", "Meta"),
  ("mixtral", "Mistral", "Mistral AI"),
  ("mistral", "Mistral", "Mistral AI"),
  ("yi-", "01.AI Yi", "01.AI"),
)
FAMILY_TEXTS = {
  "OpenAI GPT": "OpenAI's GPT models: proprietary, served through OpenAI's API.",
  "Anthropic Claude": "Anthropic's Claude models: proprietary, served through Anthropic's API.",
  "Meta Llama": "Meta's Llama models: open weights, with chat- and code-tuned variants.",
  "Mistral": "Mistral AI's models: open weights; Mixtral is a sparse mixture of experts.",
  "WizardLM": "WizardLM models: open-weights Llama models tuned on evolved instructions.",
  "01.AI Yi": "01.AI's Yi models: open weights, trained on English and Chinese text.",
}
CHARS_PER_TOKEN = 4.0


def model_family(name: str) -> tuple[str, str]:
  """(family, maker) of a RouterBench model name; else its org prefix (or the name) for both."""
  low = name.lower()
  for key, fam, maker in FAMILY_RULES:
    if key in low:
      return fam, maker
  org = name.split("/", 1)[0] if "/" in name else name
  return org, org


def _model_text(name: str, family: str, maker: str) -> str:
  short = name.rsplit("/", 1)[-1]
  size = re.search(r"(?<![\w.])(\d+x\d+|\d+(?:\.\d+)?)[bB](?![a-zA-Z])", short)
  kind = "code " if "code" in short.lower() else ""
  kind += "chat " if re.search(r"chat|instruct|turbo|claude", short.lower()) else ""
  size_s = f"{size.group(1)}B-parameter " if size else ""
  article = "an" if (size_s or kind or "m")[0].lower() in "aeiou8" else "a"
  return f"{short} is {article} {size_s}{kind}model of the {family} family, by {maker}."


def routerbench_cards(frame: pd.DataFrame) -> dict[str, dict]:
  """Model cards (rp_jax.data.generic) for a converted RouterBench table.

  ``family`` and ``text`` come from the model's name (``FAMILY_RULES``). ``input_price`` and
  ``output_price`` ($ per million tokens) are an ESTIMATE: the data has costs but no token
  counts, so tokens are taken as characters / 4 (prompt: the query text; completion: the stored
  answer) and cost = (p_in * tokens_in + p_out * tokens_out) / 1e6 is fitted per model by
  non-negative least squares on the training rows. ``scores``: per task, 100 x the model's mean
  outcome on the training prompts (test rows are never read).
  """
  tr = frame[frame["split"] == "train"]
  cards = {}
  for name in pd.unique(frame["model"]):
    fam, maker = model_family(name)
    rows = tr[tr["model"] == name]
    if rows.empty:  # a model without training rows: priced from all its rows
      rows = frame[frame["model"] == name]
    tok_in = rows["query"].str.len().to_numpy(np.float64) / CHARS_PER_TOKEN
    chars = rows["response_chars"] if "response_chars" in rows else np.full(len(rows), np.nan)
    tok_out = np.asarray(chars, np.float64) / CHARS_PER_TOKEN
    p_in, p_out = fit_prices(tok_in, tok_out, rows["cost"].to_numpy(np.float64))
    scores = tr[tr["model"] == name].groupby("task", sort=False)["performance"].mean() * 100
    cards[name] = {
      "family": fam,
      "text": _model_text(name, fam, maker),
      "input_price": None if np.isnan(p_in) else p_in,  # JSON null: unknown
      "output_price": None if np.isnan(p_out) else p_out,
      "scores": {t: round(float(s), 3) for t, s in scores.items()},
    }
  return cards


def fit_prices(tok_in: np.ndarray, tok_out: np.ndarray, cost: np.ndarray) -> tuple[float, float]:
  """Non-negative least squares for cost = (p_in * tok_in + p_out * tok_out) / 1e6.

  Rows with a NaN are left out (an unknown answer length: input only). Returns (p_in, p_out) in
  $ per million tokens, rounded to 4 significant digits; NaN when there is no cost at all.
  """
  ok = np.isfinite(cost) & np.isfinite(tok_in)
  if not ok.any():
    return float("nan"), float("nan")
  both = ok & np.isfinite(tok_out)
  if both.sum() >= 2:
    A_Nx2 = np.stack([tok_in[both], tok_out[both]], 1) / 1e6
    p = nnls2(A_Nx2, cost[both])
  else:
    p = np.array([nnls2((tok_in[ok] / 1e6)[:, None], cost[ok])[0], float("nan")])
  return tuple(float(f"{x:.4g}") for x in p)


def nnls2(A_NxK: np.ndarray, b_N: np.ndarray) -> np.ndarray:
  """argmin ||A x - b|| over x >= 0 for K <= 2 columns, by trying each set of free variables."""
  K = A_NxK.shape[1]
  best, best_err = np.zeros(K), float(np.sum(b_N**2))
  subsets = [[0, 1], [0], [1]] if K == 2 else [[0]]
  for s in subsets:
    x_s, *_ = np.linalg.lstsq(A_NxK[:, s], b_N, rcond=None)
    if (x_s < 0).any():
      continue
    x = np.zeros(K)
    x[s] = x_s
    err = float(np.sum((A_NxK @ x - b_N) ** 2))
    if err < best_err:
      best, best_err = x, err
  return best


# task -> (text, domains); MMLU subjects share one entry.
TASKS = {
  "arc-challenge": (
    "ARC-Challenge: grade-school science questions with four answer options, the hard set of "
    "the AI2 Reasoning Challenge; an answer is the letter of one option.",
    ["reasoning", "science"],
  ),
  "winogrande": (
    "WinoGrande: a sentence with a blank and two candidate fillers (names or objects); choose "
    "the one that makes sense.",
    ["commonsense"],
  ),
  "mbpp": (
    "MBPP: short Python programming problems in plain English; the code passes the problem's "
    "unit tests or not.",
    ["coding"],
  ),
  "hellaswag": (
    "HellaSwag: choose the most plausible continuation of a short everyday scenario.",
    ["commonsense"],
  ),
  "gsm8k": ("GSM8K: grade-school math word problems; the final number is scored.", ["math"]),
  "grade-school-math": ("Grade-school math word problems; the final number is scored.", ["math"]),
  "mmlu": ("MMLU: multiple-choice exam questions, four options, on one subject.", ["knowledge"]),
  "mt-bench": ("MT-Bench: open-ended multi-turn questions graded by a judge model.", ["dialogue"]),
}
DOMAINS = {
  "reasoning": "Reasoning: several steps of inference from the facts given.",
  "science": "Science: school-level physics, chemistry, biology and earth science.",
  "commonsense": "Commonsense: everyday physical and social knowledge.",
  "coding": "Coding: writing programs that pass tests.",
  "math": "Math: arithmetic and word problems.",
  "knowledge": "Knowledge: facts of academic and professional subjects.",
  "dialogue": "Dialogue: open-ended conversation and instructions.",
}


def routerbench_tasks(frame: pd.DataFrame) -> tuple[dict, dict]:
  """(tasks, domains) description objects (rp_jax.data.generic) for a converted table's tasks;
  an unknown benchmark gets a template text and no domain."""
  tasks, used = {}, []
  for t in pd.unique(frame["task"]):
    key = "mmlu" if t.startswith("mmlu") and t not in TASKS else t
    text, doms = TASKS.get(key, (f"The {t} benchmark of RouterBench.", []))
    if key == "mmlu" and t != "mmlu":
      text = f"{text} Subject: {t.removeprefix('mmlu').strip('-_ ') or 'mixed'}."
    tasks[t] = {"text": text, "domains": list(doms)}
    used += [d for d in doms if d not in used]
  return tasks, {d: DOMAINS[d] for d in used}


def routerbench_families(cards: dict) -> dict[str, str]:
  """{family: text} for the cards' families (a template for families not in FAMILY_TEXTS)."""
  fams = dict.fromkeys(c["family"] for c in cards.values())
  return {f: FAMILY_TEXTS.get(f, f"The {f} model family.") for f in fams}


__all__ = [
  "convert_routerbench",
  "fit_prices",
  "model_family",
  "nnls2",
  "routerbench_cards",
  "routerbench_families",
  "routerbench_files",
  "routerbench_tasks",
]
