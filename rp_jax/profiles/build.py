"""Builds a list of profile configurations into one stacked array ``profile_SxZxMxD``.

Each family of profiles is computed the cheapest way it can be, then stacked:

- index: one seeded Gaussian per model;
- scores: standardised benchmark scores (``scores_MxT``, ``candidates``) + a small index code;
- flat: one encoded document per model and form (host side, embeddings cached);
- emb_gnn: every requested (form, hops, norm) cell in one jitted call (``emb_gnn_grid``);
- text_gnn: one text-GNN run per form for all hops (summaries cached by the summariser);
- trainable: every (form, depth) x seed cell, one jitted call per distinct depth.

R is the number of router seeds: trainable profiles differ per seed (seed r's router sees the HAN
trained with seed r); the others are the same for every seed and are broadcast, so the router
sweep trains on (profile, seed) pairs with one vmap.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import jax
import numpy as np

from rp_jax import graphs
from rp_jax.profiles import emb_gnn as emb_gnn_lib
from rp_jax.profiles import flat as flat_lib
from rp_jax.profiles import text_gnn as text_gnn_lib
from rp_jax.profiles import trainable as trainable_lib
from rp_jax.profiles.index import index_profiles
from rp_jax.profiles.scores import score_profiles
from rp_jax.profiles.spec import ProfileSpec


@dataclasses.dataclass
class ProfileSet:
  """Stacked profiles of S configurations for R seeds.

  Attributes:
    specs: [S] configurations.
    profile_SxZxMxD: float32 profiles over the whole model pool.
    per_seed: [S] bool, the profile differs across seeds (trainable).
    texts: form -> hop texts of the text GNN ({hop: {node: text}}), for people to read.
    losses: spec id -> [R, steps] self-supervised loss curves of trainable profiles.
    seconds: family -> wall seconds spent building it.
  """

  specs: list[ProfileSpec]
  profile_SxZxMxD: np.ndarray
  per_seed: np.ndarray
  texts: dict[str, dict]
  losses: dict[str, np.ndarray]
  seconds: dict[str, float]


def build_profiles(
  specs: list[ProfileSpec],
  graph: graphs.Graph,
  info: graphs.GraphInfo,
  x_NxD: np.ndarray,
  embed: Callable[[list[str]], np.ndarray],
  *,
  seeds: list[int],
  summarize=None,
  max_hops: int = 4,
  index_seed: int = 0,
  flat_seed: int = 0,
  emb_l2: bool = True,
  trainable_config=None,
  scores_MxT: np.ndarray | None = None,
  candidates: np.ndarray | None = None,
  log: Callable[[str], None] = lambda s: None,
) -> ProfileSet:
  """Computes every spec's profile (see module docstring). x_NxD: encoded node texts."""
  M = info.type_counts[graphs.MODEL]
  D = x_NxD.shape[1]
  R = len(seeds)
  out = np.zeros((len(specs), R, M, D), np.float32)
  per_seed = np.zeros(len(specs), bool)
  texts, losses, seconds = {}, {}, {}
  by = lambda name: [i for i, s in enumerate(specs) if s.profile == name]

  t0 = time.perf_counter()
  if by("index") or by("scores"):  # the scores profile's identity code is the index vector
    index_MxD = np.asarray(index_profiles(jax.random.key(index_seed), M, D))
  for i in by("index"):
    out[i] = index_MxD[None]
  for i in by("scores"):
    if scores_MxT is None or candidates is None:
      raise ValueError("scores profiles need the benchmark scores and the candidates")
    out[i] = score_profiles(scores_MxT, candidates, index_MxD)[None]
  for i in by("flat"):
    out[i] = flat_lib.flat_profiles(info, specs[i].graph, embed, seed=flat_seed)[None]
  seconds["index+flat"] = time.perf_counter() - t0

  idx = by("emb_gnn")
  if idx:
    t0 = time.perf_counter()
    cells = [(specs[i].graph, specs[i].hops, specs[i].norm, specs[i].self_loop) for i in idx]
    prof = emb_gnn_lib.emb_gnn_grid(
      graphs.relation_blocks(graph, info),
      x_NxD,
      *emb_gnn_lib.grid_arrays(cells),
      type_counts=info.type_counts,
      max_hops=max_hops,
      l2_normalize=emb_l2,
    )
    out[idx] = np.asarray(prof)[:, None]
    seconds["emb_gnn"] = time.perf_counter() - t0
    log(f"  emb_gnn: {len(idx)} profiles in one call, {seconds['emb_gnn']:.2f} s")

  idx = by("text_gnn")
  if idx:
    if summarize is None:
      raise ValueError("text_gnn profiles need a summariser (config.summarizer)")
    t0 = time.perf_counter()
    for form in sorted({specs[i].graph for i in idx}):
      k_max = max(specs[i].hops for i in idx if specs[i].graph == form)
      hop_texts = text_gnn_lib.text_gnn_texts(
        graph, info, graphs.relation_mask(form), embed, summarize, max_hops=k_max
      )
      prof = text_gnn_lib.text_gnn_profiles(hop_texts, info, embed)
      texts[form] = text_gnn_lib.hop_texts_record(hop_texts, info)
      for i in idx:
        if specs[i].graph == form:
          out[i] = prof[specs[i].hops][None]
    seconds["text_gnn"] = time.perf_counter() - t0
    log(f"  text_gnn: {len(idx)} profiles, {seconds['text_gnn']:.2f} s")

  idx = by("trainable")
  if idx:
    t0 = time.perf_counter()
    cfg = trainable_config or trainable_lib.TrainableConfig()
    # Every (form, depth) x seed cell at once: one compiled program per distinct depth,
    # vmapped over that depth's seeds and forms.
    masks = np.stack([graphs.relation_mask(specs[i].graph) for i in idx])
    prof, curve = trainable_lib.trainable_cells(
      graph,
      x_NxD,
      np.repeat(masks, R, axis=0),
      np.repeat([specs[i].hops for i in idx], R),
      np.tile(np.asarray(seeds), len(idx)),
      cfg,
      info.type_counts,
    )
    out[idx] = np.asarray(prof).reshape(len(idx), R, M, D)
    per_seed[idx] = True
    curve = np.asarray(curve).reshape(len(idx), R, -1)
    for j, i in enumerate(idx):
      losses[specs[i].id] = curve[j]
    seconds["trainable"] = time.perf_counter() - t0
    log(f"  trainable: {len(idx)} x {R} seeds, {seconds['trainable']:.2f} s")
  return ProfileSet(list(specs), out, per_seed, texts, losses, seconds)
