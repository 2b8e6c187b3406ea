"""The ``live2d`` command line: help, version, configuration errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from live2d_tui import __version__
from live2d_tui.cli import COMMANDS, main


def test_version_and_help_run_as_a_real_program() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "live2d_tui", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert __version__ in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "live2d_tui", "--help"], capture_output=True, text=True, check=True
    )
    for name in COMMANDS:
        assert name in out.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: live2d" in capsys.readouterr().out
