"""The feature-hashing text encoder ``hash{D}-v1`` (SPEC.md §6), rp_jax's default.

For one text ``s`` and dimension ``D`` (768 by default, named ``hash768-v1``):

1. ``tokens = re.findall(r"\\w+", s.lower())`` — Python ``re`` with Unicode ``\\w``, ``str.lower``.
2. Features: every unigram ``tokens[i]`` and every bigram ``tokens[i] + " " + tokens[i + 1]``;
   ``tf(f)`` = the number of times feature ``f`` occurs in ``s``.
3. ``h = int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest(), "little")``;
   bucket ``h % D``; sign ``-1`` if bit 63 of ``h`` is set, else ``+1``.
4. ``v[bucket] += sign * (1 + ln tf(f))`` for every distinct feature, accumulated in float64
   (distinct features that collide in one bucket add up).
5. ``v / ||v||_2`` (a text without tokens stays the zero vector), cast to float32.

Golden example (D = 768): "The quick brown fox" has 7 features of tf 1 at buckets
the 606(+), quick 266(+), brown 388(-), fox 274(-), "the quick" 487(-), "quick brown" 724(-),
"brown fox" 45(-), each ``±1/sqrt(7)``.

The vectors depend on nothing but the text and ``D`` (blake2b, not Python's salted ``hash``), so
they are identical across processes, machines and ``PYTHONHASHSEED`` values.

Speed: the only per-text Python work is tokenising. Each distinct feature is hashed once per
encoder (memo tables that live as long as the encoder: unigrams keyed by string, bigrams by the
pair of their tokens' ids, so bigram strings are only built when new); tf counts come from one
``np.unique`` and the ``[N, D]`` matrix from one ``np.bincount`` over flattened
``(row, bucket)`` indices.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import numpy as np

from rp_jax.text.cache import check_texts

__all__ = ["DEFAULT_DIM", "HashingEncoder", "feature_bucket_sign", "hashing_name"]

DEFAULT_DIM = 768
_TOKEN_RE = re.compile(r"\w+")
_BIT63 = 1 << 63


def hashing_name(dim: int) -> str:
  """The stable encoder name for dimension ``dim``: ``hash768-v1`` for 768."""
  return f"hash{int(dim)}-v1"


def feature_bucket_sign(feature: str, dim: int) -> tuple[int, int]:
  """The bucket in ``[0, dim)`` and the sign (+1 / -1) of one feature (steps 3 of the spec)."""
  h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
  return h % dim, (-1 if h & _BIT63 else 1)


class HashingEncoder:
  """Signed feature hashing of unigrams and bigrams into ``dim`` buckets, L2-normalised.

  Attributes:
    name: ``hash{dim}-v1``; used in cache keys and results.
    dim: the output dimension D.
    num_encoded: how many texts ``encode`` has processed (cache hits never reach it).
  """

  def __init__(self, dim: int = DEFAULT_DIM):
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
      raise ValueError(f"hashing encoder dim must be a positive integer, got {dim!r}")
    self.dim = int(dim)
    self.name = hashing_name(self.dim)
    self.num_encoded = 0
    # Every distinct feature gets an id into the growing tables below and is hashed once per
    # encoder. Unigrams are looked up by string; a bigram by the int64 key (id of its first
    # token << 32 | id of its second), so no bigram string is built except when it is new.
    self._unigram_id: dict[str, int] = {}
    self._bigram_id: dict[int, int] = {}
    self._strings: list[str] = []
    self._bucket: list[int] = []
    self._sign: list[float] = []
    self._tables = (np.zeros(0, np.int64), np.zeros(0, np.float64))

  def __repr__(self) -> str:
    return f"HashingEncoder(dim={self.dim}, name={self.name!r})"

  def _add(self, feature: str) -> int:
    b, s = feature_bucket_sign(feature, self.dim)
    self._strings.append(feature)
    self._bucket.append(b)
    self._sign.append(float(s))
    return len(self._bucket) - 1

  def _unigram_ids(self, tokens: list[str]) -> np.ndarray:
    """[W] int64 feature ids of tokens, hashing the ones not seen before."""
    table = self._unigram_id
    for t in set(tokens).difference(table):
      table[t] = self._add(t)
    return np.fromiter(map(table.__getitem__, tokens), np.int64, count=len(tokens))

  def _bigram_ids(self, keys: np.ndarray) -> np.ndarray:
    """[U] int64 feature ids of distinct bigram keys (first id << 32 | second id)."""
    table, strings = self._bigram_id, self._strings
    out = []
    for k in keys.tolist():
      f = table.get(k)
      if f is None:
        f = table[k] = self._add(strings[k >> 32] + " " + strings[k & 0xFFFFFFFF])
      out.append(f)
    return np.asarray(out, np.int64)

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """Encodes texts into L2-normalised hashed feature vectors.

    Args:
      texts: N strings (N >= 1).

    Returns:
      [N, dim] float32; rows of texts without any ``\\w`` token are zero.
    """
    texts = check_texts(texts)
    n, d = len(texts), self.dim
    tokens = [_TOKEN_RE.findall(t.lower()) for t in texts]
    counts = np.fromiter(map(len, tokens), np.int64, count=n)
    uni_W = self._unigram_ids(list(itertools.chain.from_iterable(tokens)))
    row_W = np.repeat(np.arange(n, dtype=np.int64), counts)
    # Bigrams: consecutive tokens of the same text.
    same = row_W[1:] == row_W[:-1]
    keys, inverse = np.unique((uni_W[:-1] << 32 | uni_W[1:])[same], return_inverse=True)
    bi = self._bigram_ids(keys)[inverse.reshape(-1)]
    fid = np.concatenate([uni_W, bi])
    row = np.concatenate([row_W, row_W[1:][same]])
    if len(self._tables[0]) != len(self._bucket):
      self._tables = (np.asarray(self._bucket, np.int64), np.asarray(self._sign, np.float64))
    # tf per (text, feature) from one unique over a combined int64 key (ids < 2**31, n < 2**32).
    pair, tf = np.unique(row << 32 | fid, return_counts=True)
    row_u, fid_u = pair >> 32, pair & 0xFFFFFFFF
    weight = self._tables[1][fid_u] * (1.0 + np.log(tf.astype(np.float64)))
    v = np.bincount(row_u * d + self._tables[0][fid_u], weights=weight, minlength=n * d)
    # bincount returns int64 when there are no weights at all (texts without any token).
    v_NxD = v.astype(np.float64, copy=False).reshape(n, d)
    norm = np.linalg.norm(v_NxD, axis=1, keepdims=True)
    v_NxD = np.divide(v_NxD, norm, out=np.zeros_like(v_NxD), where=norm > 0)
    self.num_encoded += n
    return v_NxD.astype(np.float32)
