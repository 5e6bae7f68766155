"""The package's shape: no import circle, each stage imports only the stages before it.

The imports are read from the source (every ``import`` and ``from ... import``, at module level
or inside functions), so a lazy import cannot hide a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import aiscale

PACKAGE = Path(aiscale.__file__).resolve().parent

# the one-way flow of DESIGN.md: a module may import its own stage and the stages before it
STAGES = {
    "aiscale.schema": 0,
    "aiscale.loaders": 1,
    "aiscale.sim": 1,
    "aiscale.pricing": 2,
    "aiscale.facts": 3,
    "aiscale.store": 4,
    "aiscale.analysis": 5,
    "aiscale.report": 6,
    "aiscale.cli": 7,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The aiscale modules a file imports (a name imported from a package that is a submodule
    counts as that submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("aiscale")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aiscale"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m in known and m != "aiscale"}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) for name, path in known.items() if name != "aiscale"}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
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
            if len(component) > 1 or v in edges.get(v, ()):
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def stage(name: str) -> int | None:
    for prefix, rank in STAGES.items():
        if name == prefix or name.startswith(prefix + "."):
            return rank
    return None


def test_no_import_circle():
    assert cycles(graph()) == []


def test_circle_detector_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_each_stage_imports_only_earlier_stages():
    backwards = [(m, dep) for m, deps in graph().items() for dep in deps
                 if stage(m) is not None and stage(dep) is not None and stage(dep) > stage(m)]
    assert backwards == []


def test_every_module_belongs_to_a_stage_and_says_what_it_is_for():
    for name, path in modules().items():
        if name == "aiscale":
            continue
        assert stage(name) is not None, f"{name} is outside the stages of the flow"
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and doc.strip(), f"{path} has no module docstring"


def test_no_module_is_too_long():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > 400}
    assert long == {}


def test_the_public_face_is_only_its_names():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert defined == ["__getattr__", "__dir__"]  # the lazy look-up of the public names only
    assert set(aiscale.__all__) <= set(dir(aiscale))
