"""The prompt an LLM receives for a query (SPEC §7): per-task layouts, inferred from stored prompts.

The reference routed the *formatted prompt* (system line + user message) of the templated tasks,
not the raw query. ``routing_test_data.json`` stores it as ``formatted_query = {"system": str |
null, "user": str}`` on 450 of its 600 rows (9 of 12 tasks); training queries carry only their raw
``query`` and ``choices``. A task's prompt format is its system line plus one of these layouts of
the user message, each rebuilt from (query, choices):

  =================  ==========================================  =================================
  layout             user message                                choices / tasks in the release
  =================  ==========================================  =================================
  raw                {query}                                     natural_qa, trivia_qa
  question           Question: {query}                           gsm8k
  complete_function  Complete the following function:\\n\\n       human_eval
                     {query}
  code_tests         Task: {query}\\n\\nYour code should pass      a list of test asserts, one per
                     these tests:\\n\\n{assert 1}\\n{assert 2}...   line (mbpp)
  markdown_options   ## Question:\\n{query}\\n\\n## Options:\\n      a list of options lettered A, B,
                     A. {option 1}\\nB. {option 2}\\n...           ... each line ending in \\n (mmlu)
  labelled_options   Question: {query}\\n\\n(A) {text 1}\\n         {"label" or "labels": [...],
                     (B) {text 2}...                              "text": [...]} (commonsense_qa,
                                                                 openbook_qa, arc_challenge)
  =================  ==========================================  =================================

``infer_formats`` picks, per task, the system line (which must be the same on all the task's
stored prompts) and the first layout of this table that reproduces every stored user message of
the task exactly. A task without stored prompts gets the raw query and no system line (in the
release: agentverse-logicgrid, agentverse-mgsm, commongen, and the graph-only gpqa and math). A
task whose stored prompts no layout reproduces (or whose system lines differ) also gets the raw
query, and a note says so: loading does not fail, because the stored prompts of its test rows
are still used as they are, and the note tells the user that its training prompts are raw.

Join rule (one for the whole code base): the router's input text is the user message alone when
there is no system line, else the system line without its trailing newlines, a blank line, and
the user message: ``system.rstrip("\\n") + "\\n\\n" + user``. The release's system lines end with
"\\n", so this is also ``system + "\\n" + user`` on the public data.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rp_jax.data import validate as V
from rp_jax.types import DataError

__all__ = [
  "LAYOUTS",
  "RAW",
  "LayoutError",
  "PromptFormat",
  "infer_formats",
  "join_prompt",
  "prompt_text",
  "render",
  "stored_prompt",
]


class LayoutError(ValueError):
  """A query's choices do not fit a layout (e.g. a list where labelled options are expected)."""


def _need_list(choices: Any, layout: str) -> list:
  if not isinstance(choices, list) or not choices:
    raise LayoutError(f"layout {layout!r} needs a non-empty list of choices, got {choices!r:.80}")
  return choices


def _labelled(choices: Any) -> list[tuple[str, str]]:
  labels = choices.get("label", choices.get("labels")) if isinstance(choices, dict) else None
  texts = choices.get("text") if isinstance(choices, dict) else None
  if not (isinstance(labels, list) and isinstance(texts, list) and len(labels) == len(texts) > 0):
    raise LayoutError(
      "layout 'labelled_options' needs choices {'label': [...], 'text': [...]} of equal length, "
      f"got {choices!r:.80}"
    )
  return list(zip(labels, texts, strict=True))


def _markdown_options(query: str, choices: Any) -> str:
  options = _need_list(choices, "markdown_options")
  if len(options) > 26:
    raise LayoutError(f"layout 'markdown_options' letters at most 26 options, got {len(options)}")
  lines = "".join(f"{chr(ord('A') + i)}. {c}\n" for i, c in enumerate(options))
  return f"## Question:\n{query}\n\n## Options:\n{lines}"


# Layout name -> user message from (query, choices); the order is the order infer_formats tries.
LAYOUTS: dict[str, Callable[[str, Any], str]] = {
  "raw": lambda query, choices: query,
  "question": lambda query, choices: f"Question: {query}",
  "complete_function": lambda query, choices: f"Complete the following function:\n\n{query}",
  "code_tests": lambda query, choices: (
    f"Task: {query}\n\nYour code should pass these tests:\n\n"
    + "\n".join(str(t) for t in _need_list(choices, "code_tests"))
  ),
  "markdown_options": _markdown_options,
  "labelled_options": lambda query, choices: (
    f"Question: {query}\n\n" + "\n".join(f"({a}) {b}" for a, b in _labelled(choices))
  ),
}


