"""The package's layering.

- Everything outside ``live2d_tui.ui`` (and the two commands that start the UI) is the headless
  core: importing all of it must not import Textual or textual-image
  (docs/architecture.md#principles, "A headless core").
- Floors, read from the source (imports inside functions and ``TYPE_CHECKING`` blocks count):
  ``formats/`` is the ground floor and imports nothing above it; ``warp/`` and ``dataset/`` sit
  on it; ``classify/`` and ``engine/`` are siblings that never import each other (the runner
  launches the engine as a program); no import runs back up; no two modules import each other,
  directly or round a circle.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import live2d_tui

UI_ENTRY_POINTS = {"live2d_tui.commands.open", "live2d_tui.commands.demo"}


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(live2d_tui.__path__, prefix="live2d_tui."):
        name = info.name
        if name == "live2d_tui.ui" or name.startswith("live2d_tui.ui.") or name in UI_ENTRY_POINTS:
            continue
        if name == "live2d_tui.__main__":
            continue
        names.append(name)
    return names


def test_the_core_imports_no_textual() -> None:
    modules = core_modules()
    assert "live2d_tui.supervisor" in modules and "live2d_tui.engine.refine2d" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'textual_image'})\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


PACKAGE = Path(live2d_tui.__file__).parent

FORMATS_MAY_IMPORT = {"formats", "atomic"}
"""The ground floor uses only itself and the atomic writes."""

NEVER_IMPORTS = {
    "warp": {"dataset", "classify", "engine", "supervisor", "simulate", "commands", "ui"},
    "simulate": {"warp", "dataset", "classify", "engine", "supervisor", "commands", "ui"},
    "dataset": {"classify", "engine", "supervisor", "simulate", "commands", "ui"},
    "classify": {"engine", "supervisor", "simulate", "commands", "ui"},
    "engine": {"classify", "dataset", "warp", "supervisor", "simulate", "commands", "ui"},
    "supervisor": {"engine", "simulate", "commands", "ui"},
}
"""Package → the packages above or beside it that it must not import."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_imports() -> dict[str, set[str]]:
    """Every module of the package → the package's modules it imports (``from pkg import mod``
    counts as importing ``pkg.mod``; a name imported from a module counts as the module)."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base)
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def floor(module: str) -> str:
    """``live2d_tui.formats.mrc`` → ``formats``; ``live2d_tui.atomic`` → ``atomic``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_source_graph_sees_the_imports() -> None:
    graph = source_imports()
    assert "live2d_tui.formats.prompts" in graph["live2d_tui.engine.refine2d"]
    assert "live2d_tui.classify.attempt" in graph["live2d_tui.classify.runner"]
    assert "live2d_tui.ui.app" in graph["live2d_tui.commands.open"]  # inside a function
    assert "live2d_tui.formats.mrc" in graph["live2d_tui.dataset.stack"]


def violations(allowed: Callable[[str, str], bool]) -> list[str]:
    """``module imports dep`` for every import of the package that ``allowed`` refuses."""
    return sorted(
        f"{module} imports {dep}"
        for module, deps in source_imports().items()
        for dep in deps
        if not allowed(module, dep)
    )


def test_formats_is_the_ground_floor() -> None:
    assert violations(lambda m, d: floor(m) != "formats" or floor(d) in FORMATS_MAY_IMPORT) == []


def test_no_import_runs_up_or_across_a_floor() -> None:
    assert violations(lambda m, d: floor(d) not in NEVER_IMPORTS.get(floor(m), set())) == []


def test_only_the_ui_and_its_two_commands_import_the_ui() -> None:
    ui_side = {m for m in source_imports() if floor(m) == "ui"} | UI_ENTRY_POINTS
    assert violations(lambda m, d: floor(d) != "ui" or m in ui_side) == []


def test_no_module_imports_round_a_circle() -> None:
    graph = source_imports()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                circles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == []
