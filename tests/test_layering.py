"""The package's layers import in one direction only, and no module imports in a circle.

Layers, bottom up (a module may import its own layer and the layers below):

0. ``errors``, ``checks``, ``kinds`` — exceptions, argument checks, model-kind bases;
1. ``engine`` — formula → frame → design → PLS → optimise: θ ↦ criterion;
2. ``inference`` — tests, intervals, bootstrap, written against fitted models'
   public accessors (no model class is imported);
3. ``models`` — ``lm``, ``lmer`` and their fitted-model classes;
4. ``glmm`` — families, PIRLS/Laplace/AGQ on the engine, ``glmer``;
5. ``datasets``, ``plots``, ``benchmarks`` — tools at the top;
6. ``course`` — textbook formulas and course studies: nothing imports it but
   the package's ``__init__``.

Imports inside functions count (a lazy import is still a dependency); only
``if TYPE_CHECKING:`` blocks are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lmmlib"
LAYERS = {"errors": 0, "checks": 0, "kinds": 0, "engine": 1, "inference": 2, "models": 3,
          "glmm": 4, "datasets": 5, "plots": 5, "benchmarks": 5, "course": 6}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("lmmlib"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lmmlib"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


MODULES = _modules()
GRAPH = {m: {t for t in _imports(m, p) if t in MODULES and t != m} for m, p in MODULES.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) is not None))
def test_imports_point_down_the_layers(module):
    own = _layer(module)
    upward = sorted(t for t in GRAPH[module] if (_layer(t) or 0) > own)
    assert not upward, f"{module} (layer {own}) imports {upward} from a higher layer"


def test_nothing_imports_the_course_package():
    users = sorted(m for m, targets in GRAPH.items() if m != "lmmlib" and _layer(m) != 6
                   and any(_layer(t) == 6 for t in targets))
    assert not users


def test_no_import_cycles():
    # iterative depth-first search; a back edge is a cycle (lazy imports included)
    state: dict[str, int] = {}
    for start in GRAPH:
        if state.get(start):
            continue
        stack = [(start, iter(sorted(GRAPH[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            # a package imports its own submodules through __init__: not a cycle edge
            if node == child.rpartition(".")[0] or child == node.rpartition(".")[0]:
                continue
            if state.get(child) == 1:
                cycle = path[path.index(child):] + [child]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(GRAPH[child]))))


def test_every_module_is_in_a_layer():
    stray = sorted(m for m in MODULES if m != "lmmlib" and _layer(m) is None)
    assert not stray, f"modules outside the layers: {stray}"
