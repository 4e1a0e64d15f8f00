"""summary.md tables: the paper's values appear beside ours only on the paper's data."""

import pandas as pd

from rp_jax.report import summary


def _stats():
  rows = [
    {
      "setting": "standard",
      "router": r,
      "profile": "index",
      "graph": "",
      "hops": 0,
      "mean": 0.6,
      "ci_lo": 0.58,
      "ci_hi": 0.62,
    }
    for r in ("sim", "mlp", "graph")
  ]
  return pd.DataFrame(rows)


def test_table1_with_and_without_paper_values():
  with_paper = summary._table1(_stats(), "standard", show_paper=True)
  without = summary._table1(_stats(), "standard", show_paper=False)
  assert len(with_paper) == len(without) == 3  # header, rule, the Flat Index row
  # SPEC §4: Flat Index 0.499 / 0.593 / 0.532.
  assert with_paper[2] == (
    "| Flat Index | 0 | TF | 0.600 ± 0.020 (0.499) | 0.600 ± 0.020 (0.593) "
    "| 0.600 ± 0.020 (0.532) |"
  )
  assert without[2] == "| Flat Index | 0 | TF | 0.600 ± 0.020 | 0.600 ± 0.020 | 0.600 ± 0.020 |"


def test_missing_router_cell_shows_dash_and_paper_value_only_when_asked():
  stats = _stats()
  stats = stats[stats["router"] != "graph"]
  assert summary._table1(stats, "standard", show_paper=True)[2].endswith("| – (0.532) |")
  assert summary._table1(stats, "standard", show_paper=False)[2].endswith("| – |")
