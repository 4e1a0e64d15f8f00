"""``docs/results.md``: generated from run folders, never hand-edited (``launch.report``).

Formatting only: it reads each run's outputs (config.json, summary.md, the CSV tables).
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import pathlib
import re
from collections.abc import Sequence

_FALLBACK_CSVS = (
  ("quality.csv", "Validation-selected routers"),
  ("lomo.csv", "Leave each candidate out (lomo)"),
  ("aiq.csv", "Cost–quality scores"),
)
_EXTRA_CSVS = (("coldstart.csv", "Cold start"), ("datasets.csv", "Datasets"))


def results_markdown(run_dirs: Sequence[str | pathlib.Path], out: str = "docs/results.md") -> str:
  """One markdown document with the tables of several sweep runs (``docs/results.md``).

  Formatting only, deterministic: the same run folders give the same bytes (no dates, no wall
  times). Per run: a heading with the config's name, the command that reproduces it (the config
  file, the workdir and the overrides that differ from the file's defaults), the hardware it ran
  on (``config.json``'s ``runtime``), then ``summary.md`` without its title and wall-time section
  (headings one level down), or, without summary.md, ``quality.csv`` / ``lomo.csv`` /
  ``aiq.csv`` as tables; ``coldstart.csv`` and ``datasets.csv`` as tables when present. Missing
  files are skipped.

  Args:
    run_dirs: sweep workdirs, written as given (their order is the document's).
    out: where the document goes (only named in its regeneration note).

  Raises:
    ValueError: a folder without ``config.json`` (not a sweep run).
  """
  labels = [str(d) for d in run_dirs]
  for d in labels:
    if not (pathlib.Path(d) / "config.json").is_file():
      raise ValueError(f"{d}: not a sweep run folder (no config.json)")
  lines = [
    "# Results",
    "",
    "Generated from sweep outputs; do not edit by hand. Regenerate with",
    "",
    "```bash",
    f"python -m launch.report --runs={','.join(labels)} --out={out}",
    "```",
    "",
  ]
  for d in labels:
    lines += _run_markdown(pathlib.Path(d), d)
  return "\n".join(lines).rstrip("\n") + "\n"


def _run_markdown(path: pathlib.Path, label: str) -> list[str]:
  """One run's part of the results document."""
  prov = json.loads((path / "config.json").read_text(encoding="utf-8"))
  cfg = prov.get("config", {})
  versions = f"rp_jax {prov.get('rp_jax_version', '?')}, jax {prov.get('jax_version', '?')}"
  lines = [
    f"## {cfg.get('name', '?')}: `{label}`",
    "",
    "```bash",
    reproduce_command(cfg, label),
    "```",
    "",
    f"Hardware: {prov.get('runtime', 'not recorded')}. {versions}; code fingerprint "
    f"`{prov.get('code_fingerprint', '?')}`, data fingerprint `{prov.get('data_fingerprint', '?')}`.",
    "",
  ]
  summary = path / "summary.md"
  if summary.is_file():
    lines += _summary_sections(summary.read_text(encoding="utf-8"))
  else:
    lines += [x for name, title in _FALLBACK_CSVS for x in _csv_section(path / name, title)]
  lines += [x for name, title in _EXTRA_CSVS for x in _csv_section(path / name, title)]
  return lines


def reproduce_command(cfg: dict, workdir: str) -> str:
  """``python -m launch.sweep --config=configs/<name>.py --workdir=...`` plus an override per key
  whose value differs from the config file's default (``cfg``: config.json's ``config``).

  The public data's folder is given as ``RP_JAX_DATA``; keys the file does not know, and every
  override, are left out when ``configs/<name>.py`` cannot be imported (then a comment says so).
  """
  name = str(cfg.get("name", ""))
  data = cfg.get("data", {})
  env = (
    f"RP_JAX_DATA={_shell_arg(data['data_dir'])} " if data.get("source") == "routeprofile" else ""
  )
  parts = [
    f"{env}python -m launch.sweep --config=configs/{name}.py --workdir={_shell_arg(workdir)}"
  ]
  defaults = _config_defaults(name)
  if defaults is None:
    return parts[0] + f"  # configs/{name}.py not found: overrides unknown"
  for key, value in _flatten(cfg).items():
    skip = key == "data.data_dir" and data.get("source") != "routerbench"
    if key in defaults and defaults[key] != value and not skip:
      parts.append(_shell_arg(f"--config.{key}={_flag_value(value)}"))
  return " \\\n  ".join(parts)


def _config_defaults(name: str) -> dict | None:
  """configs/<name>.py's ``get_config()`` as flat JSON values, or None if it cannot be loaded."""
  if not re.fullmatch(r"[A-Za-z_]\w*", name):
    return None
  try:
    module = importlib.import_module(f"configs.{name}")
  except ImportError:
    return None
  return _flatten(json.loads(module.get_config().to_json()))


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _flag_value(v) -> str:
  """A JSON config value as ml_collections parses a ``--config.key=value`` override."""
  if isinstance(v, list):
    return repr(tuple(v))
  return str(v)


def _shell_arg(s: str) -> str:
  if re.fullmatch(r"[\w@%+=:,./-]+", s):
    return s
  if not re.search(r'["$`\\!]', s):
    return f'"{s}"'
  return "'" + s.replace("'", "'\"'\"'") + "'"


def _summary_sections(text: str) -> list[str]:
  """summary.md without its title and wall-time section, headings one level down."""
  lines, skipping, fenced = [], False, False
  for line in text.splitlines():
    if line.startswith("```"):
      fenced = not fenced
    heading = not fenced and line.startswith("#")
    if heading and line.startswith("# "):
      continue
    if heading and line.startswith("## "):
      skipping = line.startswith("## Wall time")
    if not skipping:
      lines.append("#" + line if heading else line)
  while lines and not lines[-1].strip():
    lines.pop()
  while lines and not lines[0].strip():
    lines.pop(0)
  return [*lines, ""]


def _csv_section(path: pathlib.Path, title: str) -> list[str]:
  """``### title`` and the CSV as a markdown table ([] if the file is missing or empty)."""
  if not path.is_file():
    return []
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
  if len(rows) < 2:
    return []
  row = lambda cells: "| " + " | ".join(_cell_text(c) for c in cells) + " |"
  return [
    f"### {title} (`{path.name}`)",
    "",
    row(rows[0]),
    "|" + "---|" * len(rows[0]),
    *(row(r) for r in rows[1:]),
    "",
  ]


def _cell_text(s: str) -> str:
  """A CSV cell for a markdown table: floats to 4 decimals, NaN as –, pipes escaped."""
  try:
    x = float(s)
  except ValueError:
    return s.replace("|", "\\|")
  if math.isnan(x):
    return "–"
  if not re.search(r"[.eE]", s) or math.isinf(x):
    return s
  return f"{x:.4f}" if x == 0 or 1e-3 <= abs(x) < 1e5 else f"{x:.3e}"
