"""Profile configurations: one row of the paper's tables, parsed from ``profile[:graph[:hops[:norm]]]``.

index                      random vector per model (graph / hops ignored)
scores                     standardised benchmark scores per model (graph / hops ignored)
flat:TQD                   flat document of the form's node types
text_gnn:TQD:2             text GNN, 2 hops
emb_gnn:TQD:2[:sym]        training-free propagation (norm defaults to config.emb_gnn.norm)
trainable:TQD:2            HAN encoder of depth 2, self-supervised (one per router seed)
probe[:K[:s[:theta]]]      a model's accuracy on K clusters of its quiz answers, shrunk toward the
                           seen models' with strength s (defaults K=8, s=4); ``theta`` appends its
                           IRT ability (rp_jax/profiles/probe.py)
flat:TQD+probe:8:4         any profile with the probe block appended (composition)
"""

from __future__ import annotations

import dataclasses

from rp_jax.graphs import FORMS, NORMS

PROFILES = ("index", "scores", "flat", "emb_gnn", "text_gnn", "trainable", "probe")
PROBE_DEFAULTS = (8, 4.0)  # clusters K, shrinkage strength s


@dataclasses.dataclass(frozen=True, order=True)
class ProfileSpec:
  """One profile configuration (a row of the paper's tables)."""

  profile: str
  graph: str = "TQD"
  hops: int = 0
  norm: str = ""
  self_loop: bool = False
  # The probe block (``ProbeSpec.text``, e.g. "K8-s4"): "" = none. With profile "probe" it is the
  # whole profile; with another profile it is appended to it.
  probe: str = ""

  @property
  def learn(self) -> str:
    return "tr" if self.profile == "trainable" else "tf"

  @property
  def family(self) -> str:
    """The profile family that builds the base (``probe`` alone: the probe family)."""
    return self.profile

  @property
  def probe_spec(self) -> ProbeSpec | None:
    return ProbeSpec.parse(self.probe) if self.probe else None

  @property
  def id(self) -> str:
    if self.profile == "probe":
      return f"probe-{self.probe}"
    if self.profile in ("index", "scores"):
      base = self.profile
    else:
      parts = [self.profile, self.graph]
      if self.profile != "flat":
        parts.append(f"k{self.hops}")
      if self.norm:
        parts.append(self.norm + ("+self" if self.self_loop else ""))
      base = "-".join(parts)
    return base + (f"+probe-{self.probe}" if self.probe else "")


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
  """The probe block's settings: K clusters, shrinkage strength s, the IRT ability appended."""

  clusters: int
  strength: float
  theta: bool = False

  @property
  def text(self) -> str:
    return f"K{self.clusters}-s{self.strength:g}" + ("-theta" if self.theta else "")

  @classmethod
  def parse(cls, text: str) -> ProbeSpec:
    """Inverse of ``text``."""
    parts = text.split("-")
    return cls(int(parts[0][1:]), float(parts[1][1:]), len(parts) > 2 and parts[2] == "theta")


def _parse_probe(entry: str, parts: list[str]) -> ProbeSpec:
  """``probe[:K[:s[:theta]]]`` -> ProbeSpec (clear errors)."""
  k, s = PROBE_DEFAULTS
  try:
    k = int(parts[1]) if len(parts) > 1 and parts[1] else k
    s = float(parts[2]) if len(parts) > 2 and parts[2] else s
  except ValueError:
    raise ValueError(f"profile entry {entry!r}: expected probe[:K[:strength[:theta]]]") from None
  theta = len(parts) > 3 and parts[3] == "theta"
  if k < 1 or s < 0 or (len(parts) > 3 and not theta) or len(parts) > 4:
    raise ValueError(
      f"profile entry {entry!r}: expected probe[:K[:strength[:theta]]] with K >= 1, strength >= 0"
    )
  return ProbeSpec(k, s, theta)


def parse_profile(entry: str, default_norm: str = "sym", self_loop: bool = False) -> ProfileSpec:
  """Parses ``profile[:graph[:hops[:norm]]][+probe[:K[:s[:theta]]]]`` (module docstring)."""
  base, plus, extra = entry.partition("+")
  if plus:
    if not extra.startswith("probe") or base.startswith("probe"):
      raise ValueError(
        f"profile entry {entry!r}: only a probe block composes: '<profile>+probe:K:s'"
      )
    spec = _parse_one(base, default_norm, self_loop)
    return dataclasses.replace(spec, probe=_parse_probe(entry, extra.split(":")).text)
  return _parse_one(entry, default_norm, self_loop)


def _parse_one(entry: str, default_norm: str, self_loop: bool) -> ProfileSpec:
  parts = entry.split(":")
  name = parts[0]
  if name not in PROFILES:
    raise ValueError(
      f"profile entry {entry!r}: unknown profile {name!r}; expected one of {PROFILES}"
    )
  if name in ("index", "scores"):
    return ProfileSpec(name, graph="", hops=0)
  if name == "probe":
    return ProfileSpec("probe", graph="", hops=0, probe=_parse_probe(entry, parts).text)
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
