"""Throughput of rp_jax's text encoders on the RouteProfile texts, and ours / sentence-transformers.

Texts: the unique ``query`` texts of ``route_data/default_query_{train,test}.jsonl`` and
``route_data/routing_test_data.json`` (2729 in the public release) plus the node texts (model,
family, task and domain descriptions; 79 more), i.e. everything a sweep encodes. For each encoder
it prints texts/s of the first call on a fresh encoder (``cold``: jit compiles / feature hashing
included; building the encoder, i.e. loading weights, is timed apart) and of a second call on the
same texts (``warm``), both through ``encoder.encode`` (no cache), then the time to write those
vectors into an empty embedding cache and to read them back (``encode_cached``).

If sentence-transformers is importable (or ``--reference_python`` names an interpreter that has
it, e.g. the throwaway torch venv), the same texts are encoded by the PyTorch reference in the
same run and the script prints the throughput ratio ours / theirs and the lowest cosine between
the two embeddings. rp_jax itself never imports torch; the reference runs in a child process
when ``--reference_python`` is given.

Command (from the repository root; several minutes on the 2-core machine, most of it MiniLM and
the reference)::

  /work/venv/bin/python benchmarks/encoders.py --reference_python /work/torchvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]


def default_data_dir() -> str:
  return os.environ.get("RP_JAX_DATA") or str(REPO.parent / "shared" / "data" / "routeprofile")


def load_texts(data_dir: pathlib.Path) -> tuple[list[str], list[str]]:
  """(unique query texts, unique node texts), each in first-seen order."""
  rd, pd = data_dir / "route_data", data_dir / "profile_data"
  queries: dict[str, None] = {}
  for name in ("default_query_train.jsonl", "default_query_test.jsonl"):
    with open(rd / name, encoding="utf-8") as f:
      for line in f:
        if line.strip():
          queries.setdefault(json.loads(line)["query"])
  with open(rd / "routing_test_data.json", encoding="utf-8") as f:
    for row in json.load(f):
      queries.setdefault(row["query"])
  nodes: dict[str, None] = {}
  for name in ("model_feature_standard.json", "model_feature_newllm.json"):
    for m in json.loads((pd / name).read_text("utf-8")).values():
      nodes.setdefault(m["feature"])
  for name in ("model_family_feature.json", "task_feature.json", "domain_feature.json"):
    for t in json.loads((pd / name).read_text("utf-8")).values():
      nodes.setdefault(t)
  return list(queries), [t for t in nodes if t not in queries]


def timed(fn, *args, **kwargs):
  """(result, wall seconds, CPU seconds of this process, all threads)."""
  t, c = time.perf_counter(), time.process_time()
  out = fn(*args, **kwargs)
  return out, time.perf_counter() - t, time.process_time() - c


def reference_worker(texts_path: str, out_path: str, model_dir: str, batch_size: int) -> None:
  """Encodes with sentence-transformers (PyTorch) and writes embeddings + timings."""
  os.environ.setdefault("HF_HUB_OFFLINE", "1")
  import torch
  from sentence_transformers import SentenceTransformer

  texts = json.loads(pathlib.Path(texts_path).read_text("utf-8"))
  model, load_s, _ = timed(SentenceTransformer, model_dir, device="cpu")

  def enc():
    return model.encode(texts, batch_size=batch_size, convert_to_numpy=True)

  with torch.inference_mode():
    _, cold_s, cold_cpu = timed(enc)
    emb, warm_s, warm_cpu = timed(enc)
  np.savez(
    out_path,
    embeddings=np.asarray(emb, np.float32),
    load_s=load_s,
    cold_s=cold_s,
    warm_s=warm_s,
    cold_cpu=cold_cpu,
    warm_cpu=warm_cpu,
    threads=torch.get_num_threads(),
  )


def run_reference(args, texts: list[str], model_dir: str) -> dict | None:
  """Runs ``reference_worker`` here or in ``--reference_python``; None if unavailable."""
  with tempfile.TemporaryDirectory() as tmp:
    tp, op = os.path.join(tmp, "texts.json"), os.path.join(tmp, "ref.npz")
    pathlib.Path(tp).write_text(json.dumps(texts), "utf-8")
    worker = [tp, op, model_dir, str(args.reference_batch_size)]
    if args.reference_python:
      cmd = [args.reference_python, __file__, "--_reference_worker", *worker]
      subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    else:
      try:
        import sentence_transformers  # noqa: F401
      except ImportError:
        return None
      reference_worker(*worker[:3], int(worker[3]))
    with np.load(op, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--data_dir", default=default_data_dir())
  ap.add_argument("--encoders", default="hashing,minilm", help="comma-separated")
  ap.add_argument("--reference_python", default=None, help="python with sentence-transformers")
  ap.add_argument("--reference_batch_size", type=int, default=32)
  ap.add_argument("--no_reference", action="store_true")
  ap.add_argument("--batch_tokens", type=int, default=None, help="MiniLM batch size in tokens")
  ap.add_argument("--limit", type=int, default=0, help="use only the first N query texts")
  ap.add_argument("--_reference_worker", nargs=4, default=None, help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args._reference_worker:
    tp, op, md, bs = args._reference_worker
    reference_worker(tp, op, md, int(bs))
    return

  sys.path.insert(0, str(REPO))
  import jax

  from rp_jax.text import encode_cached, make_encoder

  queries, nodes = load_texts(pathlib.Path(args.data_dir))
  if args.limit:
    queries = queries[: args.limit]
  texts = queries + nodes
  n = len(texts)
  print(
    f"{n} unique texts ({len(queries)} queries + {len(nodes)} node texts); jax {jax.__version__} "
    f"on {jax.devices()[0].platform} ({os.cpu_count()} cpus), load average "
    f"{os.getloadavg()[0]:.1f}"
  )
  for name in args.encoders.split(","):
    opts = {}
    if name == "minilm":
      # Truncate as sentence-transformers does, so both sides do the same work on long texts.
      opts["long_texts"] = "truncate"
      if args.batch_tokens:
        opts["batch_tokens"] = args.batch_tokens
    enc, build_s, _ = timed(make_encoder, name, **opts)
    _, cold_s, cold_cpu = timed(enc.encode, texts)
    ours, warm_s, warm_cpu = timed(enc.encode, texts)
    print(
      f"{enc.name:>14}: build {build_s:6.2f} s | cold {n / cold_s:8.1f} texts/s ({cold_s:.2f} s)"
      f" | warm {n / warm_s:8.1f} texts/s ({warm_s:.2f} s, {n / warm_cpu:.1f} texts/CPU-s)"
    )
    print(f"{'':>14}  all {n} texts from scratch (build + cold): {build_s + cold_s:.1f} s")
    if name == "minilm":
      print(f"{'':>14}  jit programs compiled: {enc.num_compiles} (buckets {enc.buckets})")
    with tempfile.TemporaryDirectory() as cache:
      # The cache sees the vectors just computed, so its timings are reading and writing only.
      stub = _Precomputed(enc.name, texts, ours)
      _, miss_s, _ = timed(encode_cached, stub, texts, cache)
      hit, hit_s, _ = timed(encode_cached, stub, texts, cache)
      assert stub.num_encoded == n and np.array_equal(hit, ours)
      print(
        f"{'':>14}  cache: write {miss_s * 1e3:.0f} ms, load + lookup {hit_s * 1e3:.0f} ms "
        f"for {n} texts x {enc.dim}"
      )
    if name == "minilm" and not args.no_reference:
      ref = run_reference(args, texts, str(enc.model_dir))
      if ref is None:
        print(
          f"{'':>14}  sentence-transformers not importable: no reference ratio "
          "(pass --reference_python)"
        )
        continue
      # Ours once more right after the reference: other jobs on a shared machine change the
      # wall-clock speed over minutes, so the ratio uses the mean of the two warm runs, and
      # texts per CPU-second (all threads of the process) is printed as well.
      _, warm2_s, warm2_cpu = timed(enc.encode, texts)
      ours_s, ours_cpu = (warm_s + warm2_s) / 2, (warm_cpu + warm2_cpu) / 2
      theirs = ref["embeddings"]
      cos = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(ours, axis=1)
      r_cold, r_warm = float(ref["cold_s"]), float(ref["warm_s"])
      print(
        f"{'sentence-tr.':>14}: load {float(ref['load_s']):6.2f} s | cold {n / r_cold:8.1f} "
        f"texts/s ({r_cold:.2f} s) | warm {n / r_warm:8.1f} texts/s ({r_warm:.2f} s, "
        f"{n / float(ref['warm_cpu']):.1f} texts/CPU-s) (torch threads {int(ref['threads'])}, "
        f"batch {args.reference_batch_size})"
      )
      print(
        f"{'':>14}  ours again: warm {n / warm2_s:.1f} texts/s ({warm2_s:.2f} s, "
        f"{n / warm2_cpu:.1f} texts/CPU-s)"
      )
      print(
        f"{'':>14}  ours / theirs throughput: cold {r_cold / cold_s:.2f}x, warm "
        f"{r_warm / ours_s:.2f}x wall, {float(ref['warm_cpu']) / ours_cpu:.2f}x per CPU-s; "
        f"cosine min {cos.min():.6f} mean {cos.mean():.6f}"
      )


class _Precomputed:
  """An 'encoder' returning vectors computed earlier (times the cache, not the encoder)."""

  def __init__(self, name: str, texts: list[str], vectors_NxD: np.ndarray):
    self.name, self.dim, self.num_encoded = name, vectors_NxD.shape[1], 0
    self._row = {t: i for i, t in enumerate(texts)}
    self._v = vectors_NxD

  def encode(self, texts: list[str]) -> np.ndarray:
    self.num_encoded += len(texts)
    return self._v[[self._row[t] for t in texts]]


if __name__ == "__main__":
  main()
