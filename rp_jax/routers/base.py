"""The interface every router family implements (the registry lists the families).

A family is a small set of pure functions built for one dataset (``make(config, data)``):

- ``pieces`` / ``loop``: what ``rp_jax.train.make_train`` needs to train it (None for
  training-free families such as sim);
- ``state(params, profile_AxD, split, hparams)``: everything scoring needs besides the profiles
  and the queries, as a dict of arrays: the trained parameters, and e.g. the graph router's query
  nodes. The deployed router stores exactly this dict, so it scores like the evaluated one;
- ``score(config, state, profile_AxD, query_QxD, hparams)`` (a family-level function, independent
  of the training data): [Q, A] scores, higher is better; routing is their argmax. The sweep's
  evaluation and ``rp_jax.deploy`` both call it (``rp_jax.routers.grid.scores``).

Shape letters as in ``rp_jax.types``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from rp_jax import train as tr

State = dict[str, Any]


class RouterFns(NamedTuple):
  """The pure functions of one router family on one dataset (see module docstring)."""

  pieces: tr.Pieces | None
  loop: tr.TrainConfig | None
  state: Callable[..., State]


@dataclasses.dataclass(frozen=True, eq=False)
class Family:
  """One router family: its static config type, traced hyperparameters and builder.

  Families are module-level singletons compared by identity, so a Family is a valid static
  argument of ``jax.jit`` (a compiled grid is keyed by the family object itself).

  Attributes:
    name: registry name ("sim", "mlp", "graph", ...).
    config_cls: frozen dataclass of the static settings (hashable: part of the jit cache key).
    hparams: default traced hyperparameters (names -> floats); a sweep may vary them without
      recompiling.
    make: (config, RouterData) -> RouterFns.
    score: (config, state, profile_AxD, query_QxD, hparams) -> [Q, A] scores.
    resolve: (config, RouterData) -> config with data-dependent static settings fixed (host side).
    trainable: the family has parameters to train (``RouterFns.pieces``); False for training-free
      families.
    seed_free: neither the seed nor the validation split changes its routing (sim): the grid
      scores each profile once and broadcasts over seeds.
    same_space: queries and profiles must share an embedding space (sim).
    extend: (state, evidence_N, known_N) -> state with one more candidate column, for families
      whose state holds per-candidate evidence (kNN: a deployed router's new candidate, with its
      quiz answers as evidence on the memory rows); None: the state has no candidate axis.
  """

  name: str
  config_cls: type
  hparams: Mapping[str, float]
  make: Callable[[Any, Any], RouterFns]
  score: Callable[..., Any]
  resolve: Callable[[Any, Any], Any] = lambda config, data: config
  trainable: bool = True
  seed_free: bool = False
  same_space: bool = False
  extend: Callable[..., Any] | None = None
