"""Tests of the hashing encoder (SPEC.md §6, ``hash768-v1``) and ``make_encoder``."""

import hashlib
import math
import os
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from rp_jax.text import HashingEncoder, make_encoder
from rp_jax.text.hashing import feature_bucket_sign

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEXTS = [
  "The quick brown fox",
  "the the the quick quick fox fox fox fox",  # tf > 1
  "",  # no tokens: the zero vector
  "!!! ... ???",  # punctuation only: no tokens either
  "Café NAÏVE — 東京 Привет мир_1 x2 ÉCOLE",  # Unicode \w and str.lower
  "def f(x):\n    return x ** 2  # square",
  "a b a b a b c",  # repeated bigrams
]


def reference_vector(s: str, dim: int) -> np.ndarray:
  """SPEC §6 written as plainly as possible, one text at a time."""
  toks = re.findall(r"\w+", s.lower())
  feats = toks + [toks[i] + " " + toks[i + 1] for i in range(len(toks) - 1)]
  v = np.zeros(dim, np.float64)
  for f, tf in Counter(feats).items():
    h = int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest(), "little")
    sign = -1.0 if (h >> 63) & 1 else 1.0
    v[h % dim] += sign * (1.0 + math.log(tf))
  n = np.linalg.norm(v)
  return (v / n if n > 0 else v).astype(np.float32)


def test_golden_example_matches_spec():
  enc = make_encoder("hashing")
  assert enc.name == "hash768-v1" and enc.dim == 768
  v = enc.encode(["The quick brown fox"])
  assert v.shape == (1, 768) and v.dtype == np.float32
  expected = {606: 1, 266: 1, 388: -1, 274: -1, 487: -1, 724: -1, 45: -1}
  assert set(np.flatnonzero(v[0]).tolist()) == set(expected)
  for bucket, sign in expected.items():
    np.testing.assert_allclose(v[0, bucket], sign / math.sqrt(7), rtol=1e-6)


def test_feature_bucket_sign_golden():
  assert feature_bucket_sign("the", 768) == (606, 1)
  assert feature_bucket_sign("brown fox", 768) == (45, -1)


@pytest.mark.parametrize("dim", [768, 17, 1])
def test_matches_plain_reference(dim):
  # dim 17 and 1 force collisions between distinct features (they add up in one bucket).
  enc = HashingEncoder(dim)
  assert enc.name == f"hash{dim}-v1"
  got = enc.encode(TEXTS)
  want = np.stack([reference_vector(t, dim) for t in TEXTS])
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  assert not got[2].any() and not got[3].any()
  norms = np.linalg.norm(got, axis=1)
  nonzero = [i for i in range(len(TEXTS)) if i not in (2, 3)]
  if dim > 1:
    np.testing.assert_allclose(norms[nonzero], 1.0, rtol=1e-6)


def test_texts_without_tokens_alone_give_float32_zeros():
  v = HashingEncoder().encode(["", " ... "])
  assert v.dtype == np.float32 and v.shape == (2, 768) and not v.any()


def test_other_dim_has_other_name_and_values():
  a, b = HashingEncoder(768), HashingEncoder(1024)
  assert a.name != b.name and b.name == "hash1024-v1"
  assert b.encode(["The quick brown fox"]).shape == (1, 1024)


def test_independent_of_batch_and_memo():
  enc = HashingEncoder()
  together = enc.encode(TEXTS)
  alone = np.concatenate([enc.encode([t]) for t in reversed(TEXTS)])[::-1]
  assert np.array_equal(together, alone)
  # A fresh encoder (empty memo) gives the same bytes.
  assert np.array_equal(HashingEncoder().encode(TEXTS), together)


def test_deterministic_across_pythonhashseed():
  code = (
    "import sys, hashlib; from rp_jax.text import make_encoder; "
    f"v = make_encoder('hashing').encode({TEXTS!r}); "
    "sys.stdout.write(hashlib.sha256(v.tobytes()).hexdigest())"
  )
  here = hashlib.sha256(HashingEncoder().encode(TEXTS).tobytes()).hexdigest()
  for seed in ("0", "12345"):
    env = {**os.environ, "PYTHONHASHSEED": seed, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
      [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout == here, (seed, out.stderr)


def test_counter_counts_encoded_texts():
  enc = HashingEncoder()
  enc.encode(["a", "b"])
  enc.encode(["c"])
  assert enc.num_encoded == 3


def test_bad_inputs():
  enc = make_encoder("hashing")
  with pytest.raises(ValueError, match="empty"):
    enc.encode([])
  with pytest.raises(TypeError, match=r"texts\[1\] is int"):
    enc.encode(["ok", 3, None])
  with pytest.raises(TypeError, match="single str"):
    enc.encode("not a list")
  with pytest.raises(ValueError, match="positive integer"):
    HashingEncoder(0)
  with pytest.raises(ValueError, match=r"unknown encoder 'bert'.*'hashing', 'minilm'"):
    make_encoder("bert")
