"""flat profiles: one document per model (its text plus random nodes of the form's other types).

SPEC §2: for each model m the document is ``"[MODEL] " + text(m)`` followed, for every other node
type present in the graph form (family always, plus the form's task / query / domain nodes), by
``min(5, n_type)`` nodes of that type drawn uniformly at random — not neighbours — each on its own
line as ``"[TYPE] " + text``. The documents are encoded once and L2-normalised.

Draws are seeded per (seed, model, type) with numpy's PCG64, so a model's document does not
depend on which other models are in the pool.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rp_jax.graphs import FORM_NODE_TYPES, NODE_TYPES, GraphInfo

SAMPLES_PER_TYPE = 5


def flat_documents(info: GraphInfo, form: str, seed: int = 0) -> list[str]:
  """The M flat documents of a graph form (host side, deterministic for a seed)."""
  if form not in FORM_NODE_TYPES:
    raise ValueError(f"unknown graph form {form!r}; expected one of {tuple(FORM_NODE_TYPES)}")
  types = ("family", *FORM_NODE_TYPES[form])
  texts = info.node_texts
  ms = info.model_slice
  docs = []
  for m in range(ms.stop - ms.start):
    lines = [f"[MODEL] {texts[ms.start + m]}"]
    for t in types:
      sl = info.type_slice(t)
      n = sl.stop - sl.start
      if n == 0:
        continue
      rng = np.random.default_rng([seed, m, NODE_TYPES.index(t)])
      pick = rng.choice(n, size=min(SAMPLES_PER_TYPE, n), replace=False)
      lines += [f"[{t.upper()}] {texts[sl.start + i]}" for i in np.sort(pick)]
    docs.append("\n".join(lines))
  return docs


def flat_profiles(
  info: GraphInfo, form: str, embed: Callable[[list[str]], np.ndarray], seed: int = 0
) -> np.ndarray:
  """[M, D] L2-normalised embeddings of the flat documents."""
  e = np.asarray(embed(flat_documents(info, form, seed)), np.float32)
  return e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)
