"""Writes docs/results.md from sweep runs: ``python -m launch.report --runs=DIR[,DIR...] --out=FILE``.

Each run folder is a sweep's ``--workdir`` (it holds config.json). The same folders give the same
bytes. Flags only; the work is in ``rp_jax.report.results_markdown``.
"""

import sys

from absl import app, flags

from rp_jax import io, report

_RUNS = flags.DEFINE_list("runs", None, "Sweep run folders (workdirs), in the document's order.")
_OUT = flags.DEFINE_string("out", "docs/results.md", "The markdown file to write (atomically).")
flags.mark_flags_as_required(["runs"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  try:
    text = report.results_markdown(_RUNS.value, out=_OUT.value)
  except ValueError as e:  # not a run folder: one clear line, no traceback
    sys.exit(f"launch.report: {e}")
  io.write_text(_OUT.value, text)


if __name__ == "__main__":
  app.run(main)
