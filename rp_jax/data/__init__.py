"""Loaders that turn files (or a generator) into a validated History."""

from __future__ import annotations

from rp_jax.data.generic import load_generic
from rp_jax.data.holdout import hold_out, leave_one_out
from rp_jax.data.routeprofile import load_routeprofile
from rp_jax.data.routerbench import load_routerbench, resolve_dir
from rp_jax.data.synthetic import make_history
from rp_jax.types import History

__all__ = [
  "hold_out",
  "leave_one_out",
  "load_generic",
  "load_history",
  "load_routeprofile",
  "load_routerbench",
  "make_history",
]


# RouterBench's default new LLM (setting "newllm" without data.held_out): the best model on
# every task, the one whose absence costs a router most (SPEC §8).
ROUTERBENCH_NEWLLM = "gpt-4-1106-preview"


def load_history(data_config, setting: str) -> History:
  """The History of one setting from a config's ``data`` block (see rp_jax.config)."""
  d = data_config
  held = tuple(h for h in str(d.get("held_out", "")).split(",") if h)
  if d.source == "routeprofile":
    return load_routeprofile(
      d.data_dir, setting, held_out=held or None, include_choices=bool(d.include_choices)
    )
  if d.source == "synthetic":
    scale = float(d.get("synthetic_scale", 1.0))
    sizes = {}
    for kv in filter(None, str(d.get("synthetic_sizes", "")).split(",")):
      k, _, v = kv.partition("=")
      try:
        sizes[k.strip()] = float(v) if "." in v else int(v)
      except ValueError:
        raise ValueError(f"config.data.synthetic_sizes: {kv!r} is not key=number") from None
    return make_history(
      seed=int(d.synthetic_seed),
      setting=setting,
      **{
        "train_per_task": max(2, round(150 * scale)),
        "test_per_task": max(2, round(50 * scale)),
        **sizes,
      },
    )
  if d.source == "generic":
    if setting == "newllm" and not held:
      raise ValueError("the newllm setting on generic data needs config.data.held_out=<model>")
    opt = lambda k: d.get(k) or None
    return load_generic(
      d.table,
      model_cards=opt("model_cards"),
      families=opt("families"),
      tasks=opt("tasks"),
      domains=opt("domains"),
      held_out=held if setting == "newllm" else (),
      setting=setting,
    )
  if d.source == "routerbench":
    folder = resolve_dir(d.data_dir)
    if not folder:
      raise ValueError(
        "routerbench data: set config.data.data_dir or RP_JAX_ROUTERBENCH to a folder of "
        "RouterBench *_train.csv / *_test.csv files"
      )
    if setting == "newllm" and not held:
      held = (ROUTERBENCH_NEWLLM,)  # the strongest model, as newllm holds out mistral-small
    return load_routerbench(folder, held_out=held if setting == "newllm" else (), setting=setting)
  raise ValueError(
    f"unknown data source {d.source!r}; expected routeprofile, synthetic, generic or routerbench"
  )
