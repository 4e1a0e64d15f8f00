"""Progress from inside compiled stages: a throttled host callback at epoch boundaries.

A long router stage is one compiled call; without a callback it prints nothing until it returns.
The training loop (``rp_jax.train.make_train`` with ``TrainConfig.report_progress``) calls
``on_epoch`` through ``jax.debug.callback`` (unordered: it never constrains the program's
schedule) once per finished epoch of every cell. ``tracking(label, total, log)`` counts them and
logs at most one line every ``every_s`` seconds with the cell-epochs done and a time-left
estimate from the measured rate:

  with progress.tracking("router mlp", total=cells * epochs, log=logging.info):
    grid.train_grid(..., report_progress=True)

Outside ``tracking`` the callback does nothing. The launchers turn it on; tests leave it off.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import jax
import numpy as np


class Tracker:
  """Counts finished units (cell-epochs) and logs a throttled progress line."""

  def __init__(self, label: str, total: int, log: Callable[[str], None], every_s: float = 5.0):
    self.label, self.total, self.log, self.every_s = label, max(1, int(total)), log, every_s
    self.done = 0
    self.t0 = time.perf_counter()
    self.first: tuple[float, int] | None = None  # (time, units) of the first callback
    self.last = self.t0
    self.lines = 0
    self._lock = threading.Lock()

  def add(self, n: int) -> None:
    with self._lock:
      self.done += int(n)
      now = time.perf_counter()
      if self.first is None:
        # The rate is measured from the first finished epoch on: compilation does not count.
        self.first, self.last = (now, self.done), now
        return
      if now - self.last < self.every_s:
        return
      self.last = now
      el = now - self.t0
      t1, d1 = self.first
      rate = (self.done - d1) / (now - t1) if now > t1 else 0.0
      left = (self.total - self.done) / rate if rate > 0 else float("nan")
      self.lines += 1
      pct = 100.0 * min(self.done, self.total) / self.total
      self.log(
        f"  {self.label}: {min(self.done, self.total)}/{self.total} cell-epochs ({pct:.0f}%), "
        f"{el:.0f} s elapsed, ~{left:.0f} s left"
      )

  def status(self) -> str:
    """``done/total cells, elapsed, ~left`` (a plain rate: for whole stages, not epochs)."""
    el = time.perf_counter() - self.t0
    left = el / self.done * (self.total - self.done) if self.done else float("nan")
    return f"{self.done}/{self.total} cells, {el:.0f} s elapsed, ~{left:.0f} s left"


_ACTIVE: Tracker | None = None


def on_epoch(epoch) -> None:
  """Host callback: one finished epoch of each cell in ``epoch`` (scalar or batched)."""
  tracker = _ACTIVE
  if tracker is not None:
    tracker.add(np.size(epoch))


@contextlib.contextmanager
def tracking(
  label: str, total: int, log: Callable[[str], None], every_s: float = 5.0
) -> Iterator[Tracker]:
  """Routes ``on_epoch`` calls to a new Tracker for the duration of the block."""
  global _ACTIVE
  previous, _ACTIVE = _ACTIVE, Tracker(label, total, log, every_s)
  try:
    yield _ACTIVE
  finally:
    jax.effects_barrier()  # unordered callbacks may still be queued when the outputs are ready
    _ACTIVE = previous
