"""scores profiles: a model as its standardised benchmark scores plus a small identity code.

The model–task edges of the interaction graph carry benchmark scores; this profile reads them
directly instead of through text. Features are the benchmarks every candidate has a score for in
the setting (in newllm, where the held-out model's routing-task scores are removed, only the other
benchmarks remain: ifeval, bbh, math, gpqa, musr, mmlu_pro on the public data), each standardised
with the candidates' mean and standard deviation; a model without a score on one of them gets the
mean (0). A constant feature follows (an intercept for maps that are linear in the profile). The
block is scaled to norm ≈ 1 (divided by sqrt(F + 1)).

The remaining dimensions hold ``CODE_WEIGHT`` x a unit-norm random code per model (the index
profile's vector, same seed): without it, 8 candidates described by 7 numbers are nearly
collinear, and a router whose model side is a function of the profile (the bilinear MF's kernel
K = P Pᵀ) cannot tell seen models apart. For a model the router never saw, the codes are nearly
orthogonal to everyone's, so its scores come from the benchmark block: with the MF's kernel form
its column is the ridge regression of the seen models' columns on their benchmark scores (ridge
≈ CODE_WEIGHT² + ``kernel_ridge``), which can place it above every seen model — text profiles
(unit-norm, nearly orthogonal embeddings) can only average the others.

Measured on the public data (docs/findings.md, cold start): this is the only profile family with which MF
and kNN route to the held-out mistral-small at all, but the benchmark scores do not predict where
it wins (leave-one-model-out on the training pairs, shrinking to the mean predicts best).
"""

from __future__ import annotations

import numpy as np

MIN_STD = 1e-6
CODE_WEIGHT = 0.3


def score_profiles(
  scores_MxT: np.ndarray, candidates: np.ndarray, code_MxD: np.ndarray
) -> np.ndarray:
  """[M, D] float32 profiles (see module docstring); ``code_MxD``: one random vector per model."""
  scores_MxT = np.asarray(scores_MxT, np.float64)
  code_MxD = np.asarray(code_MxD, np.float64)
  cand = np.asarray(candidates, np.int64)
  num_models, dim = code_MxD.shape
  if scores_MxT.shape[0] != num_models:
    raise ValueError(
      f"scores profile: {scores_MxT.shape[0]} models have scores but {num_models} have codes"
    )
  if cand.size == 0:
    raise ValueError("scores profile: the setting has no candidate models")
  common_F = np.flatnonzero(np.isfinite(scores_MxT[cand]).all(axis=0))
  k = common_F.size + 1
  if k >= dim:
    raise ValueError(
      f"scores profile: {common_F.size} benchmarks scored for every candidate + 1 need a "
      f"profile dimension above {k}; the encoder gives {dim}"
    )
  x_MxF = scores_MxT[:, common_F]
  mean_F = x_MxF[cand].mean(axis=0)
  std_F = np.maximum(x_MxF[cand].std(axis=0), MIN_STD)
  out = np.zeros((num_models, dim), np.float64)
  out[:, : k - 1] = np.where(np.isfinite(x_MxF), (x_MxF - mean_F) / std_F, 0.0)
  out[:, k - 1] = 1.0
  out[:, :k] /= np.sqrt(k)
  code = code_MxD[:, k:]
  norm = np.linalg.norm(code, axis=1, keepdims=True)
  out[:, k:] = CODE_WEIGHT * code / np.where(norm > 0, norm, 1.0)
  return out.astype(np.float32)
