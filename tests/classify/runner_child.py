"""A supervisor stand-in for crash tests: runs one refinement cycle in its own process.

Usage: ``python runner_child.py OUTPUT_FOLDER PARTICLES POOL JOBS`` (cycle 1 from cycle 0).
The test SIGKILLs this process while its program runs go on, then checks that ``end_orphans``
ends them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np

from live2d_tui.classify.engines import EnginePrograms
from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.schedule import plan_job
from live2d_tui.config import ClassificationType, EngineKind, JobSettings

FAKE = Path(__file__).with_name("fake_cistem.py")


async def main(folder: Path, count: int, pool: int, jobs: int) -> None:
    programs = EnginePrograms(
        EngineKind.CISTEM,
        [sys.executable, str(FAKE), "refine2d"],
        [sys.executable, str(FAKE), "merge2d"],
    )
    settings = JobSettings(
        classification_type=ClassificationType.REFINE, class_number=4, mask_radius=15.0
    )
    runner = CycleRunner(folder, programs, pool_size=pool, jobs_per_cycle=jobs, log=print)
    plan = plan_job(settings, last_cycle_number=0)
    inputs = CycleInputs(
        stack_path=folder / "combined_stack.mrcs",
        nz=count,
        dataset_star=folder / "combined_stack.star",
        active_positions=np.arange(1, count + 1),
        previous_star=folder / "cycle_0.star",
        previous_classes=folder / "cycle_0.mrc",
        pixel_size=2.5,
    )
    await runner.run_cycle(plan.cycles[0], inputs, settings)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
