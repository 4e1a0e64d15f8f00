"""Tables read column by column: files (.csv / .jsonl, maybe gzipped) or in-memory tables.

``read_columns`` turns a file into ``Columns`` (one object array per column, the file line of
each row) with the same checks and messages as ``validate.read_table`` plus gzip, encodings and
malformed CSV quoting; ``table_columns`` also takes a DataFrame or a list of row dicts. The column
checks (``float_column``, ``str_column_ok``, ``optional_text``) say, for every cell at once,
whether ``validate.to_float`` / ``to_str`` would take it, so that a reader checks whole columns
and asks the row-by-row helpers only for the message of the first bad cell.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import operator
import pathlib
import zlib
from collections.abc import Mapping
from itertools import repeat

import numpy as np
import pandas as pd

from rp_jax.data import validate as V
from rp_jax.types import DataError


class _Absent:
  """The value of a key a JSON row does not have (distinct from null)."""

  def __repr__(self) -> str:
    return "<absent>"


ABSENT = _Absent()
TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson")


@dataclasses.dataclass
class Columns:
  """A table read column by column; blank rows are already left out.

  Attributes:
    cols: per column name, an [R] object array of the cell values (CSV: strings; JSON: any JSON
      value, ``ABSENT`` where a row lacks the key).
    line_R: [R] int64, each row's line in the file (CSV: records, header = line 1).
    dense: every row has every column (CSV, DataFrame): no ``ABSENT`` to look for.
  """

  cols: dict[str, np.ndarray]
  line_R: np.ndarray
  dense: bool = False

  def __len__(self) -> int:
    return len(self.line_R)

  def row(self, r: int) -> dict:
    """Row ``r`` as the row dict ``read_rows`` takes (with its ``"__line__"``)."""
    out = {k: v[r] for k, v in self.cols.items() if v[r] is not ABSENT}
    out["__line__"] = int(self.line_R[r])
    return out

  def column(self, key: str) -> np.ndarray:
    """[R] object values of an optional column: None where the row or the table lacks it."""
    col = self.cols.get(key)
    if col is None:
      return np.full(len(self), None, object)
    if self.dense:
      return col
    absent = is_absent(col)
    if absent.any():
      col = col.copy()
      col[absent] = None
    return col


def _objects(values, n: int) -> np.ndarray:
  # fromiter never turns list values into a second axis, as np.array would.
  return np.fromiter(values, object, n)


def is_absent(col: np.ndarray) -> np.ndarray:
  return np.fromiter(map(operator.is_, col, repeat(ABSENT)), bool, len(col))


def table_columns(table, source: str | None = None) -> tuple[Columns, str]:
  """(columns, source name) of a table file (see ``read_columns``) or an in-memory table.

  In memory: a DataFrame (NaN / None / NA = missing) or a list of row dicts; rows are numbered
  as lines from 1.
  """
  if isinstance(table, pd.DataFrame):
    src = source or "<memory>"
    for k in table.columns:
      if not isinstance(k, str):
        raise DataError(src, "columns", f"expected string column names, got {k!r}")
    dup = V.find_duplicates(table.columns)
    if dup:
      raise DataError(src, "columns", f"duplicate column(s) {dup}")
    n = len(table)
    cols = {k: _objects(table[k].to_numpy(dtype=object, na_value=None), n) for k in table.columns}
    return Columns(cols, np.arange(1, n + 1, dtype=np.int64), dense=True), src
  if isinstance(table, list | tuple):
    src = source or "<memory>"
    for i, r in enumerate(table, 1):
      if not isinstance(r, Mapping):
        raise DataError(src, f"line {i}", f"expected a row dict, got {type(r).__name__}")
    return _dict_columns(list(table), list(range(1, len(table) + 1))), src
  return read_columns(table), source or str(table)


def read_columns(path: str | pathlib.Path) -> Columns:
  """Reads a .csv (header row) or .jsonl table, either maybe gzipped, into columns.

  The same checks and messages as ``validate.read_table``, plus: gzip, encodings and malformed
  CSV quoting give a DataError too.
  """
  p = V.require_file(path, "table")
  name = p.name.lower()
  gz = name.endswith(".gz")
  suffix = pathlib.Path(name[:-3]).suffix if gz else p.suffix.lower()
  if suffix not in TABLE_SUFFIXES:
    raise DataError(
      str(p),
      None,
      f"unknown table format {suffix + ('.gz' if gz else '')!r}; expected .csv or .jsonl, "
      "optionally gzipped (.csv.gz, .jsonl.gz)",
    )
  text = read_text(p, gz)
  if suffix == ".csv":
    return _csv_columns(text, str(p))
  return _jsonl_columns(text, str(p))


def read_text(p: pathlib.Path, gz: bool = False) -> str:
  """A file's UTF-8 text (a leading byte-order mark dropped); gunzipped when ``gz``."""
  raw = p.read_bytes()
  if gz:
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
      raise DataError(str(p), None, f"not a readable gzip file ({e})") from None
  if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
    raise DataError(
      str(p), "line 1", "expected UTF-8 text, found a UTF-16 byte-order mark; save it as UTF-8"
    )
  try:
    return raw.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = raw.count(b"\n", 0, e.start) + 1
    raise DataError(
      str(p),
      f"line {line}",
      f"expected UTF-8 text; byte 0x{raw[e.start]:02x} at offset {e.start} is not UTF-8 "
      "(saved as latin-1 or another encoding?)",
    ) from None


