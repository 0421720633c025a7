"""dynsal's import graph has no cycle, so that each rule has one home below the code that uses it.

The rule checked, on every `import` / `from … import` statement of dynsal/**.py read with `ast` — at
module level and inside functions alike, so a function-level import cannot hide a cycle:
- modules: no module reaches itself through imports (`from pkg import name` counts as an import of
  `pkg.name` where that is a module, else of `pkg`);
- packages: dynsal's top-level parts — each subpackage (`dynsal.caffe`, `dynsal.engines`, `dynsal.export`,
  `dynsal.data`, ...) with everything below it, and each top-level module (`dynsal.files`, `dynsal.zoo`,
  ...) — import each other one way only: no part imports from a part that imports it back (directly or
  through others). Inside one part, a subpackage may use its parent's modules (e.g. `export/layers/*`
  register with `export/registry.py`): a parent importing its children is a package re-exporting its
  parts, not a loop between packages.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import dynsal

ROOT = Path(dynsal.__file__).parent


def module_names(root: Path) -> Dict[str, Path]:
    """{dotted module name: file} of the package at `root` (a package by its `__init__.py`)."""
    names = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports(name: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """The package's modules that module `name` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def part(name: str) -> str:
    """The top-level part a module belongs to: `dynsal.<first name>`."""
    return ".".join(name.split(".")[:2])


def graphs(root: Path):
    """(module graph, part graph, {(part, part): an import making that edge}) of the package at `root`."""
    modules = module_names(root)
    by_module = {name: imports(name, path, modules) for name, path in modules.items()}
    by_part: Dict[str, Set[str]] = {}
    witness = {}
    for name, targets in by_module.items():
        for target in targets:
            if part(name) != part(target):
                by_part.setdefault(part(name), set()).add(part(target))
                witness.setdefault((part(name), part(target)), f"{name} imports {target}")
    return by_module, by_part, witness


def explain(components: List[List[str]], graph: Dict[str, Set[str]], witness=None) -> List[str]:
    """Each cycle's edges, as `a imports b` lines."""
    lines = []
    for component in components:
        for a in component:
            for b in sorted(graph.get(a, ()) & set(component)):
                lines.append(witness[(a, b)] if witness else f"{a} imports {b}")
    return lines


def test_dynsal_modules_and_packages_import_one_way():
    by_module, by_part, witness = graphs(ROOT)
    assert len(by_module) > 100 and "dynsal.export" in by_part.get("dynsal.engines", set())
    assert explain(cycles(by_module), by_module) == []
    assert explain(cycles(by_part), by_part, witness) == []


def test_the_check_finds_a_cycle_a_function_level_import_hides(tmp_path):
    """A package whose two parts import each other, one of them inside a function, fails the check."""
    package = tmp_path / "pkg"
    for folder, text in {"a": "from pkg.b.y import g\n", "b": "def g():\n    from pkg.a.x import f\n"}.items():
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
        (package / folder / ("x.py" if folder == "a" else "y.py")).write_text(text + "def f():\n    pass\n")
    (package / "__init__.py").write_text("")
    by_module, by_part, witness = graphs(package)
    assert cycles(by_module) == [["pkg.a.x", "pkg.b.y"]]
    assert explain(cycles(by_part), by_part, witness) == ["pkg.a.x imports pkg.b.y", "pkg.b.y imports pkg.a.x"]
