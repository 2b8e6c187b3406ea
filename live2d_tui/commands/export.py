"""``live2d export OUTPUT_FOLDER``: the active particles of chosen classes of a cycle as a
RELION 3.1 or cisTEM star (:mod:`live2d_tui.results.export`), by default into the output
folder's ``exports/`` under a new name; never overwrites a file, never changes the session.

Exit status: 0 success (one summary line); 2 bad options, no such cycle, nothing to export, or a
file could not be read or written (nothing is left behind).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from live2d_tui.commands.cycles import CycleNotFound, open_cycle
from live2d_tui.results.export import ExportError, ExportRequest, parse_classes
from live2d_tui.results.selection import SelectionError
from live2d_tui.supervisor.results import export_classes, selected_classes

HELP = "Export the particles of selected classes as a RELION or cisTEM star"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``export`` options."""
    parser.add_argument("output_folder", type=Path, metavar="OUTPUT_FOLDER")
    parser.add_argument("--cycle", type=int, default=None, help="cycle number (default: latest)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--classes",
        default=None,
        help="class numbers, e.g. 1,4,7 or 2-5 (no default: give this or --selected)",
    )
    which.add_argument(
        "--selected", action="store_true", help="the classes marked good on that cycle"
    )
    parser.add_argument(
        "--format",
        choices=("relion", "cistem"),
        required=True,
        help="RELION 3.1 star (also for cryoSPARC) or cisTEM star (required, no default)",
    )
    parser.add_argument(
        "--to", type=Path, default=None, help="the star to write (default: OUTPUT_FOLDER/exports/)"
    )
    parser.add_argument(
        "--relative-to",
        type=Path,
        default=None,
        metavar="DIR",
        help="image paths relative to DIR (default: absolute)",
    )
    parser.add_argument(
        "--stack", action="store_true", help="also write a stack of only these particles"
    )
    parser.add_argument(
        "--warp-stacks",
        action="store_true",
        help="RELION: point at Warp's own particle stacks instead of the combined stack",
    )
    parser.add_argument(
        "--alignment",
        action="store_true",
        help="RELION: add the 2D pose and class (rlnAnglePsi, rlnOriginX/YAngst, rlnClassNumber)",
    )


def run(args: argparse.Namespace) -> int:
    """Export and print the summary."""
    try:
        opened = open_cycle(args.output_folder, args.cycle)
        if args.selected:
            chosen = selected_classes(opened.folder, opened.record, opened.state.cycles)
        else:
            chosen = parse_classes(args.classes)
        request = ExportRequest(
            classes=chosen,
            format=args.format,
            alignment=args.alignment,
            warp_stacks=args.warp_stacks,
            stack=args.stack,
            relative_to=args.relative_to,
        )
        summary = export_classes(
            opened.folder,
            opened.record,
            _warp(opened.state.warp_folder),
            request,
            args.to,
            on_warning=lambda text: print(f"live2d export: warning: {text}", file=sys.stderr),
        )
    except (CycleNotFound, ExportError, SelectionError, OSError, ValueError) as exc:
        print(f"live2d export: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    return 0


def _warp(folder: str) -> Path | None:
    return Path(folder) if folder else None
