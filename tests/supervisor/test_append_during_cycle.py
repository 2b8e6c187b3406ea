"""Particles appended to the stack while a cycle runs join at the next cycle, never the running one.

Lock-step, not timing: the refine2d of the built-in engine is wrapped by a script that waits while
a hold file exists; the test creates it when cycle 1 starts (synchronously, before any process is
spawned), lets the simulated microscope write more movies, waits until ingest has appended them,
then removes the hold file.
"""

from __future__ import annotations

import stat
import sys
import threading
from pathlib import Path

from live2d_tui.events import CycleStarted, Event, IngestCounts, JobFinished
from live2d_tui.simulate import SimEvent, SimulationOptions, simulate_session
from live2d_tui.supervisor import Supervisor

from .conftest import Recorder, tiny_config
from .headless import check_history


def _gated_engine(folder: Path, hold: Path) -> tuple[str, str]:
    folder.mkdir()
    paths = []
    for name, module in (("refine2d", "refine2d"), ("merge2d", "merge2d")):
        path = folder / f"live2d-{name}"
        wait = f'while [ -e "{hold}" ]; do sleep 0.05; done\n' if name == "refine2d" else ""
        path.write_text(
            f'#!/bin/sh\n{wait}exec {sys.executable} -m live2d_tui.engine.{module} "$@"\n'
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        paths.append(str(path))
    return paths[0], paths[1]


async def test_append_while_a_cycle_runs(tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    refine, merge = _gated_engine(tmp_path / "bin", hold)
    warp = tmp_path / "warp"
    release = threading.Event()

    def pause(event: SimEvent) -> None:
        if event.kind == "movie_done" and event.micrograph == 3:
            release.wait(240)

    opts = SimulationOptions(micrographs=7, particles_per_micrograph=40, box=64, seed=4, rate=0.05)
    sim = threading.Thread(target=simulate_session, args=(warp, opts), kwargs={"on_event": pause})
    sim.start()
    while not (warp / "previous.settings").exists():
        threading.Event().wait(0.05)

    sup = Supervisor(tiny_config(refine2d=refine, merge2d=merge), warp_folder=warp)
    rec = Recorder(sup.bus)

    def on_cycle(event: Event) -> None:
        if isinstance(event, CycleStarted) and event.number == 1:
            hold.touch()  # before the runner spawns anything: publish is synchronous
            release.set()

    sup.bus.subscribe(on_cycle)
    try:
        await sup.start()
        await sup.start_automatic()
        started = await rec.wait(lambda e: isinstance(e, CycleStarted) and e.number == 1)
        assert isinstance(started, CycleStarted)
        rows_at_start = started.particle_count
        grown = await rec.wait(
            lambda e: isinstance(e, IngestCounts) and e.particles_total > rows_at_start + 80
        )
        assert isinstance(grown, IngestCounts)
        assert not (warp / "classification" / "cycle_1.star").exists()  # cycle 1 still runs
        hold.unlink()
        done = await rec.wait(lambda e: isinstance(e, JobFinished), timeout=240)
        assert isinstance(done, JobFinished) and done.success
    finally:
        release.set()
        if hold.exists():
            hold.unlink()
        await sup.close(abort_running=True)
        sim.join(120)
    cycles = check_history(warp / "classification")
    assert cycles[1]["particle_count"] == rows_at_start  # the running cycle kept its input
    assert cycles[2]["particle_count"] > rows_at_start  # new particles joined at the next cycle
    assert cycles[2]["input_rows"] >= grown.particles_total
