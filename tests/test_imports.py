"""Which module imports which: no cycle anywhere in the house and no import up the layers,
counting the imports inside functions. The layers are the numbered list under "## The layers"
in docs/ARCHITECTURE.md (the one place they are written); this test reads them from there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ingest.settings import PROJECT_ROOT

PACKAGES = ("ingest", "orchestration", "expectations", "dags")
ARCHITECTURE = PROJECT_ROOT / "docs" / "ARCHITECTURE.md"


def modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the packages (a package is its __init__)."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the house's modules it imports anywhere in its file (top level or in a function).
    `from a.b import c` counts as importing `a.b.c` when that is a module, else `a.b`."""
    mods = modules(root, packages)

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found.update(filter(None, (known(a.name) for a in node.names)))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package
                    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    package = package[:len(package) - (node.level - 1)]
                    base = ".".join([*package, base] if base else package)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    hit = full if full in mods else known(base)
                    if hit:
                        found.add(hit)
        found.discard(name)
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def read_layers(text: str) -> list[list[str]]:
    """The numbered list under "## The layers": each line's `module` names, top layer first."""
    section = text.split("\n## The layers", 1)[1].split("\n## ", 1)[0]
    return [re.findall(r"`([\w.]+)`", line) for line in section.splitlines() if re.match(r"\d+\. `", line)]


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    """The layer (0 = top) of the longest listed prefix of `module`."""
    best, rank = -1, None
    for i, names in enumerate(layers):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def upward(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """Every import of a module from a layer above the importer's, as `a -> b`."""
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if layer_of(b, layers) < layer_of(a, layers))


def test_no_module_of_the_house_is_in_an_import_cycle():
    found = cycles(imports(PROJECT_ROOT))
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_import_runs_up_the_layers_of_the_architecture_document():
    layers = read_layers(ARCHITECTURE.read_text(encoding="utf-8"))
    assert len(layers) >= 6 and layers[0] == ["dags"] and "ingest.settings" in layers[-1], layers
    graph = imports(PROJECT_ROOT)
    unplaced = sorted(m for m in graph if layer_of(m, layers) is None)
    assert unplaced == [], f"modules in no layer of docs/ARCHITECTURE.md: {unplaced}"
    assert upward(graph, layers) == []


def test_ingest_never_imports_airflow():
    bad = []
    for name, path in modules(PROJECT_ROOT, ("ingest",)).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            bad += [f"{name} imports {n}" for n in names if n.split(".")[0] == "airflow"]
    assert bad == []


def test_the_checks_find_a_cycle_inside_a_function_and_an_upward_import(tmp_path):
    """The checks above on a house built to break both rules."""
    pkg = tmp_path / "ingest"
    (pkg / "warehouse").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "settings.py").write_text("X = 1\n")
    (pkg / "warehouse" / "__init__.py").write_text("")
    (pkg / "warehouse" / "build.py").write_text("def f():\n    from ingest.cli import main\n")
    (pkg / "warehouse" / "publish.py").write_text("from . import build\nfrom ..settings import X\n")
    (pkg / "cli.py").write_text("def main():\n    import ingest.warehouse.build\n")
    graph = imports(tmp_path, ("ingest",))
    assert graph["ingest.warehouse.publish"] == {"ingest.warehouse.build", "ingest.settings"}
    assert cycles(graph) == [["ingest.cli", "ingest.warehouse.build"]]
    layers = read_layers("intro\n## The layers\n\n1. `ingest.cli`\n2. `ingest.warehouse`\n"
                         "3. `ingest.settings`, `ingest`\n\n## Next\n4. `nothing`\n")
    assert layers == [["ingest.cli"], ["ingest.warehouse"], ["ingest.settings", "ingest"]]
    assert upward(graph, layers) == ["ingest.warehouse.build -> ingest.cli"]


def test_the_night_history_has_one_writer_the_step_runner():
    """`ingest.nights`' writers are called from `orchestration.steps` only (the DAG's tasks and
    `ofsted rerun` both go through it); everything else reads the history."""
    writers = {"start_night", "note_night", "finish_night"}
    callers = set()
    for name, path in modules(PROJECT_ROOT).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "ingest.nights":
                if writers & {a.name for a in node.names}:
                    callers.add(name)
            elif isinstance(node, ast.Attribute) and node.attr in writers and name != "ingest.nights":
                callers.add(name)
    assert callers == {"orchestration.steps"}
