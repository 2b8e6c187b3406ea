"""The ``live2d`` command: subcommands are modules in :mod:`live2d_tui.commands`, imported only
when used, so ``live2d run`` never imports the UI and ``live2d --help`` stays fast.

Each command module defines ``add_arguments(parser)`` and
``run(args) -> int`` (the exit status), and may define ``EPILOG`` (text after the options).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from live2d_tui import __version__
from live2d_tui.config import ConfigError

COMMANDS: dict[str, str] = {
    "open": "Open a Warp session in the terminal UI",
    "run": "Run the live classification headless (one log line per event)",
    "ingest": "Ingest a Warp session's particles into the combined stack",
    "demo": "Start a simulated live session and the UI on it (built-in engine)",
    "simulate": "Write a simulated Warp session folder (for tests, demos and benchmarks)",
}
"""Subcommand → one-line help. The module is ``live2d_tui.commands.<name>``."""


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"live2d_tui.commands.{name}")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help with every option's default: ``(default: X)`` is added where the help text does not
    already say it (options that default to nothing or off say nothing more); descriptions and
    epilogs keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or action.nargs == 0  # a switch: its help says what it turns on or off
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or default == []
        ):
            return text
        return f"{text} (default: %(default)s)"


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The argument parser; only the module of the subcommand being run is imported."""
    parser = argparse.ArgumentParser(
        prog="live2d",
        description=(
            "Live 2D classification of cryo-EM particles while Warp collects. "
            "Without a subcommand, opens the last session in the terminal UI; "
            "`live2d FOLDER [options]` (an existing Warp folder, or a session name under "
            "warp_prefix) is short for `live2d open FOLDER [options]`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"live2d-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=HelpFormatter
        )
        if name == wanted:
            module = _load(name)
            module.add_arguments(p)
            p.epilog = getattr(module, "EPILOG", None)
    return parser


def opens_by_default(first: str) -> bool:
    """Whether ``live2d FIRST …`` means ``live2d open FIRST …``: an option of ``open``, an
    existing folder, or a session name under ``warp_prefix``. Anything else is left to
    argparse, which answers a mistyped subcommand with "invalid choice" and the list."""
    if first in COMMANDS or first in {"-h", "--help", "--version"}:
        return False
    if first.startswith("-"):
        return True
    from live2d_tui.config import load_config
    from live2d_tui.paths import resolve_warp_folder

    if Path(first).expanduser().is_dir():
        return True
    try:
        server = load_config(create=False).server
        return resolve_warp_folder(first, server).is_dir()
    except (ConfigError, ValueError, OSError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``live2d``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or opens_by_default(args_list[0]):
        args_list = ["open", *args_list]
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        result: int = _load(args.command).run(args)
    except ConfigError as exc:
        print(f"live2d: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result