def _csv_columns(text: str, src: str) -> Columns:
  """CSV text -> columns; rows numbered as records (header = line 1), blank rows skipped."""
  reader = csv.reader(io.StringIO(text, newline=""))
  recs: list[list[str]] = []
  bad_csv = None
  try:
    recs.extend(reader)
  except csv.Error as e:  # the rows before it are kept: an earlier row's error comes first
    bad_csv = DataError(src, f"line {reader.line_num}", f"malformed CSV: {e}")
  if not recs:
    raise bad_csv or DataError(src, "line 1", "empty file; expected a header row")
  header = [h.strip() for h in recs[0]]
  dup = V.find_duplicates(header)
  if dup:
    raise DataError(src, "line 1", f"duplicate column(s) {dup}")
  body = recs[1:]
  n = len(body)
  nonblank = np.fromiter(map(bool, map(str.strip, map("".join, body))), bool, n)
  lens = np.fromiter(map(len, body), np.int64, n)
  wrong = np.flatnonzero(nonblank & (lens != len(header)))
  if wrong.size:
    i = int(wrong[0])
    raise DataError(
      src, f"line {i + 2}", f"expected {len(header)} fields like the header, got {lens[i]}"
    )
  if bad_csv is not None:
    raise bad_csv
  keep = np.flatnonzero(nonblank)
  if keep.size < n:
    body = [body[i] for i in keep]
  cols = {h: _objects(map(operator.itemgetter(j), body), len(body)) for j, h in enumerate(header)}
  return Columns(cols, keep.astype(np.int64) + 2, dense=True)


def _jsonl_columns(text: str, src: str) -> Columns:
  """JSON-lines text -> columns; blank lines skipped, lines numbered from 1."""
  return _dict_columns(*json_lines(text, src))


def json_lines(text: str, src: str) -> tuple[list[dict], list[int]]:
  """(JSON objects, their line numbers from 1) of JSON-lines text; blank lines skipped."""
  objs, lines = [], []
  for i, line in enumerate(io.StringIO(text, newline=None), 1):
    if not line.strip():
      continue
    try:
      obj = json.loads(line)
    except (ValueError, RecursionError) as e:  # ValueError: also too many digits in an int
      msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e) or type(e).__name__
      raise DataError(src, f"line {i}", f"malformed JSON line: {msg}") from None
    if not isinstance(obj, dict):
      raise DataError(src, f"line {i}", f"expected a JSON object, got {type(obj).__name__}")
    objs.append(obj)
    lines.append(i)
  return objs, lines


