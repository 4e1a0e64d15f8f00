"""Constants and small array ops shared by the Flax modules (routers and trainable profiles)."""

from __future__ import annotations

import jax

# Full float32 matmuls: GPUs otherwise default to TF32, whose rounding makes a vmapped grid and a
# loop of single cells drift apart (on an H200, 82% equal choices with TF32, 99% with this).
PRECISION = jax.lax.Precision.HIGHEST
# "Minus infinity" for masked logits: finite, so exp() and its gradient stay finite.
NEG = -1e30
