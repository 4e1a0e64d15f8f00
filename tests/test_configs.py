"""Smoke test of every sweep config: each ``configs/*.py`` runs end to end at a tiny scale.

Every config is loaded and shrunk (``tiny``: the synthetic data and widths of configs/test.py,
one seed, one epoch, one HAN step, one value per swept hyperparameter, the first profile of each
profile family, one quiz size; two leave-one-out folds). Configs that differ only in their grids
share a protocol and run as one group: one sweep over the union of the members' grids, and a
parametrised test per member that checks the member differs from the group only in grid keys and
that every cell it asks for is in results.csv. configs/profiles.py runs through
``sweep.run_profiles`` (what launch.profiles calls), configs/route.py through ``deploy.run``
(fit, save, load, route), and configs/baselines.py also unchanged on the public data.
"""

import importlib
import io
import json
import pathlib
import re

import ml_collections
import pandas as pd
import pytest

from configs import test as test_config
from rp_jax import config as rp_config
from rp_jax import deploy, results, sweep
from rp_jax.data import leave_one_out
from rp_jax.routers import registry

# Every config end to end (minutes of compilation): .ci/run's slow tier.
pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(
  p.stem for p in (REPO / "configs").glob("*.py") if "def get_config" in p.read_text()
)
# Configs run as groups (members differ only in grid keys after ``tiny``), and the rest.
GROUPS = {
  "paper_protocol": ("paper", "table1", "table2", "newllm"),
  "quality_protocol": ("quality", "cost"),
  "synthetic_default": ("test", "quickstart"),
  # Its own: its profiles (a probe block appended to flat text) do not fit quality's sim router.
  "coldstart": ("coldstart",),
  # Its own: a multi-dataset run (here on the synthetic data only).
  "datasets": ("datasets",),
}
SINGLE = ("baselines", "profiles", "route")
# Keys in which members of a group may differ: their grids (and the name).
LIST_KEYS = (
  "profiles",
  "profiles_newllm",
  "profiles_lomo",
  "routers",
  "routers_lomo",
  "settings",
  "router_inputs",
)
# How a grid runs, not what it computes (with the tests' 4 CPU devices, "auto" is "vmap").
EXECUTION_KEYS = ("grid",)
# Folds of the "lomo" setting run (one per candidate otherwise): two keep the pooling over folds.
LOMO_FOLDS = 2
SWEPT = {r: tuple(registry.family(r).hparams) for r in rp_config.ROUTERS}


def test_every_config_is_covered():
  covered = [n for members in GROUPS.values() for n in members] + list(SINGLE)
  assert sorted(covered) == CONFIGS, "a new config: add it to GROUPS or SINGLE"


def first_per_family(entries) -> tuple[str, ...]:
  """The first entry of each profile family (index, flat, emb_gnn, ...), in config order."""
  seen, out = set(), []
  for e in entries:  # the family of "flat:TQD+probe:8:4" is "flat+probe"
    family = "+".join(part.split(":")[0] for part in e.split("+"))
    if family not in seen:
      seen.add(family)
      out.append(e)
  return tuple(out)


def tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A config shrunk for a smoke run (its structure kept: routers, settings, inputs, folds)."""
  t = test_config.get_config()
  with c.unlocked():
    c.data.source = "synthetic"
    c.data.synthetic_seed = t.data.synthetic_seed
    c.data.synthetic_scale = t.data.synthetic_scale
    c.data.synthetic_sizes = t.data.synthetic_sizes
    c.encoder_dim = t.encoder_dim
    c.seeds = 1
    for r, names in SWEPT.items():
      for k in names:
        v = c[r][k]
        c[r][k] = (v[0],) if isinstance(v, tuple | list) else v
    for r in ("mlp", "graph", "mf"):
      c[r].epochs = 1
    # configs/test.py's widths: every tiny config compiles the same router and HAN programs.
    c.mlp.hidden, c.mlp.out = t.mlp.hidden, t.mlp.out
    c.graph.hidden, c.graph.heads = t.graph.hidden, t.graph.heads
    c.trainable.hidden, c.trainable.heads = t.trainable.hidden, t.trainable.heads
    c.trainable.steps = 1
    for k in ("profiles", "profiles_newllm", "profiles_lomo"):
      c[k] = first_per_family(c[k])
    if "quiz" in c and c.quiz.methods:  # one quiz method and one quiz size (k > 0 if any)
      c.quiz.methods = tuple(c.quiz.methods)[:1]
      c.quiz.ks = (next((k for k in c.quiz.ks if k > 0), c.quiz.ks[0]),)
      c.quiz.ks_lomo = ()
    if c.datasets:  # a multi-dataset run: the synthetic data stands in for every dataset
      c.datasets = ("synthetic",)
    c.bootstrap = 20
    c.figures = False
    c.progress_every_s = 0.0
  return c


def load(name: str) -> ml_collections.ConfigDict:
  return tiny(importlib.import_module(f"configs.{name}").get_config())


def flat(c: ml_collections.ConfigDict) -> dict:
  """The config's keys that matter for its run: sections of routers it does not train dropped."""
  used = set(c.routers) | set(c.routers_lomo)
  out = {}
  for k, v in json.loads(c.to_json()).items():
    if k in rp_config.ROUTERS and k not in used:
      continue
    items = v.items() if isinstance(v, dict) else [("", v)]
    for sub, x in items:
      out[f"{k}.{sub}" if sub else k] = x
  return out


def union(members: list[ml_collections.ConfigDict]) -> ml_collections.ConfigDict:
  """One config running every member's grid: per setting, the union of the profiles and
  routers of the members that run it; the union of inputs and of swept values."""
  c = ml_collections.ConfigDict(members[0].to_dict())  # an unlocked copy
  c.name = "group"
  c.settings = unique(s for m in members for s in m.settings)
  c.router_inputs = unique(x for m in members for x in m.router_inputs)
  runs = lambda setting: [m for m in members if setting in m.settings]
  specs = lambda m, s: {"standard": m.profiles, "newllm": m.profiles_newllm or m.profiles}.get(
    s, m.profiles_lomo or m.profiles
  )
  c.profiles = unique(p for m in runs("standard") for p in m.profiles)
  c.profiles_newllm = unique(p for m in runs("newllm") for p in specs(m, "newllm"))
  c.profiles_lomo = unique(p for m in runs("lomo") for p in specs(m, "lomo"))
  c.routers = unique(r for s in ("standard", "newllm") for m in runs(s) for r in m.routers)
  c.routers_lomo = unique(r for m in runs("lomo") for r in (m.routers_lomo or m.routers))
  for r, names in SWEPT.items():
    for h in names:
      c[r][h] = unique(float(x) for m in members for x in m[r][h])
  if "quiz" in c:
    c.quiz.methods = unique(x for m in members for x in m.quiz.methods)
    c.quiz.ks = unique(k for m in members if m.quiz.methods for k in m.quiz.ks) or c.quiz.ks
  return c


def unique(xs) -> tuple:
  out = []
  for x in xs:
    if x not in out:
      out.append(x)
  return tuple(out)


def expected_cells(c: ml_collections.ConfigDict) -> set[tuple[str, ...]]:
  """(setting prefix, router, inputs, profile, graph, hops) of every cell a config asks for."""
  cells = set()
  for setting in c.settings:
    for router in rp_config.setting_routers(c, setting):
      for inputs in c.router_inputs:
        if registry.family(router).same_space and inputs != "prompt":
          continue
        for spec in rp_config.profile_specs(c, setting):
          profile = results.spec_keys(spec)["profile"]  # "flat+probe" for a probe block
          cells.add((setting, router, inputs, profile, str(spec.graph), str(spec.hops)))
  return cells


def found_cells(frame: pd.DataFrame) -> set[tuple[str, ...]]:
  routers = frame[frame["router"].isin(rp_config.ROUTERS)]
  # lomo folds are "lomo:<model>", quiz settings "<setting>~<method>-<k>", multi-dataset
  # settings "<dataset>@<setting>".
  return {
    (re.split("[:~]", r.setting.split("@")[-1])[0], r.router, r.inputs, r.profile, r.graph, r.hops)
    for r in routers.itertuples()
  }


