"""Deploy a router: train one (profile, router) on a dataset, then route query texts with it.

Commands:
  python -m launch.route --config=configs/route.py --workdir=runs/router --fit
  echo '{"query": "Solve 12 * 7 + 3"}' | python -m launch.route --config=configs/route.py \
      --workdir=runs/router --queries=-
  # a model that is in the data's pool but was not a candidate joins without retraining:
  python -m launch.route --config=configs/route.py --workdir=runs/router --add_models=NAME
  # any new model joins from its answers to the router's quiz (and its model card):
  python -m launch.route --config=configs/route.py --workdir=runs/router --print_quiz=50 > quiz.jsonl
  python -m launch.route --config=configs/route.py --workdir=runs/router --add_models=NEW \
      --quiz_outcomes=answers.jsonl --model_card=card.json
Runtime:  ~10 s to fit on the synthetic default on a 2-core CPU; routing is milliseconds.
Expected: runs/router/bundle.json + arrays.npz; one JSON line {"query", "model", "expected_cost"}
          per query (with --lambda or --max_cost_per_query also the "lambda" used).
"""

import ml_collections

from rp_jax import config as rp_config


def get_config(arg=None):
  c = rp_config.base_config()
  c.name = "route"
  c.data.source = "synthetic"
  c.settings = ("standard",)
  c.route = ml_collections.ConfigDict()
  # The recipe configs/quality.py selects (README "Which router to use"): the bilinear MF router,
  # cross-validated (its 5 fold models route by their mean score), on flat text profiles (a new
  # model's card gives it a profile; index profiles would give it a random one).
  c.route.profile = "flat:TQD"
  c.route.router = "mf"
  c.val_folds = 5
  c.route.seed = 0
  c.route.inputs = "prompt"  # prompt | prompt+task (then each query line carries its "task")
  # The quiz a new model answers to join without retraining (--print_quiz / --quiz_outcomes);
  # a probe profile (e.g. "flat:TQD+probe:8:4") measures every candidate on it at --fit.
  c.route.quiz_size = 50
  return rp_config.apply_common_args(c, arg)
