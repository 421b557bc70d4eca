"""The package's shape: layers import only downwards, no import cycles, runtime never imports training, and
``import cfnb`` stays light. Read from the source with ``ast`` (every import, also those inside functions)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cfnb"

# Lowest first; a module may import its own layer and the layers below it. ``cfnb`` itself (the package's
# __init__, which loads names lazily) and the command line sit on top.
LAYERS: list[tuple[str, ...]] = [
    ("cfnb.checks", "cfnb.forward", "cfnb.modes", "cfnb.progress", "cfnb.distributed", "cfnb.config_files"),
    ("cfnb.data",),
    ("cfnb.models",),
    ("cfnb.methods",),
    ("cfnb.results", "cfnb.engine", "cfnb.comparison"),
    ("cfnb.metrics", "cfnb.viz"),
    ("cfnb.widgets", "cfnb.audit", "cfnb.runs", "cfnb.notebook"),
    ("cfnb.training",),
    ("cfnb.cli", "cfnb.demo", "cfnb.__main__", "cfnb"),
]
RUNTIME_TOP = "cfnb.notebook"  # everything at or below this layer is runtime: it must never import cfnb.training


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(importer: str, level: int, target: str | None) -> str:
    """The absolute name of a relative import made in module ``importer``."""
    base = importer.split(".") if is_package(importer) else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports(name: str, top_level_only: bool = False) -> set[str]:
    """The cfnb modules ``name`` imports (``from pkg import module`` counts as importing the module)."""
    tree = ast.parse(MODULES[name].read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("cfnb"))
        elif isinstance(node, ast.ImportFrom):
            source = resolve(name, node.level, node.module) if node.level else (node.module or "")
            if not source.startswith("cfnb"):
                continue
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.add(candidate if candidate in MODULES else source)
    parents = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
    return {module for module in found if module in MODULES and module != name and module not in parents}


def layer_of(name: str) -> int:
    best, layer = -1, None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), index
    assert layer is not None, f"{name} belongs to no layer: add it to LAYERS"
    return layer


def test_every_module_has_a_layer():
    for name in MODULES:
        layer_of(name)


def test_no_import_points_up():
    upward = [f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
              for name in sorted(MODULES) for target in sorted(imports(name)) if layer_of(target) > layer_of(name)]
    assert upward == []


def test_runtime_never_imports_training():
    runtime_top = layer_of(RUNTIME_TOP)
    offenders = [f"{name} imports {target}" for name in MODULES if layer_of(name) <= runtime_top
                 for target in imports(name) if target.startswith("cfnb.training")]
    assert offenders == []


def test_no_import_cycle():
    graph = {name: imports(name, top_level_only=True) for name in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == []


def test_the_checker_sees_a_violation():
    """The walk resolves relative imports: a runtime module's import of training would be found."""
    assert "cfnb.checks" in imports("cfnb.engine")
    assert "cfnb.methods.registry" in imports("cfnb.methods.gci")
    assert "cfnb.methods.mirror" in imports("cfnb.training.mirror_decoder")
    assert layer_of("cfnb.training.recipes.faces") > layer_of("cfnb.widgets.explainer_panel")


@pytest.mark.parametrize("statement", ["import cfnb", "import cfnb.checks"])
def test_import_cfnb_stays_light(statement: str):
    code = f"{statement}; import sys; print(sorted(m for m in ('torch', 'plotly', 'ipywidgets') if m in sys.modules))"
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    expected = "[]" if statement == "import cfnb" else "['torch']"
    assert heavy == expected