def _dict_columns(objs: list[Mapping], lines: list[int]) -> Columns:
  n = len(objs)
  keys = dict.fromkeys(k for o in objs[:1] for k in o)
  keys.update(dict.fromkeys(sorted(set().union(*objs) - set(keys), key=str)))
  get = lambda k: map(operator.methodcaller("get", k, ABSENT), objs)
  return Columns({k: _objects(get(k), n) for k in keys}, np.asarray(lines, np.int64))


# -- column checks ---------------------------------------------------------------------------------

_MISSING = frozenset(("", "nan", "null", "none"))


def _missing(v) -> bool:
  return v is None or (isinstance(v, str) and v.strip().lower() in _MISSING)


def _float_or_nan(v) -> float:
  """float(v) where ``validate.to_float`` would take it (range aside), else NaN."""
  if isinstance(v, bool):
    return np.nan
  try:
    return float(v)
  except (TypeError, ValueError, OverflowError):
    return np.nan


def float_column(
  col: np.ndarray, lo: float, hi: float, allow_missing: bool = False
) -> tuple[np.ndarray, np.ndarray]:
  """``validate.to_float`` on a whole column.

  Returns:
    ([R] float64 values, NaN where missing or bad; [R] bool, to_float would raise there).
  """
  n = len(col)
  is_str = np.fromiter(map(isinstance, col, repeat(str)), bool, n)
  all_str = bool(is_str.all())  # a CSV column: no None, no booleans
  missing = np.fromiter(map(operator.eq, col, repeat("")), bool, n)
  if not all_str:
    missing |= np.fromiter(map(operator.is_, col, repeat(None)), bool, n)
  x = np.full(n, np.nan)
  rest = np.flatnonzero(~missing)
  vals = col[rest]
  try:  # the common case at C speed: every cell a plain number or a numeric string
    if not all_str and any(map(isinstance, vals, repeat(bool))):
      raise TypeError
    x[rest] = np.fromiter(map(float, vals), np.float64, len(vals))
  except (TypeError, ValueError, OverflowError):
    x[rest] = np.fromiter(map(_float_or_nan, vals), np.float64, len(vals))
  # Strings that gave no number ("null", " ", "abc", "nan"): the exact missing rule decides.
  odd = np.flatnonzero(is_str & ~missing & np.isnan(x))
  missing[odd] = np.fromiter(map(_missing, col[odd]), bool, len(odd))
  with np.errstate(invalid="ignore"):
    bad = ~missing & (~np.isfinite(x) | (x < lo) | (x > hi))
  if not allow_missing:
    bad |= missing
  x[bad] = np.nan
  return x, bad


def str_column_ok(col: np.ndarray, allow_empty: bool = False) -> np.ndarray:
  """[R] bool: ``validate.to_str`` takes the cell (a string; not blank unless allowed)."""
  ok = np.fromiter(map(isinstance, col, repeat(str)), bool, len(col))
  if not allow_empty and ok.any():
    s = col[ok]
    ok[ok] = np.fromiter(map(bool, map(str.strip, s)), bool, len(s))
  return ok


def optional_text(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """([R] bool, a value is given: not None and not a blank string; [R] bool, given but not str)."""
  n = len(col)
  is_str = np.fromiter(map(isinstance, col, repeat(str)), bool, n)
  given = np.fromiter(map(operator.is_not, col, repeat(None)), bool, n)
  if is_str.any():
    s = col[is_str]
    given[is_str] = np.fromiter(map(bool, map(str.strip, s)), bool, len(s))
  return given, given & ~is_str


def first_true(bad_R: np.ndarray, default: int) -> int:
  i = np.flatnonzero(bad_R)
  return int(i[0]) if i.size else default
