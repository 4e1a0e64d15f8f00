"""results: per-cell statistics (means over seeds, paired bootstrap CI), baselines, claims; and
the report printing exactly those numbers."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
import pytest

from rp_jax import metrics, report, results
from rp_jax.routers.baselines import Baseline

ROUTERS = ("sim", "mlp", "graph")
Q = 40


def _setting():
  """Two flat/emb_gnn cells x 3 seeds for mlp (hand-made per-row performance), one baseline."""
  rng = np.random.default_rng(0)
  key = lambda profile, graph, hops, norm: results.CellKey(
    "standard", "mlp", "prompt", "", profile, graph, str(hops), "tf", norm
  )
  cells = {
    key("flat", "TQD", 0, ""): rng.integers(0, 2, (3, Q)).astype(np.float32),
    key("emb_gnn", "TQD", 2, "sym"): np.ones((3, Q), np.float32),
    key("emb_gnn", "TQ", 2, "sym"): np.ones((3, Q), np.float32) * 0.5,
    key("emb_gnn", "TD", 2, "sym"): np.zeros((3, Q), np.float32),
  }
  rows = []
  for k, perf_ZxQ in cells.items():
    _, router, inputs, hparams, profile, graph, hops, _, norm = k
    for seed in range(3):
      rows.append(
        {
          "setting": "standard",
          "profile": profile,
          "graph": graph,
          "hops": int(hops),
          "learn": "tf",
          "norm": norm,
          "router": router,
          "inputs": inputs,
          "hparams": hparams,
          "seed": seed,
          "val_utility": 0.5,
          "avg_performance": float(perf_ZxQ[seed].mean()),
          "hit_rate": 1.0,
          "cost_per_query": np.nan,
          "selection_entropy": 0.5,
          "new_model_selection_rate": 0.0,
          "new_model_recall": np.nan,
        }
      )
  base_rows = rng.random(Q).astype(np.float32)
  rows.append(
    {
      **{k: "" for k in results.KEY_COLUMNS},
      "setting": "standard",
      "router": "const/a",
      "seed": 0,
      "avg_performance": float(base_rows.mean()),
      "hit_rate": 0.9,
      "cost_per_query": 1e-4,
      "selection_entropy": 0.0,
      "new_model_selection_rate": 0.0,
      "new_model_recall": np.nan,
    }
  )
  bl = {"const/a": Baseline("const/a", np.zeros((Q, 2), np.float32), "constant", "Always a.")}
  res = results.SettingResult(
    history=None,
    test=None,
    rows=rows,
    cell_rows=cells,
    baselines=bl,
    baseline_rows={"const/a": base_rows},
    specs=[],
  )
  return results.results_frame(rows), {"standard": res}, cells, base_rows


def test_cell_stats_means_and_paired_bootstrap():
  frame, by_setting, cells, _ = _setting()
  stats = results.cell_stats(frame, by_setting, ROUTERS, 200, 0)
  assert len(stats) == 4 and set(stats["seeds"]) == {3}
  keys = [results.CellKey.of(r) for r in stats.itertuples()]
  for r, k in zip(stats.itertuples(), keys, strict=True):
    assert r.mean == pytest.approx(cells[k].mean(), abs=1e-6)
    assert r.sd == pytest.approx(cells[k].mean(1).std(ddof=1), abs=1e-6)
  # The CI is the bootstrap of the seed-averaged rows, all cells on the same resamples.
  rows_SxQ = np.stack([cells[k].mean(0) for k in keys])
  ci = metrics.bootstrap(jax.random.key(0), jnp.asarray(rows_SxQ), 200)
  np.testing.assert_allclose(stats["ci_lo"], ci["lo"])
  np.testing.assert_allclose(stats["ci_hi"], ci["hi"])
  const = stats[stats["profile"] == "emb_gnn"]
  assert (const["ci_lo"] == const["mean"]).all()  # constant rows: a zero-width interval


def test_baseline_stats_carry_rule_and_ci():
  frame, by_setting, _, base_rows = _setting()
  b = results.baseline_stats(frame, by_setting, ROUTERS, 200, 0)
  assert list(b["name"]) == ["const/a"]
  row = b.iloc[0]
  assert row["kind"] == "constant" and row["description"] == "Always a."
  ci = metrics.bootstrap(jax.random.key(0), jnp.asarray(base_rows[None]), 200)
  assert row["ci_lo"] == pytest.approx(float(ci["lo"][0]))
  assert row["avg_performance"] == pytest.approx(float(base_rows.mean()))


def test_claims_compare_the_right_cells():
  frame, by_setting, cells, _ = _setting()
  stats = results.cell_stats(frame, by_setting, ROUTERS, 200, 0)
  ev = results.claims(stats, by_setting, ROUTERS, 200, 1)
  c1 = [e for e in ev if e.claim == 1]
  assert len(c1) == 1 and c1[0].router == "mlp"
  # emb_gnn TQD (all ones) beats flat; P(better) = 1 on every resample.
  assert c1[0].a == pytest.approx(1.0) and c1[0].p == 1.0 and "1/1" in c1[0].text
  c2 = [e for e in ev if e.claim == 2]
  assert [e.text for e in c2] == ["emb_gnn: T+Q vs T+D"]
  assert (c2[0].a, c2[0].b, c2[0].p) == (pytest.approx(0.5), pytest.approx(0.0), 1.0)


def test_summary_prints_the_computed_numbers(tmp_path):
  frame, by_setting, _, _ = _setting()
  stats = results.cell_stats(frame, by_setting, ROUTERS, 200, 0)
  bstats = results.baseline_stats(frame, by_setting, ROUTERS, 200, 0)
  ev = results.claims(stats, by_setting, ROUTERS, 200, 1)

  class _H:
    def summary(self):
      return "tiny"

  by_setting["standard"].history = _H()
  c = ml_collections.ConfigDict(
    {
      "name": "t",
      "data": {
        "source": "synthetic",
        "data_dir": "",
        "query_format": "prompt",
        "synthetic_seed": 0,
        "synthetic_scale": 1.0,
      },
      "settings": ("standard",),
      "encoder": "hashing",
      "summarizer": "template",
      "seeds": 3,
      "routers": ROUTERS,
      "router_inputs": ("prompt",),
      "profile_norm": "l2",
      "val_split": "stratified",
      "bootstrap": 200,
    }
  )
  tables = {"stats": stats, "bstats": bstats, "evidence": ev}
  report.write_summary(tmp_path, report.SummaryInputs(c, by_setting, tables, {"total": 1.0}))
  text = (tmp_path / "summary.md").read_text()
  flat = stats[stats["profile"] == "flat"].iloc[0]
  half = (flat["ci_hi"] - flat["ci_lo"]) / 2
  assert f"| Flat Text | 0 | TF | – | {flat['mean']:.3f} ± {half:.3f} | – |" in text
  b = bstats.iloc[0]
  assert f"| const/a | constant | {b['avg_performance']:.4f} [{b['ci_lo']:.3f}" in text
  assert f"- mlp: emb_gnn: T+Q vs T+D: 0.500 vs 0.000 (P(better) = {c2p(ev):.2f})" in text


def c2p(ev):
  return next(e.p for e in ev if e.claim == 2)


def test_results_frame_column_order():
  frame, _, _, _ = _setting()
  assert list(frame.columns[: len(results.RESULT_COLUMNS)]) == list(results.RESULT_COLUMNS)
  assert pd.api.types.is_float_dtype(frame["avg_performance"])
