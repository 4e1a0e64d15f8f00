"""docs/results.md: ``report.results_markdown`` and ``launch.report`` on small fake run folders."""

import json
import pathlib
import subprocess
import sys

import pytest

from configs import test as test_config
from rp_jax import report

REPO = pathlib.Path(__file__).resolve().parents[1]

SUMMARY = """# rp_jax sweep: test

Data: synthetic; settings: standard.

## Setting: standard

```
# not a heading: inside a code block
```

### Baselines

| baseline | avg perf |
|---|---|
| random | 0.5 |

## Wall time per stage

- standard/data: 0.7 s

## Validation-selected routers

| setting | router |
|---|---|
| standard | mf |
"""


def _run_folder(path: pathlib.Path, name="test", files=None, **overrides) -> pathlib.Path:
  """A run folder as a sweep leaves it: config.json (the config with ``overrides``) + files."""
  path.mkdir(parents=True)
  cfg = json.loads(test_config.get_config().to_json())
  cfg.update(overrides, name=name)
  prov = {"config": cfg, "code_fingerprint": "c0de", "data_fingerprint": "da7a"}
  prov.update(rp_jax_version="0.1.0", jax_version="0.0", runtime="cpu: 1 x cpu")
  (path / "config.json").write_text(json.dumps(prov))
  for fname, text in (files or {}).items():
    (path / fname).write_text(text)
  return path


@pytest.fixture
def runs(tmp_path):
  a = _run_folder(
    tmp_path / "runs" / "a",
    files={"summary.md": SUMMARY, "quality.csv": "setting,router\nstandard,mf\n"},
    seeds=1,
    settings=["standard"],
  )
  b = _run_folder(
    tmp_path / "runs" / "b",
    files={
      "quality.csv": "setting,router,avg_performance,cell\nstandard,mf,0.66166,mf|prompt||flat\n",
      "coldstart.csv": "setting,recall\nnewllm,nan\n",
    },
  )
  c = _run_folder(tmp_path / "runs" / "c", name="not_a_config_file")
  return a, b, c


def test_results_markdown_layout(runs):
  a, b, c = runs
  text = report.results_markdown([a, b, c])
  assert text.startswith("# Results\n")
  assert f"python -m launch.report --runs={a},{b},{c} --out=docs/results.md" in text
  # Run a: the command reproduces its overrides; summary.md's sections, one level down, without
  # its title and wall times; quality.csv is in summary.md already, so not repeated.
  assert f"python -m launch.sweep --config=configs/test.py --workdir={a}" in text
  assert "--config.seeds=1" in text and "\"--config.settings=('standard',)\"" in text
  assert "Hardware: cpu: 1 x cpu." in text and "code fingerprint `c0de`" in text
  assert "### Setting: standard" in text and "#### Baselines" in text
  assert "### Validation-selected routers" in text
  assert "# not a heading: inside a code block" in text
  assert "Wall time" not in text and "standard/data" not in text
  assert "# rp_jax sweep" not in text
  # Run b: no summary.md, so its CSVs as tables (floats rounded, pipes escaped, NaN as a dash);
  # no lomo.csv or aiq.csv: skipped.
  part_b = text.split(f"`{b}`")[1].split(f"`{c}`")[0]
  assert "| standard | mf | 0.6617 | mf\\|prompt\\|\\|flat |" in part_b
  assert "### Cold start (`coldstart.csv`)" in part_b and "| newllm | – |" in part_b
  assert "lomo.csv" not in part_b and "aiq.csv" not in part_b
  # Run c: no config file of that name, so no overrides; nothing else to show.
  assert "--config=configs/not_a_config_file.py" in text and "overrides unknown" in text
  assert text.endswith("\n") and not text.endswith("\n\n")
  assert report.results_markdown([a, b, c]) == text  # deterministic


def test_results_markdown_refuses_a_folder_that_is_not_a_run(runs, tmp_path):
  with pytest.raises(ValueError, match="not a sweep run folder"):
    report.results_markdown([runs[0], tmp_path / "runs"])


def test_launcher_writes_the_same_bytes_and_fails_in_one_line(runs, tmp_path):
  a, b, _ = runs
  out = tmp_path / "docs" / "results.md"
  cmd = [sys.executable, "-m", "launch.report", f"--runs={a},{b}", f"--out={out}"]
  subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=300)
  first = out.read_bytes()
  # Regenerated (here in-process, in test_results_markdown_layout twice): byte-identical.
  assert first == report.results_markdown([a, b], out=str(out)).encode()
  bad = [sys.executable, "-m", "launch.report", f"--runs={a},{tmp_path}", f"--out={out}"]
  proc = subprocess.run(bad, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0
  assert (
    proc.stderr.strip() == f"launch.report: {tmp_path}: not a sweep run folder (no config.json)"
  )
  assert out.read_bytes() == first  # left as it was
