"""Converters from public routing-data layouts to the generic long table (rp_jax.data.generic).

One small module per format, each a pure function from source file(s) to a ``Converted`` (the
table as a DataFrame, notes, the number of queries left out):

- ``routerbench``: RouterBench's wide CSVs (``convert_routerbench``; model cards and task
  descriptions from ``routerbench_cards`` / ``routerbench_tasks``);
- ``records``: JSON records ``{"question", "scores": {model: value}, ...}`` (``convert_records``);
- ``matrix``: a models x items correctness matrix, .npz or CSV (``convert_matrix``).

Bad input raises ``DataError`` naming the file, the row / line / key and what was expected.
``write_table`` writes a table as .csv / .jsonl (optionally .gz); ``load_generic`` also takes the
DataFrame directly. ``run`` is what ``python -m launch.convert`` does.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from rp_jax import io as rio
from rp_jax.data.convert.common import COLUMNS, Converted, write_table
from rp_jax.data.convert.matrix import convert_matrix
from rp_jax.data.convert.records import convert_records
from rp_jax.data.convert.routerbench import (
  convert_routerbench,
  routerbench_cards,
  routerbench_families,
  routerbench_tasks,
)

FORMATS = ("routerbench", "records", "matrix")

__all__ = [
  "COLUMNS",
  "FORMATS",
  "Converted",
  "convert",
  "convert_matrix",
  "convert_records",
  "convert_routerbench",
  "routerbench_cards",
  "routerbench_families",
  "routerbench_tasks",
  "run",
  "write_table",
]


def convert(fmt: str, src: str | pathlib.Path | Sequence[str | pathlib.Path]) -> Converted:
  """Converts ``src`` (a file, a folder for routerbench, or a list of files) from format ``fmt``."""
  if fmt == "routerbench":
    return convert_routerbench(src)
  if fmt == "records":
    return convert_records(src)
  if fmt == "matrix":
    return convert_matrix(src)
  raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


def run(
  fmt: str,
  src: Sequence[str | pathlib.Path],
  out: str | pathlib.Path,
  *,
  cards_out: str | pathlib.Path | None = None,
  tasks_out: str | pathlib.Path | None = None,
  domains_out: str | pathlib.Path | None = None,
  families_out: str | pathlib.Path | None = None,
) -> Converted:
  """Converts and writes the table (and, for routerbench, the description JSON files asked for).

  The task file names domains, so ``tasks_out`` needs ``domains_out`` to load.
  """
  wants = {"cards_out": cards_out, "tasks_out": tasks_out}
  wants |= {"domains_out": domains_out, "families_out": families_out}
  asked = [k for k, v in wants.items() if v]
  if asked and fmt != "routerbench":
    raise ValueError(f"{', '.join(asked)}: description files are written for routerbench only")
  conv = convert(fmt, list(src) if len(src) != 1 else src[0])
  write_table(conv.frame, out)
  if asked:
    cards = routerbench_cards(conv.frame)
    tasks, domains = routerbench_tasks(conv.frame)
    files = {
      cards_out: cards,
      tasks_out: tasks,
      domains_out: domains,
      families_out: routerbench_families(cards),
    }
    for path, obj in files.items():
      if path:
        rio.write_json(path, obj)
  return conv
