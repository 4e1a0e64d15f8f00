"""Is there a signal for cold start in the public data? Where the held-out model wins, and whether
the profile data predicts it.

The newllm setting hides mistral-small's pairs and routing-task scores; a router can find it only
through its profile. This script measures, on the public data (no router training, seconds):

  1. the ceiling: how often task-level routers with *full* information route to mistral-small
     where it is among the best (new-model recall, SPEC §3): the per-task lookup of the standard
     setting, the benchmark-score lookup with its true scores, and the per-task oracle (reads the
     test rows);
  2. the signal across the seen candidates: ridge regression (unpenalised intercept) of each
     routing task's training win rate on the benchmarks every candidate is scored on in newllm,
     leave-one-seen-model-out over the 7 seen candidates, mean squared error per ridge λ. If
     shrinking to the mean (λ → ∞) predicts best, the scores say nothing about where a model wins;
  3. the signal across the 24-model pool: the same features predicting the routing-task benchmark
     scores themselves (leave-one-model-out over every pool model with both, relative to the
     variance: > 1 is worse than the mean);
  4. for orientation only (reads test rows, never a result): the avg performance and recall the
     per-task ridge lookup would get for each λ — the λ one would need, and that (2) rejects.

  python benchmarks/coldstart_signal.py [--data_dir DIR]

Data: ``--data_dir`` or $RP_JAX_DATA (default ../shared/data/routeprofile).
"""

from __future__ import annotations

import argparse
import os
import pathlib

import numpy as np

from rp_jax.data.routeprofile import load_routeprofile
from rp_jax.routers import baselines
from rp_jax.types import TEST, History

REPO = pathlib.Path(__file__).resolve().parents[1]
LAMBDAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def task_wins(h: History) -> tuple[np.ndarray, np.ndarray]:
  """([T, A] wins, [T, A] losses) of each candidate in the training pairs of each task."""
  return baselines._win_counts(h, h.query_task[h.pairs_Px3[:, 0]], h.num_tasks)


def task_win_rates(h: History) -> np.ndarray:
  """[T, A] share of a candidate's training pairs of each task that it won (NaN: no pairs)."""
  return baselines._win_rate(*task_wins(h))


def ridge(x_NxF: np.ndarray, y_N: np.ndarray, lam: float) -> np.ndarray:
  """[F + 1] ridge coefficients with an unpenalised intercept (first)."""
  xt = np.c_[np.ones(len(x_NxF)), x_NxF]
  reg = lam * np.eye(xt.shape[1])
  reg[0, 0] = 0.0
  return np.linalg.solve(xt.T @ xt + reg, xt.T @ y_N)


def predict(beta: np.ndarray, x_F: np.ndarray) -> float:
  return float(np.r_[1.0, x_F] @ beta)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--data_dir", default=None)
  args = ap.parse_args()
  data_dir = (
    args.data_dir
    or os.environ.get("RP_JAX_DATA")
    or str(REPO.parent / "shared" / "data" / "routeprofile")
  )
  std = load_routeprofile(data_dir, "standard")
  new = load_routeprofile(data_dir, "newllm")
  cand = new.candidates
  held = int(new.held_out[0])
  a_new = int(np.flatnonzero(cand == held)[0])
  test = np.flatnonzero(new.query_split == TEST)
  perf = new.outcomes_QxM[test][:, cand]
  task_Q = new.query_task[test]
  tasks = np.unique(task_Q)
  best = perf.max(1)
  where_best = (perf[:, a_new] == best) & ~(perf == best[:, None]).all(1)
  rows = np.arange(len(test))

  def report(name, choice_T):
    ch = choice_T[task_Q]
    print(
      f"  {name:<58} avg {perf[rows, ch].mean():.4f}  recall {(ch[where_best] == a_new).mean():.3f}"
    )

  print(f"held-out model: {new.model_names[held]}; among the best on {where_best.sum()} test rows")
  print("1. full-information task-level routers (standard setting)")
  wins, losses = task_wins(std)
  net = np.where(wins + losses > 0, wins - losses, -np.inf)
  report("lookup by net training-pair wins (task_best_pairs, standard)", np.argmax(net, 1))
  rate_std = task_win_rates(std)
  report("lookup by training win rate (standard)", np.nanargmax(np.nan_to_num(rate_std, nan=-1), 1))
  bench = std.scores_MxT[cand]
  report(
    "best benchmark score on the task (standard scores)",
    np.nanargmax(np.where(np.isfinite(bench), bench, -np.inf).T, 1),
  )
  oracle_T = np.zeros(new.num_tasks, int)
  for t in tasks:
    oracle_T[t] = int(np.argmax(perf[task_Q == t].mean(0)))
  report("per-task oracle (reads the test rows)", oracle_T)

  common = np.flatnonzero(np.isfinite(new.scores_MxT[cand]).all(axis=0))
  print(
    "2. newllm features (benchmarks every candidate is scored on): "
    + ", ".join(new.task_names[t] for t in common)
  )
  x = new.scores_MxT[cand][:, common].astype(np.float64)
  x = (x - x.mean(0)) / x.std(0)
  rate = task_win_rates(new)
  seen = [a for a in range(len(cand)) if a != a_new]
  err = []
  for j in seen:
    rest = [a for a in seen if a != j]
    err += [(np.mean(rate[t, rest]) - rate[t, j]) ** 2 for t in tasks]
  print(f"  the other seen models' mean:  leave-one-seen-model-out MSE {np.mean(err):.4f}")
  for lam in LAMBDAS:
    err = []
    for j in seen:
      rest = [a for a in seen if a != j]
      for t in tasks:
        err.append((predict(ridge(x[rest], rate[t, rest], lam), x[j]) - rate[t, j]) ** 2)
    print(
      f"  lambda {lam:>5}: leave-one-seen-model-out MSE of the task win rate {np.mean(err):.4f}"
    )

  print("3. the pool: features -> routing-task benchmark scores, leave-one-model-out")
  s = new.scores_MxT.astype(np.float64)
  for lam in LAMBDAS:
    rel = []
    for t in tasks:
      ok = np.isfinite(s[:, t]) & np.isfinite(s[:, common]).all(1)
      ok[held] = False
      xs, ys = s[ok][:, common], s[ok, t]
      xs = (xs - xs.mean(0)) / xs.std(0)
      e = [
        (predict(ridge(np.delete(xs, i, 0), np.delete(ys, i), lam), xs[i]) - ys[i]) ** 2
        for i in range(len(ys))
      ]
      rel.append(np.mean(e) / np.var(ys))
    print(f"  lambda {lam:>5}: MSE / variance {np.mean(rel):.3f} (mean over {len(tasks)} tasks)")

  print("4. orientation only (reads test rows): per-task ridge lookup with the prediction")
  for lam in LAMBDAS:
    pred = rate.copy()
    for t in tasks:
      pred[t, a_new] = predict(ridge(x[seen], rate[t, seen], lam), x[a_new])
    report(f"lambda {lam}", np.nanargmax(np.nan_to_num(pred, nan=-1), 1))


if __name__ == "__main__":
  main()
