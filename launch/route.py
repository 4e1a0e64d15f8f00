"""Fit, extend and use a deployable router (see configs/route.py for the commands).

Flags only; the work is in ``rp_jax.deploy.run``.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from rp_jax import deploy, runtime
from rp_jax.types import DataError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Route config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder of the router bundle.")
_FIT = flags.DEFINE_bool("fit", False, "Train the router and save the bundle.")
_QUERIES = flags.DEFINE_string("queries", None, "JSONL ({'query': ...} per line) or '-' (stdin).")
_ADD = flags.DEFINE_list("add_models", [], "Pool models to add as candidates, no retraining.")
_LAMBDA = flags.DEFINE_float("lambda", None, "Route by argmax p-hat - lambda * expected cost ($).")
_BUDGET = flags.DEFINE_float(
  "max_cost_per_query", None, "Budget mode: the lambda whose validation front costs at most this."
)
_PRINT_QUIZ = flags.DEFINE_integer(
  "print_quiz", 0, "Print the router's quiz of this many queries (one JSON line each)."
)
_QUIZ_OUTCOMES = flags.DEFINE_string(
  "quiz_outcomes", None, "A new model's answers to the quiz: JSONL {'quiz', 'query', 'outcome'}."
)
_MODEL_CARD = flags.DEFINE_string(
  "model_card", None, "The new model's card (JSON: family, text, input_price, output_price)."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  runtime.configure(_CONFIG.value)
  request = deploy.RouteRequest(
    fit=_FIT.value,
    add_models=tuple(_ADD.value),
    queries=_QUERIES.value,
    lam=_LAMBDA.value,
    max_cost=_BUDGET.value,
    print_quiz=_PRINT_QUIZ.value,
    quiz_outcomes=_QUIZ_OUTCOMES.value,
    model_card=_MODEL_CARD.value,
  )
  try:
    deploy.run(_CONFIG.value, _WORKDIR.value, request)
  except (ValueError, DataError) as e:  # bad input: one clear line, no traceback
    sys.exit(f"launch.route: {e}")


if __name__ == "__main__":
  app.run(main)
