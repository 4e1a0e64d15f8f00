"""Profile functions: index, flat (documents + embeddings), text_gnn with the template summariser."""

import json
import re

import jax
import numpy as np
import pytest

from rp_jax import graphs as gr
from rp_jax.data import make_history
from rp_jax.data.synthetic import TINY_SIZES
from rp_jax.profiles import flat, index, text_gnn
from rp_jax.text.summarize import NodeFacts, TemplateSummarizer
from rp_jax.types import TRAIN, History

NAN = np.nan
TINY = TINY_SIZES


# -- tiny deterministic embedders -----------------------------------------------------------------


def bag_of_chars(texts):
  """[n, 27] letter counts (a-z) plus one bucket for everything else; not normalised."""
  out = np.zeros((len(texts), 27), np.float32)
  for i, t in enumerate(texts):
    for ch in t.lower():
      out[i, ord(ch) - 97 if "a" <= ch <= "z" else 26] += 1
  return out


VOCAB = (
  "apple", "banana", "cherry", "grape", "kiwi", "lime", "melon", "yak", "zebra", "fruit",
  "family", "task", "model", "alpha", "bravo",
)  # fmt: skip


def bag_of_words(texts, normalise=True):
  """[n, len(VOCAB)] word counts over a fixed vocabulary (other words ignored)."""
  out = np.zeros((len(texts), len(VOCAB)), np.float32)
  for i, t in enumerate(texts):
    for w in re.findall(r"[a-z]+", t.lower()):
      if w in VOCAB:
        out[i, VOCAB.index(w)] += 1
  if normalise:
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
  return out


def hand_history(models, tasks, scores, train_queries=(), num_families=1, family_of=None):
  """A History with only training queries (all graph nodes) and one domain holding every task.

  Args:
    models: [(name, text)]; tasks: [(name, text)]; scores: {(model idx, task idx): score};
    train_queries: [(task idx, text)]; family_of: family index of each model (default 0).
  """
  M, T, Q = len(models), len(tasks), len(train_queries)
  sc = np.full((M, T), NAN)
  for (m, t), s in scores.items():
    sc[m, t] = s
  return History(
    model_names=[n for n, _ in models],
    model_texts=[t for _, t in models],
    model_family=family_of if family_of is not None else [0] * M,
    prices_Mx2=np.ones((M, 2)),
    family_names=[f"fam{f}" for f in range(num_families)],
    family_texts=[f"family number {f}" for f in range(num_families)],
    task_names=[n for n, _ in tasks],
    task_texts=[t for _, t in tasks],
    task_metric=[""] * T,
    task_binary=[True] * T,
    domain_names=["dom"],
    domain_texts=["the only domain"],
    task_domain_TxC=np.ones((T, 1), bool),
    scores_MxT=sc,
    query_texts=[t for _, t in train_queries],
    query_task=[t for t, _ in train_queries],
    query_split=[TRAIN] * Q,
    query_in_graph=[True] * Q,
    outcomes_QxM=np.full((Q, M), NAN),
    tokens_QxMx2=np.full((Q, M, 2), NAN),
    cost_QxM=np.full((Q, M), NAN),
    pairs_Px3=np.zeros((0, 3)),
    candidates=[0],
    held_out=[],
  )


class Recorder:
  """A summariser that records the NodeFacts of every hop and answers with the template."""

  def __init__(self):
    self.hops: list[dict[str, NodeFacts]] = []
    self.template = TemplateSummarizer()

  def __call__(self, facts):
    self.hops.append({f.name: f for f in facts})
    return self.template(facts)


# -- index ----------------------------------------------------------------------------------------


def test_index_profiles():
  key = jax.random.key(0)
  p = np.asarray(index.index_profiles(key, 6, 16))
  assert p.shape == (6, 16) and p.dtype == np.float32
  np.testing.assert_array_equal(p, index.index_profiles(jax.random.key(0), 6, 16))
  assert not np.allclose(p, index.index_profiles(jax.random.key(1), 6, 16))
  norms = np.linalg.norm(p, axis=1)
  assert not np.allclose(norms, 1.0)  # not normalised
  assert len(np.unique(p.round(6), axis=0)) == 6  # one distinct vector per model
  assert abs(p.mean()) < 0.5 and 0.5 < p.std() < 1.5  # N(0, I)


# -- flat -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_info():
  h = make_history(seed=0, **TINY)
  _, info = gr.build_graph(h)
  assert not any("\n" in t for t in info.node_texts)  # one line per node in a document
  return info


def _doc_lines(doc):
  lines = doc.split("\n")
  by_type = {}
  for line in lines[1:]:
    tag, _, text = line.partition("] ")
    by_type.setdefault(tag.lstrip("[").lower(), []).append(text)
  return lines[0], by_type


