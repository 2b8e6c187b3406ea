"""``live2d simulate OUT``: write a simulated Warp session folder (with a ``truth/`` sidecar).

Every :class:`~live2d_tui.simulate.options.SimulationOptions` field but the microscope's
(voltage, Cs, amplitude contrast, defocus range) has one flag; hazards are off
unless switched on. In live mode (``--rate``) Ctrl-C ends the session after a final rewrite of
the particle tables, as stopping Warp does.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from live2d_tui.simulate import SimEvent, SimulationOptions, simulate_session

_D = SimulationOptions()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``simulate`` options (one per SimulationOptions field)."""
    parser.add_argument("out", type=Path, metavar="OUT", help="session folder to write")
    g = parser.add_argument_group("scenario")
    g.add_argument("--micrographs", type=int, default=_D.micrographs, help="movies (%(default)s)")
    g.add_argument(
        "--particles-per-micrograph",
        type=int,
        default=_D.particles_per_micrograph,
        help="mean picks per movie, ±25%% (%(default)s)",
    )
    g.add_argument("--box", type=int, default=_D.box, help="box, binned px (%(default)s)")
    g.add_argument(
        "--pixel-size", type=float, default=_D.pixel_size, help="binned Å/px (%(default)s)"
    )
    g.add_argument("--bin-times", type=float, default=_D.bin_times, help="Import/BinTimes")
    g.add_argument("--diameter", type=float, default=_D.diameter, help="Å (%(default)s)")
    g.add_argument("--snr", type=float, default=_D.snr, help="signal/noise variance (%(default)s)")
    g.add_argument(
        "--views", type=int, default=_D.views, help="discrete views K; 0 = random (%(default)s)"
    )
    g.add_argument("--view-jitter", type=float, default=_D.view_jitter, help="degrees")
    g.add_argument("--max-shift", type=float, default=_D.max_shift, help="largest origin, px")
    g.add_argument("--bfactor", type=float, default=_D.bfactor, help="envelope B, Å²")
    g.add_argument("--seed", type=int, default=_D.seed, help="random seed (%(default)s)")
    g.add_argument("--phantom-seed", type=int, default=_D.phantom_seed, help="phantom layout seed")
    g.add_argument("--rate", type=float, default=_D.rate, help="live mode: seconds per movie")
    g.add_argument("--model", default=_D.model, help="BoxNet model name (%(default)s)")
    g.add_argument("--warp2", action="store_true", help="Warp 2: UTF-8, float16 stacks")
    g.add_argument(
        "--processing-folder", default=None, help="Warp 2: outputs in OUT/NAME (default: in OUT)"
    )
    h = parser.add_argument_group("hazards (all off by default)")
    h.add_argument(
        "--vanishing", type=float, default=0.0, metavar="FRACTION",
        help="movies that fail a filter: in goodparticles once, gone at the next rewrite",
    )  # fmt: skip
    h.add_argument(
        "--unselect-later", type=float, default=0.0, metavar="FRACTION",
        help='movies set to UnselectManual="True" two movies later',
    )  # fmt: skip
    h.add_argument(
        "--reprocess", type=float, default=0.0, metavar="FRACTION",
        help="movies reprocessed two movies later with a different particle count",
    )  # fmt: skip
    h.add_argument(
        "--late-stacks", action="store_true",
        help="stars name a stack while it is still being written",
    )  # fmt: skip
    h.add_argument(
        "--star-gap", type=float, default=0.0, metavar="SECONDS",
        help="how long the star is missing during its delete+move replacement",
    )  # fmt: skip
    h.add_argument(
        "--torn-star", action="store_true",
        help="publish goodparticles cut mid-row before each rewrite",
    )  # fmt: skip
    h.add_argument(
        "--torn-settings", action="store_true",
        help="rewrite previous.settings each movie, visibly half-written first",
    )  # fmt: skip
    h.add_argument("--change-box-at", type=int, default=None, metavar="N",
                   help="box grows by 1/4 from movie N, 0-based (default: never)")  # fmt: skip
    h.add_argument("--change-model-at", type=int, default=None, metavar="N",
                   help="BoxNet model changes from movie N (default: never)")  # fmt: skip
    h.add_argument("--change-binning-at", type=int, default=None, metavar="N",
                   help="BinTimes grows by 1 from movie N (default: never)")  # fmt: skip
    h.add_argument("--no-invert", dest="invert", action="store_false",
                   help="Invert=False: protein-black stacks")  # fmt: skip
    h.add_argument("--phase-plate", action="store_true", help="phase-plate data (30-110°)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def options_from_args(args: argparse.Namespace) -> SimulationOptions:
    """Build the validated options from parsed arguments (each flag's dest is its field's name;
    fields without a flag, such as the microscope's voltage, keep their defaults)."""
    names = [f.name for f in dataclasses.fields(SimulationOptions) if hasattr(args, f.name)]
    return SimulationOptions(**{name: getattr(args, name) for name in names})


def run(args: argparse.Namespace) -> int:
    """Write the session; print what was written."""
    try:
        opts = options_from_args(args)
    except ValueError as exc:
        print(f"live2d simulate: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGINT, on_signal)
    previous_term = signal.signal(signal.SIGTERM, on_signal)

    def on_event(event: SimEvent) -> None:
        if not args.quiet and event.kind == "movie_done":
            print(f"movie {event.micrograph + 1}/{opts.micrographs} written", flush=True)

    try:
        summary = simulate_session(args.out, opts, stop=stop, on_event=on_event)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    print(
        f"Wrote a simulated Warp {'2' if opts.warp2 else '1'} session to {summary.folder}: "
        f"{summary.micrographs} micrographs, {summary.particles} particles "
        f"({opts.box} px, {opts.pixel_size:g} Å/px); {summary.good_particles} rows in "
        f"{summary.goodparticles}; ground truth in {summary.truth_dir}"
        + (" (stopped early)" if summary.stopped else "")
    )
    return 0
