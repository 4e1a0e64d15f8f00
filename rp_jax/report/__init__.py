"""The report: formats what the sweep computed, never computes anything new.

- ``summary``: ``summary.md`` in the paper's layout (ours beside the paper's numbers), the
  validation-selected routers, cold start, datasets, cost–quality and the claims' evidence;
- ``figures``: hop curves, cold start, selections, cost–quality fronts, reliability diagrams,
  cold-start curves;
- ``docs``: ``docs/results.md`` generated from run folders (``python -m launch.report``).

Every router cell is reported as ``mean ± h`` where mean is the average performance over seeds
and h the half-width of a 95% paired bootstrap interval over test rows of the seed-averaged
per-row performance (all cells of a setting share the same resamples, so differences are paired).
"""

from rp_jax.report.docs import reproduce_command, results_markdown
from rp_jax.report.figures import (
  write_all_figures,
  write_cost_figures,
  write_figures,
  write_reliability_figures,
)
from rp_jax.report.summary import PAPER_TABLE1, PAPER_TABLE2, SummaryInputs, write_summary

__all__ = [
  "PAPER_TABLE1",
  "PAPER_TABLE2",
  "SummaryInputs",
  "reproduce_command",
  "results_markdown",
  "write_all_figures",
  "write_cost_figures",
  "write_figures",
  "write_reliability_figures",
  "write_summary",
]
