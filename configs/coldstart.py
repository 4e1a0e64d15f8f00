"""Cold start by quiz: onboard a new LLM from its answers to k training queries (SPEC §8).

Command:  python -m launch.sweep --config=configs/coldstart.py --workdir=runs/coldstart
          (RP_JAX_DATA = the public RouteProfile data; RouterBench, leave each model out:
          --config.data.source=routerbench with RP_JAX_ROUTERBENCH set)
Runtime:  741 s on the 2-core CPU, caches cold (public data: standard, the newllm curve over 6
          quiz sizes, 8 lomo folds x 2 sizes); RouterBench with --config.mf.val_folds=1:
          1,630 s (11 folds x 2 sizes + the gpt-4 curve).
Expected: coldstart.csv — per cold-start setting (newllm, every lomo fold, pooled lomo), router
          family, inputs, quiz method and size k: the validation-selected cell's avg performance
          [95% CI], new-model recall / precision, a_zero (the same cell ignoring the new model),
          a_full (the family's selected cell in the standard setting, trained with all of the
          model's data) and the gap recovered (A_k − a_zero) / (a_full − a_zero) with its paired
          CI; figures/coldstart_curves.png; quality.csv for the standard setting (a_full).

Every cold-start setting (newllm, each lomo fold) becomes one setting per (quiz method, k): the
quiz is chosen from training queries with known outcomes of the seen models (before any new
model is seen), the held-out model's answers on it are revealed (outcomes and pairs, nothing
else), and the profile-conditioned families are trained and selected on validation queries as in
configs/quality.py. Profiles: index (no information), flat text, the probe profile (per-cluster
quiz accuracy, rp_jax/profiles/probe.py) and flat text with the probe block appended.

Measured (prompt+task, 5 seeds, random quiz, gap recovered with its 95% paired bootstrap CI):
  public newllm, k = 50: kNN 0.652, gap 0.65 [0.19, 1.65]; MF 0.633, 0.17 [-0.74, 0.49]; the
  whole gap is 0.03 (a_full 0.662), so every interval is wide. Pooled lomo at k = 50: the quiz
  costs quality (kNN -0.34, MF -0.10 of a 0.01 gap).
  RouterBench, gpt-4 held out: k = 25 recovers the whole gap (kNN 1.00, MF 1.00); pooled over the
  11 leave-one-out folds at k = 50: kNN 0.94 [0.80, 1.06], MF 0.94 [0.89, 0.98].
"""

from configs import quality


def get_config(arg=None):
  c = quality.get_config(arg)
  c.name = "coldstart"
  c.settings = ("standard", "newllm", "lomo")
  # Text profiles with and without the probe block (the probe block alone is all zeros at k = 0:
  # every model measured on an empty quiz).
  c.profiles = ("flat:TQD", "flat:TQD+probe:8:4")
  c.profiles_newllm = ()
  c.profiles_lomo = ()
  c.routers = ("knn", "mf")
  c.routers_lomo = ()
  c.router_inputs = ("prompt+task",)  # the task label too, as the per-task lookup reads it
  c.mf.l2 = (1e-3, 1e-2)
  # The full curve for newllm; the lomo folds at the two ends that matter (no quiz, 50 answers).
  c.quiz.methods = ("random",)
  c.quiz.ks = (0, 10, 25, 50, 100, 200)
  c.quiz.ks_lomo = (0, 50)
  return c
