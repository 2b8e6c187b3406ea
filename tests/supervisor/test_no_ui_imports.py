"""The headless core never imports the terminal UI (Textual, textual-image)."""

from __future__ import annotations

import subprocess
import sys


def test_headless_run_imports_no_textual() -> None:
    code = (
        "import sys; from live2d_tui.cli import build_parser; build_parser(['run']);"
        "import live2d_tui.supervisor, live2d_tui.commands.run, live2d_tui.state;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'textual_image'});"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
