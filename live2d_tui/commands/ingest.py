"""``live2d ingest WARP_FOLDER``: ingest a Warp session's particles into the combined stack.

With ``--once`` it ingests what is there (polling until Warp's files are stable, at most
``--settle`` seconds) and exits; otherwise it keeps following the session until Ctrl-C. Each pass
that changes something prints one line of counts: micrographs seen, ingested, deferred, inactive;
particles active and in the stack. Messages (deferred stacks, torn files, a new generation) are
printed as they happen.

Exit status: 0 success; 2 the folder cannot be ingested (not a Warp folder, export off, damaged
output folder; the one-line reason is on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from live2d_tui.commands.common import OUT_RULE, add_config_arguments, config_from_args
from live2d_tui.config import ParticleSource
from live2d_tui.dataset.ingest import Dataset, IngestError, IngestReport
from live2d_tui.paths import output_folder_for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ingest`` options."""
    parser.add_argument("warp_folder", type=Path, metavar="WARP_FOLDER", help="Warp session folder")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help=f"output folder (default: {OUT_RULE})"
    )
    parser.add_argument("--once", action="store_true", help="ingest what is there, then exit")
    parser.add_argument(
        "--all-particles",
        action="store_true",
        help="read allparticles_<Model>.star instead of goodparticles_<Model>.star",
    )
    parser.add_argument(
        "--min-free-gb", type=float, default=2.0, help="stop appending below this free space"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="--once: give up waiting for Warp's files to settle after this many s",
    )
    add_config_arguments(parser, job=False)


def format_counts(report: IngestReport) -> str:
    """One line of counts (the same in --once and follow mode)."""
    line = (
        f"micrographs: {report.micrographs_seen} seen, {report.micrographs_ingested} ingested, "
        f"{report.micrographs_deferred} deferred, {report.micrographs_inactive} inactive; "
        f"particles: {report.particles_active} active, {report.particles_total} in stack"
    )
    if report.particles_appended:
        line += f" (+{report.particles_appended})"
    return line


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    config = config_from_args(args)
    source = ParticleSource.ALL if args.all_particles else config.server.particle_source
    out = output_folder_for(args.warp_folder, config.server, args.out)
    try:
        dataset = Dataset(
            args.warp_folder,
            out,
            source=source,
            min_free_gb=args.min_free_gb,
            log=lambda message: print(message, flush=True),
        )
    except IngestError as exc:
        print(f"live2d ingest: {exc}", file=sys.stderr)
        return 2
    print(f"ingesting {args.warp_folder} ({source.value}) into {out}", flush=True)
    try:
        if args.once:
            print(format_counts(dataset.poll_until_settled(args.settle)), flush=True)
        else:
            asyncio.run(_follow(dataset, config.server.interval))
    finally:
        dataset.close()
    return 0


async def _follow(dataset: Dataset, interval: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    last = ""

    def show(report: IngestReport) -> None:
        nonlocal last
        line = format_counts(report)
        if line != last:
            print(line, flush=True)
            last = line

    await dataset.follow(stop, show, interval)
