"""The stage cache of a sweep: finished stages stored with a fingerprint of what they depend on.

A stage (the profiles of a setting, one router grid of a setting) is stored as
``<workdir>/stages/<name>.npz`` with its fingerprint; a rerun whose fingerprint matches loads it
instead of computing it. A fingerprint covers exactly what the stage's arrays depend on:

- the data (``data_fingerprint``: the files read, or the synthetic generator's settings);
- the config keys the stage reads (``STAGE_CONFIG``): reporting keys (bootstrap, figures,
  names, progress lines) never invalidate a stage, and a router's settings never invalidate the
  profiles;
- the code of the modules the stage runs (``STAGE_CODE``): editing ``results.py``, ``report.py``,
  ``metrics.py`` or the cost–quality stage recomputes nothing.

Across processes (``rp_jax.distributed``) a stage is skipped only when every process loaded it,
and only process 0 saves.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np

import rp_jax
from rp_jax import distributed, io
from rp_jax.data import routerbench

# Package paths (folders or modules, relative to rp_jax/) whose code each kind of stage runs.
_PROFILE_CODE = (
  "config.py",
  "data",
  "graphs.py",
  "io.py",
  "ops.py",
  "profiles",
  "propagate.py",
  "stages.py",
  "text",
  "train.py",
  "types.py",
)
# A router stage runs the shared router code and its own family's module only: editing the kNN
# router recomputes no MF stage.
_ROUTER_CODE = (
  *_PROFILE_CODE,
  "routers/base.py",
  "routers/data.py",
  "routers/grid.py",
  "routers/registry.py",
  "routers/validation.py",
)
FAMILY_MODULES = {"sim": "sim", "mlp": "mlp", "graph": "graph", "mf": "mf", "knn": "knn"}
STAGE_CODE = {
  "profiles": _PROFILE_CODE,
  **{f"router:{f}": (*_ROUTER_CODE, f"routers/{m}.py") for f, m in FAMILY_MODULES.items()},
}
# Config keys (top-level) each kind of stage reads; "*" = all but the reporting keys.
_REPORTING = ("name", "figures", "bootstrap", "bootstrap_seed", "progress_every_s", "baselines")
_PROFILE_KEYS = (
  "data",
  "settings",
  "encoder",
  "encoder_dim",
  "model_dir",
  "minilm_long_texts",
  "summarizer",
  "llm",
  "profiles",
  "profiles_newllm",
  "profiles_lomo",
  "max_hops",
  "index_seed",
  "flat_seed",
  "emb_gnn",
  "trainable",
  "seeds",
)
STAGE_CONFIG = {"profiles": _PROFILE_KEYS, **{f"router:{f}": "*" for f in FAMILY_MODULES}}


def code_fingerprint(paths=None) -> str:
  """sha256 over the package's Python sources under ``paths`` (all of rp_jax when None)."""
  h = hashlib.sha256()
  root = pathlib.Path(rp_jax.__file__).parent
  for p in sorted(root.rglob("*.py")):
    rel = p.relative_to(root).as_posix()
    if paths is not None and not any(rel == x or rel.startswith(x + "/") for x in paths):
      continue
    h.update(rel.encode())
    h.update(p.read_bytes())
  return h.hexdigest()[:16]


def data_fingerprint(config) -> str:
  """sha256 over the data a config reads (file names and contents; generator settings)."""
  d = config.data
  h = hashlib.sha256(d.source.encode())
  if d.source == "synthetic":
    h.update(f"{d.synthetic_seed}:{d.synthetic_scale}:{d.get('synthetic_sizes', '')}".encode())
    return h.hexdigest()[:16]
  if d.source == "routeprofile":
    paths = sorted(pathlib.Path(d.data_dir).rglob("*.json*"))
  elif d.source == "routerbench":
    paths = routerbench.source_files(routerbench.resolve_dir(d.data_dir))
  else:
    paths = [pathlib.Path(p) for p in (d.table, d.model_cards, d.families, d.tasks, d.domains) if p]
  for p in paths:
    h.update(str(p.name).encode())
    h.update(io.sha256_file(p).encode())
  return h.hexdigest()[:16]


def config_part(config, kind: str) -> dict:
  """The part of the config (as JSON) that a kind of stage reads (``STAGE_CONFIG``): a router
  stage reads everything but the reporting keys and the other router families' sections."""
  cfg = json.loads(config.to_json())
  keys = STAGE_CONFIG[kind]
  if keys == "*":
    others = {f for f in FAMILY_MODULES if f"router:{f}" != kind}
    return {k: v for k, v in cfg.items() if k not in _REPORTING and k not in others}
  return {k: cfg[k] for k in keys if k in cfg}


def stage_fingerprints(config) -> dict[str, str]:
  """kind -> fingerprint of (the stage's config part, the data, the stage's code)."""
  data = data_fingerprint(config)
  out = {}
  for kind in STAGE_CODE:
    parts = [config_part(config, kind), data, code_fingerprint(STAGE_CODE[kind])]
    out[kind] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
  return out


class StageCache:
  """Finished-stage store: ``stages/<name>.npz`` holding arrays and the stage's fingerprint."""

  def __init__(self, workdir: pathlib.Path, fingerprints: dict[str, str], log):
    self.dir = pathlib.Path(workdir) / "stages"
    self.fingerprints = fingerprints
    self.log = log

  def load(self, name: str, kind: str) -> dict[str, np.ndarray] | None:
    """The stored arrays of stage ``name`` (of ``kind``), or None when it must be computed."""
    z = self._read(name, self.fingerprints[kind])
    # The router grids are collective programs: all processes skip a stage or all compute it.
    if not distributed.all_agree(z is not None):
      if z is not None:
        self.log(f"stage {name}: missing in another process; recomputing")
      return None
    if z is not None:
      self.log(f"stage {name}: done in an earlier run (same config, data and code); skipped")
    return z

  def _read(self, name: str, fingerprint: str) -> dict[str, np.ndarray] | None:
    p = self.dir / f"{name}.npz"
    if not p.exists():
      return None
    try:
      z = io.read_npz(p)
    except Exception as e:  # a damaged stage file is recomputed, never trusted
      self.log(f"stage {name}: unreadable ({type(e).__name__}); recomputing")
      return None
    if str(z.pop("__fingerprint__", "")) != fingerprint:
      return None
    return z

  def save(self, name: str, kind: str, arrays: dict[str, np.ndarray]) -> None:
    if not distributed.is_writer():
      return
    fp = np.asarray(self.fingerprints[kind])
    io.write_npz(self.dir / f"{name}.npz", {**arrays, "__fingerprint__": fp})
