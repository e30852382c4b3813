"""The house rules ARCHITECTURE.md asks of the package layout, checked on the source: no import cycle
between agentmem modules at run time (module- or function-level; imports under TYPE_CHECKING
aside), no core module importing a built-in plugin (built-ins use the public API, not the reverse),
and no module over 450 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "agentmem"
# modules that wire plugins in or drive them from outside: they may import default_plugins
WIRING = ("agentmem.default_plugins", "agentmem.plugins", "agentmem.cli", "agentmem.bench")


def modules() -> dict[str, Path]:
    out = {}
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return out


def run_time_imports(file: Path, known: dict[str, Path]) -> set[str]:
    """The agentmem modules ``file`` imports when it runs (TYPE_CHECKING blocks skipped)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            assert node.level == 0, f"{file}: relative import"
            found.add(node.module or "")
            found.update(f"{node.module}.{a.name}" for a in node.names)

    Visitor().visit(ast.parse(file.read_text()))
    return {m for m in found if m in known}


def test_no_import_cycle_between_agentmem_modules() -> None:
    known = modules()
    graph = {m: run_time_imports(f, known) - {m} for m, f in known.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import cycle: " + " -> ".join([*path[path.index(n):], n])
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert len(graph) > 40  # the walk saw the package


def test_core_modules_import_no_built_in_plugin() -> None:
    known = modules()
    for m, f in known.items():
        if not m.startswith(WIRING):
            bad = sorted(i for i in run_time_imports(f, known) if i.startswith("agentmem.default_plugins"))
            assert not bad, f"{m} imports {bad}"


def test_no_module_is_over_450_lines() -> None:
    """Modules with one job stay readable: ARCHITECTURE.md's split of the big classes, kept."""
    sizes = {m: len(f.read_text().splitlines()) for m, f in modules().items()}
    over = {m: n for m, n in sizes.items() if n > 450}
    assert not over, f"split these modules (over 450 lines): {over}"
    assert sizes["agentmem.memory"] > 100  # the count read the real files
