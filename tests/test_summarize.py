"""text_gnn with the openai summariser against a real HTTP server on 127.0.0.1, and the prompts."""

import numpy as np
import pytest
from llm_server import FakeLLMServer, reply_for

from rp_jax import graphs
from rp_jax.data import make_history
from rp_jax.data.synthetic import TINY_SIZES
from rp_jax.profiles import text_gnn
from rp_jax.text import make_encoder
from rp_jax.text.llm import LLMError
from rp_jax.text.summarize import NodeFacts, build_prompt, make_summarizer, template_summary

TINY = {**TINY_SIZES, "num_routing_tasks": 2, "num_graph_only_tasks": 1, "train_per_task": 4}


@pytest.fixture(scope="module")
def tiny_graph():
  h = make_history(seed=0, **TINY)
  g, info = graphs.build_graph(h)
  enc = make_encoder("hashing", dim=64)
  return g, info, enc.encode


def _run(server, cache_dir, tiny_graph, hops=2, **kw):
  g, info, embed = tiny_graph
  summ = make_summarizer(
    "openai",
    base_url=server.base_url,
    model="fake-model",
    cache_dir=str(cache_dir),
    backoff_s=0.01,
    **kw,
  )
  texts = text_gnn.text_gnn_texts(g, info, graphs.relation_mask("TQD"), embed, summ, max_hops=hops)
  return summ, texts


def test_openai_summariser_drives_the_text_gnn_and_caches(tiny_graph, tmp_path):
  g, info, _ = tiny_graph
  nt = np.asarray(g.node_type_N)
  updated = np.flatnonzero(nt != graphs.QUERY)
  with FakeLLMServer() as server:
    summ, texts = _run(server, tmp_path, tiny_graph)
    assert server.num_requests == 2 * len(updated)  # every updated node, every hop, once
    # Every updated text is the server's reply to that node's prompt; query texts never change.
    prompts = server.prompts
    for j in updated:
      assert texts[1][j] in {reply_for(p) for p in prompts}
    q = np.flatnonzero(nt == graphs.QUERY)
    assert [texts[2][i] for i in q] == [info.node_texts[i] for i in q]
    # Hop-2 prompts list neighbours' hop-1 texts (the server's replies).
    assert any("summary: " in p for p in prompts[len(updated) :])
    # A second run (new client, same cache) sends nothing and gives the same texts.
    _, again = _run(server, tmp_path, tiny_graph)
    assert server.num_requests == 2 * len(updated)
    assert again == texts
  assert summ.name == "openai:fake-model"


def test_openai_summariser_retries_then_fails_clearly(tiny_graph, tmp_path):
  with FakeLLMServer() as server:
    server.fail_next(2, status=503)
    _, texts = _run(server, tmp_path / "a", tiny_graph, hops=1, max_retries=3)
    assert len(texts) == 2
    server.garbage_next(10, "not_json")
    with pytest.raises(LLMError, match="malformed"):
      _run(server, tmp_path / "b", tiny_graph, hops=1, max_retries=1)
    server.reset()
    server.stall_next(5, seconds=2.0)
    with pytest.raises(LLMError, match="timed out"):
      _run(server, tmp_path / "c", tiny_graph, hops=1, max_retries=0, timeout_s=0.2)


def test_openai_summariser_needs_url_and_model():
  with pytest.raises(ValueError, match="base_url"):
    make_summarizer("openai", model="m")
  with pytest.raises(ValueError, match="unknown summariser"):
    make_summarizer("gpt")


def test_prompts_follow_the_node_type():
  facts = NodeFacts(
    node_type="model",
    name="m1",
    text="A model.",
    neighbours={"family": (("fam", "A family."),), "query": (("q1", "What is 2+2?"),)},
    scores=(("gsm8k", 80.0, ("math",)), ("mbpp", 20.0, ("coding",))),
  )
  p = build_prompt(facts)
  assert "capability profile" in p and "- math: gsm8k 80.0" in p and "What is 2+2?" in p
  t = template_summary(facts)
  assert t.startswith("m1 (fam family).") and "gsm8k 80" in t and "What is 2+2?" in t
  with pytest.raises(ValueError, match="node type"):
    build_prompt(NodeFacts("nope", "x", "y", {}))
