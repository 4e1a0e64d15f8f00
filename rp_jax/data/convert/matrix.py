"""A correctness matrix (models x items) -> the generic long table.

**.npz** (read with ``allow_pickle=False`` only: object arrays are refused):

  ============  ========  ===================================================================
  key           shape     meaning
  ============  ========  ===================================================================
  ``outcomes``  [M, N]    numbers in [0, 1] (bool / int 0-1 too); NaN = not run
  ``models``    [M]       model names, a string array (dtype ``<U``), unique
  ``items``     [N]       item ids, strings, unique
  ``texts``     [N]       optional, the query texts (empty / default: the item id)
  ``tasks``     [N]       optional, each item's task (empty / default: ``"default"``)
  ``splits``    [N]       optional, ``"train"`` / ``"test"`` (empty / default: ``"train"``)
  ============  ========  ===================================================================

**CSV**: a matrix file whose header is ``model,<item id>,<item id>,...`` with one row per model
(empty cell = not run), and optionally an items file with the columns ``item`` (required),
``text``, ``task``, ``split`` (cells may be empty: the defaults above). Give both as sources.

Items are queries keyed by (task, text): two items with the same pair are an error. A test item
needs an outcome for every model; a training item keeps what it has, and one without any
outcome is dropped (noted).
"""

from __future__ import annotations

import dataclasses
import pathlib
import zipfile
import zlib
from collections.abc import Callable

import numpy as np

from rp_jax.data import columns as Co
from rp_jax.data import validate as V
from rp_jax.data.convert import common as C
from rp_jax.types import DataError

NPZ_KEYS = ("outcomes", "models", "items")
META_KEYS = ("texts", "tasks", "splits")  # npz keys; items CSV columns text, task, split


@dataclasses.dataclass
class Matrix:
  """[M, N] outcomes (NaN = none), names, per-item metadata, and how to name a cell / an item.

  ``cell_where(i, j)``: where model i's outcome on item j is; ``item_where(j, key)``: (file,
  where) of item j's metadata field ``key``.
  """

  src: str
  outcomes_MxN: np.ndarray
  models: list[str]
  items: list[str]
  meta: dict[str, list | None]
  cell_where: Callable[[int, int], str]
  item_where: Callable[[int, str], tuple[str, str]]


def convert_matrix(src) -> C.Converted:
  """A .npz, or a matrix CSV (plus an optional items CSV) -> the generic long table.

  Args:
    src: the .npz file, the matrix CSV, or a list [matrix CSV, items CSV] in any order.
  """
  paths = [src] if isinstance(src, str | pathlib.Path) else list(src)
  paths = [pathlib.Path(p) for p in paths]
  if len(paths) == 1 and paths[0].name.lower().endswith(".npz"):
    return _long(read_npz(paths[0]))
  return _long(read_csvs(paths))


# -- .npz -----------------------------------------------------------------------------------------


def read_npz(path: pathlib.Path) -> Matrix:
  """Reads and checks the .npz layout (see module docstring)."""
  src = str(V.require_file(path, "matrix file"))
  try:
    z = np.load(path, allow_pickle=False)
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    raise DataError(src, None, f"not a readable .npz file ({e})") from None
  if not isinstance(z, np.lib.npyio.NpzFile):
    raise DataError(src, None, "a single .npy array; expected an .npz archive of named arrays")
  with z:
    missing = [k for k in NPZ_KEYS if k not in z.files]
    if missing:
      raise DataError(
        src, None, f"missing array(s) {missing}; expected {list(NPZ_KEYS)} (+ {list(META_KEYS)})"
      )
    arr = {k: _array(z, k, src) for k in (*NPZ_KEYS, *META_KEYS) if k in z.files}
  models = _names(arr["models"], "models", src)
  items = _names(arr["items"], "items", src)
  out = arr["outcomes"]
  if out.dtype.kind not in "biuf" or out.shape != (len(models), len(items)):
    raise DataError(
      src,
      "key 'outcomes'",
      f"expected a numeric [{len(models)}, {len(items)}] array (models x items), got "
      f"{out.dtype} {list(out.shape)}",
    )
  out = out.astype(np.float64)
  cell = lambda i, j: f"key 'outcomes', model {models[i]!r}, item {items[j]!r}"
  bad = ~np.isnan(out) & ~((out >= 0) & (out <= 1))
  if bad.any():
    i, j = np.argwhere(bad)[0]
    raise DataError(src, cell(i, j), f"expected a number in [0, 1] or NaN, got {out[i, j]}")
  meta = {}
  for k in META_KEYS:
    meta[k] = _names(arr[k], k, src, unique=False) if k in arr else None
    if meta[k] is not None and len(meta[k]) != len(items):
      raise DataError(src, f"key {k!r}", f"expected {len(items)} entries, got {len(meta[k])}")
  item = lambda j, k: (src, f"key {k!r}, item {items[j]!r}")
  return Matrix(src, out, models, items, meta, cell, item)


