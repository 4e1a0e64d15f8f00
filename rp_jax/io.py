"""Atomic file writes (json, text, csv, npz) and small readers.

Every writer goes through ``atomic_write``: the bytes land in a temporary file in the destination
folder, are flushed and fsynced, then ``os.replace``d over the target, so a crash leaves either the
old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import pathlib
import tempfile
from collections.abc import Iterator, Mapping

import numpy as np


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[io.IOBase]:
  """Opens a temporary file beside ``path``; on success it replaces ``path`` atomically."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
  try:
    with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise


def write_text(path, text: str) -> None:
  with atomic_write(path) as f:
    f.write(text)


def write_json(path, obj, indent: int = 2) -> None:
  with atomic_write(path) as f:
    json.dump(obj, f, indent=indent, sort_keys=False, default=_json_default)
    f.write("\n")


def _json_default(x):
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, pathlib.Path):
    return str(x)
  raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def write_csv(path, frame) -> None:
  """Writes a pandas DataFrame as CSV atomically (no index column)."""
  with atomic_write(path) as f:
    frame.to_csv(f, index=False, lineterminator="\n")


def write_npz(path, arrays: Mapping[str, np.ndarray]) -> None:
  """Writes named numpy arrays (no object arrays: they would need pickle)."""
  for k, v in arrays.items():
    if np.asarray(v).dtype == object:
      raise TypeError(f"{path}: array {k!r} has dtype object; npz files here never hold pickles")
  with atomic_write(path, "wb") as f:
    np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def read_npz(path) -> dict[str, np.ndarray]:
  with np.load(path, allow_pickle=False) as z:
    return {k: z[k] for k in z.files}


def sha256_file(path, chunk: int = 1 << 20) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while b := f.read(chunk):
      h.update(b)
  return h.hexdigest()


def write_profile_dir(folder, model_names, entries, index_columns) -> None:
  """Writes ``<folder>/<id>.npz`` (one array per model name) and ``<folder>/index.csv``.

  Args:
    folder: output folder.
    model_names: [M] names, the npz keys (the reference's per-model layout).
    entries: list of (id, profile_MxD array, metadata dict with ``index_columns`` keys).
    index_columns: column order of index.csv (``id`` first).
  """
  folder = pathlib.Path(folder)
  for pid, prof, _ in entries:
    prof = np.asarray(prof, np.float32)
    if prof.shape[0] != len(model_names):
      raise ValueError(f"profile {pid!r} has {prof.shape[0]} rows for {len(model_names)} models")
    write_npz(folder / f"{pid}.npz", dict(zip(model_names, prof, strict=True)))
  with atomic_write(folder / "index.csv") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(index_columns)
    for pid, _, meta in entries:
      w.writerow([pid, *(meta.get(c, "") for c in index_columns[1:])])


def read_profile(path, model_names) -> np.ndarray:
  """[M, D] profile from a per-model npz, in ``model_names`` order (clear error if one is missing)."""
  z = read_npz(path)
  missing = [m for m in model_names if m not in z]
  if missing:
    raise KeyError(f"{path}: no profile for model(s) {missing}; file has {sorted(z)}")
  return np.stack([z[m] for m in model_names]).astype(np.float32)
