"""One trace counter for every compiled entry point (tests assert "compiles once").

A jitted function calls ``count("name")`` in its Python body, which runs only while JAX traces
it; ``TRACES["name"]`` is then the number of compilations so far.
"""

from __future__ import annotations

import collections

TRACES: collections.Counter[str] = collections.Counter()


def count(name: str) -> None:
  """Records one trace of the compiled function ``name`` (call it inside the traced body)."""
  TRACES[name] += 1