@pytest.mark.parametrize("form", gr.FORMS)
def test_flat_documents(tiny_info, form):
  info = tiny_info
  docs = flat.flat_documents(info, form, seed=0)
  ms = info.model_slice
  assert len(docs) == ms.stop - ms.start
  want_types = {"family", *gr.FORM_NODE_TYPES[form]}
  for m, doc in enumerate(docs):
    first, by_type = _doc_lines(doc)
    assert first == "[MODEL] " + info.node_texts[ms.start + m]
    assert set(by_type) == want_types, form
    for t, texts in by_type.items():
      sl = info.type_slice(t)
      pool = info.node_texts[sl]
      assert len(texts) == min(5, sl.stop - sl.start)
      assert all(x in pool for x in texts)
      assert len(set(texts)) == len(texts)  # drawn without replacement
  assert flat.flat_documents(info, form, seed=0) == docs
  with pytest.raises(ValueError, match="unknown graph form 'X'"):
    flat.flat_documents(info, "X")


def test_flat_documents_depend_on_seed(tiny_info):
  # 12 query nodes, 5 drawn: other seeds draw other queries.
  assert tiny_info.type_counts[gr.QUERY] > 5
  a = flat.flat_documents(tiny_info, "TQD", seed=0)
  b = flat.flat_documents(tiny_info, "TQD", seed=1)
  assert a != b
  assert [d.split("\n")[0] for d in a] == [d.split("\n")[0] for d in b]
  # Not the neighbours: models draw independently of each other.
  q = [_doc_lines(d)[1]["query"] for d in a]
  assert len({tuple(x) for x in q}) > 1


def test_flat_profiles_normalised(tiny_info):
  p = flat.flat_profiles(tiny_info, "TQ", bag_of_chars, seed=0)
  docs = flat.flat_documents(tiny_info, "TQ", seed=0)
  e = bag_of_chars(docs)
  assert p.shape == (len(docs), 27) and p.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(p, e / np.linalg.norm(e, axis=1, keepdims=True), rtol=1e-6)
  np.testing.assert_array_equal(p, flat.flat_profiles(tiny_info, "TQ", bag_of_chars, seed=0))


# -- text_gnn -------------------------------------------------------------------------------------


def _run(h, form, max_hops, embed=bag_of_words):
  g, info = gr.build_graph(h)
  rec = Recorder()
  texts = text_gnn.text_gnn_texts(g, info, gr.relation_mask(form), embed, rec, max_hops=max_hops)
  return g, info, rec, texts


def chain_history():
  """alpha-model and bravo-model meet only through task t-shared (different families)."""
  return hand_history(
    models=[("alpha-model", "a small model"), ("bravo-model", "a large model")],
    tasks=[("t-shared", "a shared task"), ("t-alpha", "a task of its own")],
    scores={(0, 0): 50.0, (1, 0): 80.0, (0, 1): 40.0},
    train_queries=[(0, "what is two plus two"), (1, "name a colour")],
    num_families=2,
    family_of=[0, 1],
  )


def test_text_gnn_hop0_and_queries_fixed():
  h = chain_history()
  g, info, rec, texts = _run(h, "TQD", 3)
  assert len(texts) == 4 and len(rec.hops) == 3
  assert texts[0] == list(info.node_texts)
  qs = info.type_slice("query")
  for hop in texts:
    assert hop[qs] == list(info.node_texts[qs])
  # Every other node type is rewritten at every hop.
  for t in text_gnn.UPDATED_TYPES:
    sl = info.type_slice(t)
    assert all(a != b for a, b in zip(texts[1][sl], texts[0][sl], strict=True)), t
  # Only the updated types are summarised.
  assert set(rec.hops[0]) == {
    n for n, ty in zip(info.node_names, g.node_type_N, strict=True) if ty != gr.QUERY
  }


def test_text_gnn_k_hop_information():
  h = chain_history()
  _, info, _, texts = _run(h, "T", 2)
  a = info.node_names.index("alpha-model")
  t = info.node_names.index("t-shared")
  assert "bravo-model" not in texts[0][a]
  assert "bravo-model" in texts[1][t]  # the task hears of bravo at hop 1 ...
  assert "bravo-model" not in texts[1][a]  # ... so alpha cannot yet ...
  assert "bravo-model" in texts[2][a]  # ... but does at hop 2 (alpha <- task <- bravo).


def fruit_history():
  """Task tx scored by 9 models (two share a text) and asked 7 graph queries."""
  model_texts = [
    "zebra yak",
    "apple banana cherry",
    "apple banana",
    "kiwi lime",
    "apple",
    "banana cherry grape",
    "cherry",
    "melon",
    "apple banana cherry",  # same text as m1: deduplicated
  ]
  query_texts = ["zebra", "yak", "kiwi", "lime", "melon", "apple banana cherry", "apple banana"]
  return hand_history(
    models=[(f"m{i}", t) for i, t in enumerate(model_texts)],
    tasks=[("tx", "apple banana cherry")],
    scores={(i, 0): float(10 * i) for i in range(9)},
    train_queries=[(0, q) for q in query_texts],
  )


