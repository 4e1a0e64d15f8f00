"""What every converter shares: the generic table's columns, the result type, writing a table."""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rp_jax import io as rio
from rp_jax.data import columns as Co
from rp_jax.data import validate as V
from rp_jax.data.table import REQUIRED
from rp_jax.types import DataError

# The generic long table's columns (rp_jax.data.generic), in the order tables are written.
COLUMNS = (
  "query",
  "task",
  "model",
  "performance",
  "split",
  "prompt_tokens",
  "completion_tokens",
  "cost",
  "metric",
  "prompt",
)
FLOAT_COLUMNS = ("performance", "prompt_tokens", "completion_tokens", "cost")


@dataclasses.dataclass(frozen=True)
class Converted:
  """A converter's result.

  Attributes:
    frame: the generic long table, one row per known (query, model) outcome: ``COLUMNS`` in that
      order (None / NaN = empty), then any columns a format keeps for its description helpers
      (``write_table`` and ``load_generic`` ignore them).
    notes: what was left out or merged, and why.
    dropped: queries left out (rows of the source that became no query).
    sources: the files read.
  """

  frame: pd.DataFrame
  notes: tuple[str, ...] = ()
  dropped: int = 0
  sources: tuple[str, ...] = ()

  def summary(self) -> str:
    """One line: rows, queries (train / test), models, dropped."""
    f = self.frame
    q = f[["task", "query", "split"]].drop_duplicates()
    test = int((q["split"] == "test").sum())
    return (
      f"{len(f):,} rows, {len(q):,} queries ({len(q) - test:,} train, {test:,} test), "
      f"{f['model'].nunique()} models, {self.dropped:,} dropped"
    )


def make_frame(columns: Mapping[str, Sequence], extra: Mapping[str, Sequence] = ()) -> pd.DataFrame:
  """A table with every one of ``COLUMNS`` (absent ones empty) and then the ``extra`` columns."""
  n = len(columns["query"])
  out = {}
  for k in COLUMNS:
    v = columns.get(k)
    if k in FLOAT_COLUMNS:
      out[k] = np.full(n, np.nan) if v is None else np.asarray(v, np.float64)
    else:
      out[k] = np.full(n, None, object) if v is None else np.asarray(v, object)
  return pd.DataFrame({**out, **dict(extra)})


def write_table(rows: pd.DataFrame | Sequence[Mapping], out_path: str | pathlib.Path) -> None:
  """Writes a generic table atomically: .csv, .jsonl, .csv.gz or .jsonl.gz by the name.

  Only ``COLUMNS`` are written; empty cells stay empty in a CSV and are left out of JSON lines.
  """
  p = pathlib.Path(out_path)
  name = p.name.lower()
  gz = name.endswith(".gz")
  suffix = pathlib.Path(name[:-3] if gz else name).suffix
  if suffix not in (".csv", ".jsonl"):
    raise DataError(
      str(p), None, "unknown table format; expected .csv, .jsonl, .csv.gz or .jsonl.gz"
    )
  frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
  cols = [c for c in COLUMNS if c in frame.columns]
  missing = [c for c in REQUIRED if c not in cols]
  if missing:
    raise ValueError(f"write_table: the table lacks the required column(s) {missing}")
  frame = frame[cols]
  if suffix == ".csv":
    text = frame.to_csv(index=False, lineterminator="\n", na_rep="")
  else:
    recs = frame.to_dict("records")
    text = "".join(json.dumps(_present(r), ensure_ascii=False) + "\n" for r in recs)
  data = text.encode("utf-8")
  with rio.atomic_write(p, "wb") as f:
    f.write(gzip.compress(data, mtime=0) if gz else data)


def _present(row: dict) -> dict:
  """The row without its empty cells (None, NaN), numpy scalars as Python values."""
  out = {}
  for k, v in row.items():
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
      continue
    out[k] = v.item() if isinstance(v, np.generic) else v
  return out


def split_from_name(path: pathlib.Path) -> str | None:
  """ "train" / "test" when the file's stem ends with it (``arc_train.csv``, ``test.jsonl``)."""
  stem = path.name.lower().removesuffix(".gz")
  stem = stem.rsplit(".", 1)[0]
  for s in ("train", "test"):
    if stem == s or stem.endswith(("_" + s, "-" + s, "." + s)):
      return s
  return None


def first_bad(bad_R: np.ndarray) -> int | None:
  """Index of the first True, or None."""
  i = np.flatnonzero(bad_R)
  return int(i[0]) if i.size else None


def check_floats(
  col: np.ndarray, src: str, wheres: Sequence[str], lo: float, hi: float, allow_missing: bool
) -> np.ndarray:
  """[R] float64 of a column (NaN = missing); the first bad cell raises ``validate.to_float``'s
  DataError at ``wheres[r]``."""
  x, bad = Co.float_column(col, lo, hi, allow_missing)
  r = first_bad(bad)
  if r is not None:
    V.to_float(col[r], src, wheres[r], lo, hi, allow_missing)
    raise AssertionError(f"{src}, {wheres[r]}: float_column and to_float disagree on {col[r]!r}")
  return x


def check_strings(col: np.ndarray, src: str, wheres: Sequence[str]) -> list[str]:
  """The column as non-blank strings; the first bad cell raises ``validate.to_str``'s DataError."""
  r = first_bad(~Co.str_column_ok(col))
  if r is not None:
    V.to_str(col[r], src, wheres[r])
    raise AssertionError(f"{src}, {wheres[r]}: str_column_ok and to_str disagree on {col[r]!r}")
  return col.tolist()


class Wheres(Sequence[str]):
  """``f"{prefix} {line_R[r]}{suffix}"`` for each row, built only when asked for."""

  def __init__(self, line_R: np.ndarray, suffix: str = "", prefix: str = "line"):
    self.line_R, self.suffix, self.prefix = line_R, suffix, prefix

  def __len__(self) -> int:
    return len(self.line_R)

  def __getitem__(self, r):
    return f"{self.prefix} {int(self.line_R[r])}{self.suffix}"
