"""Process-level JAX settings used by the launchers."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import warnings

import jax

# XLA's switch for run-to-run deterministic GPU kernels: scatter-adds (the backward pass of every
# gather) become sorted prefix scans instead of atomics, and autotuning stops choosing kernels by
# timing. CPU builds accept the flag and ignore it (the CPU backend is deterministic already).
DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops"


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


def _flag_value(flags: str) -> bool | None:
  """The deterministic flag's value in an XLA_FLAGS string (a bare flag means true); None: absent."""
  value = None
  for tok in flags.split():
    name, _, v = tok.partition("=")
    if name == DETERMINISTIC_FLAG:
      value = v.lower() not in ("false", "0")
  return value


def _backends_initialized() -> bool:
  try:
    from jax._src import xla_bridge

    return bool(xla_bridge.backends_are_initialized())
  except (ImportError, AttributeError):  # private API moved: assume the worst, say so below
    return True


def request_deterministic_ops(enabled: bool = True) -> str:
  """Asks XLA for deterministic GPU kernels by adding ``--xla_gpu_deterministic_ops`` to XLA_FLAGS.

  Why: on a GPU, scatter-adds (every gather's gradient: the graph router's and the HAN's message
  passing) accumulate with atomics in whatever order threads finish, so two runs of the same
  config and seed differ (measured on one H200: two runs of ``configs/paper.py`` gave
  different numbers in 119 of 130 Graph-router cells, up to 0.11 in one seed's performance).
  The flag trades some GPU speed for bit-identical reruns; CPU runs are deterministic with or
  without it.

  XLA reads XLA_FLAGS once, when JAX first starts a backend (the first array operation or
  ``jax.devices()``), so call this before that. A value for the flag already in XLA_FLAGS is the
  user's choice and is kept.

  Args:
    enabled: False leaves XLA_FLAGS alone (the launchers' ``deterministic=False``).

  Returns:
    "on", "off" (not requested), "user" (XLA_FLAGS already set the flag) or "too-late" (backends
    already started without it; a warning says so).
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if _flag_value(flags) is not None:
    return "user"
  if not enabled:
    return "off"
  if _backends_initialized():
    warnings.warn(
      "deterministic GPU ops requested after JAX started its backends; XLA_FLAGS is read only "
      "at start-up, so this process keeps XLA's default (GPU runs may differ run to run). Call "
      "rp_jax.runtime.request_deterministic_ops() before the first JAX operation.",
      RuntimeWarning,
      stacklevel=2,
    )
    return "too-late"
  os.environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_FLAG}=true".strip()
  return "on"


def configure(config) -> None:
  """The launchers' process set-up from a config: deterministic kernels, compilation cache."""
  request_deterministic_ops(bool(config.get("deterministic", True)))
  enable_compilation_cache(config.get("cache_dir") or None)


def describe() -> str:
  """One line naming the backend, its devices and the determinism setting (for run records)."""
  devs = jax.devices()
  kinds = sorted({getattr(d, "device_kind", d.platform) for d in devs})
  det = "on" if _flag_value(os.environ.get("XLA_FLAGS", "")) else "off"
  if jax.default_backend() == "cpu":
    det += " (CPU: deterministic anyway)"
  procs = f" in {jax.process_count()} processes" if jax.process_count() > 1 else ""
  where = f"{jax.default_backend()}: {len(devs)} x {', '.join(kinds)}{procs}"
  return f"{where}; deterministic GPU ops: {det}"


# jax.monitoring's duration events of one compilation: tracing to a jaxpr, lowering to MLIR, and
# XLA's compile (which includes reading a program back from the persistent compilation cache).
_COMPILE_EVENTS = {
  "/jax/core/compile/jaxpr_trace_duration": "trace_s",
  "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
  "/jax/core/compile/backend_compile_duration": "backend_s",
}
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


@dataclasses.dataclass
class CompileClock:
  """Seconds this process has spent compiling, from ``jax.monitoring`` events (process-wide).

  ``compile_clock()`` registers the one instance; a caller takes ``snapshot()`` before its work
  and ``since(before)`` after it. Tracing of a jit nested in another may be counted in both.
  """

  trace_s: float = 0.0
  lower_s: float = 0.0
  backend_s: float = 0.0
  programs: int = 0  # XLA compiles (cache hits included)
  cache_hits: int = 0  # programs read from the persistent compilation cache

  def _on_duration(self, event: str, seconds: float, **_) -> None:
    key = _COMPILE_EVENTS.get(event)
    if key is not None:
      setattr(self, key, getattr(self, key) + float(seconds))
      self.programs += key == "backend_s"

  def _on_event(self, event: str, **_) -> None:
    self.cache_hits += event == _CACHE_HIT

  def snapshot(self) -> CompileClock:
    return dataclasses.replace(self)

  def since(self, before: CompileClock) -> dict[str, float]:
    """What was compiled after ``before``: the fields' differences and their total seconds."""
    out = {
      f.name: getattr(self, f.name) - getattr(before, f.name) for f in dataclasses.fields(self)
    }
    out["total_s"] = out["trace_s"] + out["lower_s"] + out["backend_s"]
    return out


_CLOCK: CompileClock | None = None


def compile_clock() -> CompileClock:
  """The process's CompileClock (its listeners registered with ``jax.monitoring`` on first use)."""
  global _CLOCK
  if _CLOCK is None:
    _CLOCK = CompileClock()
    jax.monitoring.register_event_duration_secs_listener(_CLOCK._on_duration)
    jax.monitoring.register_event_listener(_CLOCK._on_event)
  return _CLOCK
