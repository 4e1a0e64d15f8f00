"""Tests of the content-addressed embedding cache (``rp_jax.text.cache``)."""

import os
import zipfile

import numpy as np
import pytest

from rp_jax.text import CacheWarning, HashingEncoder, encode_cached
from rp_jax.text import cache as cache_lib

TEXTS = ["alpha beta", "gamma", "delta epsilon zeta", "alpha beta", "eta theta"]


def shards(root, enc):
  return sorted((root / "embeddings" / enc.name).glob("shard-*.npz"))


def all_files(root):
  return sorted(p.name for p in root.rglob("*") if p.is_file())


def test_second_call_hits_the_cache(tmp_path):
  enc = HashingEncoder(64)
  first = encode_cached(enc, TEXTS, tmp_path)
  assert enc.num_encoded == 4  # the duplicate "alpha beta" is encoded once
  np.testing.assert_array_equal(first, HashingEncoder(64).encode(TEXTS))
  second = encode_cached(enc, TEXTS, tmp_path)
  assert enc.num_encoded == 4
  np.testing.assert_array_equal(second, first)
  # Partly new input: only the new text is encoded; the order of the output follows the input.
  third = encode_cached(enc, ["new text", "gamma"], tmp_path)
  assert enc.num_encoded == 5
  np.testing.assert_array_equal(third, HashingEncoder(64).encode(["new text", "gamma"]))
  assert len(shards(tmp_path, enc)) == 2


def test_encoders_do_not_share_entries(tmp_path):
  a, b = HashingEncoder(64), HashingEncoder(32)
  encode_cached(a, TEXTS, tmp_path)
  out = encode_cached(b, TEXTS, tmp_path)
  assert b.num_encoded == 4 and out.shape == (5, 32)


def test_env_var_sets_the_default_dir(tmp_path, monkeypatch):
  monkeypatch.setenv("RP_JAX_CACHE", str(tmp_path / "env"))
  enc = HashingEncoder(16)
  encode_cached(enc, ["x"])
  assert len(shards(tmp_path / "env", enc)) == 1


def _corrupt_truncate(path, enc):
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])


def _corrupt_flip(path, enc):
  data = bytearray(path.read_bytes())
  mid = len(data) // 2
  data[mid : mid + 8] = bytes(b ^ 0xFF for b in data[mid : mid + 8])
  path.write_bytes(bytes(data))


def _corrupt_wrong_dim(path, enc):
  # A valid npz with a self-consistent checksum, but vectors of another dimension.
  keys = cache_lib.text_keys(["alpha beta"])
  arrays = cache_lib._shard_arrays(enc.name, keys, np.ones((1, enc.dim + 1), np.float32))
  path.unlink()
  np.savez(path, **arrays)


def _corrupt_values(path, enc):
  # A valid zip whose vectors were changed after the checksum was written.
  with np.load(path, allow_pickle=False) as z:
    arrays = {k: z[k] for k in z.files}
  arrays["vectors"] = arrays["vectors"] + 1.0
  np.savez(path, **arrays)


def _corrupt_missing_array(path, enc):
  with np.load(path, allow_pickle=False) as z:
    arrays = {k: z[k] for k in z.files if k != "checksum"}
  np.savez(path, **arrays)


def _corrupt_not_a_zip(path, enc):
  path.write_bytes(b"this is not an npz file")


@pytest.mark.parametrize(
  "corrupt",
  [
    _corrupt_truncate,
    _corrupt_flip,
    _corrupt_wrong_dim,
    _corrupt_values,
    _corrupt_missing_array,
    _corrupt_not_a_zip,
  ],
)
def test_corrupted_shard_is_reported_deleted_and_rebuilt(tmp_path, corrupt):
  enc = HashingEncoder(64)
  want = encode_cached(enc, TEXTS, tmp_path)
  (path,) = shards(tmp_path, enc)
  corrupt(path, enc)
  with pytest.warns(CacheWarning, match=path.name):
    got = encode_cached(enc, TEXTS, tmp_path)
  np.testing.assert_array_equal(got, want)
  assert enc.num_encoded == 8  # every distinct text encoded again
  new = shards(tmp_path, enc)
  assert len(new) == 1
  # The rebuilt shard is sound: a third call warns about nothing and encodes nothing.
  import warnings

  with warnings.catch_warnings():
    warnings.simplefilter("error")
    np.testing.assert_array_equal(encode_cached(enc, TEXTS, tmp_path), want)
  assert enc.num_encoded == 8


def test_shards_are_plain_npz_without_pickles(tmp_path):
  enc = HashingEncoder(8)
  encode_cached(enc, TEXTS, tmp_path)
  (path,) = shards(tmp_path, enc)
  with np.load(path, allow_pickle=False) as z:
    assert sorted(z.files) == ["checksum", "keys", "vectors"]
    assert z["keys"].dtype.kind == "U" and z["vectors"].dtype == np.float32
    assert z["vectors"].shape == (4, 8)


def test_atomic_write_leaves_no_temporary_files(tmp_path, monkeypatch):
  enc = HashingEncoder(8)
  encode_cached(enc, TEXTS, tmp_path)
  assert all(name.startswith("shard-") for name in all_files(tmp_path))

  def broken_savez(f, **arrays):
    f.write(b"partial")
    raise OSError("disk full")

  monkeypatch.setattr(cache_lib.np, "savez", broken_savez)
  with pytest.warns(CacheWarning, match="could not write.*disk full"):
    got = encode_cached(enc, ["something new"], tmp_path)
  monkeypatch.undo()
  np.testing.assert_array_equal(got, HashingEncoder(8).encode(["something new"]))
  files = all_files(tmp_path)
  assert len(files) == 1 and not any(f.endswith(".tmp") for f in files), files
  with zipfile.ZipFile(shards(tmp_path, enc)[0]) as z:
    assert z.testzip() is None


def test_many_shards_are_compacted(tmp_path, monkeypatch):
  monkeypatch.setattr(cache_lib, "MAX_SHARDS", 3)
  enc = HashingEncoder(16)
  for i in range(5):
    encode_cached(enc, [f"text {i}", "shared"], tmp_path)
  assert len(shards(tmp_path, enc)) <= 3
  before = enc.num_encoded
  texts = [f"text {i}" for i in range(5)] + ["shared"]
  np.testing.assert_array_equal(
    encode_cached(enc, texts, tmp_path), HashingEncoder(16).encode(texts)
  )
  assert enc.num_encoded == before
  path = cache_lib.compact(enc.name, tmp_path)
  assert shards(tmp_path, enc) == [path]
  with np.load(path, allow_pickle=False) as z:
    assert len(z["keys"]) == 6  # duplicates dropped


def test_bad_inputs_and_bad_encoders(tmp_path):
  enc = HashingEncoder(8)
  with pytest.raises(ValueError, match="empty"):
    encode_cached(enc, [], tmp_path)
  with pytest.raises(TypeError, match=r"texts\[2\] is bytes"):
    encode_cached(enc, ["a", "b", b"c"], tmp_path)

  class Wrong:
    name, dim, num_encoded = "wrong-v1", 4, 0

    def encode(self, texts):
      return np.zeros((len(texts), 3), np.float32)

  with pytest.raises(ValueError, match=r"wrong-v1.*expected float32 \(1, 4\)"):
    encode_cached(Wrong(), ["a"], tmp_path)
  assert not os.path.exists(tmp_path / "embeddings" / "wrong-v1")