def test_text_gnn_top5_neighbours_by_cosine():
  h = fruit_history()
  _, _, rec, _ = _run(h, "T", 1)
  f = rec.hops[0]["tx"]
  # cos with "apple banana cherry": m1 1, m2 .82, m5 .67, m4 = m6 .58 (tie -> node order), rest 0.
  assert [n for n, _ in f.neighbours["model"]] == ["m1", "m2", "m5", "m4", "m6"]
  assert f.neighbours["model"][0][1] == "apple banana cherry"
  # Scores list every scored model (not capped), raw, with the task's domains (none in form T).
  assert sorted(f.scores) == sorted((f"m{i}", 10.0 * i, ()) for i in range(9))
  assert f.node_type == "task" and f.text == "apple banana cherry"


def test_text_gnn_query_neighbours_by_cosine_not_first_five():
  h = fruit_history()
  _, info, rec, _ = _run(h, "TQ", 1)
  f = rec.hops[0]["tx"]
  q = lambda i: f"query:tx:{i}"
  # The reference took the first five queries (q0..q4); the two similar ones come first here.
  assert [n for n, _ in f.neighbours["query"]] == [q(5), q(6), q(0), q(1), q(2)]
  assert len(f.neighbours["model"]) == 5
  # Form Q links queries to models directly: a model's facts list (up to 5) queries too.
  _, _, rec_q, _ = _run(h, "Q", 1)
  fm = rec_q.hops[0]["m2"]  # "apple banana"
  assert [n for n, _ in fm.neighbours["query"]][:2] == [q(6), q(5)]
  assert len(fm.neighbours["query"]) == 5
  assert "task" not in fm.neighbours


def test_text_gnn_facts_per_type():
  h = chain_history()
  _, _, rec, _ = _run(h, "TD", 1)
  fa = rec.hops[0]["alpha-model"]
  assert fa.node_type == "model"
  assert [n for n, _ in fa.neighbours["family"]] == ["fam0"]
  assert sorted(n for n, _ in fa.neighbours["task"]) == ["t-alpha", "t-shared"]
  # Model scores carry the task's domains (task->domain edges are on in form TD).
  assert sorted(fa.scores) == [("t-alpha", 40.0, ("dom",)), ("t-shared", 50.0, ("dom",))]
  assert sorted(n for n, _ in rec.hops[0]["dom"].neighbours["task"]) == ["t-alpha", "t-shared"]
  assert [n for n, _ in rec.hops[0]["fam1"].neighbours["model"]] == ["bravo-model"]


def test_text_gnn_neighbours_cosine_with_unnormalised_embed():
  # m0 has cosine 1 with the task; m1..m5 have dot product 3 but cosine < 0.45.
  texts = ["apple"] + [f"apple apple apple {'zebra ' * (6 + i)}" for i in range(5)]
  h = hand_history(
    models=[(f"m{i}", t) for i, t in enumerate(texts)],
    tasks=[("tx", "apple")],
    scores={(i, 0): 50.0 for i in range(6)},
  )
  _, _, rec, _ = _run(h, "T", 1, embed=lambda ts: bag_of_words(ts, normalise=False))
  assert rec.hops[0]["tx"].neighbours["model"][0][0] == "m0"


def test_text_gnn_profiles_and_record():
  h = fruit_history()
  _, info, _, texts = _run(h, "TQD", 2)
  p = text_gnn.text_gnn_profiles(texts, info, bag_of_chars)
  M = h.num_models
  assert p.shape == (3, M, 27) and p.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(p, axis=-1), 1.0, rtol=1e-6)
  e0 = bag_of_chars(list(h.model_texts))
  np.testing.assert_allclose(p[0], e0 / np.linalg.norm(e0, axis=1, keepdims=True), rtol=1e-6)
  assert not np.allclose(p[1], p[0])
  rec = text_gnn.hop_texts_record(texts, info)
  back = json.loads(json.dumps(rec))
  assert back == rec and list(rec) == ["0", "1", "2"]
  updated = [
    n
    for n, ty in zip(info.node_names, np.repeat(range(5), info.type_counts), strict=True)
    if ty != gr.QUERY
  ]
  assert list(rec["0"]) == updated  # no query nodes
  assert rec["0"]["m3"] == "kiwi lime"
  assert rec["2"]["m3"] == texts[2][info.node_names.index("m3")]


def test_text_gnn_deterministic_and_zero_hops():
  h = chain_history()
  a = _run(h, "TQD", 2)[3]
  b = _run(h, "TQD", 2)[3]
  assert a == b
  _, info, rec, t0 = _run(h, "TQD", 0)
  assert t0 == [list(info.node_texts)] and rec.hops == []
  assert text_gnn.text_gnn_profiles(t0, info, bag_of_chars).shape == (1, h.num_models, 27)
