"""``live2d demo``: a simulated live Warp session in a temporary folder, with the UI on it.

The simulator writes movies in a background thread (live mode), the supervisor uses the
built-in engine with small thresholds and automatic jobs on, so the first classes appear after
about half a minute (the first job waits for 400 particles: ten movies, 3 s apart). The demo
keeps its own ``LIVE2D_HOME`` inside the temporary folder, so it never replaces the user's
last-session pointer (the user's configuration is still read first, for ``images`` and
``microscope_name``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from live2d_tui.commands.common import add_config_arguments, config_from_args, job_overrides
from live2d_tui.config import Config, EngineKind

DEMO_VIEWS = 4
"""Distinct views in the simulated data, and the demo's classes: as many classes as views, so
the first job fills the grid (8 classes of 4 views left half the grid crossed out; with 6 and
8 the first job still ended with a class emptied in 3 runs of 3, with 4 in none)."""

DEMO_SEED = 2
"""The simulated data's seed (seed 1's data left a class of 4 empty after the first job)."""

DEMO_JOB = {
    "particle_count_initial": 400,
    "particle_count_update": 600,
    "class_number": DEMO_VIEWS,
    "particles_per_class": 50,
    "run_count_startup": 4,
    "run_count_refine": 2,
    "high_res_initial": 30.0,
    "high_res_final": 12.0,
    "stream_batch": 200,
}
"""Small thresholds: the first job starts after ~10 micrographs, a new one every ~15; after the
first ab initio, streaming updates come every ~7 micrographs (about 20 s at the default rate)."""


EPILOG = textwrap.fill(
    "The demo always uses the built-in engine and looks at the simulated folder every 2 s, "
    f"with small job settings ({', '.join(f'{k} {v}' for k, v in DEMO_JOB.items())}); "
    "--set KEY=VALUE overrides them. Quit with q (or ctrl+q); closing the terminal or SIGTERM "
    "quits too, and the temporary folder is removed in every case unless --keep or --folder "
    "is given.",
    width=78,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--folder`` (keep the session there), ``--micrographs``, ``--rate``, config options."""
    parser.add_argument(
        "--folder",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to write the session and its classification, kept afterwards (default: a "
        "new live2d-demo-* folder in the temporary folder, removed when the demo ends)",
    )
    parser.add_argument(
        "--micrographs", type=int, default=200, metavar="N", help="movies to simulate"
    )
    parser.add_argument(
        "--rate", type=float, default=3.0, metavar="SECONDS", help="seconds between movies"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    add_config_arguments(parser)


def demo_config(base: Config, overrides: dict[str, str] | None = None) -> Config:
    """The user's configuration with the demo's engine, interval and small job thresholds
    (``--set`` overrides still win)."""
    server = base.server.with_changes(engine=EngineKind.BUILTIN, interval=2.0)
    job = base.job.with_changes(**{**DEMO_JOB, **(overrides or {})})
    return Config(server=server, job=job)


def wait_for(path: Path, thread: threading.Thread, timeout: float = 120.0) -> bool:
    """Wait until the simulator wrote ``path`` (or died / timed out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        if not thread.is_alive():
            return path.exists()
        time.sleep(0.2)
    return False


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status."""
    from live2d_tui.simulate import SimulationOptions, simulate_session
    from live2d_tui.supervisor import Supervisor, SupervisorError
    from live2d_tui.ui.app import Live2DApp
    from live2d_tui.ui.desktop import output_is_terminal, resolve_desktop
    from live2d_tui.ui.images import prepare_images

    config = demo_config(config_from_args(args), job_overrides(args))
    root = args.folder or Path(tempfile.mkdtemp(prefix="live2d-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ["LIVE2D_HOME"] = str(root / "home")  # the user's pointer stays untouched
    warp = root / "warp_session"
    stop = threading.Event()
    options = SimulationOptions(
        micrographs=args.micrographs, rate=args.rate, seed=DEMO_SEED, views=DEMO_VIEWS
    )
    sim = threading.Thread(
        target=simulate_session,
        args=(warp, options),
        kwargs={"stop": stop},
        name="live2d-demo-simulator",
        daemon=True,
    )
    print(f"live2d demo: simulating a Warp session in {warp}", file=sys.stderr)
    ended_by: int | None = None

    def cleanup(*, print_kept: bool) -> None:
        stop.set()
        sim.join(timeout=30)
        if args.folder is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        elif print_kept:
            print(f"live2d demo: session kept in {root}", file=sys.stderr)

    def terminated(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # before the app runs: leave through the cleanup below

    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, terminated)
    sim.start()
    try:
        if not wait_for(warp / "previous.settings", sim):
            print("live2d demo: the simulator did not start", file=sys.stderr)
            return 1
        try:
            supervisor = Supervisor(config, warp_folder=warp)
        except SupervisorError as exc:
            print(f"live2d demo: {exc}", file=sys.stderr)
            return 1
        choice = prepare_images(config.server.images)
        desktop = resolve_desktop(config.server.desktop_notifications, is_tty=output_is_terminal())
        app = Live2DApp(supervisor, images=choice, desktop=desktop, start_automatic=True)
        app.exit_cleanups.append(lambda: cleanup(print_kept=False))
        app.run()
        ended_by = app.ended_by_signal
    finally:
        for signum in (signal.SIGHUP, signal.SIGTERM):  # a second signal must not stop cleanup
            signal.signal(signum, signal.SIG_IGN)
        cleanup(print_kept=True)
    return 0 if ended_by is None else 128 + ended_by
