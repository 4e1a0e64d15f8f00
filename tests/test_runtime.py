"""Process-level settings: the deterministic-GPU-ops request reaches XLA_FLAGS before JAX starts."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each case runs in a fresh interpreter: XLA_FLAGS is read once per process.
_SCRIPT = textwrap.dedent(
  """
  import json, os, sys, warnings
  case = sys.argv[1]
  if case == "launchers":
    from jax._src import xla_bridge
    import launch.sweep  # the launchers must not start a backend at import time
    print(json.dumps({"initialized": xla_bridge.backends_are_initialized()}))
    sys.exit()
  from rp_jax import runtime
  if case == "late":
    import jax.numpy as jnp
    jnp.zeros(1).block_until_ready()
  with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    first = runtime.request_deterministic_ops(case != "off")
  import jax.numpy as jnp
  total = float(jnp.arange(4.0).sum())  # the flag is accepted by this (CPU) backend
  second = runtime.request_deterministic_ops()
  print(json.dumps({"first": first, "second": second, "flags": os.environ.get("XLA_FLAGS", ""),
                    "total": total, "warnings": [str(x.message) for x in w]}))
  """
)


def _run(case, xla_flags=None):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  if xla_flags is not None:
    env["XLA_FLAGS"] = xla_flags
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  out = subprocess.run(
    [sys.executable, "-c", _SCRIPT, case], env=env, capture_output=True, text=True, timeout=120
  )
  assert out.returncode == 0, out.stderr
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
  "case, xla_flags, first, flags",
  [
    ("on", None, "on", "--xla_gpu_deterministic_ops=true"),
    (
      "on",
      "--xla_cpu_enable_fast_math=false",
      "on",
      "--xla_cpu_enable_fast_math=false --xla_gpu_deterministic_ops=true",
    ),
    ("on", "--xla_gpu_deterministic_ops=false", "user", "--xla_gpu_deterministic_ops=false"),
    ("off", None, "off", ""),
  ],
)
def test_request_deterministic_ops(case, xla_flags, first, flags):
  r = _run(case, xla_flags)
  assert r["first"] == first
  assert r["flags"] == flags
  assert r["total"] == 6.0
  assert r["warnings"] == []
  # Once the flag is in XLA_FLAGS, a second request changes nothing.
  assert r["second"] == ("user" if "deterministic" in flags else "too-late")


def test_request_after_backend_start_warns_and_changes_nothing():
  r = _run("late")
  assert r["first"] == "too-late"
  assert r["flags"] == ""
  assert any("before the first JAX operation" in m for m in r["warnings"])


def test_launcher_import_starts_no_backend():
  assert _run("launchers") == {"initialized": False}


def test_describe_names_backend_and_determinism():
  from rp_jax import runtime

  line = runtime.describe()
  assert line.startswith("cpu: ") and "x cpu" in line
  assert "deterministic GPU ops:" in line


def test_compile_clock_counts_a_new_program_and_not_a_cached_call():
  import jax
  import jax.numpy as jnp

  from rp_jax import runtime

  clock = runtime.compile_clock()
  assert runtime.compile_clock() is clock  # one set of listeners per process
  before = clock.snapshot()
  f = jax.jit(lambda x: jnp.tanh(x) * 3.0 + 1.0)
  f(jnp.arange(7.0)).block_until_ready()
  first = clock.since(before)
  assert first["programs"] >= 1 and first["backend_s"] > 0 and first["trace_s"] > 0
  again = clock.snapshot()
  f(jnp.arange(7.0)).block_until_ready()  # same shapes: no new program
  assert clock.since(again)["programs"] == 0
