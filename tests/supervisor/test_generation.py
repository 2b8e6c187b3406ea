"""Warp changes the box mid-session: a new stack generation, and the next job starts ab initio."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from live2d_tui.events import JobFinished, LogLine
from live2d_tui.simulate import SimEvent, SimulationOptions, simulate_session
from live2d_tui.supervisor import Supervisor

from .conftest import Recorder, tiny_config
from .headless import check_history


@pytest.mark.slow
async def test_box_change_starts_a_new_generation_and_an_ab_initio_job(tmp_path: Path) -> None:
    warp = tmp_path / "warp"
    first_job_done = threading.Event()

    def pause(event: SimEvent) -> None:
        if event.kind == "movie_done" and event.micrograph == 4:
            first_job_done.wait(240)

    opts = SimulationOptions(
        micrographs=9, particles_per_micrograph=40, box=64, seed=7, rate=0.05, change_box_at=5
    )
    sim = threading.Thread(target=simulate_session, args=(warp, opts), kwargs={"on_event": pause})
    sim.start()
    while not (warp / "previous.settings").exists():
        threading.Event().wait(0.05)
    sup = Supervisor(tiny_config(), warp_folder=warp)
    rec = Recorder(sup.bus)
    try:
        await sup.start()
        await sup.start_automatic()
        await rec.wait(lambda e: isinstance(e, JobFinished), timeout=240)
        first_job_done.set()
        await rec.wait_new(lambda e: isinstance(e, JobFinished), timeout=240)
        cycles = sup.snapshot().cycles
    finally:
        first_job_done.set()
        await sup.close(abort_running=True)
        sim.join(120)
    out = warp / "classification"
    check_history(out)
    assert [c.block_type.value for c in cycles].count("random_seed") == 2
    assert cycles[4].block_type.value == "random_seed" and cycles[4].number == 4
    assert {c.generation for c in cycles[:4]} == {0} and {c.generation for c in cycles[4:]} == {1}
    assert all(c.settings["classification_type"] == "abinit" for c in cycles)  # forced
    old_box = np.fromfile(out / "cycle_3.mrc", dtype="<i4", count=3)  # MRC header nx, ny, nz
    new_box = np.fromfile(out / "cycle_7.mrc", dtype="<i4", count=3)
    assert new_box[0] > old_box[0] and new_box[2] == old_box[2] == 4  # bigger box, 4 classes
    assert any("generation" in e.text for e in rec.of(LogLine))
