"""RouterBench as a History (``config.data.source = "routerbench"``).

``load_routerbench(folder)`` converts the folder's ``*_train.csv`` / ``*_test.csv`` files in
memory (rp_jax.data.convert.routerbench: the rules for partial, incomplete and repeated prompts
are there), describes the models (family, text, estimated prices, training scores), tasks and
domains, and reads the result with ``load_generic``. On the public subset
(``../shared/data/routerbench``, SPEC §8): 11 models, 2,223 training prompts (20 partial; 2 that
are also test prompts dropped) and 945 complete test prompts.
"""

from __future__ import annotations

import os
import pathlib

from rp_jax.data.convert.routerbench import (
  convert_routerbench,
  routerbench_cards,
  routerbench_families,
  routerbench_files,
  routerbench_tasks,
)
from rp_jax.data.generic import load_generic
from rp_jax.types import History

ENV = "RP_JAX_ROUTERBENCH"


def resolve_dir(data_dir: str) -> str:
  """The RouterBench folder of a config: ``data_dir``, else ``$RP_JAX_ROUTERBENCH`` ("" if none).

  ``config.data.data_dir`` defaults to ``$RP_JAX_DATA``, the RouteProfile folder, so a data_dir
  equal to that default is not taken for a RouterBench folder.
  """
  if data_dir and data_dir != os.environ.get("RP_JAX_DATA", ""):
    return str(data_dir)
  return os.environ.get(ENV, "")


def source_files(data_dir: str | pathlib.Path) -> list[pathlib.Path]:
  """The CSV files ``load_routerbench`` reads (for fingerprints), sorted."""
  return [p for p, _ in routerbench_files(data_dir)]


def load_routerbench(
  data_dir: str | pathlib.Path, *, held_out: tuple[str, ...] = (), setting: str = "standard"
) -> History:
  """Reads a RouterBench folder into a validated History.

  Args:
    data_dir: a folder of RouterBench ``*_train.csv`` / ``*_test.csv`` files.
    held_out: candidates to hold out of training (newllm), as in ``load_generic``.
    setting: a name for reports.
  """
  conv = convert_routerbench(data_dir)
  cards = routerbench_cards(conv.frame)
  tasks, domains = routerbench_tasks(conv.frame)
  h = load_generic(
    conv.frame,
    model_cards=cards,
    families=routerbench_families(cards),
    tasks=tasks,
    domains=domains,
    held_out=tuple(held_out),
    setting=setting,
    source=str(data_dir),
  )
  estimate = "model prices estimated from costs and text lengths (4 characters per token)"
  return h.replace(notes=(*conv.notes, estimate, *h.notes))
