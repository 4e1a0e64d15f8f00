"""A content-addressed on-disk cache of text embeddings, and the checks every encoder shares.

Layout::

  <cache_dir>/embeddings/<encoder name>/shard-<16 hex>.npz

``cache_dir`` is the argument, else ``$RP_JAX_CACHE``, else ``~/.cache/rp_jax``. A text's key is
the sha256 hex digest of its UTF-8 bytes; the encoder's name (``hash768-v1``, ``minilm-l6-v2``)
is the folder, so two encoders never share vectors. Each shard holds

- ``keys``: [n] unicode sha256 hex digests,
- ``vectors``: [n, D] float32,
- ``checksum``: sha256 over the format tag, the encoder name, D, the key bytes and the vector
  bytes (a 0-d unicode array).

``encode_cached`` reads every shard of the encoder, encodes only the texts that are missing (each
distinct text once) and writes them as one new shard atomically (temporary file in the same
folder, flush + fsync, ``os.replace``), named by the hash of its contents. A shard that cannot be
read or does not check out (bad zip, missing arrays, wrong shapes, dtype or dimension, checksum
mismatch) is reported with a ``CacheWarning`` naming the file, deleted, and its texts encoded
again; it is never used. A cache that cannot be written (read-only, disk full) only costs a
``CacheWarning``: the vectors are returned all the same. When an encoder has more than
``MAX_SHARDS`` shards they are merged into one (``compact``), so loading stays a handful of file
reads.

Nothing here needs pickle: every array is numeric or unicode and is loaded with
``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import warnings
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from rp_jax import io

__all__ = [
  "MAX_SHARDS",
  "CacheWarning",
  "Encoder",
  "check_texts",
  "compact",
  "default_cache_dir",
  "encode_cached",
  "encoder_cache_dir",
  "load_cache",
  "text_keys",
]

MAX_SHARDS = 16
_FORMAT = "rp_jax.embeddings/v1"
_KEY_LEN = 64  # sha256 hex digest


class CacheWarning(UserWarning):
  """A cache shard was unreadable or inconsistent; it was deleted and will be rebuilt."""


@runtime_checkable
class Encoder(Protocol):
  """What ``encode_cached`` needs from an encoder."""

  name: str
  dim: int
  num_encoded: int

  def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def check_texts(texts: Sequence[str]) -> list[str]:
  """Validates a batch of texts for an encoder.

  Args:
    texts: a non-empty sequence of ``str``.

  Returns:
    The texts as a list.

  Raises:
    TypeError: ``texts`` is a single string, not a sequence, or an item is not a ``str``
      (the message names the first such index and its type).
    ValueError: ``texts`` is empty.
  """
  if isinstance(texts, str | bytes):
    raise TypeError(
      f"texts must be a sequence of strings, got a single {type(texts).__name__}; wrap it in a list"
    )
  try:
    texts = list(texts)
  except TypeError:
    raise TypeError(f"texts must be a sequence of strings, got {type(texts).__name__}") from None
  if not texts:
    raise ValueError("texts is empty; expected at least one string to encode")
  for i, t in enumerate(texts):
    if not isinstance(t, str):
      raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
  return texts


def default_cache_dir() -> pathlib.Path:
  """The rp_jax cache root: ``$RP_JAX_CACHE`` if set, else ``~/.cache/rp_jax``."""
  env = os.environ.get("RP_JAX_CACHE")
  if env:
    return pathlib.Path(env).expanduser()
  return pathlib.Path.home() / ".cache" / "rp_jax"


def encoder_cache_dir(
  encoder_name: str, cache_dir: str | os.PathLike | None = None
) -> pathlib.Path:
  """The folder holding the shards of one encoder."""
  if not encoder_name or "/" in encoder_name or "\\" in encoder_name or encoder_name[0] == ".":
    raise ValueError(f"encoder name {encoder_name!r} cannot name a cache folder")
  root = default_cache_dir() if cache_dir is None else pathlib.Path(cache_dir).expanduser()
  return root / "embeddings" / encoder_name


def text_keys(texts: Sequence[str]) -> list[str]:
  """[N] sha256 hex digests of the texts' UTF-8 bytes."""
  return [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]


