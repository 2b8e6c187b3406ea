"""``live2d report OUTPUT_FOLDER [--cycle N] -o classes.png``: a PNG montage of a cycle's classes
with number, members and half-set figure under each, and the selection marked
(:mod:`live2d_tui.results.report`). The estimate is computed (and cached) when missing, unless
``--no-estimate``.

Exit status: 0 success; 2 no such cycle, or a file cannot be read or written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from live2d_tui.commands.cycles import CycleNotFound, cycle_quality, open_cycle
from live2d_tui.results.selection import SelectionError
from live2d_tui.supervisor.results import write_cycle_report

HELP = "Write a PNG montage of a cycle's classes with their figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``report`` options."""
    parser.add_argument("output_folder", type=Path, metavar="OUTPUT_FOLDER")
    parser.add_argument("--cycle", type=int, default=None, help="cycle number (default: latest)")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="the PNG to write (required, no default)"
    )
    parser.add_argument(
        "--no-estimate",
        action="store_true",
        help="do not compute a missing half-set estimate (no figures then)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the report."""
    try:
        opened = open_cycle(args.output_folder, args.cycle)
        quality = cycle_quality(opened, compute=not args.no_estimate)
        count = write_cycle_report(
            opened.folder,
            opened.state.session_name,
            opened.record,
            opened.state.cycles,
            quality,
            args.output,
        )
    except (CycleNotFound, SelectionError, OSError, ValueError) as exc:
        print(f"live2d report: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {args.output} ({count} classes of cycle {opened.record.number})")
    return 0
