"""Load time of ``load_generic`` on a 150k-row table, column-wise vs the old row-by-row reader.

Writes a synthetic generic table (15,000 queries x 10 models = 150,000 rows; 7 tasks; a cost on
every row, a prompt on half the queries, 20% test queries) into a temporary folder as .csv,
.csv.gz and .jsonl, and prints for each form the seconds ``load_generic`` takes (best of
``--repeats``) and seconds per 100k rows. Then, on the CSV, the table-reading step alone both
ways: ``columns.read_columns`` + ``table.table_from_columns`` (what load_generic does) against
the old path, ``validate.read_table`` + ``table.read_rows`` (row by row, kept as the reference),
and their ratio in this one run. Both build the same Table (checked).

Command (from the repository root; about half a minute on the 2-core machine)::

  /work/venv/bin/python benchmarks/loader.py

Prints lines like ``csv       load 0.95 s  (0.63 s / 100k rows)`` and
``read step: columns 0.55 s, row by row 2.6 s -> 4.7x``.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import numpy as np
import pandas as pd

from rp_jax.data import columns, generic, table
from rp_jax.data import validate as V
from rp_jax.data.convert import write_table


def make_table(num_queries: int, num_models: int, seed: int = 0) -> pd.DataFrame:
  """[num_queries * num_models] rows of the generic table, query-major."""
  rng = np.random.default_rng(seed)
  q = np.repeat(np.arange(num_queries), num_models)
  m = np.tile(np.arange(num_models), num_queries)
  prompt = np.where(
    q % 2 == 0, [f"System line.\n\nQuestion {i}: what is {i} + 1?" for i in q], None
  )
  return pd.DataFrame(
    {
      "query": [f"what is {i} + 1? (query {i})" for i in q],
      "task": [f"task{i % 7}" for i in q],
      "model": [f"model-{j}" for j in m],
      "performance": rng.integers(0, 2, len(q)).astype(np.float64),
      "split": np.where(q % 5 == 0, "test", "train"),
      "cost": np.round(rng.random(len(q)) * 1e-3, 6),
      "prompt": prompt,
    }
  )


def best_of(fn, repeats: int) -> float:
  out = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    out.append(time.perf_counter() - t0)
  return min(out)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--queries", type=int, default=15_000)
  ap.add_argument("--models", type=int, default=10)
  ap.add_argument("--repeats", type=int, default=2)
  args = ap.parse_args()
  frame = make_table(args.queries, args.models)
  rows = len(frame)
  with tempfile.TemporaryDirectory() as tmp:
    paths = {}
    for form in ("csv", "csv.gz", "jsonl"):
      paths[form] = pathlib.Path(tmp) / f"table.{form}"
      write_table(frame, paths[form])
    print(f"{rows:,} rows ({args.queries:,} queries x {args.models} models)")
    for form, p in paths.items():
      s = best_of(lambda p=p: generic.load_generic(p), args.repeats)
      print(f"{form:9s} load {s:.2f} s  ({s / rows * 1e5:.2f} s / 100k rows)")
    p = paths["csv"]
    new = lambda: table.table_from_columns(columns.read_columns(p), str(p), {}, None)
    old = lambda: table.read_rows(V.read_table(p)[0], str(p), {}, None)
    t_new, t_old = best_of(new, args.repeats), best_of(old, args.repeats)
    a, b = new(), old()
    assert a.q_text == b.q_text and a.model_names == b.model_names and a.q_split == b.q_split
    np.testing.assert_array_equal(a.recs, np.asarray(b.recs, np.float64))
    print(f"read step: columns {t_new:.2f} s, row by row {t_old:.2f} s -> {t_old / t_new:.1f}x")


if __name__ == "__main__":
  main()
