"""Readers that check their input and fail with one error type naming file, row/key and need.

All loaders use these helpers, so that a bad file gives ``DataError("<file>", "row 17, field
'performance'", "expected a number in [0, 1], got 'abc'")`` rather than a traceback from deep
inside json, csv or numpy.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

from rp_jax.types import DataError

__all__ = [
  "DataError",
  "find_duplicates",
  "get_field",
  "parse_literal",
  "read_json",
  "read_jsonl",
  "read_table",
  "require_file",
  "to_float",
  "to_str",
]


def require_file(path: str | pathlib.Path, what: str = "file") -> pathlib.Path:
  p = pathlib.Path(path)
  if not p.is_file():
    raise DataError(str(p), None, f"missing {what}: no such file")
  return p


def read_json(path: str | pathlib.Path, expect: type | tuple[type, ...] | None = None) -> Any:
  """Parses a JSON file; ``expect`` checks the top-level type."""
  p = require_file(path, "JSON file")
  try:
    with open(p, encoding="utf-8-sig") as f:
      obj = json.load(f)
  except json.JSONDecodeError as e:
    raise DataError(
      str(p), f"line {e.lineno}, column {e.colno}", f"malformed JSON: {e.msg}"
    ) from None
  except UnicodeDecodeError as e:
    raise DataError(str(p), f"byte {e.start}", "expected UTF-8 text") from None
  if expect is not None and not isinstance(obj, expect):
    names = " or ".join(t.__name__ for t in (expect if isinstance(expect, tuple) else (expect,)))
    raise DataError(str(p), "top level", f"expected a JSON {names}, got {type(obj).__name__}")
  return obj


def read_jsonl(path: str | pathlib.Path, with_lines: bool = False) -> list[dict]:
  """Parses a JSON-lines file of objects; blank lines are skipped. Lines are numbered from 1.

  With ``with_lines`` each row gets its file line number under the key ``"__line__"``.
  """
  p = require_file(path, "JSONL file")
  rows = []
  with open(p, encoding="utf-8") as f:
    for i, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        obj = json.loads(line)
      except json.JSONDecodeError as e:
        raise DataError(str(p), f"line {i}", f"malformed JSON line: {e.msg}") from None
      if not isinstance(obj, dict):
        raise DataError(str(p), f"line {i}", f"expected a JSON object, got {type(obj).__name__}")
      rows.append({**obj, "__line__": i} if with_lines else obj)
  return rows


def read_table(path: str | pathlib.Path) -> tuple[list[dict], str]:
  """Reads a CSV (header row) or JSONL file into row dicts; returns (rows, row label kind).

  Rows of a CSV are numbered as lines of the file (header = line 1).
  """
  p = require_file(path, "table")
  suffix = p.suffix.lower()
  if suffix in (".jsonl", ".ndjson"):
    return read_jsonl(p, with_lines=True), "line"
  if suffix != ".csv":
    raise DataError(str(p), None, f"unknown table format {suffix!r}; expected .csv or .jsonl")
  # utf-8-sig: spreadsheet programs often start a CSV with a byte-order mark.
  with open(p, encoding="utf-8-sig", newline="") as f:
    reader = csv.reader(f)
    try:
      header = next(reader)
    except StopIteration:
      raise DataError(str(p), "line 1", "empty file; expected a header row") from None
    header = [h.strip() for h in header]
    dup = find_duplicates(header)
    if dup:
      raise DataError(str(p), "line 1", f"duplicate column(s) {dup}")
    rows = []
    for i, rec in enumerate(reader, 2):
      if not rec or all(not c.strip() for c in rec):
        continue
      if len(rec) != len(header):
        raise DataError(
          str(p), f"line {i}", f"expected {len(header)} fields like the header, got {len(rec)}"
        )
      rows.append({**dict(zip(header, rec, strict=True)), "__line__": i})
  return rows, "line"


def get_field(
  row: Mapping, key: str, source: str, where: str, kind: type | tuple[type, ...] | None = None
) -> Any:
  if key not in row:
    raise DataError(source, where, f"missing field {key!r}")
  v = row[key]
  if kind is not None and not isinstance(v, kind):
    names = " or ".join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))
    raise DataError(source, f"{where}, field {key!r}", f"expected {names}, got {v!r:.80}")
  return v


def to_str(v: Any, source: str, where: str, allow_empty: bool = False) -> str:
  if not isinstance(v, str):
    raise DataError(source, where, f"expected a string, got {type(v).__name__} {v!r:.60}")
  if not allow_empty and not v.strip():
    raise DataError(source, where, "expected a non-empty string")
  return v


def to_float(
  v: Any,
  source: str,
  where: str,
  lo: float | None = None,
  hi: float | None = None,
  allow_missing: bool = False,
) -> float:
  """A finite float in [lo, hi]; None / "" / "nan" only when ``allow_missing`` (-> NaN)."""
  rng = f" in [{lo}, {hi}]" if lo is not None and hi is not None else ""
  missing = v is None or (isinstance(v, str) and v.strip().lower() in ("", "nan", "null", "none"))
  if missing:
    if allow_missing:
      return math.nan
    raise DataError(source, where, f"expected a number{rng}, got {v!r}")
  if isinstance(v, bool):
    raise DataError(source, where, f"expected a number{rng}, got boolean {v!r}")
  try:
    x = float(v)
  except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float range
    raise DataError(source, where, f"expected a number{rng}, got {v!r:.60}") from None
  if not math.isfinite(x):
    raise DataError(source, where, f"expected a finite number{rng}, got {v!r}")
  if (lo is not None and x < lo) or (hi is not None and x > hi):
    raise DataError(source, where, f"expected a number{rng}, got {x}")
  return x


def parse_literal(v: Any, source: str, where: str) -> Any:
  """Parses a Python-literal string such as the release's ``choices`` (never ``eval``).

  None, "" and "None" give None; an already-parsed list/dict is returned unchanged.
  """
  if v is None or isinstance(v, list | dict):
    return v
  if not isinstance(v, str):
    raise DataError(source, where, f"expected a string literal, got {type(v).__name__}")
  if v.strip() in ("", "None"):
    return None
  try:
    return ast.literal_eval(v)
  # TypeError: a literal that cannot be built, such as {[1]: 2}.
  except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
    raise DataError(source, where, f"malformed literal ({type(e).__name__}): {v!r:.80}") from None


def find_duplicates(xs: Iterable) -> list:
  seen, dup = set(), []
  for x in xs:
    if x in seen and x not in dup:
      dup.append(x)
    seen.add(x)
  return dup
