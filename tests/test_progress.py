"""Progress lines from inside a compiled router grid (host callback at epoch boundaries)."""

import numpy as np
from test_routers import DIM, tiny_history

from rp_jax import progress
from rp_jax.routers import grid, mlp
from rp_jax.routers.data import make_router_data


def test_every_cell_epoch_is_counted_and_lines_are_logged():
  hist, emb = tiny_history()
  data = make_router_data(hist, emb)
  prof = np.random.default_rng(0).normal(size=(3, 4, DIM)).astype(np.float32)
  cfg = mlp.MLPConfig(epochs=4, hidden=8, out=4, batch_size=16)
  lines = []
  with progress.tracking("mlp", total=3 * 2 * 4, log=lines.append, every_s=0.0) as t:
    res = grid.train_grid("mlp", cfg, data, prof, [0, 1], report_progress=True)
  assert t.done == 3 * 2 * 4  # every (profile, seed, epoch)
  assert lines and lines[-1].startswith("  mlp: 24/24 cell-epochs (100%)")
  assert "s left" in lines[-1]
  # Outside tracking the callback is a no-op; the results do not depend on it.
  plain = grid.train_grid("mlp", cfg, data, prof, [0, 1])
  np.testing.assert_array_equal(plain.choices_SxZxQ, res.choices_SxZxQ)


def test_tracker_throttles_lines():
  lines = []
  t = progress.Tracker("x", total=100, log=lines.append, every_s=3600.0)
  for _ in range(100):
    t.add(1)
  assert t.done == 100 and lines == []  # nothing within the hour
