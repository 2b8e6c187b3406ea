"""``live2d quality OUTPUT_FOLDER [--cycle N]``: the per-class half-set consistency estimate of a
cycle (computed and cached as ``cycle_<N>.quality.json`` when missing), printed as a table.

The supervisor runs it after every cycle with ``--after-cycle``: at the lowest CPU priority
(niceness 19 and ``SCHED_IDLE``), and the class selection is carried to the cycle
(``cycle_<N>.selection.json``) as well.

Exit status: 0 success; 2 no such cycle or output folder, or a file cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from live2d_tui.commands.cycles import CycleNotFound, cycle_quality, open_cycle
from live2d_tui.results.quality import CycleQuality
from live2d_tui.results.selection import SelectionError, save_carried
from live2d_tui.supervisor.results import cycle_links

HELP = "Show (and compute) the per-class half-set resolution estimate of a cycle"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``quality`` options."""
    parser.add_argument("output_folder", type=Path, metavar="OUTPUT_FOLDER")
    parser.add_argument("--cycle", type=int, default=None, help="cycle number (default: latest)")
    parser.add_argument(
        "--cap", type=int, default=None, help="particles per class at most (default 1000)"
    )
    parser.add_argument("--json", action="store_true", help="print the cache's JSON")
    parser.add_argument(
        "--after-cycle",
        action="store_true",
        help="what the supervisor runs after a cycle: idle priority, quiet, carry the selection",
    )


def lowest_priority() -> None:
    """Niceness 19 and, where the OS has it, the idle scheduling class."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 19)
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, idle, os.sched_param(0))


def format_table(quality: CycleQuality) -> str:
    """One line per class: members, used, fraction, mean score, figure."""
    lines = [
        f"cycle {quality.cycle}: {quality.particles:,} particles, {len(quality.classes)} classes",
        quality.describe(),
        " class  members     used  fraction  score  half-set",
    ]
    for c in quality.classes:
        figure = f"{c.resolution:6.1f} Å" if c.resolution is not None else f"  - ({c.reason})"
        score = f"{c.mean_score:6.2f}" if c.mean_score is not None else "     -"
        lines.append(
            f"{c.class_number:6d} {c.members:8,d} {c.used:8,d} "
            f"{quality.fraction(c.class_number):8.1%} {score}  {figure}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Compute or read the estimate and print it."""
    if args.after_cycle:
        lowest_priority()
    if args.cap is not None and args.cap < 2:
        print("live2d quality: --cap must be at least 2", file=sys.stderr)
        return 2
    try:
        opened = open_cycle(args.output_folder, args.cycle)
        quality = cycle_quality(opened, compute=True, cap=args.cap)
        assert quality is not None
        if args.after_cycle:
            links = cycle_links(opened.state.cycles)
            save_carried(opened.folder, opened.record.number, links)
    except (CycleNotFound, SelectionError, OSError, ValueError) as exc:
        print(f"live2d quality: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(quality.to_dict(), indent=2))
    elif not args.after_cycle:
        print(format_table(quality))
    else:
        print(
            f"cycle {quality.cycle}: estimated {len(quality.classes)} classes in "
            f"{quality.seconds:.1f} s"
        )
    return 0
