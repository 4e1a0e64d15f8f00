"""Process-level JAX settings used by the launchers."""

from __future__ import annotations

import os
import pathlib

import jax


def enable_compilation_cache(cache_dir: str | None = None) -> str:
  """Turns on JAX's persistent compilation cache (``<cache>/xla``) unless the user chose one.

  Compiling dominates small sweeps on CPU; with the cache a rerun of the same config reuses the
  compiled programs. ``JAX_COMPILATION_CACHE_DIR`` in the environment takes precedence.
  """
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return os.environ["JAX_COMPILATION_CACHE_DIR"]
  root = cache_dir or os.environ.get("RP_JAX_CACHE") or os.path.expanduser("~/.cache/rp_jax")
  path = str(pathlib.Path(root) / "xla")
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  return path
