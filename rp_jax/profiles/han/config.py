"""Static hyperparameters of the trainable (HAN) profiles."""

from __future__ import annotations

import dataclasses

ATTENTIONS = ("dense", "edges")


@dataclasses.dataclass(frozen=True)
class TrainableConfig:
  """Static hyperparameters of the trainable profiles (hashable: a jit static argument).

  Attributes:
    hidden: width of the HAN layers (all heads together).
    heads: attention heads; ``hidden // heads`` channels per head.
    max_depth: number of HAN layers whose parameters are built (and drawn at initialisation);
      a depth in 0..max_depth uses the first ones.
    semantic_dim: width of the semantic-attention projection.
    attn_dropout: dropout on the attention weights during training.
    feat_mask_rate: fraction of the nodes of each type whose features are masked per step.
    score_mask_rate: probability that a model-task pair's score is hidden per step.
    feat_weight, score_weight: weights of the two loss terms.
    score_hidden: hidden width of the score-prediction MLP.
    lr, weight_decay: AdamW defaults (``trainable_profiles`` can override both, traced).
    lr_final_frac: the cosine schedule ends at ``lr * lr_final_frac``.
    grad_clip: global gradient-norm clip (0 disables it).
    steps: full-batch training steps.
    attention: "dense" (grouped relation blocks, fast) or "edges" (segment softmax, reference).
    report_progress: call ``rp_jax.progress.on_epoch`` after every training step (progress
      lines from inside the compiled HAN grid; the sweep sets it, the config does not hold it).
  """

  hidden: int = 256
  heads: int = 4
  max_depth: int = 4
  semantic_dim: int = 128
  attn_dropout: float = 0.1
  feat_mask_rate: float = 0.3
  score_mask_rate: float = 0.3
  feat_weight: float = 1.0
  score_weight: float = 1.0
  score_hidden: int = 64
  lr: float = 1e-4
  weight_decay: float = 1e-4
  lr_final_frac: float = 0.05
  grad_clip: float = 1.0
  steps: int = 100
  attention: str = "dense"
  report_progress: bool = False

  def __post_init__(self):
    if self.attention not in ATTENTIONS:
      raise ValueError(f"unknown attention {self.attention!r}; expected one of {ATTENTIONS}")
    for name in ("hidden", "heads", "max_depth", "semantic_dim", "score_hidden", "steps"):
      v = getattr(self, name)
      if not isinstance(v, int) or v < 1:
        raise ValueError(f"TrainableConfig.{name} must be a positive integer, got {v!r}")
    if self.hidden % self.heads:
      raise ValueError(
        f"TrainableConfig.hidden ({self.hidden}) must be a multiple of heads ({self.heads})"
      )
    for name in ("attn_dropout", "feat_mask_rate", "score_mask_rate", "lr_final_frac"):
      v = getattr(self, name)
      if not 0.0 <= v <= 1.0:
        raise ValueError(f"TrainableConfig.{name} must lie in [0, 1], got {v!r}")
    if self.grad_clip < 0:
      raise ValueError(f"TrainableConfig.grad_clip must be >= 0, got {self.grad_clip!r}")

  @property
  def channels(self) -> int:
    return self.hidden // self.heads
