"""emb_gnn profiles over a whole grid of forms x hops x norms in one compiled call.

``rp_jax.propagate.emb_gnn`` is the single-configuration function (every argument traced);
``emb_gnn_grid`` runs S configurations at once. Because a propagation yields every hop up to
``max_hops`` anyway, the grid propagates once per distinct (form, norm, self_loop) and reads the
requested hop of each cell from it: the 100-cell grid of 5 forms x 5 hops x 4 norms costs 20
propagations, not 100.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax import propagate
from rp_jax.graphs import NORMS, relation_mask

TRACE_COUNT = 0  # incremented each time the grid function is traced (tests assert one compile)


def norm_onehot(norm: str) -> np.ndarray:
  if norm not in NORMS:
    raise ValueError(f"unknown normalisation {norm!r}; expected one of {NORMS}")
  return np.eye(len(NORMS), dtype=np.float32)[NORMS.index(norm)]


def grid_arrays(cells) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Stacks (form, hops, norm, self_loop) cells into (masks_SxR, hops_S, norms_Sx4, loops_S)."""
  masks = np.stack([relation_mask(f) for f, _, _, _ in cells])
  hops = np.asarray([k for _, k, _, _ in cells], np.int32)
  norms = np.stack([norm_onehot(n) for _, _, n, _ in cells])
  loops = np.asarray([float(s) for *_, s in cells], np.float32)
  return masks, hops, norms, loops


@functools.partial(jax.jit, static_argnames=("type_counts", "max_hops", "l2_normalize"))
def _grid(
  blocks,
  x_NxD,
  masks_UxR,
  norms_Ux4,
  loops_U,
  inv_S,
  hops_S,
  *,
  type_counts,
  max_hops,
  l2_normalize,
):
  global TRACE_COUNT
  TRACE_COUNT += 1
  op_UxKxMxN = jax.vmap(
    lambda m, n, s: propagate.readout_hops_blocks(
      blocks, m, n, s, type_counts=type_counts, max_hops=max_hops
    )
  )(masks_UxR, norms_Ux4, loops_U)
  op_SxMxN = op_UxKxMxN[inv_S, jnp.clip(hops_S, 0, max_hops)]
  prof_SxMxD = jnp.einsum("smn,nd->smd", op_SxMxN, x_NxD, precision=jax.lax.Precision.HIGHEST)
  return propagate.l2_normalize_rows(prof_SxMxD) if l2_normalize else prof_SxMxD


def emb_gnn_grid(
  blocks,
  x_NxD,
  masks_SxR: np.ndarray,
  hops_S: np.ndarray,
  norms_Sx4: np.ndarray,
  loops_S: np.ndarray | None = None,
  *,
  type_counts: tuple[int, ...],
  max_hops: int = 4,
  l2_normalize: bool = False,
) -> jax.Array:
  """profile_SxMxD for S (form mask, hops, norm, self_loop) cells in one jitted call.

  Args:
    blocks: ``graphs.relation_blocks(graph, info)``.
    x_NxD: [N, D] hop-0 node features.
    masks_SxR, hops_S, norms_Sx4, loops_S: the cells (``grid_arrays``); host numpy arrays,
      deduplicated on the host so that each distinct propagation runs once.
  """
  loops_S = (
    np.zeros(len(hops_S), np.float32) if loops_S is None else np.asarray(loops_S, np.float32)
  )
  key_S = np.concatenate([np.asarray(masks_SxR), np.asarray(norms_Sx4), loops_S[:, None]], axis=1)
  uniq, inv = np.unique(key_S, axis=0, return_inverse=True)
  r = masks_SxR.shape[1]
  return _grid(
    tuple(jnp.asarray(b) for b in blocks),
    jnp.asarray(x_NxD),
    jnp.asarray(uniq[:, :r]),
    jnp.asarray(uniq[:, r : r + 4]),
    jnp.asarray(uniq[:, r + 4]),
    jnp.asarray(inv.reshape(-1).astype(np.int32)),
    jnp.asarray(hops_S, jnp.int32),
    type_counts=tuple(int(c) for c in type_counts),
    max_hops=max_hops,
    l2_normalize=l2_normalize,
  )
