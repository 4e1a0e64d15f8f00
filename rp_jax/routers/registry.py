"""The router registry: name -> Family (static config type, traced hyperparameters, builder).

Everything that trains, evaluates or deploys a router looks its family up here:

  fam = registry.family("mlp")
  config = registry.make_config("mlp", epochs=5)      # fam.config_cls(epochs=5)
  hp = registry.hparams("mlp", {"learning_rate": 3e-4})

There is no other dispatch on router names or config types in rp_jax.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from rp_jax.routers import graph, knn, mf, mlp, sim
from rp_jax.routers.base import Family

FAMILIES: dict[str, Family] = {
  f.name: f for f in (sim.FAMILY, mlp.FAMILY, graph.FAMILY, mf.FAMILY, knn.FAMILY)
}
ROUTERS: tuple[str, ...] = tuple(FAMILIES)


def family(name: str) -> Family:
  """The registered family ``name`` (ValueError naming the known ones otherwise)."""
  try:
    return FAMILIES[name]
  except (KeyError, TypeError):
    raise ValueError(f"unknown router {name!r}; expected one of {ROUTERS}") from None


def as_family(router: str | Family) -> Family:
  """``router`` itself if it is a Family, else the registered family of that name."""
  return router if isinstance(router, Family) else family(router)


def make_config(name: str, **overrides):
  """The family's default static config with field overrides (clear error on unknown fields)."""
  cls = family(name).config_cls
  try:
    return cls(**overrides)
  except TypeError:
    fields = sorted(cls.__dataclass_fields__)
    raise ValueError(
      f"router {name!r}: unknown setting(s) {sorted(set(overrides) - set(fields))}; "
      f"expected some of {fields}"
    ) from None


def check_config(name: str, config):
  """``config`` if it is the family's config type, the default config if None; else ValueError."""
  fam = family(name)
  if config is None:
    return fam.config_cls()
  if not isinstance(config, fam.config_cls):
    raise ValueError(
      f"router {name!r} needs a {fam.config_cls.__name__}; got {type(config).__name__}"
    )
  return config


def default_hparams(name: str) -> dict[str, float]:
  """The traced hyperparameters of a family with their defaults (empty for sim)."""
  return dict(family(name).hparams)


def hparams(name: str, overrides: Mapping[str, float] | None = None) -> dict[str, jax.Array]:
  """Defaults updated with ``overrides``, as float32 scalars (or arrays, for a swept axis)."""
  base = default_hparams(name)
  unknown = sorted(set(overrides or {}) - set(base))
  if unknown:
    raise ValueError(
      f"unknown hyperparameter(s) {unknown} for router {name!r}; expected some of {sorted(base)}"
    )
  base.update(overrides or {})
  return {k: jnp.asarray(v, jnp.float32) for k, v in base.items()}
