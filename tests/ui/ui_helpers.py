"""Helpers for the UI tests: real simulated sessions, the real supervisor, the real app."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from live2d_tui.config import Config, EngineKind, ImageMode, JobSettings, ServerConfig

SMALL_JOB = JobSettings().with_changes(
    mask_radius=90.0,  # inside half the simulated box (64 px × 3 Å/px)
    particle_count_initial=100,
    particle_count_update=100,
    class_number=6,
    run_count_startup=2,
    run_count_refine=1,
    particles_per_class=30,
    high_res_initial=30,
    high_res_final=15,
)
"""A job of 4 cycles (seed, 2 startup, 1 refinement) on ~440 particles: seconds, not minutes."""

TEST_CONFIG = Config(
    server=ServerConfig(engine=EngineKind.BUILTIN, interval=3600.0, pool_size=2, disk_alert_gb=0.0),
    job=SMALL_JOB,
)
"""Built-in engine; a long interval so no periodic ingest changes what a test looks at; no disk
alert (whether the test machine's disk has 20 GB free is no part of any picture)."""


def simulate(folder: Path, micrographs: int = 10) -> Path:
    """A real simulated Warp session (deterministic seed)."""
    from live2d_tui.simulate import SimulationOptions, simulate_session

    simulate_session(folder, SimulationOptions(micrographs=micrographs, box=64, seed=1))
    return folder


async def run_one_job(warp: Path) -> None:
    """Run one classification job headless with the real supervisor, then close it."""
    from live2d_tui.events import SessionStatus
    from live2d_tui.supervisor import Supervisor

    sup = Supervisor(TEST_CONFIG, warp_folder=warp)
    await sup.start()
    try:
        counts = await sup.ingest_now(settle=True)
        assert counts is not None and counts.particles_active > 0
        await sup.start_job_now(SMALL_JOB, continue_automatic=False)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            snap = sup.snapshot()
            if snap.cycles and snap.status is SessionStatus.STOPPED and not sup.job_running:
                break
            assert not (snap.last_error and not sup.job_running), snap.last_error
        else:
            raise AssertionError("the job did not finish")
    finally:
        await sup.close()


def lengthen_job(app: object) -> None:
    """Make the form's next job a seeded job with 200 refinement cycles (minutes of work, where
    the small job takes seconds), so a test that acts on a running job never races its natural
    end; stop and abort still end it within a cycle. (After the fixture's ab initio the staged
    type is streaming, whose job has no planned length.)"""
    from textual.widgets import Input, Select

    app.query_one("#set-classification_type", Select).value = "seeded"  # type: ignore[attr-defined]
    app.query_one("#set-run_count_refine", Input).value = "200"  # type: ignore[attr-defined]


def copy_session(source: Path, dest: Path) -> Path:
    """A private copy of a session (warp folder with its classification folder), lock removed."""
    shutil.copytree(source, dest)
    for lock in dest.rglob(".live2d.lock"):
        lock.unlink()
    return dest


def make_app(warp: Path, **kw: object) -> object:
    """The real app on the real supervisor, half-cell images pinned."""
    from live2d_tui.supervisor import Supervisor
    from live2d_tui.ui.app import Live2DApp
    from live2d_tui.ui.images import ImageChoice

    sup = Supervisor(TEST_CONFIG, warp_folder=warp)
    return Live2DApp(sup, images=ImageChoice(ImageMode.HALFCELL, "pinned for tests"), **kw)  # type: ignore[arg-type]


async def wait_until(pilot: object, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the app run until ``condition()`` holds (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await pilot.pause(0.05)  # type: ignore[attr-defined]