def _checksum(encoder_name: str, keys_N: np.ndarray, vectors_NxD: np.ndarray) -> str:
  h = hashlib.sha256()
  h.update(f"{_FORMAT}\n{encoder_name}\n{vectors_NxD.shape[1]}\n".encode())
  h.update(np.ascontiguousarray(keys_N).tobytes())
  h.update(np.ascontiguousarray(vectors_NxD).tobytes())
  return h.hexdigest()


def _shard_arrays(encoder_name: str, keys: Sequence[str], vectors_NxD: np.ndarray) -> dict:
  keys_N = np.asarray(list(keys), dtype=f"<U{_KEY_LEN}")
  vectors_NxD = np.ascontiguousarray(vectors_NxD, dtype=np.float32)
  return {
    "keys": keys_N,
    "vectors": vectors_NxD,
    "checksum": np.asarray(_checksum(encoder_name, keys_N, vectors_NxD)),
  }


def _write_shard(folder: pathlib.Path, arrays: dict) -> pathlib.Path:
  """Writes one shard atomically; its name is derived from its checksum."""
  path = folder / f"shard-{str(arrays['checksum'])[:16]}.npz"
  with io.atomic_write(path, "wb") as f:
    np.savez(f, **arrays)
  return path


def _read_shard(path: pathlib.Path, encoder_name: str, dim: int | None) -> tuple | None:
  """Reads and verifies one shard; returns (keys [n], vectors [n, D]) or raises ValueError."""
  try:
    with np.load(path, allow_pickle=False) as z:
      missing = {"keys", "vectors", "checksum"}.difference(z.files)
      if missing:
        raise ValueError(f"missing arrays {sorted(missing)}")
      keys_N, vectors_NxD, checksum = z["keys"], z["vectors"], z["checksum"]
  except FileNotFoundError:
    return None  # removed by a concurrent compaction: not an error
  except ValueError:
    raise
  except Exception as e:  # np.load raises many types on damaged zips (BadZipFile, EOFError, ...)
    raise ValueError(f"unreadable ({type(e).__name__}: {e})") from None
  if keys_N.ndim != 1 or keys_N.dtype.kind != "U":
    raise ValueError(f"keys must be a 1-d unicode array, got {keys_N.dtype} {keys_N.shape}")
  if vectors_NxD.dtype != np.float32 or vectors_NxD.ndim != 2:
    raise ValueError(
      f"vectors must be 2-d float32, got {vectors_NxD.dtype} with shape {vectors_NxD.shape}"
    )
  if vectors_NxD.shape[0] != keys_N.shape[0]:
    raise ValueError(f"{keys_N.shape[0]} keys but {vectors_NxD.shape[0]} vectors")
  if dim is not None and vectors_NxD.shape[1] != dim:
    raise ValueError(f"vectors have dimension {vectors_NxD.shape[1]}, the encoder has {dim}")
  if checksum.shape != () or checksum.dtype.kind != "U":
    raise ValueError("checksum must be a 0-d unicode array")
  if str(checksum) != _checksum(encoder_name, keys_N, vectors_NxD):
    raise ValueError("checksum mismatch (the file was modified or damaged)")
  return keys_N, vectors_NxD


