"""Builds a list of profile configurations into one stacked array ``profile_SxZxMxD``.

The profile registry (``FAMILIES``: name -> builder) is the only dispatch on profile names, as
``rp_jax.routers.registry`` is for routers. Each builder computes its family's specs the
cheapest way it can, then they are stacked:

- index: one seeded Gaussian per model;
- scores: standardised benchmark scores (``History.scores_MxT``) + a small index code;
- flat: one encoded document per model and form (host side, embeddings cached);
- emb_gnn: every requested (form, hops, norm) cell in one jitted call (``emb_gnn_grid``);
- text_gnn: one text-GNN run per form for all hops (summaries cached by the summariser);
- trainable: every (form, depth) x seed cell, one jitted call per distinct depth;
- probe: a model's per-cluster accuracy on its quiz answers (``History.quiz_queries``; every
  training query with a known outcome when the History has no quiz), all strengths of one
  cluster count in one call (``probe_block``). A probe block also composes with any other
  family (``flat:TQD+probe:8:4``): it is appended to the base profile.

R is the number of router seeds: trainable profiles differ per seed (seed r's router sees the HAN
trained with seed r); the others are the same for every seed and are broadcast, so the router
sweep trains on (profile, seed) pairs with one vmap. Profiles of different widths (a probe block
appended) are zero-padded at the end to the widest: a zero tail changes no dot product or norm,
and the encoder-space block stays first (so same-space routers read it; see ``stages``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax import graphs
from rp_jax.profiles import emb_gnn as emb_gnn_lib
from rp_jax.profiles import flat as flat_lib
from rp_jax.profiles import probe as probe_lib
from rp_jax.profiles import quiz as quiz_lib
from rp_jax.profiles import text_gnn as text_gnn_lib
from rp_jax.profiles import trainable as trainable_lib
from rp_jax.profiles.index import index_profiles
from rp_jax.profiles.scores import score_profiles
from rp_jax.profiles.spec import ProbeSpec, ProfileSpec
from rp_jax.types import TRAIN, History


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


@dataclasses.dataclass(frozen=True)
class ProfileOptions:
  """Settings every profile family may read (``stages.profiles`` fills them from the config)."""

  summarize: Callable | None = None
  max_hops: int = 4
  index_seed: int = 0
  flat_seed: int = 0
  emb_l2: bool = True
  trainable_config: Any = None


@dataclasses.dataclass(frozen=True)
class ProfileInputs:
  """What the profile builders read: the setting's graph, node features, encoder and History.

  Attributes:
    graph, info: the union graph (``graphs.build_graph``) of ``history``.
    x_NxD: encoded node texts (``info.node_texts`` order).
    embed: texts -> [n, D] float32 (the run's encoder).
    seeds: the R router seeds.
    history: the setting's History (benchmark scores, outcomes, quiz).
    options: ``ProfileOptions``.
  """

  graph: graphs.Graph
  info: graphs.GraphInfo
  x_NxD: np.ndarray
  embed: Callable[[list[str]], np.ndarray]
  seeds: tuple[int, ...]
  history: History
  options: ProfileOptions = ProfileOptions()

  @property
  def num_models(self) -> int:
    return self.info.type_counts[graphs.MODEL]


class Built(NamedTuple):
  """A family's profiles of its specs: [n, R or 1, M, D_f], and what else it reports."""

  profiles: np.ndarray
  per_seed: bool = False
  texts: dict = {}
  losses: dict = {}


Log = Callable[[str], None]


def _index(specs, inp: ProfileInputs, log: Log) -> Built:
  code = np.asarray(
    index_profiles(jax.random.key(inp.options.index_seed), inp.num_models, _dim(inp))
  )
  return Built(np.broadcast_to(code, (len(specs), 1, *code.shape)))


def _scores(specs, inp: ProfileInputs, log: Log) -> Built:
  # The scores profile's identity code is the index vector (one draw serves both).
  code = np.asarray(
    index_profiles(jax.random.key(inp.options.index_seed), inp.num_models, _dim(inp))
  )
  h = inp.history
  prof = score_profiles(h.scores_MxT, h.candidates, code)
  return Built(np.broadcast_to(prof, (len(specs), 1, *prof.shape)))


def _flat(specs, inp: ProfileInputs, log: Log) -> Built:
  seed = inp.options.flat_seed
  return Built(
    np.stack([flat_lib.flat_profiles(inp.info, s.graph, inp.embed, seed)[None] for s in specs])
  )


def _emb_gnn(specs, inp: ProfileInputs, log: Log) -> Built:
  cells = [(s.graph, s.hops, s.norm, s.self_loop) for s in specs]
  prof = emb_gnn_lib.emb_gnn_grid(
    graphs.relation_blocks(inp.graph, inp.info),
    inp.x_NxD,
    *emb_gnn_lib.grid_arrays(cells),
    type_counts=inp.info.type_counts,
    max_hops=inp.options.max_hops,
    l2_normalize=inp.options.emb_l2,
  )
  log(f"  emb_gnn: {len(specs)} profiles in one call")
  return Built(np.asarray(prof)[:, None])


def _text_gnn(specs, inp: ProfileInputs, log: Log) -> Built:
  if inp.options.summarize is None:
    raise ValueError("text_gnn profiles need a summariser (config.summarizer)")
  out = np.zeros((len(specs), 1, inp.num_models, _dim(inp)), np.float32)
  texts = {}
  for form in sorted({s.graph for s in specs}):
    k_max = max(s.hops for s in specs if s.graph == form)
    hop_texts = text_gnn_lib.text_gnn_texts(
      inp.graph,
      inp.info,
      graphs.relation_mask(form),
      inp.embed,
      inp.options.summarize,
      max_hops=k_max,
    )
    prof = text_gnn_lib.text_gnn_profiles(hop_texts, inp.info, inp.embed)
    texts[form] = text_gnn_lib.hop_texts_record(hop_texts, inp.info)
    for i, s in enumerate(specs):
      if s.graph == form:
        out[i, 0] = prof[s.hops]
  log(f"  text_gnn: {len(specs)} profiles")
  return Built(out, texts=texts)


def _trainable(specs, inp: ProfileInputs, log: Log) -> Built:
  cfg = inp.options.trainable_config or trainable_lib.TrainableConfig()
  R = len(inp.seeds)
  # Every (form, depth) x seed cell at once: one compiled program per distinct depth, vmapped
  # over that depth's seeds and forms.
  masks = np.stack([graphs.relation_mask(s.graph) for s in specs])
  prof, curve = trainable_lib.trainable_cells(
    inp.graph,
    inp.x_NxD,
    np.repeat(masks, R, axis=0),
    np.repeat([s.hops for s in specs], R),
    np.tile(np.asarray(inp.seeds), len(specs)),
    cfg,
    inp.info.type_counts,
  )
  curve = np.asarray(curve).reshape(len(specs), R, -1)
  log(f"  trainable: {len(specs)} x {R} seeds")
  losses = {s.id: curve[j] for j, s in enumerate(specs)}
  return Built(np.asarray(prof).reshape(len(specs), R, inp.num_models, -1), True, losses=losses)


def _probe(specs, inp: ProfileInputs, log: Log) -> Built:
  blocks = [probe_block(inp, s.probe_spec) for s in specs]
  width = max(_dim(inp), max(b.shape[1] for b in blocks))
  return Built(np.stack([_pad(b, width)[None] for b in blocks]))


def _dim(inp: ProfileInputs) -> int:
  return int(inp.x_NxD.shape[1])


def _pad(x_MxF: np.ndarray, width: int) -> np.ndarray:
  return np.pad(np.asarray(x_MxF, np.float32), ((0, 0), (0, width - x_MxF.shape[1])))


# The profile registry: name -> builder(specs of that family, ProfileInputs, log) -> Built.
FAMILIES: dict[str, Callable[..., Built]] = {
  "index": _index,
  "scores": _scores,
  "flat": _flat,
  "emb_gnn": _emb_gnn,
  "text_gnn": _text_gnn,
  "trainable": _trainable,
  "probe": _probe,
}


# -- the probe block ----------------------------------------------------------------------------------


def probe_answers(history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(training query ids [Q_tr], answered [Q_tr, M] bool, seen [M] bool) of a History.

  With a quiz (``History.quiz_queries``, or a held-out model: then an empty quiz) every model is
  measured on the quiz queries only — seen and held-out models alike, so their profiles share
  one space; without one, on every training query with a known outcome. ``seen`` = the
  candidates that are not held out.
  """
  train = np.flatnonzero(history.query_split == TRAIN)
  known = np.isfinite(history.outcomes_QxM[train])
  if len(history.held_out) or len(history.quiz_queries):
    on_quiz = np.isin(train, history.quiz_queries)
    known &= on_quiz[:, None]
  seen = np.zeros(history.num_models, bool)
  seen[history.candidates] = True
  seen[history.held_out] = False
  return train, known, seen


@jax.jit
def _probe_grid(outcomes_QxM, answered_SxQxM, assign_QxK, seen_M, strength_S):
  """[S, M, K] probe accuracies of S (answered mask, strength) pairs in one call."""
  f = lambda ans, s: probe_lib.probe_profiles(outcomes_QxM, ans, assign_QxK, seen_M, s)
  return jax.vmap(f)(answered_SxQxM, strength_S)


def probe_grid(outcomes_QxM, answered_SxQxM, assign_QxK, seen_M, strength_S) -> np.ndarray:
  """[S, M, K] ``probe.probe_profiles`` for S quizzes (answered masks, e.g. one per quiz size k)
  and strengths, vmapped in one compiled call."""
  args = (outcomes_QxM, answered_SxQxM, assign_QxK, seen_M, strength_S)
  return np.asarray(_probe_grid(*(jnp.asarray(a) for a in args)))


def probe_block(inp: ProfileInputs, ps: ProbeSpec) -> np.ndarray:
  """[M, K (+1)] the probe profile block of ``ps`` (``probe.probe_features``; + θ with ``theta``)."""
  h = inp.history
  train, answered, seen = probe_answers(h)
  emb = np.asarray(inp.embed([h.query_texts[q] for q in train]), np.float32)
  key = jax.random.fold_in(jax.random.key(inp.options.index_seed), ps.clusters)
  centres, assign = quiz_lib.kmeans(emb, ps.clusters, key)
  assign_QxK = np.asarray(jax.nn.one_hot(assign, ps.clusters), np.float32)
  y = h.outcomes_QxM[train]
  acc = probe_grid(y, answered[None], assign_QxK, seen, np.asarray([ps.strength], np.float32))[0]
  theta = _abilities(y, answered, seen) if ps.theta else None
  return np.asarray(probe_lib.probe_features(acc, seen_M=seen, theta_MxD=theta))


def _abilities(y_QxM: np.ndarray, answered_QxM: np.ndarray, seen_M: np.ndarray) -> np.ndarray:
  """[M, 1] IRT abilities: items fitted on the seen models' answered outcomes, every model's θ
  fitted with the items frozen (prior N(0, 1): θ is standardised over the seen models)."""
  y_seen = np.where(answered_QxM & seen_M[None, :], y_QxM, np.nan)
  irt = quiz_lib.fit_irt(y_seen, key=jax.random.key(0), dim=1)
  y_ans = np.where(answered_QxM, y_QxM, np.nan)
  fit = jax.vmap(quiz_lib.fit_ability, (None, None, 1, 1, None, None))
  return np.asarray(fit(irt.a_QxD, irt.b_Q, y_ans, answered_QxM, jnp.zeros(1), jnp.eye(1)))


# -- the stack --------------------------------------------------------------------------------------


def build_profiles(specs: list[ProfileSpec], inp: ProfileInputs, log: Log = lambda s: None):
  """Every spec's profile (see module docstring), stacked as a ProfileSet."""
  for s in specs:
    if s.family not in FAMILIES:
      raise ValueError(f"unknown profile family {s.family!r}; expected one of {tuple(FAMILIES)}")
  R = len(inp.seeds)
  blocks: list[np.ndarray | None] = [None] * len(specs)
  per_seed = np.zeros(len(specs), bool)
  texts, losses, seconds = {}, {}, {}
  for name, builder in FAMILIES.items():
    idx = [i for i, s in enumerate(specs) if s.family == name]
    if not idx:
      continue
    t0 = time.perf_counter()
    built = builder([specs[i] for i in idx], inp, log)
    for j, i in enumerate(idx):
      blocks[i] = np.broadcast_to(built.profiles[j], (R, *built.profiles.shape[2:]))
      per_seed[i] = built.per_seed
    texts.update(built.texts)
    losses.update(built.losses)
    seconds[name] = time.perf_counter() - t0
  for i, s in enumerate(specs):  # composition: the probe block appended to the base profile
    if s.probe and s.family != "probe":
      extra = probe_block(inp, s.probe_spec)
      blocks[i] = np.concatenate([blocks[i], np.broadcast_to(extra, (R, *extra.shape))], axis=-1)
  width = max(b.shape[-1] for b in blocks)
  out = np.stack([np.pad(b, ((0, 0), (0, 0), (0, width - b.shape[-1]))) for b in blocks])
  return ProfileSet(list(specs), out.astype(np.float32), per_seed, texts, losses, seconds)
