"""Render the README's screenshots: main screen, class view, job output, settings, session.

    .venv/bin/python screenshots/make_screenshots.py [--micrographs 40] [--keep DIR]

Everything is real: a simulated Warp session, one job of the built-in engine run by the real
supervisor, then the real app (half-cell images pinned, 10×20 px cells) photographed with
Textual's SVG export. PNGs come from ``rsvg-convert`` (``apt-get install librsvg2-bin``); without
it only the SVGs are written.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIZE = (160, 48)


async def run_job(warp: Path, config: Any, settings: Any) -> None:
    """One job with the real supervisor (headless), until it is stopped again."""
    from live2d_tui.supervisor import Supervisor

    sup = Supervisor(config, warp_folder=warp)
    await sup.start()
    try:
        await sup.ingest_now(settle=True)
        await sup.start_job_now(settings, continue_automatic=False)
        await sup.wait_job()
    finally:
        await sup.close()


async def shoot(
    warp: Path, config: Any, name: str, steps: Callable[[Any, Any], Awaitable[None]]
) -> Path:
    """Open the app on ``warp``, run ``steps(app, pilot)``, save ``<name>.svg``."""
    from live2d_tui.config import ImageMode
    from live2d_tui.supervisor import Supervisor
    from live2d_tui.ui.app import Live2DApp
    from live2d_tui.ui.images import ImageChoice
    from live2d_tui.ui.widgets.class_grid import ClassGrid

    app = Live2DApp(
        Supervisor(config, warp_folder=warp),
        images=ImageChoice(ImageMode.HALFCELL, "screenshots use half-cell images"),
    )
    async with app.run_test(size=SIZE) as pilot:
        grid = app.query_one(ClassGrid)
        for _ in range(600):
            if grid.data is not None and grid.image_generation > 0:
                break
            await pilot.pause(0.1)
        await steps(app, pilot)
        await pilot.pause(0.3)
        path = HERE / f"{name}.svg"
        app.save_screenshot(str(path.name), path=str(HERE))
    return path


def to_png(svg: Path) -> Path | None:
    """Convert with rsvg-convert when it is installed."""
    tool = shutil.which("rsvg-convert")
    if tool is None:
        return None
    png = svg.with_suffix(".png")
    subprocess.run([tool, str(svg), "-o", str(png)], check=True)
    return png


async def main_async(args: argparse.Namespace) -> None:
    from live2d_tui.config import Config, EngineKind, JobSettings, ServerConfig
    from live2d_tui.simulate import SimulationOptions, simulate_session
    from live2d_tui.ui import images

    images.pin_cell_size(10, 20)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="live2d-shots-"))
    os.environ["LIVE2D_HOME"] = str(root / "home")
    warp = root / "warp_session"
    settings = JobSettings().with_changes(
        mask_radius=90.0,  # inside half the 64 px × 3 Å/px box
        particle_count_initial=500,
        particle_count_update=500,
        class_number=12,
        particles_per_class=60,
        run_count_startup=4,
        run_count_refine=2,
        high_res_initial=30,
        high_res_final=12,
    )
    config = Config(
        server=ServerConfig(engine=EngineKind.BUILTIN, interval=3600.0, microscope_name="Krios 1"),
        job=settings,
    )
    if not (warp / "classification" / "latest_run.json").exists():
        print(f"simulating {args.micrographs} micrographs in {warp} …", file=sys.stderr)
        options = SimulationOptions(micrographs=args.micrographs, box=64, views=12, seed=3)
        simulate_session(warp, options)
        # the simulator writes in seconds what a microscope writes in hours: date the movies'
        # XML (the Session tab's time axis) two minutes apart, ending now
        xmls = sorted(warp.glob("*.xml"))
        start = time.time() - 120.0 * len(xmls)
        for i, xml in enumerate(xmls):
            os.utime(xml, (start + 120.0 * i, start + 120.0 * i))
        print("running one job with the built-in engine …", file=sys.stderr)
        await run_job(warp, config, settings)

    async def figures(app: Any, pilot: Any) -> None:
        """Wait for the half-set estimate of the shown cycle (asked for when it is shown)."""
        from live2d_tui.ui.widgets.class_grid import ClassGrid

        grid = app.query_one(ClassGrid)
        for _ in range(900):
            data = grid.data
            if data is not None and data.results is not None and data.results.quality is not None:
                return
            await pilot.pause(0.1)

    # largest classes first: however many classes the run fills, they lead the grid; the first
    # marked good, the third bad (marks are saved with the cycle, so later shots show them too)
    async def classes(app: Any, pilot: Any) -> None:
        await figures(app, pilot)
        await pilot.press("o", "space", "right", "right", "space", "space", "left")

    async def detail(app: Any, pilot: Any) -> None:
        await pilot.press("o", "enter")
        for _ in range(100):
            if app.screen.query("#detail-image"):
                break
            await pilot.pause(0.1)

    async def job_output(app: Any, pilot: Any) -> None:
        await pilot.press("2")
        await pilot.pause(1.0)

    async def settings_view(app: Any, pilot: Any) -> None:
        await pilot.click("#group-expert CollapsibleTitle")

    async def session_view(app: Any, pilot: Any) -> None:
        await pilot.press("3")
        await pilot.pause(3.0)

    shots = {
        "main": classes,
        "class_view": detail,
        "job_output": job_output,
        "settings": settings_view,
        "session": session_view,
    }
    for name, steps in shots.items():
        svg = await shoot(warp, config, name, steps)
        png = to_png(svg)
        print(f"wrote {svg}" + (f" and {png}" if png else " (no rsvg-convert: SVG only)"))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micrographs", type=int, default=40)
    parser.add_argument("--keep", default="", help="reuse/keep the session in this folder")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
