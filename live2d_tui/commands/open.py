"""``live2d open [WARP_FOLDER]``: the terminal UI on a Warp session (``live2d`` alone reopens the
last session from ``~/.live2d/last_session.json``).

The image probe runs here, before the app starts: textual-image can only query the terminal
while Textual does not yet own stdin.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from live2d_tui.commands.common import OUT_RULE, add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``WARP_FOLDER`` (a session name under ``warp_prefix`` or a path), ``--out`` and config."""
    parser.add_argument(
        "warp_folder",
        nargs="?",
        default=None,
        metavar="WARP_FOLDER",
        help="Warp session folder or session name (default: the last session)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help=f"output folder (default: {OUT_RULE})"
    )
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Open the UI; returns the exit status."""
    from live2d_tui.paths import PathError, resolve_warp_folder
    from live2d_tui.supervisor import Supervisor, SupervisorError
    from live2d_tui.ui.app import Live2DApp
    from live2d_tui.ui.images import prepare_images

    config = config_from_args(args)
    try:
        warp = (
            resolve_warp_folder(args.warp_folder, config.server)
            if args.warp_folder is not None
            else None
        )
        supervisor = Supervisor(config, warp_folder=warp, output_folder=args.out)
    except (PathError, SupervisorError) as exc:
        print(f"live2d: {exc}", file=sys.stderr)
        if args.warp_folder is None:
            print(
                "live2d: open a session with `live2d open WARP_FOLDER`, or try `live2d demo`.",
                file=sys.stderr,
            )
        return 2
    choice = prepare_images(config.server.images)
    app = Live2DApp(supervisor, images=choice)
    app.run()
    return 0 if app.ended_by_signal is None else 128 + app.ended_by_signal
