"""Figures for the report (not a test): state-save cost vs history length, and the supervisor's
gap between one cycle's end and the next cycle's start on a tiny simulated session.

Run: ``.venv/bin/python tests/supervisor/measure_supervisor.py`` (needs a few CPU seconds).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from live2d_tui.config import Config, JobSettings, ServerConfig
from live2d_tui.events import BlockType, CycleProgress, CycleStarted, Event, JobFinished
from live2d_tui.simulate import SimulationOptions, simulate_session
from live2d_tui.supervisor import Supervisor
from live2d_tui.supervisor.state import CycleRecord, SessionState, save_state


def save_cost(folder: Path, cycles: int, repeats: int = 20) -> float:
    settings = JobSettings()
    record = CycleRecord(
        name="cycle_0",
        number=0,
        block_type=BlockType.STARTUP,
        cycle_number_in_block=1,
        high_res_limit=8.0,
        particle_count=500_000,
        process_count=32,
        particle_count_per_class=tuple(range(51)),
        used_per_class=tuple(range(51)),
        settings=settings.to_dict(),
    )
    records = tuple(
        CycleRecord(**{**record.__dict__, "name": f"cycle_{i}", "number": i}) for i in range(cycles)
    )
    state = SessionState(warp_folder="/w", output_folder=str(folder), cycles=records)
    save_state(folder, state)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        save_state(folder, state)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def cycle_gaps(tmp: Path) -> list[float]:
    warp = tmp / "warp"
    simulate_session(warp, SimulationOptions(micrographs=4, particles_per_micrograph=40, seed=1))
    job = JobSettings(
        mask_radius=60,
        class_number=4,
        particles_per_class=20,
        run_count_startup=4,
        run_count_refine=2,
    )
    server = ServerConfig.from_dict({"engine": "builtin", "pool_size": 2, "interval": 1.0})
    sup = Supervisor(Config(server=server, job=job), warp_folder=warp)
    stamps: list[tuple[float, Event]] = []
    done = asyncio.Event()

    def record(event: Event) -> None:
        stamps.append((time.perf_counter(), event))
        if isinstance(event, JobFinished):
            done.set()

    sup.bus.subscribe(record)
    await sup.start()
    await sup.ingest_now(settle=True)
    await sup.start_job_now(continue_automatic=False)
    await asyncio.wait_for(done.wait(), 600)
    await sup.close()
    # from the last progress event of cycle N (the runner is finishing) to CycleStarted N+1:
    # the runner's star join + the supervisor's record, state save and next inputs
    gaps = []
    last_progress: dict[int, float] = {}
    for t, e in stamps:
        if isinstance(e, CycleProgress):
            last_progress[e.number] = t
        elif isinstance(e, CycleStarted) and e.number - 1 in last_progress:
            gaps.append(t - last_progress[e.number - 1])
    return gaps


def main() -> int:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["LIVE2D_HOME"] = str(tmp / "home")
        for n in (10, 100, 1000):
            folder = tmp / f"s{n}"
            folder.mkdir()
            size = 0
            cost = save_cost(folder, n)
            size = (folder / "latest_run.json").stat().st_size
            print(
                f"save_state with {n:5d} cycles: {cost * 1000:6.1f} ms (file {size / 1e6:.2f} MB)"
            )
        gaps = asyncio.run(cycle_gaps(tmp))
        print(
            "last progress of cycle N -> start of cycle N+1: median "
            f"{statistics.median(gaps) * 1000:.0f} ms, max {max(gaps) * 1000:.0f} ms "
            f"over {len(gaps)} gaps"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