def _array(z, k: str, src: str) -> np.ndarray:
  """One array of the archive; object arrays (pickles) and damaged members are DataErrors."""
  try:
    return z[k]
  except ValueError as e:
    what = (
      "an object array (it needs pickle, which is never loaded); expected numbers or "
      "fixed-width strings"
      if "pickle" in str(e)
      else f"unreadable array ({e})"
    )
    raise DataError(src, f"key {k!r}", what) from None
  except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise DataError(src, f"key {k!r}", f"unreadable array ({e})") from None


def _names(a: np.ndarray, k: str, src: str, unique: bool = True) -> list[str]:
  """A 1-D string array as a list; names (``unique``) must be non-empty and distinct."""
  if a.ndim != 1 or a.dtype.kind != "U":
    raise DataError(
      src, f"key {k!r}", f"expected a 1-D string array, got {a.dtype} {list(a.shape)}"
    )
  names = a.tolist()
  if unique:
    for i, n in enumerate(names):
      if not n.strip():
        raise DataError(src, f"key {k!r}, entry {i}", "expected a non-empty name")
    dup = V.find_duplicates(names)
    if dup:
      raise DataError(src, f"key {k!r}", f"duplicate name(s) {dup[:5]}")
  return names


# -- CSV ------------------------------------------------------------------------------------------


def read_csvs(paths: list[pathlib.Path]) -> Matrix:
  """The matrix CSV (header ``model,<items>``) and an optional items CSV (header with ``item``)."""
  if not paths or len(paths) > 2:
    raise DataError(
      ", ".join(map(str, paths)) or "<none>",
      None,
      "expected a matrix CSV, optionally with an items CSV, or one .npz",
    )
  mats, metas = [], []
  for p in paths:
    c = Co.read_columns(p)
    if "model" in c.cols:
      mats.append((p, c))
    elif "item" in c.cols:
      metas.append((p, c))
    else:
      raise DataError(
        str(p),
        "line 1",
        "expected a matrix CSV (a 'model' column, then one column per item) or an items CSV "
        "(columns item, text, task, split)",
      )
  if len(mats) != 1:
    raise DataError(str(paths[0]), None, f"expected one matrix CSV, got {len(mats)}")
  p, c = mats[0]
  src = str(p)
  items = [k for k in c.cols if k != "model"]
  if not items:
    raise DataError(src, "line 1", "no item columns; expected model,<item id>,<item id>,...")
  if not len(c):
    raise DataError(src, None, "no rows; expected one row per model")
  models = C.check_strings(c.cols["model"], src, C.Wheres(c.line_R, ", field 'model'"))
  seen = {}
  for r, m in enumerate(models):
    if m in seen:
      raise DataError(
        src, f"line {int(c.line_R[r])}, field 'model'", f"model {m!r} again (line {seen[m]})"
      )
    seen[m] = int(c.line_R[r])
  at = lambda k: C.Wheres(c.line_R, f", field {k!r}")
  out = np.stack([C.check_floats(c.cols[k], src, at(k), 0, 1, True) for k in items], 1)
  cell = lambda i, j: f"line {int(c.line_R[i])}, field {items[j]!r}"
  meta, item = _items_csv(metas[0] if metas else None, items, src)
  return Matrix(src, out, models, items, meta, cell, item)


