"""Converts routing data in a public layout into the generic long table (rp_jax.data.generic).

  python -m launch.convert --format=routerbench --src=../shared/data/routerbench \\
    --out=/tmp/rb/table.csv --cards_out=/tmp/rb/cards.json --tasks_out=/tmp/rb/tasks.json \\
    --domains_out=/tmp/rb/domains.json --families_out=/tmp/rb/families.json
  python -m launch.convert --format=records --src=train.jsonl --src=test.jsonl --out=t.jsonl.gz
  python -m launch.convert --format=matrix --src=matrix.npz --out=t.csv

Prints one line (rows, queries, models, dropped) and the converter's notes on stderr; on bad
input prints the DataError (file, row, what was expected) and exits 1. On the public RouterBench
subset (3 s on the 2-core machine, most of it imports): ``34,756 rows, 3,168 queries (2,223 train,
945 test), 11 models, 10 dropped``. Flags only; the work is in ``rp_jax.data.convert.run``.
"""

import sys

from absl import app, flags

from rp_jax.data import convert
from rp_jax.types import DataError

_FORMAT = flags.DEFINE_enum("format", None, convert.FORMATS, "Layout of the source files.")
_SRC = flags.DEFINE_multi_string(
  "src", None, "Source file or folder (routerbench: a folder or *_train.csv files); repeatable."
)
_OUT = flags.DEFINE_string("out", None, "Output table: .csv, .jsonl, .csv.gz or .jsonl.gz.")
_CARDS_OUT = flags.DEFINE_string("cards_out", None, "routerbench: model cards JSON.")
_TASKS_OUT = flags.DEFINE_string(
  "tasks_out", None, "routerbench: task descriptions JSON (names domains: add --domains_out)."
)
_DOMAINS_OUT = flags.DEFINE_string("domains_out", None, "routerbench: domain descriptions JSON.")
_FAMILIES_OUT = flags.DEFINE_string("families_out", None, "routerbench: family texts JSON.")
flags.mark_flags_as_required(["format", "src", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  try:
    conv = convert.run(
      _FORMAT.value,
      _SRC.value,
      _OUT.value,
      cards_out=_CARDS_OUT.value,
      tasks_out=_TASKS_OUT.value,
      domains_out=_DOMAINS_OUT.value,
      families_out=_FAMILIES_OUT.value,
    )
  except DataError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  except ValueError as e:  # flags that do not fit the format
    raise app.UsageError(str(e)) from None
  print(f"{_OUT.value}: {conv.summary()}")
  for n in conv.notes:
    print(f"  note: {n}", file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