def _shards(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(folder.glob("shard-*.npz")) if folder.is_dir() else []


def load_cache(
  encoder_name: str, dim: int | None = None, cache_dir: str | os.PathLike | None = None
) -> tuple[dict[str, int], np.ndarray]:
  """Loads every valid shard of an encoder; damaged shards are warned about and deleted.

  Args:
    encoder_name: the encoder's ``.name``.
    dim: the expected vector dimension (None: take it from the first valid shard).
    cache_dir: the cache root (default ``default_cache_dir()``).

  Returns:
    (index, vectors_NxD): ``index`` maps a text's sha256 hex key to its row in ``vectors_NxD``
    (float32 [N, D]; [0, dim or 0] when nothing is cached).
  """
  folder = encoder_cache_dir(encoder_name, cache_dir)
  keys, vecs = [], []
  for path in _shards(folder):
    try:
      got = _read_shard(path, encoder_name, dim)
    except ValueError as e:
      warnings.warn(
        f"embedding cache shard {path} is invalid ({e}); deleting it, its texts will be "
        "encoded again",
        CacheWarning,
        stacklevel=3,
      )
      with contextlib.suppress(OSError):  # gone already, or a read-only cache
        path.unlink()
      continue
    if got is None:
      continue
    if dim is None:
      dim = got[1].shape[1]
    keys.append(got[0])
    vecs.append(got[1])
  if not vecs:
    return {}, np.zeros((0, dim or 0), np.float32)
  keys_N = np.concatenate(keys)
  vectors_NxD = np.concatenate(vecs)
  # On duplicate keys (two writers encoded the same text) the later row wins; they are equal.
  index = dict(zip(keys_N.tolist(), range(len(keys_N)), strict=True))
  return index, vectors_NxD


def compact(
  encoder_name: str, cache_dir: str | os.PathLike | None = None, dim: int | None = None
) -> pathlib.Path | None:
  """Merges all valid shards of an encoder into one (duplicates dropped); returns its path.

  Safe against concurrent readers: the merged shard is written before the old ones are removed,
  and readers skip a shard that disappears under them. Returns None when nothing is cached.
  """
  folder = encoder_cache_dir(encoder_name, cache_dir)
  old = _shards(folder)
  index, vectors_NxD = load_cache(encoder_name, dim, cache_dir)
  if not index:
    return None
  keys = sorted(index)
  rows = np.fromiter((index[k] for k in keys), np.int64, count=len(keys))
  path = _write_shard(folder, _shard_arrays(encoder_name, keys, vectors_NxD[rows]))
  for p in old:
    if p != path:
      with contextlib.suppress(FileNotFoundError):
        p.unlink()
  return path


def encode_cached(
  encoder: Encoder, texts: Sequence[str], cache_dir: str | os.PathLike | None = None
) -> np.ndarray:
  """Encodes texts through the on-disk cache: only texts never seen by this encoder are encoded.

  Args:
    encoder: an object with ``name``, ``dim`` and ``encode(list[str]) -> [n, dim] float32``.
    texts: N strings (N >= 1, duplicates allowed).
    cache_dir: the cache root (default ``$RP_JAX_CACHE`` or ``~/.cache/rp_jax``).

  Returns:
    [N, dim] float32, row i the embedding of ``texts[i]``.
  """
  texts = check_texts(texts)
  dim = int(encoder.dim)
  keys = text_keys(texts)
  index, cached_NxD = load_cache(encoder.name, dim, cache_dir)

  new_pos: dict[str, int] = {}
  new_texts: list[str] = []
  for k, t in zip(keys, texts, strict=True):
    if k not in index and k not in new_pos:
      new_pos[k] = len(new_texts)
      new_texts.append(t)

  if new_texts:
    new_NxD = np.asarray(encoder.encode(new_texts))
    if new_NxD.shape != (len(new_texts), dim) or new_NxD.dtype != np.float32:
      raise ValueError(
        f"encoder {encoder.name!r} returned {new_NxD.dtype} {new_NxD.shape}; expected float32 "
        f"{(len(new_texts), dim)}"
      )
    folder = encoder_cache_dir(encoder.name, cache_dir)
    try:
      _write_shard(folder, _shard_arrays(encoder.name, list(new_pos), new_NxD))
      if len(_shards(folder)) > MAX_SHARDS:
        compact(encoder.name, cache_dir, dim)
    except OSError as e:
      # The vectors are correct; only their reuse is lost. Say so instead of failing the run.
      warnings.warn(
        f"could not write the embedding cache under {folder} ({e}); continuing without it",
        CacheWarning,
        stacklevel=2,
      )

  hit = np.fromiter((k in index for k in keys), bool, count=len(keys))
  out_NxD = np.empty((len(keys), dim), np.float32)
  if hit.any():
    rows = np.fromiter((index[k] for k, h in zip(keys, hit, strict=True) if h), np.int64)
    out_NxD[hit] = cached_NxD[rows]
  if not hit.all():
    rows = np.fromiter((new_pos[k] for k, h in zip(keys, hit, strict=True) if not h), np.int64)
    out_NxD[~hit] = new_NxD[rows]
  return out_NxD
