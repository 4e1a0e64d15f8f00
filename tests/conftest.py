"""Test setup: strict rank promotion, several fake CPU devices, shared fixtures."""

import os
import tempfile

# Must happen before jax is imported anywhere: a few fake CPU devices for sharding tests.
# Compiling dominates this suite on CPU; the lowest backend optimisation level halves it and
# changes results only at float32 rounding level (every comparison in the tests has a tolerance
# or compares two runs made under the same flags).
os.environ.setdefault(
  "XLA_FLAGS", "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One XLA compilation cache for the session, shared with launcher subprocesses: the end-to-end
# tests run the same small programs several times, and compiling dominates their time on CPU.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="rp_jax_xla_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import pathlib

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = pathlib.Path(__file__).resolve().parents[1]


def real_data_dir() -> pathlib.Path | None:
  """The public RouteProfile folder from RP_JAX_DATA, or None."""
  d = os.environ.get("RP_JAX_DATA")
  if not d:
    return None
  p = pathlib.Path(d)
  if not p.is_absolute():
    p = (REPO / p).resolve()
  return p if (p / "route_data").is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
  d = real_data_dir()
  if d is None:
    pytest.skip(
      "real RouteProfile data not found: set RP_JAX_DATA to a folder laid out like "
      "../shared/data/routeprofile (CI sets it)"
    )
  return d


def real_routerbench_dir() -> pathlib.Path | None:
  """The public RouterBench subset from RP_JAX_ROUTERBENCH (a folder of *_test.csv), or None."""
  d = os.environ.get("RP_JAX_ROUTERBENCH")
  if not d:
    return None
  p = pathlib.Path(d)
  if not p.is_absolute():
    p = (REPO / p).resolve()
  return p if p.is_dir() and any(p.glob("*_test.csv")) else None


@pytest.fixture(scope="session")
def routerbench_dir() -> pathlib.Path:
  d = real_routerbench_dir()
  if d is None:
    pytest.skip(
      "real RouterBench data not found: set RP_JAX_ROUTERBENCH to a folder laid out like "
      "../shared/data/routerbench (*_train.csv, *_test.csv)"
    )
  return d


# -- CI: no skips allowed -------------------------------------------------------------------------
_SKIPPED: list[str] = []


def pytest_runtest_logreport(report):
  if report.skipped and not hasattr(report, "wasxfail"):
    _SKIPPED.append(f"{report.nodeid}: {report.longrepr[-1] if report.longrepr else ''}")


def pytest_sessionfinish(session, exitstatus):
  if os.environ.get("RP_JAX_NO_SKIP") and _SKIPPED:
    print("\nRP_JAX_NO_SKIP is set and these tests skipped:\n  " + "\n  ".join(_SKIPPED))
    session.exitstatus = 1
