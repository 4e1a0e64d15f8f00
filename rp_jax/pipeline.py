"""Per-setting stages of a sweep: encode -> profiles -> routers -> metrics.

``rp_jax.sweep`` owns the run (config, outputs, resume); this module does the work for one
setting. Host-side text work (encoding, summaries) happens here before the jit boundary; the
profile and router grids are single compiled calls.
"""

from __future__ import annotations

import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from rp_jax import graphs, io, metrics
from rp_jax.config import ProfileSpec
from rp_jax.profiles.build import ProfileSet, build_profiles
from rp_jax.types import History


def make_embed(config):
  """(encoder, embed) where embed(texts) -> [n, D] float32 goes through the embedding cache."""
  from rp_jax.text import encode_cached, make_encoder

  opts = {}
  if config.encoder == "hashing":
    opts["dim"] = int(config.encoder_dim)
  elif config.encoder == "minilm":
    opts["long_texts"] = config.minilm_long_texts
    if config.model_dir:
      opts["model_dir"] = config.model_dir
  enc = make_encoder(config.encoder, **opts)
  cache = config.cache_dir or None
  return enc, lambda texts: encode_cached(enc, list(texts), cache_dir=cache)


def make_summarize(config, cache_dir=None):
  from rp_jax.text.summarize import make_summarizer

  if config.summarizer == "template":
    return make_summarizer("template")
  llm = config.llm
  return make_summarizer(
    "openai",
    base_url=llm.base_url,
    model=llm.model,
    api_key_env=llm.api_key_env or None,
    timeout_s=float(llm.timeout_s),
    max_retries=int(llm.max_retries),
    concurrency=int(llm.concurrency),
    max_tokens=int(llm.max_tokens),
    cache_dir=cache_dir or (config.cache_dir or None),
  )


def trainable_config(config):
  from rp_jax.profiles import trainable

  t = config.trainable
  return trainable.TrainableConfig(
    steps=int(t.steps),
    hidden=int(t.hidden),
    heads=int(t.heads),
    lr=float(t.lr),
    weight_decay=float(t.weight_decay),
    feat_mask_rate=float(t.mask_rate),
    score_mask_rate=float(t.mask_rate),
    max_depth=int(config.max_hops),
  )


def setting_profiles(config, history: History, specs: list[ProfileSpec], embed, log) -> tuple:
  """(ProfileSet, graph, info) for one setting."""
  graph, info = graphs.build_graph(history)
  x_NxD = np.asarray(embed(info.node_texts), np.float32)
  needs_text = any(s.profile == "text_gnn" for s in specs)
  needs_tr = any(s.profile == "trainable" for s in specs)
  pset = build_profiles(
    specs,
    graph,
    info,
    x_NxD,
    embed,
    seeds=list(range(int(config.seeds))),
    summarize=make_summarize(config) if needs_text else None,
    max_hops=int(config.max_hops),
    index_seed=int(config.index_seed),
    flat_seed=int(config.flat_seed),
    emb_l2=bool(config.emb_gnn.l2_normalize),
    trainable_config=trainable_config(config) if needs_tr else None,
    log=log,
  )
  return pset, graph, info


def write_profiles(folder: pathlib.Path, history: History, pset: ProfileSet, config) -> None:
  """``<folder>/<id>.npz`` per profile (per seed for trainable ones) and ``index.csv``."""
  entries = []
  for s, spec in enumerate(pset.specs):
    meta = {
      "profile": spec.profile,
      "graph": spec.graph,
      "hops": spec.hops,
      "norm": spec.norm,
      "learn": spec.learn,
      "self_loop": int(spec.self_loop),
      "encoder": config.encoder,
      "summariser": config.summarizer if spec.profile == "text_gnn" else "",
    }
    if pset.per_seed[s]:
      for r in range(pset.profile_SxRxMxD.shape[1]):
        entries.append((f"{spec.id}-s{r}", pset.profile_SxRxMxD[s, r], {**meta, "seed": r}))
    else:
      entries.append((spec.id, pset.profile_SxRxMxD[s, 0], {**meta, "seed": ""}))
  cols = [
    "id",
    "profile",
    "graph",
    "hops",
    "norm",
    "learn",
    "self_loop",
    "seed",
    "encoder",
    "summariser",
  ]
  io.write_profile_dir(folder, history.model_names, entries, cols)
  for form, rec in pset.texts.items():
    io.write_json(folder / f"text_gnn_texts_{form}.json", rec)


