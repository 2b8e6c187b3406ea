"""Everything outside ``live2d_tui.ui`` (and the two commands that start the UI) is the headless
core: importing all of it must not import Textual or textual-image (ARCHITECTURE principle 2)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

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