@pytest.fixture(scope="module")
def group_runs(tmp_path_factory):
  """group name -> (merged config, results.csv) of the group's one sweep (run on first use)."""
  done = {}

  def get(group: str):
    if group not in done:
      c = union([load(n) for n in GROUPS[group]])
      workdir = tmp_path_factory.mktemp(group)
      with pytest.MonkeyPatch.context() as mp:  # "lomo": the first LOMO_FOLDS folds only
        mp.setattr(sweep, "leave_one_out", lambda h: leave_one_out(h)[:LOMO_FOLDS])
        sweep.run(c, workdir, log=lambda s: None)
      assert (workdir / "summary.md").is_file()
      frame = pd.read_csv(workdir / "results.csv", dtype=str, keep_default_na=False)
      done[group] = (c, frame)
    return done[group]

  return get


@pytest.mark.parametrize(
  "group,name", [(g, n) for g, members in GROUPS.items() for n in members], ids=lambda x: x
)
def test_grouped_config_runs(group_runs, group, name):
  merged, frame = group_runs(group)
  c = load(name)
  rp_config.validate_config(c)
  grid_keys = {*LIST_KEYS, *EXECUTION_KEYS, "name", "quiz.methods", "quiz.ks"}
  grid_keys |= {f"{r}.{h}" for r, hs in SWEPT.items() for h in hs}
  mine, theirs = flat(c), flat(merged)
  differ = {k for k in mine if k not in grid_keys and mine[k] != theirs.get(k)}
  assert not differ, f"{name} differs from its group beyond grids: {sorted(differ)}"
  want = expected_cells(c)
  assert want, f"{name} has no router cells"
  missing = want - found_cells(frame)
  assert not missing, f"{name}: cells missing from results.csv: {sorted(missing)[:5]}"
  if "quiz" in c and c.quiz.methods:
    quiz = {f"~{m}-{k}" for m in c.quiz.methods for k in c.quiz.ks}
    assert all(frame["setting"].str.endswith(q).any() for q in quiz), f"{name}: quiz settings"


def test_baselines_config_runs(tmp_path):
  c = load("baselines")
  assert not c.routers
  sweep.run(c, tmp_path, log=lambda s: None)
  frame = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
  assert set(frame["setting"]) == set(c.settings)
  assert not frame["router"].isin(rp_config.ROUTERS).any()
  assert "## Setting: newllm" in (tmp_path / "summary.md").read_text()


@pytest.mark.real_data
def test_baselines_config_on_public_data(data_dir, tmp_path):
  """configs/baselines.py unchanged on the public data (it used to fail after its work)."""
  c = importlib.import_module("configs.baselines").get_config()
  c.data.data_dir = str(data_dir)  # what RP_JAX_DATA gives it
  sweep.run(c, tmp_path, log=lambda s: None)
  frame = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
  assert set(frame["setting"]) == {"standard", "newllm"}
  summary = (tmp_path / "summary.md").read_text()
  assert "### Baselines" in summary and "oracle_query" in summary
  assert (tmp_path / "figures" / "selection_standard.png").is_file()


def test_profiles_config_runs(tmp_path):
  grid = importlib.import_module("configs.profiles").get_config().profiles
  c = tiny(importlib.import_module("configs.profiles").get_config())
  c.profiles = grid  # its whole training-free grid: one emb_gnn call, template text-GNN texts
  out = sweep.run_profiles(c, tmp_path, log=lambda s: None)
  index = pd.read_csv(tmp_path / "profiles" / "standard" / "index.csv")
  assert len(index) == len(grid) == len(out["standard"].specs) > 100


def test_route_config_fits_and_routes(tmp_path):
  c = load("route")
  queries = tmp_path / "queries.jsonl"
  queries.write_text('{"query": "Solve 12 * 7 + 3"}\n{"query": "Name the capital of Peru"}\n')
  out = io.StringIO()
  request = deploy.RouteRequest(fit=True, queries=str(queries))
  deploy.run(c, tmp_path / "bundle", request, out=out, log=lambda s: None)
  lines = [json.loads(x) for x in out.getvalue().splitlines()]
  bundle = deploy.load(tmp_path / "bundle")
  assert bundle.router == c.route.router and len(lines) == 2
  assert {x["model"] for x in lines} <= set(bundle.candidate_names)
