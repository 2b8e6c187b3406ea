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
from live2d_tui.formats.mrc import read_header, read_slices
from live2d_tui.results.report import classes_for_report, render_report, write_report
from live2d_tui.results.selection import SelectionError, selection_for
from live2d_tui.supervisor.results import cycle_links

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
    import numpy as np

    try:
        opened = open_cycle(args.output_folder, args.cycle)
        record, files = opened.record, opened.files
        quality = cycle_quality(opened, compute=not args.no_estimate)
        selection, _ = selection_for(opened.folder, record.number, cycle_links(opened.state.cycles))
        header = read_header(files.classes)
        averages = read_slices(files.classes, header, np.arange(1, header.nz + 1, dtype=np.int64))
        classes = classes_for_report(averages, record.particle_count_per_class, quality, selection)
        title = (
            f"{opened.state.session_name or opened.folder.name} — cycle {record.number} "
            f"({record.block_type.value}, {record.high_res_limit:.1f} Å limit), "
            f"{record.particle_count:,} particles, {record.time[:16].replace('T', ' ')}"
        )
        footer = (
            "Under each class: number (✓ selected, ✗ rejected, ? unreviewed), members, and the "
            + (quality.describe() if quality is not None else "half-set estimate (not computed)")
            + "."
        )
        write_report(render_report(classes, title, footer), args.output)
    except (CycleNotFound, SelectionError, OSError, ValueError) as exc:
        print(f"live2d report: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {args.output} ({len(classes)} classes of cycle {record.number})")
    return 0
