"""Profile configurations: one row of the paper's tables, parsed from ``profile[:graph[:hops[:norm]]]``.

index                      random vector per model (graph / hops ignored)
scores                     standardised benchmark scores per model (graph / hops ignored)
flat:TQD                   flat document of the form's node types
text_gnn:TQD:2             text GNN, 2 hops
emb_gnn:TQD:2[:sym]        training-free propagation (norm defaults to config.emb_gnn.norm)
trainable:TQD:2            HAN encoder of depth 2, self-supervised (one per router seed)
"""

from __future__ import annotations

import dataclasses

from rp_jax.graphs import FORMS, NORMS

PROFILES = ("index", "scores", "flat", "emb_gnn", "text_gnn", "trainable")


@dataclasses.dataclass(frozen=True, order=True)
class ProfileSpec:
  """One profile configuration (a row of the paper's tables)."""

  profile: str
  graph: str = "TQD"
  hops: int = 0
  norm: str = ""
  self_loop: bool = False

  @property
  def learn(self) -> str:
    return "tr" if self.profile == "trainable" else "tf"

  @property
  def id(self) -> str:
    if self.profile in ("index", "scores"):
      return self.profile
    parts = [self.profile, self.graph]
    if self.profile != "flat":
      parts.append(f"k{self.hops}")
    if self.norm:
      parts.append(self.norm + ("+self" if self.self_loop else ""))
    return "-".join(parts)


def parse_profile(entry: str, default_norm: str = "sym", self_loop: bool = False) -> ProfileSpec:
  """Parses ``profile[:graph[:hops[:norm]]]`` (see module docstring) with clear errors."""
  parts = entry.split(":")
  name = parts[0]
  if name not in PROFILES:
    raise ValueError(
      f"profile entry {entry!r}: unknown profile {name!r}; expected one of {PROFILES}"
    )
  if name in ("index", "scores"):
    return ProfileSpec(name, graph="", hops=0)
  graph = parts[1] if len(parts) > 1 else "TQD"
  if graph not in FORMS:
    raise ValueError(f"profile entry {entry!r}: unknown graph {graph!r}; expected one of {FORMS}")
  if name == "flat":
    return ProfileSpec("flat", graph=graph, hops=0)
  try:
    hops = int(parts[2]) if len(parts) > 2 else 2
  except ValueError:
    raise ValueError(f"profile entry {entry!r}: hops must be an integer") from None
  if not 0 <= hops <= 4 or (name == "trainable" and hops < 1):
    raise ValueError(
      f"profile entry {entry!r}: hops must lie in {'1' if name == 'trainable' else '0'}..4"
    )
  norm = ""
  if name == "emb_gnn":
    norm = parts[3] if len(parts) > 3 else default_norm
    if norm not in NORMS:
      raise ValueError(f"profile entry {entry!r}: unknown norm {norm!r}; expected one of {NORMS}")
    return ProfileSpec(name, graph, hops, norm, self_loop)
  return ProfileSpec(name, graph, hops)
