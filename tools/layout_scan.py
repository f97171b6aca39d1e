"""Scans the jaxmlp package's structure from its source (AST, no imports run): import
cycles (imports inside functions count) between modules and between subpackages,
imports against the declared order of layers, private modules of a search imported
from outside it, module and function sizes, and where the objective's direction is
decided.

  python tools/layout_scan.py       # prints the figures; exit 1 when a rule is broken
"""

import ast
import pathlib
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'jaxmlp'
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 40

# The package's layers, lowest first: a module may import its own layer and those
# below it, never one above. 'jaxmlp' is the package's own top-level modules (the
# command lines, the Python API and the pipeline they share).
LAYERS = ('common', 'core', 'data', 'studies', 'store', 'engine', 'report', 'search',
          'jaxmlp')


def modules(root: pathlib.Path = PACKAGE) -> dict[str, pathlib.Path]:
  """Dotted module name -> file, for every module of the package."""
  out = {}
  for path in sorted(root.rglob('*.py')):
    parts = path.relative_to(root.parent).with_suffix('').parts
    if parts[-1] == '__init__':
      parts = parts[:-1]
    out['.'.join(parts)] = path
  return out


def imports(path: pathlib.Path, known: set[str]) -> set[str]:
  """The package's modules that `path` imports, anywhere in it."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name in known)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      for alias in node.names:
        full = f'{node.module}.{alias.name}'
        found.add(full if full in known else node.module)
  return {m for m in found if m in known}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components of more than one module (Tarjan), and self-imports."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1 or v in graph[v]:
        out.append(sorted(component))

  sys.setrecursionlimit(10_000)
  for v in graph:
    if v not in index:
      visit(v)
  return out


def layer_of(module: str) -> str:
  """A module's layer: its subpackage under jaxmlp, or 'jaxmlp' for a top-level one."""
  parts = module.split('.')
  return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else 'jaxmlp'


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
  """'importer -> imported' for each import of a layer above the importer's."""
  rank = {layer: i for i, layer in enumerate(LAYERS)}
  return sorted(f'{a} -> {b}' for a, targets in graph.items() for b in targets
                if rank.get(layer_of(b), len(LAYERS)) > rank.get(layer_of(a), len(LAYERS)))


def layer_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
  """Layer -> the other layers it imports."""
  out = {layer: set() for layer in LAYERS}
  for a, targets in graph.items():
    out.setdefault(layer_of(a), set()).update(
        layer_of(b) for b in targets if layer_of(b) != layer_of(a))
  return out


def private_imports(graph: dict[str, set[str]]) -> list[str]:
  """Imports of a search's private module (jaxmlp.search.NAME._x) from outside its
  package: a search is used through the class its package exposes."""
  out = []
  for a, targets in graph.items():
    for b in targets:
      parts = b.split('.')
      if len(parts) == 4 and parts[1] == 'search' and parts[3].startswith('_') and (
          not a.startswith('.'.join(parts[:3]))):
        out.append(f'{a} -> {b}')
  return sorted(out)


def long_functions(path: pathlib.Path) -> list[tuple[str, int]]:
  tree = ast.parse(path.read_text())
  return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
          if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
          and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def direction_sites(files: dict[str, pathlib.Path]) -> list[str]:
  """Where a metric's name decides whether lower is better."""
  return [f'{name}:{i}' for name, path in files.items()
          for i, line in enumerate(path.read_text().splitlines(), 1)
          if any(rule in line for rule in ("endswith('loss')", 'endswith("loss")',
                                           'endswith(MINIMIZED_ENDINGS)'))]


def scan(root: pathlib.Path = PACKAGE) -> dict:
  files = modules(root)
  graph = {name: imports(path, set(files)) - {name} for name, path in files.items()}
  sizes = {name: len(path.read_text().splitlines()) for name, path in files.items()}
  layers = layer_graph(graph)
  return dict(
      modules=len(files),
      layers={layer: sorted(targets) for layer, targets in layers.items()},
      layer_cycles=cycles(layers),
      upward=upward_imports(graph),
      private=private_imports(graph),
      subpackages=sorted(n for n, p in files.items() if p.name == '__init__.py' and '.' in n),
      cycles=cycles(graph),
      largest=sorted(sizes.items(), key=lambda kv: -kv[1])[:5],
      over_limit={n: s for n, s in sizes.items() if s > MAX_MODULE_LINES},
      long_functions={n: f for n, p in files.items() if (f := long_functions(p))},
      functions=sum(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for p in files.values() for node in ast.walk(ast.parse(p.read_text()))),
      direction_sites=direction_sites(files))


def main() -> int:
  found = scan()
  long_count = sum(len(f) for f in found['long_functions'].values())
  print(f"modules: {found['modules']}, subpackages: {len(found['subpackages'])} "
        f"({', '.join(found['subpackages'])})")
  print(f"import cycles: {len(found['cycles'])} {found['cycles'] or ''}")
  print(f"layers, lowest first: {' < '.join(LAYERS)}")
  for layer, targets in found['layers'].items():
    print(f"  {layer} imports {', '.join(targets) or 'nothing of the package'}")
  print(f"subpackage cycles: {len(found['layer_cycles'])} {found['layer_cycles'] or ''}")
  print(f"imports against the order: {len(found['upward'])} {found['upward'] or ''}")
  print(f"private search modules imported from outside: {len(found['private'])} "
        f"{found['private'] or ''}")
  print(f"largest modules: {', '.join(f'{n} {s}' for n, s in found['largest'])}; "
        f"over {MAX_MODULE_LINES} lines: {found['over_limit'] or 'none'}")
  print(f"functions over {MAX_FUNCTION_LINES} lines: {long_count} of {found['functions']}")
  print(f"objective direction decided at: {', '.join(found['direction_sites']) or 'nowhere'}")
  broken = (found['cycles'] or found['layer_cycles'] or found['upward']
            or found['private'] or found['over_limit'] or len(found['subpackages']) < 4
            or len(found['direction_sites']) != 1)
  return 1 if broken else 0


if __name__ == '__main__':
  sys.exit(main())
