"""A real output folder for the results tests: a simulated Warp session classified by the
supervisor with the built-in engine (seed, two startup cycles, one refinement cycle)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from live2d_tui.config import Config, JobSettings, ServerConfig
from live2d_tui.events import Event, JobFinished
from live2d_tui.simulate import SimulationOptions, simulate_session

JOB = JobSettings(
    mask_radius=60.0,
    class_number=4,
    particles_per_class=40,
    run_count_startup=2,
    run_count_refine=1,
    particle_count_initial=100,
    particle_count_update=60,
)
SERVER = ServerConfig(
    engine="builtin",  # type: ignore[arg-type]
    pool_size=2,
    interval=0.2,
    retry_seconds=0.05,
    min_free_gb=0.0,
    niceness=0,
)


async def classify(warp: Path, out: Path) -> None:
    """One ab initio job on ``warp`` into ``out``; returns when it finished."""
    from live2d_tui.supervisor import Supervisor

    sup = Supervisor(Config(server=SERVER, job=JOB), warp_folder=warp, output_folder=out)
    done: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

    def on_event(event: Event) -> None:
        if isinstance(event, JobFinished) and not done.done():
            done.set_result(event)

    sup.bus.subscribe(on_event)
    await sup.start()
    try:
        await sup.ingest_now(settle=True)
        await sup.start_job_now(continue_automatic=False)
        finished = await asyncio.wait_for(done, 240)
        assert isinstance(finished, JobFinished) and finished.success, finished
    finally:
        await sup.close()


@pytest.fixture(scope="session")
def classified_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(Warp folder, output folder) of a finished job: 8 micrographs × ~50 particles, 64 px at
    3 Å, 4 views, 4 classes; cycles 0 (seed) … 3. Copy it before changing anything."""
    root = tmp_path_factory.mktemp("classified")
    warp, out = root / "warp", root / "out"
    simulate_session(
        warp,
        SimulationOptions(
            micrographs=8,
            particles_per_micrograph=50,
            box=64,
            pixel_size=3.0,
            diameter=150.0,
            snr=0.1,
            views=4,
            seed=4,
        ),
    )
    asyncio.run(classify(warp, out))
    return warp, out


@pytest.fixture
def session_copy(classified_session: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of :func:`classified_session` (Warp folder and output folder)."""
    warp, out = classified_session
    copy_warp, copy_out = tmp_path / "warp", tmp_path / "out"
    shutil.copytree(warp, copy_warp, symlinks=True)
    shutil.copytree(out, copy_out, symlinks=True)
    return copy_warp, copy_out