def _items_csv(pc, items: list[str], src: str):
  """(metadata lists by META_KEYS, item_where) from the items CSV."""
  if pc is None:
    return dict.fromkeys(META_KEYS), lambda j, k: (src, f"line 1, field {items[j]!r}")
  p, c = pc
  isrc = str(p)
  ids = C.check_strings(c.cols["item"], isrc, C.Wheres(c.line_R, ", field 'item'"))
  row_of = {}
  for r, i in enumerate(ids):
    where = f"line {int(c.line_R[r])}, field 'item'"
    if i in row_of:
      raise DataError(isrc, where, f"item {i!r} again (line {int(c.line_R[row_of[i]])})")
    if i not in items:
      raise DataError(isrc, where, f"item {i!r} is not a column of the matrix CSV")
    row_of[i] = r
  meta = {}
  for k in META_KEYS:
    col = c.column(k[:-1]) if k[:-1] in c.cols else None
    meta[k] = None if col is None else [col[row_of[i]] if i in row_of else None for i in items]

  def item(j, k):
    if items[j] not in row_of:
      return src, f"line 1, field {items[j]!r}"
    return isrc, f"line {int(c.line_R[row_of[items[j]]])}, field {k[:-1]!r}"

  return meta, item


# -- the long table -------------------------------------------------------------------------------


def _item_meta(m: Matrix) -> tuple[list[str], list[str], list[str]]:
  """Per item: text (default the id), task (default "default"), split (default "train")."""
  n = len(m.items)
  given = lambda k: m.meta[k] or [None] * n
  texts = [t if t and t.strip() else i for t, i in zip(given("texts"), m.items, strict=True)]
  tasks = [t if t and t.strip() else "default" for t in given("tasks")]
  splits = [s.strip() if s and s.strip() else "train" for s in given("splits")]
  for j, s in enumerate(splits):
    if s not in ("train", "test"):
      raise DataError(*m.item_where(j, "splits"), f"expected 'train' or 'test', got {s!r}")
  return texts, tasks, splits


def _long(m: Matrix) -> C.Converted:
  """Rows per item x model with an outcome, by the matrix rules (module docstring)."""
  texts, tasks, splits = _item_meta(m)
  seen = {}
  for j, key in enumerate(zip(tasks, texts, strict=True)):
    if key in seen:
      raise DataError(
        *m.item_where(j, "texts"),
        f"item {m.items[j]!r} has the task and text of item {m.items[seen[key]]!r}; items are "
        "queries, keyed by (task, text)",
      )
    seen[key] = j
  known_MxN = np.isfinite(m.outcomes_MxN)
  test_N = np.asarray(splits, object) == "test"
  holes = np.argwhere(~known_MxN & test_N[None])
  if holes.size:
    i, j = holes[0]
    raise DataError(
      m.src, m.cell_where(i, j), "no outcome; a test item needs an outcome for every model"
    )
  j, i = np.nonzero(known_MxN.T)  # item-major: the rows of one query together
  if not len(j):
    raise DataError(m.src, None, "no outcomes; every cell is empty")
  cols = {
    "query": np.asarray(texts, object)[j],
    "task": np.asarray(tasks, object)[j],
    "model": np.asarray(m.models, object)[i],
    "performance": m.outcomes_MxN[i, j],
    "split": np.asarray(splits, object)[j],
  }
  empty = int((~known_MxN.any(0)).sum())
  notes = (f"{empty} items dropped: no model has an outcome",) if empty else ()
  return C.Converted(C.make_frame(cols), notes, empty, (m.src,))
