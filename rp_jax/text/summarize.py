"""Text-GNN summarisers: turn a node's neighbourhood facts into its next-hop text.

A summariser maps a list of ``NodeFacts`` (one per node updated at a hop) to new texts. Two:

- ``template`` (default): deterministic, no model. It composes the new text from exactly the facts
  an LLM prompt lists — family, strongest/weakest benchmark scores grouped by domain, sample tasks,
  sample queries — and puts the newest facts first, followed by the node's previous text, cut to
  ``max_words``. Neighbour snippets are the first words of the neighbours' *current* texts, i.e.
  their newest facts, so a hop-K text carries K-hop information.
- ``openai``: any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, Ollama,
  a hosted API) through ``rp_jax.text.llm.ChatClient``, which caches every response on disk.

``build_prompt`` gives the per-type prompts of SPEC §2 (the reference's wording, paraphrased).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from rp_jax.text.llm import ChatClient

SNIPPET_WORDS = 24


@dataclasses.dataclass(frozen=True)
class NodeFacts:
  """What a node sees at one hop.

  Attributes:
    node_type: "model", "task", "domain" or "family".
    name: node name.
    text: the node's current text.
    neighbours: neighbour type -> up to 5 (name, current text) pairs, most similar first.
    scores: scored neighbours as (neighbour name, score 0..100, domain names of the task), for
      model nodes (their benchmarks) and task nodes (the models evaluated on them).
  """

  node_type: str
  name: str
  text: str
  neighbours: dict[str, tuple[tuple[str, str], ...]]
  scores: tuple[tuple[str, float, tuple[str, ...]], ...] = ()


def snippet(text: str, words: int = SNIPPET_WORDS) -> str:
  """The first ``words`` words of a text (its newest facts for template texts)."""
  ws = text.split()
  return " ".join(ws[:words]) + (" ..." if len(ws) > words else "")


def _first_sentence(text: str) -> str:
  m = re.match(r"(.+?[.!?])(\s|$)", text.strip(), flags=re.S)
  return (m.group(1) if m else text.strip()).strip()


def _fmt_scores(rows) -> str:
  return ", ".join(f"{n} {s:.0f}" for n, s, _ in rows)


def _best_and_worst(scores, best: str, worst: str) -> list[str]:
  """The top 3 scores under ``best``, and the bottom 3 under ``worst`` when there are more."""
  ranked = sorted(scores, key=lambda x: (-x[1], x[0]))
  parts = [f"{best}: {_fmt_scores(ranked[:3])}."]
  if len(ranked) > 3:
    parts.append(f"{worst}: {_fmt_scores(ranked[-3:])}.")
  return parts


def _by_domain(scores) -> str:
  acc: dict[str, list[float]] = {}
  for _, s, doms in scores:
    for d in doms or ("other",):
      acc.setdefault(d, []).append(s)
  rows = sorted(((d, sum(v) / len(v)) for d, v in acc.items()), key=lambda x: (-x[1], x[0]))
  return ", ".join(f"{d} {s:.0f}" for d, s in rows)


def _names(facts: NodeFacts, kind: str) -> list[str]:
  return [n for n, _ in facts.neighbours.get(kind, ())]


def template_summary(facts: NodeFacts, max_words: int = 160) -> str:
  """Deterministic next-hop text of one node (see module docstring)."""
  f = facts
  parts: list[str] = []
  nb = f.neighbours
  if f.node_type == "model":
    fam = _names(f, "family")
    parts.append(f"{f.name}" + (f" ({', '.join(fam)} family)." if fam else "."))
    if f.scores:
      parts += _best_and_worst(f.scores, "Strongest benchmarks", "Weakest")
      if any(doms for *_, doms in f.scores):
        parts.append(f"Mean score by domain: {_by_domain(f.scores)}.")
  elif f.node_type == "task":
    doms = _names(f, "domain")
    parts.append(f"{f.name}" + (f" (domains: {', '.join(doms)})." if doms else "."))
    if f.scores:
      parts += _best_and_worst(f.scores, "Models that do well", "Models that do badly")
  elif f.node_type == "domain":
    tasks = _names(f, "task")
    parts.append(f"{f.name} domain" + (f", covering {', '.join(tasks)}." if tasks else "."))
  elif f.node_type == "family":
    models = _names(f, "model")
    parts.append(f"{f.name} family" + (f", with models {', '.join(models)}." if models else "."))
  else:
    raise ValueError(f"unknown node type {f.node_type!r}")
  for kind, label in (
    ("family", "Family"),
    ("model", "Related models"),
    ("task", "Related tasks"),
    ("domain", "Domains"),
    ("query", "Sample queries"),
  ):
    rows = nb.get(kind, ())
    if rows and kind != f.node_type:
      parts.append(f"{label}: " + " | ".join(snippet(t) for _, t in rows[:3]) + ".")
  parts.append(_first_sentence(f.text) if f.text else "")
  words = " ".join(p for p in parts if p).split()
  return " ".join(words[:max_words])


PROMPTS = {
  "model": (
    "Write a 3-5 sentence capability profile of the LLM below for a router that must decide "
    "which queries to send to it. Use the facts given: its family, its benchmark scores grouped "
    "by domain, and representative queries."
  ),
  "task": (
    "Write a 3-5 sentence description of the benchmark below: what it measures, which models do "
    "well or badly on it, and what its queries look like."
  ),
  "domain": "Write a 2-4 sentence description of the scope of this domain and its tasks.",
  "family": (
    "Write a 2-4 sentence description of this model family: its design and typical capabilities."
  ),
}
SYSTEM = "You write concise, factual descriptions used to route queries between LLMs."


def build_prompt(facts: NodeFacts) -> str:
  """The LLM prompt for one node (SPEC §2, per node type)."""
  f = facts
  if f.node_type not in PROMPTS:
    raise ValueError(f"unknown node type {f.node_type!r}; expected one of {sorted(PROMPTS)}")
  lines = [
    PROMPTS[f.node_type],
    "",
    f"{f.node_type.capitalize()}: {f.name}",
    f"Current description: {f.text}",
  ]
  if f.scores:
    if f.node_type == "model":
      lines.append("Benchmark scores (0-100) by domain:")
      groups: dict[str, list[str]] = {}
      for n, s, doms in sorted(f.scores, key=lambda x: (-x[1], x[0])):
        for d in doms or ("other",):
          groups.setdefault(d, []).append(f"{n} {s:.1f}")
      lines += [f"- {d}: {', '.join(v)}" for d, v in sorted(groups.items())]
    else:
      lines.append(
        "Model scores (0-100): "
        + ", ".join(f"{n} {s:.1f}" for n, s, _ in sorted(f.scores, key=lambda x: (-x[1], x[0])))
      )
  for kind, rows in sorted(f.neighbours.items()):
    if rows:
      lines.append(f"Related {kind} descriptions:")
      lines += [f"- {n}: {t}" for n, t in rows]
  lines += ["", "Answer with the description only."]
  return "\n".join(lines)


class TemplateSummarizer:
  """Deterministic summariser (no model)."""

  name = "template"

  def __init__(self, max_words: int = 160):
    self.max_words = max_words

  def __call__(self, facts: Sequence[NodeFacts]) -> list[str]:
    return [template_summary(f, self.max_words) for f in facts]


class OpenAISummarizer:
  """Summariser backed by an OpenAI-compatible chat-completions endpoint (responses cached)."""

  def __init__(self, client):
    self.client = client
    self.name = f"openai:{client.model}"

  def __call__(self, facts: Sequence[NodeFacts]) -> list[str]:
    outs = self.client.complete_many([build_prompt(f) for f in facts], system=SYSTEM)
    return [o.strip() for o in outs]


def make_summarizer(name: str = "template", **options):
  """``template`` or ``openai`` (options: base_url, model, api_key_env, timeout_s, max_retries,
  concurrency, cache_dir, max_tokens, temperature)."""
  if name == "template":
    return TemplateSummarizer(**options)
  if name == "openai":
    missing = [k for k in ("base_url", "model") if not options.get(k)]
    if missing:
      raise ValueError(f"the openai summariser needs {missing} (e.g. --config.llm.base_url=...)")
    return OpenAISummarizer(ChatClient(**options))
  raise ValueError(f"unknown summariser {name!r}; expected 'template' or 'openai'")