def run_setting(
  config, history, test, specs, setting, workdir, stages, timings, log, progress=None
):
  """Profiles, router grids and metric rows of one setting (stages cached in ``stages``)."""
  from rp_jax.routers import api as router_api

  seeds = list(range(int(config.seeds)))
  _, embed = make_embed(config)
  t0 = time.perf_counter()
  st = stages.load(f"{setting}-profiles")
  if st is None:
    log(f"[{setting}] profiles: {len(specs)} configurations x {len(seeds)} seeds")
    pset, _, _ = setting_profiles(config, history, specs, embed, log)
    stages.save(
      f"{setting}-profiles",
      {"profile_SxRxMxD": pset.profile_SxRxMxD, "per_seed": pset.per_seed},
    )
  else:
    pset = ProfileSet(specs, st["profile_SxRxMxD"], st["per_seed"], {}, {}, {})
  write_profiles(pathlib.Path(workdir) / "profiles" / setting, history, pset, config)
  timings[f"{setting}/profiles"] = time.perf_counter() - t0

  t0 = time.perf_counter()
  query_emb_QxD = np.asarray(embed(history.query_texts), np.float32)
  timings[f"{setting}/encode_queries"] = time.perf_counter() - t0
  cand = history.candidates
  prof_SxRxAxD = pset.profile_SxRxMxD[:, :, cand]
  rows, cell_rows = [], {}
  for router in config.routers:
    t0 = time.perf_counter()
    name = f"{setting}-router-{router}"
    st = stages.load(name)
    if st is None:
      log(
        f"[{setting}] router {router}: training {len(specs)} profiles x {len(seeds)} seeds in one call"
      )
      choices = router_api.sweep_router(
        router, config, history, query_emb_QxD, prof_SxRxAxD, seeds, log=log
      )
      stages.save(name, {"choices_SxRxQ": np.asarray(choices)})
    else:
      choices = st["choices_SxRxQ"]
    timings[f"{setting}/{router}"] = time.perf_counter() - t0
    r_rows, r_cells = evaluate_choices(setting, router, specs, choices, test, seeds)
    rows += r_rows
    cell_rows.update(r_cells)
    done = progress.add(len(specs) * len(seeds)) if progress is not None else ""
    log(
      f"[{setting}] router {router}: done in {timings[f'{setting}/{router}']:.1f} s; "
      f"best cell {max(r['avg_performance'] for r in r_rows):.4f}; {done}"
    )
  return rows, cell_rows


def evaluate_choices(setting, router, specs, choices_SxRxQ, test: metrics.TestSet, seeds):
  """Result rows (one per spec x seed) and per-row performance [R, Q] per cell."""
  from rp_jax.report import cell_key
  from rp_jax.sweep import _metric_row

  S, R, Q = choices_SxRxQ.shape
  sel = metrics.one_hot(jnp.asarray(choices_SxRxQ.reshape(S * R, Q)), test.num_candidates)
  ms = jax.tree.map(np.asarray, jax.jit(jax.vmap(metrics.evaluate, (0, None)))(sel, test))
  perf_rows = np.asarray(metrics.row_performance(sel, jnp.asarray(test.perf_QxA))).reshape(S, R, Q)
  rows, cells = [], {}
  for s, spec in enumerate(specs):
    for r in range(R):
      m = {k: v[s * R + r] for k, v in ms.items()}
      rows.append(
        _metric_row(
          setting,
          m,
          test.task_names,
          test.candidate_names,
          profile=spec.profile,
          graph=spec.graph,
          hops=spec.hops,
          learn=spec.learn,
          norm=spec.norm + ("+self" if spec.self_loop else ""),
          router=router,
          seed=seeds[r],
        )
      )
    cells[
      cell_key(
        spec.profile, spec.graph, spec.hops, spec.norm + ("+self" if spec.self_loop else ""), router
      )
    ] = perf_rows[s]
  return rows, cells


def run_profiles(config, workdir, log=print) -> dict[str, ProfileSet]:
  """Builds the config's profile grid for each setting into ``workdir/profiles/<setting>/``."""
  from rp_jax.config import profile_specs, validate_config
  from rp_jax.data import load_history

  validate_config(config)
  _, embed = make_embed(config)
  out = {}
  for setting in config.settings:
    t0 = time.perf_counter()
    history = load_history(config.data, setting)
    specs = profile_specs(config, setting)
    pset, _, _ = setting_profiles(config, history, specs, embed, log)
    folder = pathlib.Path(workdir) / "profiles" / setting
    write_profiles(folder, history, pset, config)
    log(
      f"[{setting}] {len(specs)} profiles -> {folder} in {time.perf_counter() - t0:.1f} s "
      f"({', '.join(f'{k} {v:.2f}s' for k, v in pset.seconds.items())})"
    )
    out[setting] = pset
  return out