@dataclasses.dataclass(frozen=True)
class PromptFormat:
  """How one task's queries are shown to an LLM: a layout of ``LAYOUTS`` and a system line."""

  layout: str = "raw"
  system: str | None = None

  def __post_init__(self):
    if self.layout not in LAYOUTS:
      raise ValueError(f"unknown prompt layout {self.layout!r}; expected one of {list(LAYOUTS)}")


RAW = PromptFormat()


def render(fmt: PromptFormat, query: str, choices: Any = None) -> tuple[str | None, str]:
  """(system line, user message) of a query in a format; LayoutError if the choices do not fit."""
  return fmt.system, LAYOUTS[fmt.layout](query, choices)


def join_prompt(system: str | None, user: str) -> str:
  """The router's input text: ``user``, or ``system.rstrip("\\n") + "\\n\\n" + user``."""
  return user if not system else system.rstrip("\n") + "\n\n" + user


def prompt_text(fmt: PromptFormat, query: str, choices: Any = None) -> str:
  """``join_prompt(*render(fmt, query, choices))``."""
  return join_prompt(*render(fmt, query, choices))


def stored_prompt(row: Mapping, source: str, where: str) -> tuple[str | None, str] | None:
  """A row's ``formatted_query`` as (system, user), or None if the row has none; checks types."""
  fq = row.get("formatted_query")
  if fq is None:
    return None
  w = f"{where}, field 'formatted_query'"
  if not isinstance(fq, dict):
    raise DataError(source, w, f"expected an object {{system, user}}, got {type(fq).__name__}")
  user = V.to_str(V.get_field(fq, "user", source, w), source, f"{w}.user", allow_empty=True)
  system = fq.get("system")
  if system is not None and not isinstance(system, str):
    raise DataError(source, f"{w}.system", f"expected a string or null, got {system!r:.60}")
  return system, user


def infer_formats(
  rows: Iterable[Mapping], source: str = "<rows>"
) -> tuple[dict[str, PromptFormat], list[str]]:
  """Per task, the format that reproduces every stored ``formatted_query`` of its rows exactly.

  Args:
    rows: rows like those of ``routing_test_data.json``: ``task_name``, ``query``, ``choices``
      (a Python literal string, parsed, or None) and optionally ``formatted_query``.
    source: the file the rows come from, for error messages.

  Returns:
    (formats, notes): a format for every task of the rows (``RAW`` for a task without stored
    prompts, or one whose stored prompts no layout reproduces); notes name the layout of each
    task and every task that fell back to the raw query.
  """
  stored = collections.defaultdict(list)  # task -> [(row index, query, choices, system, user)]
  tasks = []
  for r, row in enumerate(rows):
    where = f"row {r}"
    task = V.to_str(
      V.get_field(row, "task_name", source, where), source, f"{where}, field 'task_name'"
    )
    if task not in tasks:
      tasks.append(task)
    sp = stored_prompt(row, source, where)
    if sp is None:
      continue
    query = V.to_str(V.get_field(row, "query", source, where), source, f"{where}, field 'query'")
    choices = V.parse_literal(row.get("choices"), source, f"{where}, field 'choices'")
    stored[task].append((r, query, choices, *sp))
  formats, found, failed = {}, [], []
  for task in tasks:
    fmt, why = _infer_one(stored[task]) if stored[task] else (RAW, None)
    formats[task] = fmt
    if why:
      failed.append(f"{task} ({why})")
    elif stored[task]:
      found.append(f"{task} {fmt.layout}")
  notes = [
    f"prompt layouts reproducing all {sum(map(len, stored.values()))} stored prompts of "
    f"{pathlib.Path(source).name}: {', '.join(found) or 'none'}; tasks without a stored prompt "
    f"get the raw query: {', '.join(t for t in tasks if not stored[t]) or 'none'}"
  ]
  if failed:
    notes.append(
      "stored prompts that no layout reproduces; these tasks' other queries get the raw query "
      f"(their stored test prompts are kept): {'; '.join(failed)}"
    )
  return formats, notes


def _infer_one(examples: list[tuple]) -> tuple[PromptFormat, str | None]:
  """(format, None) reproducing all (row, query, choices, system, user) examples, or (RAW, why)."""
  systems = {e[3] for e in examples}
  if len(systems) > 1:
    return RAW, f"{len(systems)} different system lines"
  (system,) = systems
  for layout, user_of in LAYOUTS.items():
    if all(_try(user_of, q, c) == user for _, q, c, _, user in examples):
      return PromptFormat(layout, system), None
  return (
    RAW,
    f"no layout reproduces all {len(examples)} stored prompts, first on row {examples[0][0]}",
  )


def _try(user_of: Callable[[str, Any], str], query: str, choices: Any) -> str | None:
  try:
    return user_of(query, choices)
  except LayoutError:
    return None
